"""A master with two workers on one port (SO_REUSEPORT), sharing one real
redis-server: delivery across workers, a worker killed with SIGKILL and
restarted, SIGHUP reload under traffic, SIGTERM drain, and the refusal to
run several workers without a backplane."""
import asyncio
import json
import os
import signal
import subprocess
import time

import pytest
import websockets

from conftest import BIN, no_message, recv_json, run, track
from test_cluster import every_target, wait_backplane_up


def worker_pids(master_pid):
    out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def wait_workers(master_pid, n, exclude=(), timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = [p for p in worker_pids(master_pid) if p not in exclude]
        if len(pids) == n:
            return pids
        time.sleep(0.05)
    raise AssertionError("expected %d workers, have %r" % (n, worker_pids(master_pid)))


async def connect_many(gw, n, room="r"):
    clients = []
    for _ in range(n):
        ws = track(await websockets.connect(gw.url, close_timeout=2))
        ws.conn_id = (await recv_json(ws))["conn"]
        await ws.send(json.dumps({"op": "join", "room": room, "id": 1}))
        assert await recv_json(ws) == {"op": "ack", "id": 1}
        clients.append(ws)
    return clients                           # acked joins: subscriptions are on Redis


def lifecycle_nodes(redis_server, seconds):
    """Connect events seen on wsgw:lifecycle during `seconds`, by node."""
    return subprocess.Popen(["timeout", str(seconds), "redis-cli"] + redis_server.cli_args() +
                            ["SUBSCRIBE", "wsgw:lifecycle"], stdout=subprocess.PIPE, text=True)


def test_two_workers_share_the_port_and_the_rooms(gateway_factory, redis_server):
    gw = gateway_factory("--workers", "2", "--redis-url", redis_server.url)
    pids = wait_workers(gw.proc.pid, 2)
    sub = lifecycle_nodes(redis_server, 4)
    time.sleep(0.3)
    async def main():
        clients = await connect_many(gw, 16)
        await clients[0].send(json.dumps({"op": "emit", "event": "e", "to": "room:r", "data": "x"}))
        for ws in clients:
            msg = await recv_json(ws, timeout=5)
            assert msg == {"event": "e", "data": "x", "from": clients[0].conn_id, "to": "room:r"}
        await asyncio.sleep(0.3)
        for ws in clients:                    # exactly once each
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.05)
    run(main())
    out = sub.communicate(timeout=10)[0]
    nodes = {json.loads(l)["node"] for l in out.splitlines() if l.startswith('{"op":"connect"')}
    assert len(nodes) == 2, "16 connections should land on both workers: %r" % nodes
    assert worker_pids(gw.proc.pid) == pids


