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

from conftest import BIN, recv_json, run, track
from test_cluster import wait_backplane_up


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
