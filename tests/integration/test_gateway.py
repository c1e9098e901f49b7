"""The single-process gateway against real clients: Iris delivery semantics
for every target, acks and errors, bad input, limits and their close codes,
handshake failures, timeouts, slow consumers, compression, shutdown."""
import asyncio
import base64
import json
import os
import signal
import socket
import time

import pytest
import websockets

from conftest import BIN, ROOT, no_message, recv_json, run, track
from wsraw import CLOSE, PING, TEXT, close_code, close_payload, frame, parse_header


async def join_client(gw, *rooms, **kw):
    kw.setdefault("close_timeout", 2)
    ws = track(await websockets.connect(gw.url, **kw))
    welcome = await recv_json(ws)
    assert welcome["op"] == "welcome" and welcome["conn"]
    ws.conn_id = welcome["conn"]
    for i, room in enumerate(rooms):
        await ws.send(json.dumps({"op": "join", "room": room, "id": 1000 + i}))
        assert await recv_json(ws) == {"op": "ack", "id": 1000 + i}
    return ws


async def emit(ws, to, data, event="chat", id=None):
    env = {"op": "emit", "event": event, "data": data}
    if to is not None:
        env["to"] = to
    if id is not None:
        env["id"] = id
    await ws.send(json.dumps(env))


# ---- delivery semantics ----------------------------------------------------------

def test_broadcast_reaches_everyone_but_sender(gateway):
    async def main():
        a, b, c = [await join_client(gateway) for _ in range(3)]
        await emit(a, "broadcast", {"n": 1}, id=7)
        assert await recv_json(a) == {"op": "ack", "id": 7}
        for ws in (b, c):
            assert await recv_json(ws) == {"event": "chat", "data": {"n": 1}, "from": a.conn_id, "to": "broadcast"}
        await no_message(a)
    run(main())


def test_all_includes_sender(gateway):
    async def main():
        a, b, c = [await join_client(gateway) for _ in range(3)]
        await emit(a, "all", "hi")
        for ws in (a, b, c):
            msg = await recv_json(ws)
            assert msg == {"event": "chat", "data": "hi", "from": a.conn_id, "to": "all"}
    run(main())


def test_room_reaches_members_only_sender_included(gateway):
    async def main():
        a = await join_client(gateway, "lobby")
        b = await join_client(gateway, "lobby")
        c = await join_client(gateway, "other")
        await emit(a, "room:lobby", [1, 2, 3])
        for ws in (a, b):
            assert await recv_json(ws) == {"event": "chat", "data": [1, 2, 3], "from": a.conn_id, "to": "room:lobby"}
        await no_message(c)
        # A non-member may not emit into the room (default permissions).
        await emit(c, "room:lobby", 1, id=5)
        err = await recv_json(c)
        assert err["op"] == "error" and err["id"] == 5 and err["code"] == "not_joined"
        await no_message(a)
    run(main())


def test_conn_target_and_unknown_targets(gateway_factory):
    gw = gateway_factory("--emit-targets", "broadcast,all,room,conn")
    async def main():
        a, b, c = [await join_client(gw) for _ in range(3)]
        await emit(a, "conn:" + b.conn_id, "psst", id=1)
        assert await recv_json(a) == {"op": "ack", "id": 1}
        assert await recv_json(b) == {"event": "chat", "data": "psst", "from": a.conn_id, "to": "conn:" + b.conn_id}
        await no_message(c)
        # Unknown id: nobody, silently (Iris), still acked.
        await emit(a, "conn:doesnotexist", 1, id=2)
        assert await recv_json(a) == {"op": "ack", "id": 2}
        await no_message(b)
        await no_message(c)
    run(main())


def test_conn_target_forbidden_by_default(gateway):
    async def main():
        a, b = [await join_client(gateway) for _ in range(2)]
        await emit(a, "conn:" + b.conn_id, "x", id=3)
        err = await recv_json(a)
        assert err["code"] == "forbidden" and err["id"] == 3
        await no_message(b)
    run(main())


