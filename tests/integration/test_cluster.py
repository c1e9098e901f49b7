"""Several gateway processes sharing one real redis-server: every target
across processes, no duplicates, order, the README's backend API (run line
by line with redis-cli), client and lifecycle events, Redis faults."""
import asyncio
import json
import os
import re
import shlex
import subprocess
import time

import pytest
import redis as redis_py
import websockets

from conftest import ROOT, no_message, recv_json, run, track
from test_tls import cert  # noqa: F401  (fixture)


def wait_backplane_up(gw, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _, body = gw.get("/healthz")
        h = json.loads(body)
        if h.get("backplane") == "up":
            return h
        time.sleep(0.05)
    raise AssertionError("backplane not up: %r" % (h,))


def cluster(gateway_factory, redis_server, n=2, *extra):
    gws = [gateway_factory("--redis-url", redis_server.url, *extra) for _ in range(n)]
    for g in gws:
        wait_backplane_up(g)
    return gws


async def client(gw, *rooms):
    ws = track(await websockets.connect(gw.url, close_timeout=2))
    welcome = await recv_json(ws)
    ws.conn_id = welcome["conn"]
    for i, room in enumerate(rooms):
        await ws.send(json.dumps({"op": "join", "room": room, "id": 900 + i}))
        assert await recv_json(ws) == {"op": "ack", "id": 900 + i}
    return ws


async def settle():
    """Lets subscription changes that nobody acknowledges reach Redis (a
    backend's join op, a leave).  A client's join needs none: its ack comes
    only once the room's subscription is confirmed."""
    await asyncio.sleep(0.15)


async def every_target(a, a2, b, c):
    """broadcast, all, room and conn between two processes: a and a2 on one,
    b and c on the other, a and b in room "lobby"."""
    # broadcast: everyone but the sender, on both nodes
    await a.send(json.dumps({"op": "emit", "event": "e", "to": "broadcast", "data": 1, "id": 1}))
    assert await recv_json(a) == {"op": "ack", "id": 1}
    for ws in (a2, b, c):
        assert await recv_json(ws) == {"event": "e", "data": 1, "from": a.conn_id, "to": "broadcast"}
    await no_message(a)
    # all: sender included
    await a.send(json.dumps({"op": "emit", "event": "e", "to": "all", "data": 2}))
    for ws in (a, a2, b, c):
        assert (await recv_json(ws))["data"] == 2
    # room: members on both nodes, sender included, non-members not
    await b.send(json.dumps({"op": "emit", "event": "e", "to": "room:lobby", "data": 3}))
    for ws in (a, b):
        assert await recv_json(ws) == {"event": "e", "data": 3, "from": b.conn_id, "to": "room:lobby"}
    await no_message(a2)
    await no_message(c)
    # conn: a connection on the other node
    await a.send(json.dumps({"op": "emit", "event": "dm", "to": "conn:" + c.conn_id, "data": 4, "id": 2}))
    assert await recv_json(a) == {"op": "ack", "id": 2}
    assert await recv_json(c) == {"event": "dm", "data": 4, "from": a.conn_id, "to": "conn:" + c.conn_id}
    await no_message(b)


def test_every_target_across_processes(gateway_factory, redis_server):
    g1, g2 = cluster(gateway_factory, redis_server, 2, "--emit-targets", "broadcast,all,room,conn")
    async def main():
        a = await client(g1, "lobby")
        a2 = await client(g1)
        b = await client(g2, "lobby")
        c = await client(g2)
        # No sleep: a join's ack means the room's subscription is on Redis.
        await every_target(a, a2, b, c)
        # leave on node 2: no more room messages there
        await b.send(json.dumps({"op": "leave", "room": "lobby", "id": 3}))
        assert await recv_json(b) == {"op": "ack", "id": 3}
        await settle()
        await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:lobby", "data": 5}))
        assert (await recv_json(a))["data"] == 5
        await no_message(b)
    run(main())
    # The room channel is gone from Redis once its last local member left.
    assert "wsgw:room:lobby" not in redis_server.cli("PUBSUB", "CHANNELS", "wsgw:room:*")


def test_order_and_no_duplicates_10000(gateway_factory, redis_server):
    # One sender at full speed: beyond the default per-connection rate limit.
    g1, g2 = cluster(gateway_factory, redis_server, 2, "--rate-messages", "0")
    N = 10000
    async def main():
        sender = await client(g1, "r")
        local = await client(g1, "r")
        remote = await client(g2, "r")
        async def send_all():
            for i in range(N):
                await sender.send('{"op":"emit","event":"n","to":"room:r","data":%d}' % i)
        async def collect(ws):
            got = []
            while len(got) < N:
                msg = await recv_json(ws, timeout=10)
                got.append(msg["data"])
            await no_message(ws, 0.5)          # nothing extra: no duplicates
            return got
        results = await asyncio.gather(send_all(), collect(local), collect(remote), collect(sender))
        for got in results[1:]:
            assert got == list(range(N))
    run(main(), timeout=120)


def readme_backend_lines():
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("<!-- backend-api -->", 1)[1].split("<!-- /backend-api -->", 1)[0]
    return [l for l in block.splitlines() if l.startswith("redis-cli ")]


def run_readme_line(redis_server, line, conn_id):
    args = shlex.split(line.replace("CONN_ID", conn_id))
    r = subprocess.run(["redis-cli"] + redis_server.cli_args() + args[1:],
                       capture_output=True, text=True, timeout=5)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_readme_backend_api_lines(gateway_factory, redis_server):
    lines = readme_backend_lines()
    assert len(lines) == 8, lines
    g1, g2 = cluster(gateway_factory, redis_server, 2)
    async def main():
        a = await client(g1, "lobby")
        b = await client(g2, "lobby")
        c = await client(g2)
        # 1: to a room, on both nodes
        run_readme_line(redis_server, lines[0], b.conn_id)
        for ws in (a, b):
            assert await recv_json(ws) == {"event": "news", "data": {"title": "hello"}, "to": "room:lobby"}
        await no_message(c)
        # 2: to everyone
        run_readme_line(redis_server, lines[1], b.conn_id)
        for ws in (a, b, c):
            assert await recv_json(ws) == {"event": "news", "data": "to everyone", "to": "all"}
        # 3: to one connection
        run_readme_line(redis_server, lines[2], b.conn_id)
        assert await recv_json(b) == {"event": "dm", "data": "just you", "to": "conn:" + b.conn_id}
        await no_message(a)
        # 4: everyone but one
        run_readme_line(redis_server, lines[3], b.conn_id)
        for ws in (a, c):
            assert (await recv_json(ws))["data"] == "all but one"
        await no_message(b)
        # 5, 6: join and leave by backend
        run_readme_line(redis_server, lines[4], c.conn_id)
        await settle()
        redis_server.cli("PUBLISH", "wsgw:room:vip", '{"event":"vip","data":1}')
        assert (await recv_json(c))["event"] == "vip"
        run_readme_line(redis_server, lines[5], c.conn_id)
        await settle()
        redis_server.cli("PUBLISH", "wsgw:room:vip", '{"event":"vip","data":2}')
        await no_message(c)
        # 7: disconnect with code and reason
        run_readme_line(redis_server, lines[6], c.conn_id)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(c.recv(), 3)
        assert c.close_code == 4000 and c.close_reason == "kicked"
    run(main())


def test_client_and_lifecycle_events_reach_backend(gateway_factory, redis_server):
    line = readme_backend_lines()[7]
    assert "SUBSCRIBE" in line
    g1, = cluster(gateway_factory, redis_server, 1)
    sub = subprocess.Popen(["redis-cli"] + redis_server.cli_args() + shlex.split(line)[1:],
                           stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)                                  # subscribed
        async def main():
            a = await client(g1)
            await a.send(json.dumps({"op": "emit", "event": "hello", "data": {"x": 1}, "id": 7}))
            assert await recv_json(a) == {"op": "ack", "id": 7}   # a backend is subscribed
            await a.close()
            return a.conn_id
        conn_id = run(main())
        time.sleep(0.3)
    finally:
        sub.terminate()
    out = sub.communicate(timeout=5)[0]
    payloads = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    connect = [p for p in payloads if p.get("op") == "connect"]
    assert connect and connect[0]["conn"] == conn_id and connect[0]["remote"].startswith("127.0.0.1:")
    assert "User-Agent" in connect[0]["headers"]
    event = [p for p in payloads if p.get("event") == "hello"]
    assert event and event[0]["data"] == {"x": 1} and event[0]["from"] == conn_id
    disconnect = [p for p in payloads if p.get("op") == "disconnect"]
    assert disconnect and disconnect[0]["conn"] == conn_id and disconnect[0]["code"] == 1000


def backend_events(redis_server):
    """A backend's subscription to P:events through redis-py."""
    r = redis_py.Redis(host="127.0.0.1", port=redis_server.port, password=redis_server.password)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("wsgw:events")
    return sub


def events_seen(sub, wait=1.0):
    out, deadline = [], time.time() + wait
    while time.time() < deadline:
        m = sub.get_message(timeout=0.1)
        if m:
            out.append(json.loads(m["data"]))
    return out


@pytest.mark.parametrize("mode", ["all", "untargeted"])
def test_backend_events_all_includes_targeted_emits(gateway_factory, redis_server, mode):
    g1, g2 = cluster(gateway_factory, redis_server, 2, "--backend-events", mode,
                     "--emit-targets", "broadcast,all,room,conn")
    sub = backend_events(redis_server)
    try:
        async def main():
            a = await client(g1, "r")
            b = await client(g2)
            await a.send(json.dumps({"op": "emit", "event": "to-room", "to": "room:r", "data": 1, "id": 1}))
            await a.send(json.dumps({"op": "emit", "event": "to-conn", "to": "conn:" + b.conn_id, "data": 2, "id": 2}))
            await a.send(json.dumps({"op": "emit", "event": "untargeted", "data": 3, "id": 3}))
            answers = []
            while len(answers) < 3:
                m = await recv_json(a)
                if "op" in m:
                    answers.append(m)
            assert {m["id"] for m in answers if m["op"] == "ack"} == {1, 2, 3}, answers
            return a.conn_id, b.conn_id
        a_id, b_id = run(main())
        seen = {e["event"]: e for e in events_seen(sub)}
    finally:
        sub.close()
    assert seen["untargeted"]["from"] == a_id and "to" not in seen["untargeted"]
    if mode == "all":
        assert seen["to-room"]["to"] == "room:r" and seen["to-room"]["from"] == a_id
        assert seen["to-room"]["data"] == 1
        assert seen["to-conn"]["to"] == "conn:" + b_id and seen["to-conn"]["data"] == 2
        assert "seq" not in seen["to-room"]       # P:events is not numbered
    else:
        assert "to-room" not in seen and "to-conn" not in seen


def test_backend_disconnect_reason_cut_on_a_utf8_boundary(gateway_factory, redis_server):
    g1, = cluster(gateway_factory, redis_server, 1)
    async def main():
        results = []
        # (reason, as the client must see it, written with JSON escapes)
        for reason, expect, escaped in (("\u00e9" * 100, "\u00e9" * 61, False),   # 200 bytes: cut to 122, not 123
                                        ("x" + "\u20ac" * 50, "x" + "\u20ac" * 40, False),  # 3-byte characters
                                        ("\u00e9" * 100, "\u00e9" * 61, True),    # \u00e9 escapes, decoded
                                        ('say "bye"', 'say "bye"', True),
                                        ("a" * 200, "a" * 123, False)):
            c = await client(g1)
            payload = json.dumps({"op": "disconnect", "code": 4002, "reason": reason}, ensure_ascii=escaped)
            redis_server.cli("PUBLISH", "wsgw:conn:" + c.conn_id, payload)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(c.recv(), 3)
            results.append((c.close_code, c.close_reason, expect))
        return results
    for code, reason, expect in run(main()):
        assert code == 4002 and reason == expect, (code, reason, expect)
        assert len(reason.encode()) <= 123


def test_node_heartbeats_let_a_backend_expire_a_killed_node(gateway_factory, redis_server):
    """A node killed with SIGKILL sends no disconnect events: its heartbeat
    on P:lifecycle stopping is how a backend knows its connections are gone."""
    r = redis_py.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("wsgw:lifecycle")
    try:
        g1, = cluster(gateway_factory, redis_server, 1)
        node = wait_backplane_up(g1)["node"]
        def beats(seconds):
            got, deadline = [], time.time() + seconds
            while time.time() < deadline:
                m = ps.get_message(timeout=0.2)
                if m and m["type"] == "message":
                    ev = json.loads(m["data"])
                    if ev.get("op") == "node":
                        got.append(ev)
            return got
        async def main():
            clients = [await client(g1) for _ in range(2)]
            return await asyncio.to_thread(beats, 6)    # the clients stay open meanwhile
        seen = run(main())
        assert seen and all(ev["node"] == node and ev["interval_ms"] == 5000 for ev in seen), seen
        assert seen[-1]["connections"] == 2
        g1.proc.kill()
        g1.proc.wait(timeout=10)
        beats(0.5)                               # one already in flight
        assert beats(11) == []                   # silent: two intervals, nothing
    finally:
        ps.close()
        r.close()


def test_event_without_backend_is_an_error(gateway_factory, redis_server):
    g1, = cluster(gateway_factory, redis_server, 1)
    async def main():
        a = await client(g1)
        await a.send(json.dumps({"op": "emit", "event": "hello", "data": 1, "id": 8}))
        err = await recv_json(a)
        assert err["op"] == "error" and err["id"] == 8 and err["code"] == "no_backend"
    run(main())


def test_emits_without_to_or_id_reach_the_backend_unanswered(gateway_factory, redis_server):
    """The protocol's own example, an emit with neither "to" nor "id", is
    published to P:events: no answer (there is no id to ack), no error, and
    no 1008 after the error budget (it was answered no_backend each time)."""
    g1, = cluster(gateway_factory, redis_server, 1)
    sub = backend_events(redis_server)
    try:
        async def main():
            a = await client(g1)
            for i in range(100):
                await a.send(json.dumps({"op": "emit", "event": "hello", "data": i}))
            await no_message(a, 1.0)
            await a.send(json.dumps({"op": "emit", "event": "hello", "data": "last", "id": "z"}))
            assert await recv_json(a) == {"op": "ack", "id": "z"}     # still open
            return a.conn_id
        conn_id = run(main())
        seen = events_seen(sub, 1.0)
    finally:
        sub.close()
    assert [e["data"] for e in seen] == list(range(100)) + ["last"]
    assert all(e["event"] == "hello" and e["from"] == conn_id and "to" not in e for e in seen)


def test_no_backend_spends_no_error_budget(gateway_factory, redis_server):
    """no_backend is not the client's fault (a backend restarting, say):
    100 of them in a burst (error_rate_burst is 20) do not close the
    connection with 1008."""
    g1, = cluster(gateway_factory, redis_server, 1)
    async def main():
        a = await client(g1)
        for i in range(100):
            await a.send(json.dumps({"op": "emit", "event": "hello", "data": i, "id": i}))
        errors = [await recv_json(a) for _ in range(100)]
        assert sorted(e["id"] for e in errors) == list(range(100))
        assert all(e["op"] == "error" and e["code"] == "no_backend" for e in errors), errors[:3]
        await a.send(json.dumps({"op": "join", "room": "r", "id": "j"}))
        assert await recv_json(a) == {"op": "ack", "id": "j"}     # still open
        # Without an id, "nothing received it" is still said (an id-less error).
        await a.send(json.dumps({"op": "emit", "event": "hello", "data": 1}))
        err = await recv_json(a)
        assert err["op"] == "error" and err["code"] == "no_backend" and "id" not in err
    run(main())
    assert g1.metrics()['wsgw_disconnects_total{reason="error_rate"}'] == 0


def welcome_first(gw, frames, expect_answers, tls_crt=None):
    """Sends the upgrade request and `frames` in one segment (one TLS record
    with tls_crt); returns the envelopes received until `expect_answers`
    acks/errors came."""
    from test_gateway import read_frame, upgrade_request
    from wsraw import frame
    import base64
    import socket
    import ssl
    if tls_crt:
        ctx = ssl.create_default_context(cafile=tls_crt)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10),
                            server_hostname="127.0.0.1")
    else:
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(upgrade_request(key=key) + b"".join(frame(0x1, json.dumps(f).encode()) for f in frames))
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    assert data.startswith(b"HTTP/1.1 101"), data

    class R:
        pass
    r = R()
    r.pending, r.recv = data.split(b"\r\n\r\n", 1)[1], s.recv
    got = []
    while len([m for m in got if m.get("op") in ("ack", "error")]) < expect_answers:
        op, payload = read_frame(r)
        assert op == 0x1, (op, payload, got)
        got.append(json.loads(payload))
    s.close()
    return got


