"""Limits a gateway on the open internet needs, each seen from a client:
its status or close code, and its metric moving."""
import asyncio
import json
import resource
import socket
import time

import pytest
import websockets

from conftest import BIN, Gateway, recv_json, run, track
from test_gateway import raw_request, upgrade_request


async def client(gw):
    ws = track(await websockets.connect(gw.url, close_timeout=2))
    await recv_json(ws)
    return ws


def test_message_rate_per_connection(gateway_factory):
    gw = gateway_factory("--rate-messages", "5", "--rate-messages-burst", "5")
    async def main():
        a = await client(gw)
        for i in range(12):
            await a.send(json.dumps({"op": "emit", "event": "e", "to": "all", "data": i, "id": i}))
        codes = []
        for _ in range(12 + 5):                   # acks, deliveries and errors
            msg = await recv_json(a)
            if msg.get("op") == "error":
                codes.append(msg["code"])
        assert codes.count("rate_limited") == 7
    run(main())
    m = gw.metrics()
    assert m['wsgw_rate_limited_messages_total{limit="rate_messages"}'] == 7
    assert m['wsgw_rate_limited_messages_total{limit="rate_bytes"}'] == 0
    assert m['wsgw_envelope_errors_total{code="rate_limited"}'] == 7


def test_byte_rate_per_connection(gateway_factory):
    gw = gateway_factory("--max-message-size", "2KiB", "--rate-bytes", "1KiB", "--rate-bytes-burst", "2KiB")
    async def main():
        a = await client(gw)
        big = json.dumps({"op": "emit", "event": "e", "to": "all", "data": "x" * 1900})
        await a.send(big)
        assert (await recv_json(a))["event"] == "e"
        await a.send(big)                          # the bucket is empty
        err = await recv_json(a)
        assert err["op"] == "error" and err["code"] == "rate_limited"
    run(main())
    m = gw.metrics()
    assert m['wsgw_rate_limited_messages_total{limit="rate_bytes"}'] == 1
    assert m['wsgw_rate_limited_messages_total{limit="rate_messages"}'] == 0


def test_connections_per_address(gateway_factory):
    gw = gateway_factory("--max-conns-per-ip", "2")
    async def main():
        a, b = await client(gw), await client(gw)
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect(gw.url)
        assert e.value.status_code == 429
        await a.close()
        await asyncio.sleep(0.1)
        c = await client(gw)                       # a slot is free again
        assert c.open
    run(main())
    assert gw.metrics()['wsgw_handshake_failures_total{reason="ip_conns"}'] == 1


def test_new_connections_per_second_per_address(gateway_factory):
    # A burst of 3: the fixture's readiness probe took one.
    gw = gateway_factory("--conn-rate-per-ip", "1", "--conn-rate-per-ip-burst", "3")
    resp = [raw_request(gw.port, upgrade_request(), read_until_close=False) for _ in range(3)]
    assert resp[0].startswith(b"HTTP/1.1 101") and resp[1].startswith(b"HTTP/1.1 101")
    assert resp[2].startswith(b"HTTP/1.1 429"), resp[2][:100]
    assert b"too fast" in resp[2]
    time.sleep(1.2)                                # /metrics is a connection from this address too
    assert gw.metrics()['wsgw_handshake_failures_total{reason="ip_rate"}'] == 1