def test_join_twice_leave_rejoin(gateway):
    async def main():
        a = await join_client(gateway, "r")
        b = await join_client(gateway, "r", "r")          # joined twice: one membership
        await emit(a, "room:r", "one")
        assert (await recv_json(b))["data"] == "one"
        assert (await recv_json(a))["data"] == "one"
        await no_message(b)                                # not delivered twice
        await b.send(json.dumps({"op": "leave", "room": "r", "id": 9}))
        assert await recv_json(b) == {"op": "ack", "id": 9}
        await emit(a, "room:r", "two")
        assert (await recv_json(a))["data"] == "two"
        await no_message(b)
        await b.send(json.dumps({"op": "leave", "room": "r", "id": 10}))
        assert (await recv_json(b))["code"] == "not_joined"
        await b.send(json.dumps({"op": "join", "room": "r", "id": 11}))
        assert await recv_json(b) == {"op": "ack", "id": 11}
        await emit(a, "room:r", "three")
        assert (await recv_json(b))["data"] == "three"
    run(main())


def test_data_passes_through_byte_exact(gateway):
    async def main():
        a = await join_client(gateway)
        raw = '{"op":"emit","event":"n","to":"all","data":{"big":12345678901234567890,"f":1.10,"s":"\\u00e9"}}'
        await a.send(raw)
        got = await asyncio.wait_for(a.recv(), 3)
        assert '"data":{"big":12345678901234567890,"f":1.10,"s":"\\u00e9"}' in got
    run(main())


# ---- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("frame,code", [
    ("not json", "bad_json"),
    ("[1,2]", "not_object"),
    ('{"op":"dance","id":4}', "unknown_op"),
    ('{"op":"join","id":4}', "missing_field"),
    ('{"op":"join","room":"bad room!","id":4}', "bad_room"),
    ('{"op":"join","room":"' + "x" * 65 + '","id":4}', "bad_room"),
    ('{"op":"emit","event":"e","to":"nowhere","id":4}', "bad_target"),
    ('{"op":"emit","event":"e","to":"all","to":"all","id":4}', "duplicate_field"),
    ('{"op":"emit","to":"all","id":4}', "missing_field"),
], ids=["not-json", "not-object", "unknown-op", "no-room", "bad-room-chars", "room-too-long",
        "bad-target", "duplicate-field", "no-event"])
def test_bad_envelopes_get_errors_and_connection_stays(gateway, frame, code):
    async def main():
        a = await join_client(gateway)
        await a.send(frame)
        err = await recv_json(a)
        assert err["op"] == "error" and err["code"] == code, err
        assert err.get("message")
        if '"id":4' in frame and code not in ("bad_json",):
            assert err.get("id") == 4
        await emit(a, "all", "still here")
        assert (await recv_json(a))["data"] == "still here"
    run(main())
    assert gateway.metrics()['wsgw_envelope_errors_total{code="%s"}' % code] == 1


def test_binary_frame_is_an_error_not_a_crash(gateway):
    async def main():
        a = await join_client(gateway)
        await a.send(b"\x00\x01binary")
        err = await recv_json(a)
        assert err["op"] == "error" and err["code"] == "not_object"
    run(main())


def test_garbage_past_rate_closes_1008(gateway_factory):
    gw = gateway_factory("--error-rate-limit", "5", "--error-rate-burst", "5")
    async def main():
        a = await join_client(gw)
        for _ in range(30):
            try:
                await a.send("garbage")
            except websockets.ConnectionClosed:
                break
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(a.recv(), 3)
        assert a.close_code == 1008
    run(main())
    assert gw.metrics()['wsgw_disconnects_total{reason="error_rate"}'] == 1


def test_message_too_big_closes_1009(gateway_factory):
    gw = gateway_factory("--max-message-size", "1KiB")
    async def main():
        a = await join_client(gw)
        await a.send("x" * 2000)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(a.recv(), 3)
        assert a.close_code == 1009
    run(main())


def test_too_many_rooms(gateway_factory):
    gw = gateway_factory("--max-rooms-per-conn", "2")
    async def main():
        a = await join_client(gw, "r1", "r2")
        await a.send(json.dumps({"op": "join", "room": "r3", "id": 3}))
        assert (await recv_json(a))["code"] == "too_many_rooms"
    run(main())


def test_join_room_patterns(gateway_factory):
    gw = gateway_factory("--join-rooms", "public.*")
    async def main():
        a = await join_client(gw, "public.news")
        await a.send(json.dumps({"op": "join", "room": "secret", "id": 3}))
        assert (await recv_json(a))["code"] == "forbidden"
    run(main())