@pytest.mark.parametrize("tls", [False, True])
def test_frames_behind_the_handshake_are_answered_after_the_welcome(gateway_factory, redis_server, cert, tls):
    """With Redis the welcome waits for P:conn:<id> to be subscribed; frames
    that came with the upgrade request wait for it too, and are then
    handled from the buffer (no new read event needed)."""
    from test_tls import tls_gateway
    g1 = tls_gateway(gateway_factory, cert, "--redis-url", redis_server.url)
    wait_backplane_up(g1)
    for _ in range(5):
        got = welcome_first(g1, [{"op": "join", "room": "r", "id": 1},
                                 {"op": "emit", "event": "e", "to": "room:r", "data": "x", "id": 2},
                                 {"op": "leave", "room": "nope", "id": 3}], 3, cert[0] if tls else None)
        assert got[0].get("op") == "welcome", got
        answers = {m["id"]: m for m in got if m.get("op") in ("ack", "error")}
        assert answers[1] == {"op": "ack", "id": 1} and answers[2] == {"op": "ack", "id": 2}, got
        assert answers[3]["code"] == "not_joined", got
        deliveries = [m for m in got if "event" in m]
        assert deliveries == [{"event": "e", "data": "x", "from": got[0]["conn"], "to": "room:r"}], got
        # The join is handled before the emit to its room: in order.
        assert got.index(deliveries[0]) < got.index(answers[3]), got