def test_pending_handshakes_slowloris(gateway_factory):
    gw = gateway_factory("--max-pending-handshakes", "3", "--handshake-timeout", "10s")
    time.sleep(0.2)                                # the fixture's probe is closed and reaped
    slow = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
    for s in slow:
        s.sendall(b"GET /ws HTTP/1.1\r\n")         # never finished
    time.sleep(0.2)
    extra = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    assert extra.recv(10) == b""                   # closed at accept: no buffer spent
    extra.close()
    # Once the pending handshakes are stale (1 s), a newcomer takes the
    # oldest one's place: health checks and real clients get through a
    # slowloris that holds the table, and it loses its oldest sockets.
    time.sleep(1.1)
    status = raw_request(gw.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200 "), status[:100]
    slow[0].settimeout(5)
    assert slow[0].recv(10) == b""                 # the oldest made room
    for s in slow:
        s.close()
    time.sleep(0.2)
    assert gw.metrics()['wsgw_handshake_failures_total{reason="pending_limit"}'] >= 2
    async def main():
        ws = await client(gw)                      # the server still accepts
        assert ws.open
    run(main())


def test_out_of_file_descriptors(tmp_path):
    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    gw = Gateway(BIN, ["--max-connections", "1000", "--max-pending-handshakes", "1000"],
                 env={"ASAN_OPTIONS": "detect_leaks=1", "PATH": "/usr/bin:/bin"}, exact_env=True,
                 log_path=str(tmp_path / "gw.log"), log_level="info", preexec_fn=low_fd_limit, wait=False)
    try:
        gw.wait_ready()
        async def main():
            old = await client(gw)                 # connected before the descriptors run out
            socks = []
            for _ in range(60):                    # more than the server has descriptors
                socks.append(socket.create_connection(("127.0.0.1", gw.port), timeout=5))
            await asyncio.sleep(0.5)
            # Out of descriptors: the connected client is served all along.
            for i in range(3):
                await old.send(json.dumps({"op": "emit", "event": "e", "to": "all", "data": i}))
                assert (await recv_json(old))["data"] == i
            for s in socks:
                s.close()
            await asyncio.sleep(0.5)
            ws = await client(gw)                  # accept works again for others
            assert ws.open
        run(main())
        errors = gw.metrics()["wsgw_accept_errors_total"]
        lines = gw.output().count("event=accept_error")
        assert errors >= 5 and 1 <= lines <= 3, (errors, lines)   # one line a second, not one per error
    finally:
        code, _ = gw.stop()
    assert code == 0


def test_ping_flood_without_reading_is_a_slow_consumer(gateway_factory):
    # Pongs are bounded by max_queued_bytes like data: a peer that sends
    # pings and never reads must not grow the server's memory.
    from test_gateway import raw_upgrade
    from wsraw import frame
    gw = gateway_factory("--max-queued-bytes", "64KiB", "--rate-messages", "0", "--rate-bytes", "0")
    s = raw_upgrade(gw.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ping = frame(0x9, b"p" * 125)
    s.sock.settimeout(5)
    try:
        for _ in range(40):                        # 40 x 1000 pings = 5.2 MB of pongs owed
            s.sendall(ping * 1000)
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        pass                                       # cut off while still sending: expected
    deadline = time.time() + 10
    while time.time() < deadline and gw.metrics()["wsgw_slow_consumer_closes_total"] < 1:
        time.sleep(0.2)
    m = gw.metrics()
    assert m["wsgw_slow_consumer_closes_total"] == 1
    assert m["wsgw_queued_bytes"] <= 64 * 1024 + 1024
    s.close()


def test_room_name_limit_is_whole_name_for_patterns(gateway_factory):
    # join_rooms patterns are matched against the whole name, never a cut one.
    gw = gateway_factory("--max-room-name", "255", "--join-rooms", "*-ok")
    async def main():
        a = await client(gw)
        ok = "a" * 252 + "-ok"
        await a.send(json.dumps({"op": "join", "room": ok, "id": 1}))
        assert await recv_json(a) == {"op": "ack", "id": 1}
        await a.send(json.dumps({"op": "join", "room": "a" * 249 + "-ok-no", "id": 2}))  # 255 bytes
        err = await recv_json(a)
        assert err["op"] == "error" and err["code"] == "forbidden", err
        await a.send(json.dumps({"op": "join", "room": "b" * 253 + "-ok", "id": 3}))  # 256 bytes
        err = await recv_json(a)
        assert err["op"] == "error" and err["code"] == "bad_room", err
    run(main())


@pytest.mark.parametrize("flag,value", [("--max-room-name", "256"), ("--max-event-name", "257")])
def test_name_limits_past_what_the_gateway_can_carry_stop_start_up(flag, value):
    import subprocess
    p = subprocess.run([BIN, flag, value, "--listen", "127.0.0.1:1"], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert flag[2:].replace("-", "_") in p.stderr, p.stderr


def test_slow_http_readers_do_not_lock_out_websocket_clients(gateway_factory, tmp_path):
    """200 clients that ask for a 10 MiB static file and never read it must
    not hold the pending-handshake slots (slowloris eviction cannot reclaim
    a response being written): a WebSocket handshake still completes at
    once.  In-flight responses are bounded (max_http_responses: 503 past
    it), none holds the file in memory, and one not written within
    http_write_timeout is cut."""
    size = 10 << 20
    (tmp_path / "big.bin").write_bytes(b"x" * size)
    gw = gateway_factory("--static-dir", str(tmp_path), "--max-pending-handshakes", "100",
                         "--handshake-timeout", "10s", "--http-write-timeout", "3s",
                         "--max-http-responses", "50")
    time.sleep(0.2)                                # the fixture's probe is closed and reaped
    readers = []
    try:
        for _ in range(200):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", gw.port))
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            readers.append(s)
        # Every request read and answered (under ASan, on a shared machine,
        # that takes a moment of its own).
        time.sleep(1.0)
        t0 = time.monotonic()
        ws = socket.create_connection(("127.0.0.1", gw.port), timeout=1)
        ws.sendall(upgrade_request())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = ws.recv(4096)
            assert chunk, "handshake refused: %r" % head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101 ") and time.monotonic() - t0 < 1.0, head
        ws.close()
        # ... while the slow readers still hold their responses (this
        # /metrics one included).
        m = gw.metrics()
        assert m["wsgw_http_responses"] == 51
        # Streamed from the file: at most one 64 KiB chunk per response is
        # queued (none in cleartext, where the kernel sends from the file).
        assert m["wsgw_queued_bytes"] <= 50 * (64 << 10) + 51 * 1024, m["wsgw_queued_bytes"]
        # Past max_http_responses a request gets a short 503 at once.
        busy = 0
        for s in readers:
            s.settimeout(0.05)
            try:
                if s.recv(12).startswith(b"HTTP/1.1 503"):
                    busy += 1
            except socket.timeout:
                pass
        assert busy >= 150 - 5, busy               # 200 - 50, give or take the probe
        # A reader that never reads is cut after http_write_timeout (3 s).
        time.sleep(2.5)
        s = readers[0]
        s.settimeout(3)
        got = 0
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except ConnectionResetError:
            pass
        assert got < size, got
    finally:
        for s in readers:
            s.close()
    time.sleep(0.2)
    m = gw.metrics()
    assert m["wsgw_http_write_timeouts_total"] >= 40, m.get("wsgw_http_write_timeouts_total")
    assert m['wsgw_http_busy_total'] >= 145
    assert "event=http_write_timeout" in gw.output()
