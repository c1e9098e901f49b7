"""Three hosts on one machine: gateway A, gateway B and Redis, each in a
network namespace this test creates, joined by veth pairs (A-R, B-R).  A
client on A and a client on B chat in one room through Redis on R.

Skipped, with the reason, where namespaces cannot be created (no root, no
CAP_NET_ADMIN, no iproute2): never a silent pass."""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from conftest import BIN, ROOT

CLIENT = r'''
import asyncio, json, sys, websockets
async def main(url, name, other, room):
    async with websockets.connect(url, close_timeout=2) as ws:
        me = json.loads(await ws.recv())["conn"]
        await ws.send(json.dumps({"op": "join", "room": room, "id": 1}))
        assert json.loads(await ws.recv()) == {"op": "ack", "id": 1}
        print("joined", flush=True)
        sys.stdin.readline()                      # both joined: go
        await ws.send(json.dumps({"op": "emit", "event": "chat", "to": "room:" + room,
                                  "data": "hello from " + name, "id": 2}))
        seen = set()
        while seen != {"hello from " + name, "hello from " + other}:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if "event" in msg:
                seen.add(msg["data"])
        print("ok", flush=True)
asyncio.run(main(*sys.argv[1:]))
'''


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@pytest.fixture
def three_hosts():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and iproute2 (ip); skipped, not passed")
    tag = uuid.uuid4().hex[:6]
    ns = {"a": "wsgw-a-" + tag, "b": "wsgw-b-" + tag, "r": "wsgw-r-" + tag}
    probe = sh("ip", "netns", "add", ns["r"], check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create network namespaces here (%s); skipped, not passed" % probe.stderr.strip())
    try:
        sh("ip", "netns", "add", ns["a"])
        sh("ip", "netns", "add", ns["b"])
        # Addresses of our own test hosts, inside namespaces this test made.
        links = [("a", "10.231.1.1", "10.231.1.2"), ("b", "10.231.2.1", "10.231.2.2")]
        for host, host_ip, r_ip in links:
            va, vr = "v%s%s" % (host, tag), "r%s%s" % (host, tag)
            veth = sh("ip", "link", "add", va, "type", "veth", "peer", "name", vr, check=False)
            if veth.returncode != 0 and ("not permitted" in veth.stderr or "not supported" in veth.stderr
                                         or "Unknown device type" in veth.stderr):
                pytest.skip("cannot create veth pairs here (%s); skipped, not passed" % veth.stderr.strip())
            assert veth.returncode == 0, veth.stderr
            sh("ip", "link", "set", va, "netns", ns[host])
            sh("ip", "link", "set", vr, "netns", ns["r"])
            sh("ip", "-n", ns[host], "addr", "add", host_ip + "/24", "dev", va)
            sh("ip", "-n", ns["r"], "addr", "add", r_ip + "/24", "dev", vr)
            sh("ip", "-n", ns[host], "link", "set", va, "up")
            sh("ip", "-n", ns["r"], "link", "set", vr, "up")
        for n in ns.values():
            sh("ip", "-n", n, "link", "set", "lo", "up")
        yield ns
    finally:
        for n in ns.values():
            sh("ip", "netns", "pids", n, check=False)
            for pid in sh("ip", "netns", "pids", n, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", n, check=False)


def netns(ns, *cmd, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns] + list(cmd), **kw)


def test_three_hosts_chat_through_redis(three_hosts, tmp_path):
    ns = three_hosts
    procs = []
    try:
        redis = netns(ns["r"], "redis-server", "--port", "6390", "--bind", "10.231.1.2", "10.231.2.2",
                      "--protected-mode", "no", "--save", "", "--appendonly", "no",
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(redis)
        time.sleep(0.3)
        logs = {}
        for host, redis_ip in (("a", "10.231.1.2"), ("b", "10.231.2.2")):
            logs[host] = open(tmp_path / ("gw-%s.log" % host), "w+")
            procs.append(netns(ns[host], BIN, "--listen", "127.0.0.1:8080",
                               "--redis-url", "redis://%s:6390" % redis_ip,
                               stdout=logs[host], stderr=subprocess.STDOUT,
                               env={k: v for k, v in os.environ.items() if not k.startswith("WSGW_")}))
        # Wait for both gateways to report the backplane up.
        deadline = time.time() + 15
        for host in ("a", "b"):
            while True:
                r = subprocess.run(["ip", "netns", "exec", ns[host], "/usr/bin/python3", "-c",
                                    "import urllib.request;print(urllib.request.urlopen("
                                    "'http://127.0.0.1:8080/healthz',timeout=1).read().decode())"],
                                   capture_output=True, text=True)
                if '"backplane":"up"' in r.stdout:
                    break
                assert time.time() < deadline, "gateway %s never got its backplane up: %s %s" % (
                    host, r.stdout, open(logs[host].name).read())
                time.sleep(0.1)
        clients = {}
        for host, name, other in (("a", "alice", "bob"), ("b", "bob", "alice")):
            clients[host] = netns(ns[host], "/usr/bin/python3", "-c", CLIENT, "ws://127.0.0.1:8080/ws",
                                  name, other, "lobby", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        for c in clients.values():
            assert c.stdout.readline().strip() == "joined"
        time.sleep(0.2)                           # room subscriptions reach Redis
        for c in clients.values():
            c.stdin.write("go\n")
            c.stdin.flush()
        for host, c in clients.items():
            out, _ = c.communicate(timeout=20)
            assert c.returncode == 0 and out.strip() == "ok", (host, out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
