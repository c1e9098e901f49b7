"""Iris v10 wire compatibility: a client speaking iris-ws.js' format
(iris-websocket-message:<event>;<type>;<payload>) and envelope clients in
the same room receive each other's messages, each in its own format; Iris'
quirks are handled as the Iris server did, malformed frames are counted,
never a crash; the operator's /iris-ws.js is served."""
import asyncio
import json
import subprocess

import pytest
import websockets

from conftest import BIN, no_message, recv_json, run, track

P = "iris-websocket-message:"


async def iris_client(gw):
    ws = track(await websockets.connect(gw.url.replace("/ws", "/iris"), close_timeout=2))
    return ws


async def envelope_client(gw, room):
    ws = track(await websockets.connect(gw.url, close_timeout=2))
    ws.conn_id = (await recv_json(ws))["conn"]
    await ws.send(json.dumps({"op": "join", "room": room, "id": 1}))
    assert await recv_json(ws) == {"op": "ack", "id": 1}
    return ws


def test_iris_and_envelope_clients_share_a_room(gateway_factory):
    gw = gateway_factory("--iris-path", "/iris", "--iris-rooms", "lobby", "--iris-emit-to", "room:lobby")
    async def main():
        iris = await iris_client(gw)
        iris2 = await iris_client(gw)
        env = await envelope_client(gw, "lobby")
        await no_message(iris)                     # Iris has no welcome
        # Iris -> everyone in the room (the sender too: room semantics).
        await iris.send(P + "chat;0;hello; world")
        msg = await recv_json(env)
        assert msg["event"] == "chat" and msg["data"] == "hello; world" and msg["to"] == "room:lobby"
        assert await asyncio.wait_for(iris2.recv(), 3) == P + "chat;0;hello; world"
        assert await asyncio.wait_for(iris.recv(), 3) == P + "chat;0;hello; world"
        # Each Iris type arrives as JSON for envelope clients.
        for frame, data in ((P + "count;1;42", 42), (P + "typing;2;false", False),
                            (P + "user;4;{\"name\":\"Ann\",\"age\":3}", {"name": "Ann", "age": 3})):
            await iris.send(frame)
            assert (await recv_json(env))["data"] == data
            await asyncio.wait_for(iris2.recv(), 3)
            await asyncio.wait_for(iris.recv(), 3)
        # Envelope -> Iris, typed by the JSON value.
        for data, frame in (("hi", P + "chat;0;hi"), (7, P + "chat;1;7"), (True, P + "chat;2;true"),
                            ({"a": [1]}, P + 'chat;4;{"a":[1]}'), (2.5, P + "chat;4;2.5")):
            await env.send(json.dumps({"op": "emit", "event": "chat", "to": "room:lobby", "data": data},
                                      separators=(",", ":")))
            assert await asyncio.wait_for(iris.recv(), 3) == frame
            assert await asyncio.wait_for(iris2.recv(), 3) == frame
            await recv_json(env)
    run(main())


def test_iris_quirks_and_malformed_frames_are_counted(gateway_factory):
    gw = gateway_factory("--iris-path", "/iris")               # iris_emit_to = broadcast
    async def main():
        iris = await iris_client(gw)
        env = await envelope_client(gw, "x")
        bad = [P + "typing;1;true",          # the JS client's bool quirk: Iris' Atoi dropped it
               P + "n;1;3.14",
               P + "j;4;null",
               P,                            # made the Iris server's reader panic
               P + "x;0",
               "a native frame"]             # native: no server handler here
        for frame in bad:
            await iris.send(frame)
        await iris.send(P + "ok;0;still alive")
        msg = await recv_json(env)
        assert msg["event"] == "ok" and msg["data"] == "still alive" and msg["to"] == "broadcast"
        await no_message(iris)               # broadcast: not the sender
    run(main())
    assert gw.metrics()["wsgw_iris_errors_total"] == 6


def test_event_that_iris_cannot_carry_is_not_sent_to_it(gateway_factory):
    gw = gateway_factory("--iris-path", "/iris", "--iris-rooms", "r")
    async def main():
        iris = await iris_client(gw)
        env = await envelope_client(gw, "r")
        await env.send(json.dumps({"op": "emit", "event": "a;b", "to": "room:r", "data": 1}))
        assert (await recv_json(env))["event"] == "a;b"
        await no_message(iris)
        await env.send(json.dumps({"op": "emit", "event": "ab", "to": "room:r", "data": 1}))
        assert await asyncio.wait_for(iris.recv(), 3) == P + "ab;1;1"
    run(main())


def test_iris_client_js_served_from_operator_file(gateway_factory, tmp_path):
    js = tmp_path / "iris-ws.js"
    js.write_text("// the operator's copy of Iris' client\nvar Ws = function () {};\n")
    gw = gateway_factory("--iris-path", "/iris", "--iris-client-js", str(js))
    status, headers, body = gw.get("/iris-ws.js")
    assert status == 200 and body == js.read_bytes() and "javascript" in headers["Content-Type"]
    r = subprocess.run([BIN, "--iris-client-js", str(tmp_path / "missing.js")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "iris_client_js" in r.stderr


def test_iris_event_names_at_the_limit_and_garbage_past_the_error_rate(gateway_factory):
    gw = gateway_factory("--iris-path", "/iris", "--max-event-name", "256",
                         "--error-rate-limit", "1", "--error-rate-burst", "5")
    async def main():
        iris = await iris_client(gw)
        env = await envelope_client(gw, "x")
        await iris.send(P + "e" * 256 + ";0;at the limit")
        assert (await recv_json(env))["event"] == "e" * 256
        await iris.send(P + "e" * 600 + ";0;too long")       # refused, counted, no crash
        await no_message(env)
        for _ in range(10):                                    # garbage past the budget
            await iris.send(P)
        with pytest.raises(websockets.ConnectionClosed) as e:
            while True:
                await asyncio.wait_for(iris.recv(), 3)
        assert e.value.rcvd.code == 1008
    run(main())
    m = gw.metrics()
    assert m["wsgw_iris_errors_total"] >= 6
    assert m['wsgw_disconnects_total{reason="error_rate"}'] == 1