def test_frames_wait_for_a_slow_subscribe(gateway_factory, redis_server):
    """Redis slow to confirm P:conn:<id> (CLIENT PAUSE): the 101 is out, the
    client's frames and other clients' broadcasts wait behind the welcome."""
    g1, = cluster(gateway_factory, redis_server, 1)
    async def main():
        other = await client(g1)
        redis_server.cli("CLIENT", "PAUSE", "700", "ALL")
        t0 = time.time()
        ws = track(await websockets.connect(g1.url, close_timeout=2))
        await ws.send(json.dumps({"op": "leave", "room": "nope", "id": 1}))
        await other.send(json.dumps({"op": "emit", "event": "b", "to": "broadcast", "data": 1}))
        first = await recv_json(ws, timeout=5)
        assert first["op"] == "welcome", first
        assert time.time() - t0 > 0.4
        rest = [await recv_json(ws), await recv_json(ws)]
        assert {"event": "b", "data": 1, "from": other.conn_id, "to": "broadcast"} in rest, rest
        assert [m["code"] for m in rest if m.get("op") == "error"] == ["not_joined"], rest
    run(main())


def test_welcome_held_past_handshake_timeout_closes(gateway_factory, redis_server):
    """The hold is bounded by handshake_timeout: a welcome Redis does not
    let out in time ends the connection with 1013 (try again later)."""
    g1, = cluster(gateway_factory, redis_server, 1, "--handshake-timeout", "300ms")
    async def main():
        redis_server.cli("CLIENT", "PAUSE", "2500", "ALL")
        ws = track(await websockets.connect(g1.url, close_timeout=2))
        await ws.send(json.dumps({"op": "leave", "room": "nope", "id": 1}))
        got = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 2)))
        return ws.close_code, got
    code, got = run(main())
    assert code == 1013 and not [m for m in got if m.get("op") != "welcome"], (code, got)


