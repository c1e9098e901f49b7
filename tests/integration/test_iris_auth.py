"""Iris v10 clients under the same permissions as envelope clients: a
token's `rooms` and `emit` claims, `join_rooms` and `emit_targets` apply to
the automatic `iris_rooms` join and to every Iris emit; Iris event names
follow the envelope event-name rule; a refusal is dropped (Iris has no error
frame), counted under its envelope error code and spends the error budget."""
import asyncio
import json

import pytest
import websockets

from conftest import no_message, recv_json, run, track
from test_auth import SECRET, hs256, now

P = "iris-websocket-message:"
FULL = {"sub": "full", "rooms": ["*"]}
MUTED = {"sub": "muted", "rooms": ["user.muted"], "emit": []}


def bearer(claims):
    return {"Authorization": "Bearer " + hs256(dict(claims, exp=now() + 600))}


async def iris_client(gw, claims):
    return track(await websockets.connect(gw.url.replace("/ws", "/iris"), extra_headers=bearer(claims),
                                          close_timeout=2))


async def envelope_client(gw, claims, room):
    ws = track(await websockets.connect(gw.url, extra_headers=bearer(claims), close_timeout=2))
    await recv_json(ws)
    await ws.send(json.dumps({"op": "join", "room": room, "id": 1}))
    assert await recv_json(ws) == {"op": "ack", "id": 1}
    return ws


def forbidden(gw):
    return gw.metrics()['wsgw_envelope_errors_total{code="forbidden"}']


def test_muted_iris_token_is_not_auto_joined_and_its_broadcast_reaches_no_one(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--iris-path", "/iris", "--iris-rooms", "lobby")
    async def main():
        env = await envelope_client(gw, FULL, "lobby")
        full = await iris_client(gw, FULL)
        muted = await iris_client(gw, MUTED)
        # Room traffic reaches the Iris client that was allowed to join, not the muted one.
        await env.send(json.dumps({"op": "emit", "event": "chat", "to": "room:lobby", "data": "hi"}))
        assert (await recv_json(env))["data"] == "hi"
        assert await asyncio.wait_for(full.recv(), 3) == P + "chat;0;hi"
        await no_message(muted)
        # The muted client's Emit (iris_emit_to = broadcast) reaches no one.
        await muted.send(P + "chat;0;spam")
        await no_message(env)
        await no_message(full)
        # The permitted one's does (same path, control), the muted client included:
        # its token limits what it joins and emits, not broadcasts it receives.
        await full.send(P + "chat;0;hello")
        assert (await recv_json(env))["data"] == "hello"
        assert await asyncio.wait_for(muted.recv(), 3) == P + "chat;0;hello"
    run(main())
    m = gw.metrics()
    assert m['wsgw_envelope_errors_total{code="forbidden"}'] == 2     # the auto-join, the emit


@pytest.mark.parametrize("args,claims,code", [
    # emit claim without the target kind
    (("--iris-emit-to", "all"), {"sub": "a", "emit": ["broadcast", "room"]}, "forbidden"),
    (("--iris-emit-to", "room:lobby", "--iris-rooms", "lobby"), {"sub": "a", "emit": ["all"]}, "forbidden"),
    # emit_targets without it, whatever the token says
    (("--emit-targets", "room,all"), {"sub": "a"}, "forbidden"),
    # the room target needs membership, as for envelopes: join_rooms refused the auto-join
    (("--iris-emit-to", "room:lobby", "--iris-rooms", "lobby", "--join-rooms", "public.*"), {"sub": "a"},
     "not_joined"),
])
def test_iris_emit_obeys_emit_claim_emit_targets_and_membership(gateway_factory, args, claims, code):
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--iris-path", "/iris", *args)
    async def main():
        # Where the envelope client listens: lobby when it may join it.
        env = await envelope_client(gw, FULL, "public.x" if "--join-rooms" in args else "lobby")
        iris = await iris_client(gw, claims)
        await iris.send(P + "chat;0;nope")
        await no_message(env)
        await no_message(iris)
    run(main())
    assert gw.metrics()['wsgw_envelope_errors_total{code="%s"}' % code] == 1


@pytest.mark.parametrize("bad", ["a\x00b", "esc\x1b[2J", "del\x7f", "c1\u0085"])
def test_iris_event_names_follow_the_envelope_rule(gateway_factory, bad):
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--iris-path", "/iris")
    async def main():
        env = await envelope_client(gw, FULL, "x")
        iris = await iris_client(gw, FULL)
        await iris.send(P + bad + ";0;x")
        await no_message(env)
        await iris.send(P + "fine;0;y")
        assert (await recv_json(env))["event"] == "fine"
    run(main())
    assert gw.metrics()["wsgw_iris_errors_total"] == 1


def test_flood_of_forbidden_iris_emits_closes_1008(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--iris-path", "/iris",
                         "--error-rate-limit", "1", "--error-rate-burst", "5")
    async def main():
        muted = await iris_client(gw, MUTED)
        for _ in range(20):
            await muted.send(P + "chat;0;spam")
        with pytest.raises(websockets.ConnectionClosed) as e:
            while True:
                await asyncio.wait_for(muted.recv(), 3)
        assert e.value.rcvd.code == 1008
    run(main())
    m = gw.metrics()
    assert m['wsgw_disconnects_total{reason="error_rate"}'] == 1
    assert m['wsgw_envelope_errors_total{code="forbidden"}'] >= 6
