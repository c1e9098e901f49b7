"""deploy/local-cluster end to end: Redis, three gateways (the ASan build,
$WSGW_BIN) and HAProxy with deploy/haproxy.cfg, on free loopback ports.
Clients connected through the balancer land on different gateways (told
apart by the "node" of their lifecycle connect events on Redis, matched to
each gateway's own /healthz), chat across them; one gateway is stopped with
SIGTERM, its client is closed with 1001 and reconnects through the balancer
to another one, HAProxy's health check takes the stopped gateway out, and
the chat goes on."""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
import redis as redis_py
import websockets

from conftest import BIN, ROOT, recv_json, run, track

LOCAL_CLUSTER = os.path.join(ROOT, "deploy", "local-cluster")
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def free_ports(n):
    """n distinct free loopback ports (held together while picked)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def script_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSGW_", "LB_"))}
    env.update({"WSGW_BIN": BIN,
                "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    return env


def alive(pid):
    """Running and not a zombie (the gateways are not our children)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Cluster:
    def __init__(self, tmp_path):
        self.port, g1, g2, g3, self.redis_port = free_ports(5)
        self.gw_ports = [g1, g2, g3]
        self.dir = tmp_path / "run"
        self.url = "ws://127.0.0.1:%d/ws" % self.port

    def cmd(self, *args, timeout=90):
        return subprocess.run([LOCAL_CLUSTER, *args, "--dir", str(self.dir)], capture_output=True,
                              text=True, timeout=timeout, env=script_env(), stdin=subprocess.DEVNULL)

    def start(self):
        return self.cmd("start", "--port", str(self.port), "--redis-port", str(self.redis_port),
                        "--gateway-ports", ",".join(map(str, self.gw_ports)))

    def pid(self, name):
        return int((self.dir / (name + ".pid")).read_text())

    def log(self, name):
        return (self.dir / (name + ".log")).read_text()

    def health(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    r = c.start()
    assert r.returncode == 0, r.stdout + r.stderr
    yield c
    r = c.cmd("stop")
    assert r.returncode == 0, r.stdout + r.stderr
    for i in range(1, 4):
        out = c.log("gateway-%d" % i)
        for bad in SANITIZER:
            assert bad not in out, "sanitizer report in gateway-%d:\n%s" % (i, out[-6000:])
        assert "event=stopped status=0" in out, "gateway-%d did not drain and exit:\n%s" % (i, out[-3000:])


class Lifecycle:
    """Connect events from wsgw:lifecycle: which node holds which connection."""

    def __init__(self, port):
        self.r = redis_py.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        self.ps = self.r.pubsub(ignore_subscribe_messages=True)
        self.ps.subscribe("wsgw:lifecycle")
        self.events = {}

    def node_of(self, conn, timeout=10):
        deadline = time.time() + timeout
        while conn not in self.events and time.time() < deadline:
            m = self.ps.get_message(timeout=0.2)
            if m and m["type"] == "message":
                ev = json.loads(m["data"])
                if ev.get("op") == "connect":
                    self.events[ev["conn"]] = ev
        assert conn in self.events, "no connect event for %s" % conn
        return self.events[conn]["node"]

    def close(self):
        self.ps.close()
        self.r.close()


async def connect(c, life):
    """A client through the balancer, in room "chat"; returns it with .node."""
    ws = track(await websockets.connect(c.url, close_timeout=2))
    welcome = await recv_json(ws)
    ws.conn_id = welcome["conn"]
    await ws.send(json.dumps({"op": "join", "room": "chat", "id": 1}))
    assert await recv_json(ws) == {"op": "ack", "id": 1}
    ws.node = await asyncio.to_thread(life.node_of, ws.conn_id)
    return ws


async def chat(senders, receivers, tag):
    """Each sender says one line in the room; every receiver gets each line
    once (the room is across gateways: Redis carries it)."""
    await asyncio.sleep(0.2)        # fresh room subscriptions reach Redis
    for i, ws in enumerate(senders):
        await ws.send(json.dumps({"op": "emit", "event": "chat", "to": "room:chat",
                                  "data": {"text": "%s-%d" % (tag, i)}, "id": 2}))
    want = {(ws.conn_id, "%s-%d" % (tag, i)) for i, ws in enumerate(senders)}
    for ws in receivers:
        got = set()
        while len(got) < len(want):
            msg = await recv_json(ws, timeout=5)
            if msg.get("op") == "ack":
                continue
            assert msg["event"] == "chat" and msg["to"] == "room:chat", msg
            got.add((msg["from"], msg["data"]["text"]))
        assert got == want


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_failover_through_the_balancer(cluster):
    c = cluster
    assert c.cmd("status").returncode == 0
    node_index = {c.health(p)["node"]: i for i, p in enumerate(c.gw_ports)}
    assert len(node_index) == 3
    # A second start on the same run dir is refused.
    again = c.start()
    assert again.returncode != 0 and "already running" in again.stderr

    life = Lifecycle(c.redis_port)
    try:
        async def main():
            clients = [await connect(c, life) for _ in range(3)]
            # leastconn with every gateway up: one client on each.
            assert {node_index[ws.node] for ws in clients} == {0, 1, 2}
            assert life.events[clients[0].conn_id]["headers"].get("X-Forwarded-For") == "127.0.0.1"
            # HAProxy connects from 127.0.0.2 and sends a PROXY header: the
            # gateway sees each client's own address and port.
            for ws in clients:
                assert life.events[ws.conn_id]["remote"] == "127.0.0.1:%d" % ws.local_address[1]
            await chat(clients, clients, "before")

            # SIGTERM the gateway of the second client: it drains.
            victim = clients[1]
            k = node_index[victim.node] + 1
            pid = c.pid("gateway-%d" % k)
            os.kill(pid, signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(victim.recv(), 10)
            assert victim.close_code == 1001
            await asyncio.to_thread(wait_for, lambda: not alive(pid), 20, "gateway %d to exit" % k)
            assert "event=stopped status=0" in c.log("gateway-%d" % k)

            # It reconnects through the balancer, to another gateway (a
            # connection refused by the stopped one is redispatched).
            back = await connect(c, life)
            assert back.node != victim.node
            # The health check takes the stopped gateway out.
            await asyncio.to_thread(wait_for, lambda: re.search(
                r"Server gateways/gw%d is DOWN" % k, c.log("haproxy")), 15, "HAProxy to mark gw%d down" % k)
            more = [await connect(c, life) for _ in range(4)]
            assert all(ws.node != victim.node for ws in more)
            assert {ws.node for ws in more} == set(node_index) - {victim.node}

            survivors = [clients[0], clients[2], back]
            await chat(survivors, survivors + more, "after")

            # A browser can only send its token in the query: the balancer's
            # log has the path, never the query.
            q = track(await websockets.connect(c.url + "?token=sekrit-query-7", close_timeout=2))
            await recv_json(q)
            await q.close()
            await asyncio.to_thread(wait_for, lambda: re.search(r'"GET /ws HTTP/1.1"', c.log("haproxy")),
                                    10, "HAProxy to log the session")
            assert "sekrit-query-7" not in c.log("haproxy")
            return k
        k = run(main(), timeout=60)
    finally:
        life.close()

    st = c.cmd("status")
    assert st.returncode == 3, st.stdout       # one part is down
    assert re.search(r"gateway-%d\s+stopped" % k, st.stdout), st.stdout


def test_start_refuses_a_busy_port(tmp_path):
    c = Cluster(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        c.gw_ports[1] = busy.getsockname()[1]
        r = c.start()
    assert r.returncode != 0
    assert "port %d" % c.gw_ports[1] in r.stderr and "in use" in r.stderr, r.stderr
    # Nothing was started.
    assert not list(c.dir.glob("*.pid"))