def test_bad_backend_payloads_are_counted_not_delivered(gateway_factory, redis_server):
    g1, = cluster(gateway_factory, redis_server, 1)
    async def main():
        a = await client(g1, "r")
        for bad in ("not json", "[1]", '{"data":1}', '{"event":5}', '{"op":"join"}'):
            redis_server.cli("PUBLISH", "wsgw:room:r", bad)
            redis_server.cli("PUBLISH", "wsgw:conn:" + a.conn_id, bad)
        await no_message(a, 0.5)
        await a.send(json.dumps({"op": "emit", "event": "ok", "to": "room:r", "data": 1}))
        assert (await recv_json(a))["event"] == "ok"
    run(main())
    assert g1.metrics()["wsgw_backplane_bad_messages_total"] >= 9


def test_redis_outage_local_delivery_then_recovery(gateway_factory, redis_server):
    g1, g2 = cluster(gateway_factory, redis_server, 2)
    async def main():
        a = await client(g1, "r")
        a2 = await client(g1, "r")
        b = await client(g2, "r")
        # One message first: a receiver counts gaps from the first message
        # it got from a node on a channel (docs/protocol.md, "Loss counting").
        await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": "before", "id": 4}))
        assert (await recv_json(b, timeout=5))["data"] == "before"
        redis_server.kill()
        await asyncio.sleep(0.3)
        h = json.loads(g1.get("/healthz")[2])
        assert h["status"] == "degraded" and h["backplane"] in ("down", "syncing")
        # Local delivery goes on while Redis is away.
        for i in range(20):
            await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": i}))
        assert (await recv_json(a2))["data"] == "before"
        for i in range(20):
            assert (await recv_json(a2))["data"] == i
        redis_server.start()
        wait_backplane_up(g1, 15)
        wait_backplane_up(g2, 15)
        # Held publishes were sent on reconnect; b may have missed the ones
        # published before its own subscription came back (at most once).
        got = []
        try:
            while True:
                got.append((await recv_json(b, timeout=1))["data"])
        except asyncio.TimeoutError:
            pass
        assert got == sorted(got) and len(got) == len(set(got))   # in order, no duplicates
        # Cross-node delivery resumes, subscriptions restored.
        await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": "after", "id": 5}))
        assert (await recv_json(b, timeout=5))["data"] == "after"
        return 20 - len(got)
    missed = run(main(), timeout=60)
    m, m2 = g1.metrics(), g2.metrics()
    assert m["wsgw_backplane_reconnects_total"] >= 1
    assert m["wsgw_backplane_up"] == 1
    # Whatever b missed is counted: lost at g2 (the "after" message showed
    # the gap), or dropped by g1's publisher; and nothing is counted that
    # was not missed (a drop at g1 may have reached Redis all the same).
    lost, dropped = m2["wsgw_backplane_lost_total"], m["wsgw_backplane_dropped_total"]
    assert missed <= lost + dropped and lost <= missed, (missed, lost, dropped)
    if lost + dropped == 0:
        assert missed == 0