class NodeOf:
    """Which worker holds a connection, from the connect events on
    wsgw:lifecycle (SO_REUSEPORT picks the worker; clients cannot)."""

    def __init__(self, redis_server):
        import redis as redis_py
        self.r = redis_py.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
        self.ps = self.r.pubsub(ignore_subscribe_messages=True)
        self.ps.subscribe("wsgw:lifecycle", "wsgw:events")
        self.nodes, self.events = {}, []

    def poll(self, want=None, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline and (want is None or want not in self.nodes):
            m = self.ps.get_message(timeout=0.1)
            if not m or m["type"] != "message":
                if want is None:
                    break
                continue
            ev = json.loads(m["data"])
            if ev.get("op") == "connect":
                self.nodes[ev["conn"]] = ev["node"]
            elif "event" in ev:
                self.events.append(ev)
        return self.nodes.get(want)

    def close(self):
        self.ps.close()
        self.r.close()


def test_every_target_and_backend_op_across_workers(gateway_factory, redis_server):
    """A master with two workers behaves as two processes: every target,
    joins and leaves, backend publish and control ops, client events
    reaching a backend, and order without duplicates, across workers."""
    gw = gateway_factory("--workers", "2", "--redis-url", redis_server.url,
                         "--emit-targets", "broadcast,all,room,conn", "--rate-messages", "0")
    wait_workers(gw.proc.pid, 2)
    where = NodeOf(redis_server)
    try:
        async def on_worker(node, *rooms):
            """A client on worker `node` (None: the first worker seen)."""
            for _ in range(64):
                ws = track(await websockets.connect(gw.url, close_timeout=2))
                ws.conn_id = (await recv_json(ws))["conn"]
                ws.node = await asyncio.to_thread(where.poll, ws.conn_id)
                if node is None or ws.node == node:
                    for i, room in enumerate(rooms):
                        await ws.send(json.dumps({"op": "join", "room": room, "id": 900 + i}))
                        assert await recv_json(ws) == {"op": "ack", "id": 900 + i}
                    return ws
                await ws.close()
            raise AssertionError("64 connections never reached worker %s" % node)

        async def main():
            a = await on_worker(None, "lobby")
            b = await on_worker(None, "lobby")
            while b.node == a.node:
                await b.close()
                b = await on_worker(None, "lobby")
            a2 = await on_worker(a.node)
            c = await on_worker(b.node)
            await every_target(a, a2, b, c)          # as between two processes
            # backend publish to a room with members on both workers, and to everyone
            redis_server.cli("PUBLISH", "wsgw:room:lobby", '{"event":"news","data":5}')
            for ws in (a, b):
                assert await recv_json(ws) == {"event": "news", "data": 5, "to": "room:lobby"}
            redis_server.cli("PUBLISH", "wsgw:all", '{"event":"news","data":6,"except":"%s"}' % a.conn_id)
            for ws in (a2, b, c):
                assert (await recv_json(ws))["data"] == 6
            await no_message(a)
            # backend control ops on a connection of the other worker
            redis_server.cli("PUBLISH", "wsgw:conn:" + c.conn_id, '{"op":"join","room":"vip"}')
            await asyncio.sleep(0.15)
            await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:lobby", "data": 7}))
            redis_server.cli("PUBLISH", "wsgw:room:vip", '{"event":"vip","data":8}')
            assert await recv_json(c) == {"event": "vip", "data": 8, "to": "room:vip"}
            redis_server.cli("PUBLISH", "wsgw:conn:" + c.conn_id, '{"op":"leave","room":"vip"}')
            await asyncio.sleep(0.15)
            redis_server.cli("PUBLISH", "wsgw:room:vip", '{"event":"vip","data":9}')
            await no_message(c)
            # leave: b's worker stops getting lobby messages for it
            await b.send(json.dumps({"op": "leave", "room": "lobby", "id": 10}))
            got = [await recv_json(b), await recv_json(b)]          # data 7, then the ack
            assert {"op": "ack", "id": 10} in got
            # a client event (no "to") reaches the backend subscriber
            await c.send(json.dumps({"op": "emit", "event": "hello", "data": {"x": 1}, "id": 11}))
            assert await recv_json(c) == {"op": "ack", "id": 11}
            # order and no duplicates across workers
            N = 3000
            for ws in (c, a2):                    # a client emits only to rooms it joined
                await ws.send(json.dumps({"op": "join", "room": "seq", "id": 12}))
                assert await recv_json(ws) == {"op": "ack", "id": 12}
            async def send_all():
                for i in range(N):
                    await a2.send('{"op":"emit","event":"n","to":"room:seq","data":%d}' % i)
            async def drain_sender():               # a2 is in the room too
                for _ in range(N):
                    await recv_json(a2, timeout=10)
            sending = asyncio.ensure_future(asyncio.gather(send_all(), drain_sender()))
            got = []
            try:
                while len(got) < N:
                    got.append((await recv_json(c, timeout=10))["data"])
            except asyncio.TimeoutError:
                pass
            await sending
            assert got == list(range(N)), (len(got), got[:5], got[-5:])
            await no_message(c, 0.5)
            for ws in (a, a2):                 # lobby traffic they got meanwhile
                while True:
                    try:
                        await recv_json(ws, timeout=0.2)
                    except asyncio.TimeoutError:
                        break
            redis_server.cli("PUBLISH", "wsgw:conn:" + c.conn_id, '{"op":"disconnect","code":4000,"reason":"bye"}')
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(c.recv(), 3)
            assert c.close_code == 4000 and c.close_reason == "bye"
            return c.conn_id
        c_id = run(main(), timeout=90)
        where.poll(timeout=1)
        assert any(ev["event"] == "hello" and ev["from"] == c_id and ev["data"] == {"x": 1}
                   for ev in where.events), where.events
    finally:
        where.close()


def test_killed_worker_is_restarted_others_unaffected(gateway_factory, redis_server):
    gw = gateway_factory("--workers", "2", "--redis-url", redis_server.url)
    pids = wait_workers(gw.proc.pid, 2)
    async def main():
        clients = await connect_many(gw, 12)
        os.kill(pids[0], signal.SIGKILL)
        new = wait_workers(gw.proc.pid, 2, exclude=(pids[0],))   # restarted
        assert pids[1] in new
        # Clients of the killed worker see their connection drop (no close
        # frame: the process died); the others keep working.
        await asyncio.sleep(0.3)
        alive, dead = [], []
        for ws in clients:
            try:
                await ws.ping()
                alive.append(ws)
            except websockets.ConnectionClosed:
                dead.append(ws)
        for ws in list(alive):                 # a close may still be in flight
            try:
                await asyncio.wait_for(ws.recv(), 0.2)
            except asyncio.TimeoutError:
                pass
            except websockets.ConnectionClosed:
                alive.remove(ws)
                dead.append(ws)
        assert alive and dead, "12 connections should have been on both workers"
        for ws in dead:
            assert ws.close_code == 1006
        await alive[0].send(json.dumps({"op": "emit", "event": "after", "to": "room:r", "data": 1}))
        for ws in alive:
            msg = await recv_json(ws, timeout=5)
            assert msg == {"event": "after", "data": 1, "from": alive[0].conn_id, "to": "room:r"}
        # Reconnect the dropped ones: they land on either worker.
        for ws in dead:
            ws2 = track(await websockets.connect(gw.url, close_timeout=2))
            assert (await recv_json(ws2))["op"] == "welcome"
    run(main(), timeout=60)
    assert "worker_died" in gw.output()


def test_sighup_reload_under_traffic(gateway_factory, redis_server, tmp_path):
    conf = tmp_path / "wsgw.conf"
    conf.write_text("max_message_size = 64KiB\n")
    gw = gateway_factory("--workers", "2", "--redis-url", redis_server.url, "--config", str(conf))
    old = wait_workers(gw.proc.pid, 2)
    async def main():
        clients = await connect_many(gw, 6)
        stop = False
        sent = 0
        async def traffic():
            nonlocal sent
            t = track(await websockets.connect(gw.url, close_timeout=2))
            await recv_json(t)
            while not stop:
                try:
                    await t.send(json.dumps({"op": "emit", "event": "t", "to": "broadcast", "data": sent}))
                    sent += 1
                except websockets.ConnectionClosed:
                    t = track(await websockets.connect(gw.url, close_timeout=2))
                    await recv_json(t)
                await asyncio.sleep(0.01)
        task = asyncio.ensure_future(traffic())
        await asyncio.sleep(0.3)
        conf.write_text("max_message_size = 1KiB\n")
        os.kill(gw.proc.pid, signal.SIGHUP)
        new = wait_workers(gw.proc.pid, 2, exclude=old, timeout=15)
        assert not set(new) & set(old)
        # Every old client was asked to move: close 1001, never dropped.
        for ws in clients:
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001, ws.close_code
        stop = True
        await task
        assert sent > 10
        # New workers run the reloaded configuration.
        ws = track(await websockets.connect(gw.url, close_timeout=2))
        await recv_json(ws)
        await ws.send("x" * 2000)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
    run(main(), timeout=90)
    assert "reloaded" in gw.output()


def test_reload_without_redis_keeps_the_workers(gateway_factory, redis_server, tmp_path):
    conf = tmp_path / "wsgw.conf"
    conf.write_text("redis_url = %s\n" % redis_server.url)
    gw = gateway_factory("--workers", "2", "--config", str(conf))
    old = wait_workers(gw.proc.pid, 2)
    conf.write_text("max_message_size = 1KiB\n")         # redis_url gone
    os.kill(gw.proc.pid, signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and "reload_failed" not in gw.output():
        time.sleep(0.05)
    assert "reload_failed" in gw.output() and "redis_url" in gw.output()
    time.sleep(0.3)
    assert worker_pids(gw.proc.pid) == old                 # the running workers were kept


def test_sigterm_drains_workers(gateway_factory, redis_server):
    gw = gateway_factory("--workers", "2", "--redis-url", redis_server.url)
    wait_workers(gw.proc.pid, 2)
    async def main():
        clients = await connect_many(gw, 6)
        gw.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
    run(main())
    code, out = gw.stop(sig=None)
    assert code == 0 and "role=master" in out


def test_workers_need_redis():
    r = subprocess.run([BIN, "--workers", "2"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "workers" in r.stderr and "redis_url" in r.stderr