def test_invalid_utf8_closes_1007(gateway):
    async def main():
        s = raw_upgrade(gateway.port)
        s.sendall(frame(0x1, b"\xff\xfe"))
        code, _ = read_close(s)
        assert code == 1007
    run(main())


# ---- handshakes --------------------------------------------------------------------------------

def raw_request(port, request, read_until_close=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(request)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if not read_until_close and b"\r\n\r\n" in data:
            break
    s.close()
    return data


def upgrade_request(key="dGhlIHNhbXBsZSBub25jZQ==", version="13", method="GET", path="/ws", extra="",
                    http="HTTP/1.1", host="127.0.0.1"):
    """An upgrade request; version=None leaves Sec-WebSocket-Version out."""
    ver = "" if version is None else "Sec-WebSocket-Version: %s\r\n" % version
    return ("%s %s %s\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n%s%s\r\n" % (method, path, http, host, key, ver, extra)).encode()


@pytest.mark.parametrize("req,status,why", [
    (upgrade_request(version="8"), 426, b"speaks 13"),
    (upgrade_request(version=None), 400, b"Sec-WebSocket-Version must be sent once"),
    (upgrade_request(extra="Sec-WebSocket-Version: 13\r\n"), 400, b"Sec-WebSocket-Version must be sent once"),
    (upgrade_request(version="13, 8"), 400, b"Sec-WebSocket-Version must be sent once"),
    (upgrade_request(version="013"), 400, b"Sec-WebSocket-Version must be sent once"),
    (upgrade_request(key="short"), 400, b"Sec-WebSocket-Key"),
    (upgrade_request(method="POST"), 400, b"GET"),
    (upgrade_request(http="HTTP/1.0"), 400, b"needs HTTP/1.1"),
    (upgrade_request(http="HTTP/2.0"), 505, b"speaks HTTP/1.1"),
    (upgrade_request(path="ws://127.0.0.1/ws"), 400, b"http:// or https://"),
    (upgrade_request(path="/nope"), 404, b"no WebSocket endpoint"),
    (upgrade_request(path="http://127.0.0.1/nope"), 404, b"no WebSocket endpoint"),
    (upgrade_request(extra="Origin: http://evil.example\r\n"), 403, b"origin"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, b"too large"),
], ids=["bad-version", "no-version", "two-versions", "version-list", "version-leading-zero", "bad-key",
        "not-get", "http10", "http2", "ws-scheme-target", "wrong-path", "wrong-absolute-path",
        "bad-origin", "headers-too-big"])
def test_handshake_failures(gateway, req, status, why):
    resp = raw_request(gateway.port, req)
    assert resp.startswith(b"HTTP/1.1 %d " % status), resp[:200]
    head, body = resp.split(b"\r\n\r\n", 1)
    # 426 names the version we speak; a malformed version field is not
    # answered as a version we could negotiate.
    assert (b"Sec-WebSocket-Version: 13" in head) == (status == 426), head
    assert why in body, "error responses say why: %r" % body
    assert sum(v for k, v in gateway.metrics().items() if k.startswith("wsgw_handshake_failures_total")) >= 1


def handshake_failures(gw):
    return {k.split('"')[1]: v for k, v in gw.metrics().items()
            if k.startswith("wsgw_handshake_failures_total")}


def test_handshake_failures_counted_by_reason(gateway):
    cases = [(upgrade_request(version="8"), 426, "bad_version"),
             (upgrade_request(key="short"), 400, "bad_request"),
             (upgrade_request(path="/nope"), 404, "not_found"),
             (upgrade_request(extra="Origin: http://evil.example\r\n"), 403, "origin"),
             (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, "too_large")]
    for req, status, reason in cases:
        before = handshake_failures(gateway)
        assert raw_request(gateway.port, req).startswith(b"HTTP/1.1 %d " % status)
        after = handshake_failures(gateway)
        assert after[reason] == before[reason] + 1, (reason, before, after)
        assert sum(after.values()) == sum(before.values()) + 1, "one reason per refusal"


def test_max_connections_answers_503(gateway_factory):
    gw = gateway_factory("--max-connections", "2", "--max-pending-handshakes", "2")
    held = [RawWS(gw.port), RawWS(gw.port)]
    resp = raw_request(gw.port, upgrade_request())
    assert resp.startswith(b"HTTP/1.1 503 ") and b"connection limit" in resp, resp[:200]
    held.pop().close()
    time.sleep(0.2)
    assert handshake_failures(gw)["capacity"] == 1
    held.append(RawWS(gw.port))                  # the freed slot is taken again
    for h in held:
        h.close()


def test_handshake_absolute_form_and_http12(gateway):
    """RFC 9112 §3.2.2: an absolute-form target is accepted and routed by its
    path, and its authority, not Host, is what a same-origin check compares
    with.  RFC 9110 §2.5: HTTP/1.2 is served as 1.1."""
    ok = raw_request(gateway.port, upgrade_request(path="http://127.0.0.1/ws?x=1", host="ignored.example",
                                                   extra="Origin: http://127.0.0.1\r\n"),
                     read_until_close=False)
    assert ok.startswith(b"HTTP/1.1 101 "), ok[:200]
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in ok
    bad = raw_request(gateway.port, upgrade_request(path="https://127.0.0.1/ws", host="evil.example",
                                                    extra="Origin: http://evil.example\r\n"))
    assert bad.startswith(b"HTTP/1.1 403 "), bad[:200]
    ok = raw_request(gateway.port, upgrade_request(http="HTTP/1.2"), read_until_close=False)
    assert ok.startswith(b"HTTP/1.1 101 "), ok[:200]


def test_handshake_accept_key_and_same_origin(gateway):
    resp = raw_request(gateway.port, upgrade_request(extra="Origin: http://127.0.0.1\r\n"), read_until_close=False)
    assert resp.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in resp


def test_allowed_origins_list(gateway_factory):
    gw = gateway_factory("--allowed-origins", "https://*.example.com")
    ok = raw_request(gw.port, upgrade_request(extra="Origin: https://app.example.com\r\n"), read_until_close=False)
    assert ok.startswith(b"HTTP/1.1 101 ")
    bad = raw_request(gw.port, upgrade_request(extra="Origin: https://example.org\r\n"))
    assert bad.startswith(b"HTTP/1.1 403 ")


def test_subprotocol_first_server_match(gateway_factory):
    gw = gateway_factory("--subprotocols", "chat.v2,chat.v1")
    async def main():
        ws = track(await websockets.connect(gw.url, subprotocols=["chat.v1", "chat.v2"]))
        assert ws.subprotocol == "chat.v2"
        await ws.close()
    run(main())


def test_handshake_timeout(gateway_factory):
    gw = gateway_factory("--handshake-timeout", "300ms")
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")        # never finished
    start = time.time()
    assert s.recv(100) == b""                            # closed by the server
    assert time.time() - start < 3
    s.close()
    assert gw.metrics()['wsgw_handshake_failures_total{reason="timeout"}'] == 1


# ---- ping/pong, slow consumers, raw frames ----------------------------------------------------------

class RawWS:
    """A WebSocket client made of a bare socket, for what libraries refuse
    to send (bad frames) or do for you (answering pings)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(upgrade_request(key=key))
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 101")
        self.pending = data.split(b"\r\n\r\n", 1)[1]

    def sendall(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        return self.sock.recv(n)

    def setsockopt(self, *a):
        self.sock.setsockopt(*a)

    def close(self):
        self.sock.close()


def raw_upgrade(port):
    return RawWS(port)


def read_frame(s):
    """(opcode, payload) of the next frame from a RawWS (header parsed by
    wsframe.parse_header)."""
    while True:
        head = parse_header(s.pending)
        if head is not None and len(s.pending) >= head[5] + head[4]:
            break
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        s.pending += chunk
    _, _, op, _, n, hl = head
    payload, s.pending = s.pending[hl:hl + n], s.pending[hl + n:]
    return op, payload


def read_close(s):
    while True:
        op, payload = read_frame(s)
        if op == CLOSE:
            return close_code(payload), payload[2:].decode()


def test_ping_sent_and_unanswered_ping_closes(gateway_factory):
    gw = gateway_factory("--ping-period", "200ms", "--pong-timeout", "600ms")
    s = raw_upgrade(gw.port)
    op, _ = read_frame(s)                      # the welcome
    assert op == 0x1
    op, _ = read_frame(s)
    assert op == 0x9                           # a ping arrives; we never answer
    code, reason = read_close(s)
    assert code == 1001 and "pong" in reason
    s.close()
    time.sleep(0.2)
    assert gw.metrics()['wsgw_disconnects_total{reason="ping_timeout"}'] == 1


def test_answered_pings_keep_connection(gateway_factory):
    gw = gateway_factory("--ping-period", "200ms", "--pong-timeout", "600ms")
    async def main():
        a = await join_client(gw)               # websockets answers pings itself
        await asyncio.sleep(1.5)
        await emit(a, "all", "alive")
        assert (await recv_json(a))["data"] == "alive"
    run(main())


def test_slow_consumer_closed_others_keep_receiving(gateway_factory):
    gw = gateway_factory("--max-queued-bytes", "256KiB", "--max-message-size", "64KiB",
                         "--read-buffer-size", "64KiB")
    async def main():
        slow = raw_upgrade(gw.port)              # never reads after this
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        fast = await join_client(gw)
        sender = await join_client(gw)
        payload = "y" * 30000
        received = 0
        for i in range(200):
            await emit(sender, "broadcast", payload)
            msg = await recv_json(fast, timeout=5)
            assert msg["data"] == payload
            received += 1
        assert received == 200
        await asyncio.sleep(0.3)
        m = gw.metrics()
        assert m["wsgw_slow_consumer_closes_total"] == 1
        assert m["wsgw_dropped_messages_total"] >= 1
        slow.close()
    run(main(), timeout=60)


def test_fragmented_message_with_interleaved_ping(gateway):
    s = raw_upgrade(gateway.port)
    read_frame(s)                                # welcome
    s.sendall(frame(0x1, b'{"op":"emit","event":"f",', fin=False) + frame(0x9, b"hey") +
              frame(0x0, b'"to":"all","data":1}', fin=True))
    op, payload = read_frame(s)
    assert op == 0xA and payload == b"hey"       # pong first, mid-message
    op, payload = read_frame(s)
    assert op == 0x1 and json.loads(payload)["event"] == "f"
    s.sendall(frame(CLOSE, close_payload(1000)))
    code, _ = read_close(s)
    assert code == 1000
    assert s.recv(10) == b""                     # server closes the TCP connection
    s.close()


def test_protocol_errors_close_1002(gateway):
    for bad in (frame(0x3, key=b"\0\0\0\0"),                    # reserved opcode
                frame(TEXT, b"hello", mask=False),             # unmasked client frame
                frame(PING, b"\0" * 126, key=b"\0\0\0\0")):       # control frame > 125
        s = raw_upgrade(gateway.port)
        read_frame(s)
        s.sendall(bad)
        code, _ = read_close(s)
        assert code == 1002
        s.close()


# ---- compression ------------------------------------------------------------------------------

def test_compression_negotiated_and_round_trips(gateway_factory):
    gw = gateway_factory("--enable-compression", "true", "--compression-threshold", "16")
    async def main():
        a = await join_client(gw)                 # websockets offers permessage-deflate
        assert any("permessage-deflate" in repr(e).lower() or e.name == "permessage-deflate"
                   for e in a.extensions), a.extensions
        b = await join_client(gw)
        text = "compress me " * 200
        await emit(a, "broadcast", text)
        assert (await recv_json(b))["data"] == text
    run(main())
    m = gw.metrics()
    assert m["wsgw_compressed_messages_total"] >= 1
    # Compressed on the wire: far fewer bytes out than the 2.4 KB message.
    assert m["wsgw_bytes_out_total"] < 2000


def test_compression_off_by_default(gateway):
    async def main():
        a = await join_client(gateway)
        assert not a.extensions
    run(main())


# ---- HTTP routes ------------------------------------------------------------------------------------

def test_http_routes(gateway):
    status, headers, body = gateway.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, headers, body = gateway.get("/metrics")
    assert status == 200 and b"wsgw_connections " in body and headers["Content-Type"].startswith("text/plain")
    status, headers, body = gateway.get("/wsgw.js")
    assert status == 200 and b"class Wsgw" in body
    status, _, _ = gateway.get("/nothing-here")
    assert status == 404


def test_static_dir_and_traversal(gateway_factory, tmp_path):
    (tmp_path / "index.html").write_text("<h1>demo</h1>")
    gw = gateway_factory("--static-dir", str(tmp_path))
    status, headers, body = gw.get("/")
    assert status == 200 and body == b"<h1>demo</h1>" and headers["Content-Type"].startswith("text/html")
    resp = raw_request(gw.port, b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 404") or resp.startswith(b"HTTP/1.1 400")


def test_bad_config_stops_startup():
    import subprocess
    from conftest import BIN
    r = subprocess.run([BIN, "--max-message-size", "12x"], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "max_message_size" in r.stderr
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--max-message-size" in r.stdout


# ---- lifecycle ----------------------------------------------------------------------------------------

def test_sigterm_closes_clients_1001_and_exits_0(gateway):
    async def main():
        clients = [await join_client(gateway) for _ in range(3)]
        gateway.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1001
    run(main())
    code, out = gateway.stop(sig=None)
    assert code == 0
    assert "event=shutdown" in out


def test_drain_spread_closes_clients_over_time(gateway_factory):
    gw = gateway_factory("--drain-spread", "1s", "--drain-timeout", "5s")
    async def main():
        clients = [await join_client(gw) for _ in range(20)]
        gw.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        async def closed_at(ws):
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1001
            return time.monotonic() - t0
        return sorted(await asyncio.gather(*(closed_at(ws) for ws in clients)))
    times = run(main())
    # A stream over the second, not a wall: the first go at once, the last
    # near the end of the spread, each about 1/20 s apart.
    assert times[0] < 0.3 and 0.6 < times[-1] < 2.0, times
    assert times[10] - times[0] > 0.3, times
    code, out = gw.stop(sig=None)
    assert code == 0 and "drain_spread_ms=1000" in out


def test_drain_spread_must_leave_time_for_the_last_close():
    import subprocess
    p = subprocess.run([BIN, "--drain-spread", "10s", "--drain-timeout", "5s"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2 and "drain_spread" in p.stderr and "drain_timeout" in p.stderr, p.stderr


def test_chat_example(gateway_factory):
    gw = gateway_factory(binary=os.path.join(ROOT, "build", "examples", "chat"))
    async def main():
        a = await join_client(gw)
        b = await join_client(gw)
        await a.send(json.dumps({"op": "emit", "event": "chat", "data": "hello room1", "id": 1}))
        got_a = [await recv_json(a), await recv_json(a)]
        assert {"op": "ack", "id": 1} in got_a
        assert {"event": "chat", "data": "hello room1", "from": a.conn_id, "to": "room:room1"} in got_a
        assert await recv_json(b) == {"event": "chat", "data": "hello room1", "from": a.conn_id, "to": "room:room1"}
    run(main())


def test_hooks_example_iris_config_in_code(gateway_factory):
    """examples/hooks.c: IDGenerator, CheckOrigin and Error (Iris' Config
    hooks) through wsgw_run_hooks, and per-connection user data."""
    gw = gateway_factory(binary=os.path.join(ROOT, "build", "examples", "hooks"))
    async def main():
        a = track(await websockets.connect(gw.url, close_timeout=2, origin="https://app.example.com",
                                           extra_headers={"X-Tenant": "acme"}))
        welcome = await recv_json(a)
        assert welcome["conn"].startswith("acme-"), welcome
        await a.send(json.dumps({"op": "emit", "event": "whoami", "data": None}))
        assert (await recv_json(a))["data"] == {"id": welcome["conn"], "tenant": "acme"}
        b = track(await websockets.connect(gw.url, close_timeout=2))     # no Origin: not a browser
        assert (await recv_json(b))["conn"].startswith("anon-")
    run(main())
    resp = raw_request(gw.port, upgrade_request(extra="Origin: https://evil.example.org\r\n"))
    assert resp.startswith(b"HTTP/1.1 403")
    assert b"hooks example: 403: origin not allowed. See https://example.com/help\n" in resp
    resp = raw_request(gw.port, upgrade_request(version="8"))
    assert resp.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13\r\n" in resp
    assert b"hooks example: 426:" in resp