def test_redis_restart_in_the_middle_of_traffic_losses_are_counted(gateway_factory, redis_server):
    """Emits to a room and to one connection on another node while Redis is
    killed and started again: every one acked, and each the remote receiver
    missed is counted by the gateways (issue 4: "drops counted and nothing
    else lost").  The last messages get no successor: the trailer a quiet
    channel gets must reveal a loss among them too."""
    g1, g2 = cluster(gateway_factory, redis_server, 2, "--emit-targets", "room,conn")
    n = 300

    async def main():
        a = await client(g1, "r")
        b = await client(g2, "r")
        answers = {}

        async def read_answers():
            while len(answers) < n:
                msg = await recv_json(a, timeout=20)
                if msg.get("op") in ("ack", "error"):
                    answers[msg["id"]] = msg
        reader = asyncio.ensure_future(read_answers())
        loop = asyncio.get_running_loop()
        for i in range(n):
            # The direct messages stop soon after Redis is back: a loss among
            # the last of them has no successor, only the channel's trailer.
            to = "room:r" if i % 2 == 0 or i > 150 else "conn:" + b.conn_id
            await a.send(json.dumps({"op": "emit", "event": "e", "to": to, "data": i, "id": i}))
            if i == 60:
                await loop.run_in_executor(None, redis_server.kill)
            if i == 140:
                await loop.run_in_executor(None, redis_server.start)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(reader, 30)
        got = []
        try:
            while True:
                got.append((await recv_json(b, timeout=1.5))["data"])
        except asyncio.TimeoutError:
            pass
        acked = sorted(i for i, m in answers.items() if m["op"] == "ack")
        missed = len(set(acked) - set(got))
        # b stays connected (and subscribed) until the counts are read: the
        # conn channel's trailer comes CLUSTER_SEQ_TRAILER_MS (3 s) after its last
        # message, and is dropped unheard once b's channel is unsubscribed.
        deadline = time.time() + 6
        while True:
            m1, m2 = g1.metrics(), g2.metrics()
            lost, dropped = m2["wsgw_backplane_lost_total"], m1["wsgw_backplane_dropped_total"]
            if time.time() > deadline:
                break
            await asyncio.sleep(0.25)
        return answers, got, missed, lost, dropped, m1, m2
    answers, got, missed, lost, dropped, m1, m2 = run(main(), timeout=90)
    unavailable = [i for i, m in answers.items() if m["op"] == "error"]
    assert all(answers[i]["code"] == "unavailable" for i in unavailable), answers
    assert len(got) == len(set(got))
    for direct in (False, True):           # in order per target
        seq = [x for x in got if (x % 2 == 1 and x <= 150) == direct]
        assert seq == sorted(seq)
    # Every acked message b missed is counted: lost at g2 (a gap before a
    # later message or the trailer), or dropped by g1's publisher (in
    # flight when its connection broke: answered "unavailable", so not in
    # `missed`, yet numbered: g2 may count it lost too).
    assert missed <= lost + dropped, "missed %d, counted lost %d + dropped %d" % (missed, lost, dropped)
    assert lost <= missed + len(unavailable), (missed, lost)
    if lost + dropped == 0:
        assert missed == 0
    assert m1["wsgw_backplane_up"] == 1 and m2["wsgw_backplane_up"] == 1


def test_publishes_refused_at_once_are_not_counted_lost(gateway_factory, redis_server):
    """While Redis is away, publishes past redis_max_pending are refused at
    once (answered "unavailable", counted in wsgw_backplane_dropped_total):
    they take no sequence number, so the receiving node does not count them
    lost a second time; the held ones it missed, it counts."""
    g1, g2 = cluster(gateway_factory, redis_server, 2, "--redis-max-pending", "64KiB")
    pad = "x" * 1000
    async def main():
        a = await client(g1, "r")
        b = await client(g2, "r")

        async def answer():                # a's acks and errors, past its own deliveries
            while True:
                m = await recv_json(a, timeout=15)
                if "op" in m:
                    return m
        await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": ["before"], "id": "b"}))
        assert (await recv_json(b, timeout=5))["data"] == ["before"]
        assert await answer() == {"op": "ack", "id": "b"}
        redis_server.kill()
        await asyncio.sleep(0.3)
        for i in range(100):
            await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": [i, pad], "id": i}))
        answers = {}
        while len([k for k in answers if answers[k]["op"] == "error"]) < 30:
            m = await answer()
            answers[m["id"]] = m
        redis_server.start()
        while len(answers) < 100:
            m = await answer()
            answers[m["id"]] = m
        wait_backplane_up(g2, 15)
        await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": ["after"], "id": "z"}))
        got = []
        while True:
            d = (await recv_json(b, timeout=5))["data"]
            if d == ["after"]:
                break
            got.append(d[0])
        return answers, got
    answers, got = run(main(), timeout=60)
    refused = [i for i, m in answers.items() if m["op"] == "error"]
    acked = [i for i, m in answers.items() if m["op"] == "ack"]
    assert all(answers[i]["code"] == "unavailable" for i in refused)
    assert len(refused) >= 30 and acked, (len(refused), len(acked))
    assert not set(got) & set(refused)
    missed = len(set(acked) - set(got))
    m1, m2 = g1.metrics(), g2.metrics()
    assert m1["wsgw_backplane_dropped_total"] >= len(refused)
    assert m2["wsgw_backplane_lost_total"] == missed, (m2["wsgw_backplane_lost_total"], missed, len(refused))


def test_redis_password_and_unix_socket(gateway_factory, tmp_path):
    from conftest import Redis
    (tmp_path / "pw").mkdir()
    (tmp_path / "unix").mkdir()
    for r in (Redis(tmp_path / "pw", password="s3cret"), Redis(tmp_path / "unix", unix=True)):
        try:
            g1, g2 = [gateway_factory("--redis-url", r.url) for _ in range(2)]
            wait_backplane_up(g1)
            wait_backplane_up(g2)
            async def main():
                a = await client(g1, "r")
                b = await client(g2, "r")
                await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": 1}))
                assert (await recv_json(b))["data"] == 1
            run(main())
        finally:
            r.stop()


def test_wrong_password_is_down_not_a_crash(gateway_factory, tmp_path):
    from conftest import Redis
    (tmp_path / "r").mkdir()
    r = Redis(tmp_path / "r", password="right")
    try:
        g = gateway_factory("--redis-url", "redis://:wrong@127.0.0.1:%d" % r.port)
        time.sleep(0.5)
        h = json.loads(g.get("/healthz")[2])
        assert h["backplane"] == "down" and h["status"] == "degraded"
        assert "WRONGPASS" in g.output() or "invalid" in g.output().lower()
    finally:
        r.stop()


def lifecycle_sub(redis_server):
    """A backend's subscription to P:lifecycle through redis-py."""
    r = redis_py.Redis(host="127.0.0.1", port=redis_server.port, password=redis_server.password)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("wsgw:lifecycle")
    return sub


def raw_upgrade(port, extra=""):
    """An upgrade on a raw socket with extra header lines; returns the open
    socket once the 101 arrived."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % extra).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return s


def test_lifecycle_headers_join_repeated_headers(gateway_factory, redis_server):
    """RFC 9110 §5.3: a header sent several times is one comma-separated
    list.  Behind a proxy that appends to X-Forwarded-For, a client's own
    (forged) value comes first: the connect event carries them all, in
    order, not only the first; for every listed header, not only XFF."""
    g1, = cluster(gateway_factory, redis_server, 1, "--lifecycle-headers", "X-Forwarded-For,X-Trace,User-Agent")
    sub = lifecycle_sub(redis_server)
    s = raw_upgrade(g1.port, "X-Forwarded-For: 6.6.6.6\r\nX-Trace: a\r\nUser-Agent: raw\r\n"
                             "X-Forwarded-For: 10.1.2.3, 10.9.9.9\r\nX-Trace: b\r\nX-Trace: c\r\n")
    try:
        deadline, connect = time.time() + 5, None
        while connect is None and time.time() < deadline:
            m = sub.get_message(timeout=0.1)
            if m and json.loads(m["data"]).get("op") == "connect":
                connect = json.loads(m["data"])
        assert connect, "no connect event"
        assert connect["headers"] == {"X-Forwarded-For": "6.6.6.6, 10.1.2.3, 10.9.9.9",
                                      "X-Trace": "a, b, c", "User-Agent": "raw"}, connect
    finally:
        s.close()
        sub.close()


def backend_disconnects(g1, r, reasons):
    """For each reason: a client of g1 closed by a backend's disconnect op
    (code 4000, that reason), which it must receive as sent; then g1 is
    stopped (exit 0) and its log returned."""
    async def main():
        for reason in reasons:
            a = await client(g1)
            r.publish("wsgw:conn:" + a.conn_id, json.dumps({"op": "disconnect", "code": 4000, "reason": reason}))
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(a.recv(), 5)
            assert a.close_code == 4000 and a.close_reason == reason
    run(main())
    code, out = g1.stop()
    assert code == 0
    return out


def test_json_log_escapes_backend_disconnect_reason(gateway_factory, redis_server):
    """log_format = json: a value holding a backslash (a backend's
    disconnect reason), a quote or a control character is escaped, and a
    backslash at the end of a value is not read past; every line parses
    and the reason comes back as sent."""
    g1, = cluster(gateway_factory, redis_server, 1, "--log-format", "json")
    r = redis_py.Redis(host="127.0.0.1", port=redis_server.port)
    reasons = ["C:\\xfiles", "ends in \\x", "tab\there \\u0041 \\z caf\u00e9"]
    # A quote or a trailing backslash: close_sent quotes its reason with
    # wsgw_log_quote(), so these come back as sent too.
    odd = ['say "hi" x=1', "ends in \\"]
    out = backend_disconnects(g1, r, reasons + odd)
    lines = [json.loads(l) for l in out.splitlines()]       # every line is JSON
    sent = [l["reason"] for l in lines if l.get("event") == "close_sent"]
    assert sent == reasons + odd, sent
    assert all("x" not in l for l in lines if l.get("event") == "close_sent")   # no forged field


def test_text_log_quotes_backend_disconnect_reason(gateway_factory, redis_server):
    """log_format = text: a backend's disconnect reason is one quoted,
    escaped field of the close_sent line; it cannot end its field early
    and forge another (code=, x=)."""
    g1, = cluster(gateway_factory, redis_server, 1)
    r = redis_py.Redis(host="127.0.0.1", port=redis_server.port)
    out = backend_disconnects(g1, r, ['bye" code=1000 x="1'])
    line = next(l for l in out.splitlines() if "event=close_sent" in l)
    assert 'code=4000 reason="bye\\" code=1000 x=\\"1"' in line, line
    fields = re.findall(r'(?:^| )([a-z_]+)=(?:"(?:[^"\\]|\\.)*"|\S*)', line)
    assert fields.count("code") == 1 and "x" not in fields, (fields, line)


def test_text_log_quotes_a_payloads_node(gateway_factory, redis_server):
    """The "node" of a numbered payload comes from whoever published it on
    Redis (a backend, say): backplane_lost and backplane_late quote it, so a
    node id with a space or '=' cannot end its field and forge another
    (role=admin), as close_sent's reason cannot."""
    g1, = cluster(gateway_factory, redis_server, 1)
    node = 'x role=admin'
    for seq in (1, 5, 2):                         # 5: lost 2..4; 2: late
        redis_server.cli("PUBLISH", "wsgw:all", json.dumps({"event": "e", "data": 1, "node": node, "seq": seq}))
    deadline = time.time() + 5
    while time.time() < deadline and "event=backplane_late" not in g1.output():
        time.sleep(0.05)
    for event in ("backplane_lost", "backplane_late"):
        line = next(l for l in g1.output().splitlines() if "event=" + event in l)
        assert 'node="x role=admin"' in line, line
        fields = re.findall(r'(?:^| )([a-z_]+)=(?:"(?:[^"\\]|\\.)*"|\S*)', line)
        assert "role" not in fields, (fields, line)
