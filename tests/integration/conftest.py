"""Fixtures for integration tests: start the real gateway binary on a free
loopback port (tests/gateway_proc.py's Gateway, shared with the soak), talk
to it with independent clients (Python `websockets`, raw sockets:
wsraw.py), stop it with SIGTERM and check it exited cleanly.

The binary under test is $WSGW_BIN (default: build/wsgw-asan, the
AddressSanitizer + UBSan build), so every integration test is also a memory
test: a sanitizer report in the server's stderr fails the test.
"""
import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# tests/ holds what the integration tests share with the soak: the gateway
# launcher (gateway_proc.py) and the frame helper (wsframe.py, via wsraw.py).
sys.path.insert(0, os.path.join(ROOT, "tests"))
from gateway_proc import Gateway, free_port  # noqa: E402,F401  (re-exported to the tests)

BIN = os.environ.get("WSGW_BIN", os.path.join(ROOT, "build", "wsgw-asan"))


@pytest.fixture
def gateway_factory():
    started = []

    def start(*args, env=None, binary=BIN):
        g = Gateway(binary, args, env)
        started.append(g)
        return g

    yield start
    for g in started:
        if g.proc.poll() is None:
            code, _ = g.stop()
            assert code == 0, "gateway exit status %r" % code


@pytest.fixture
def gateway(gateway_factory):
    return gateway_factory()


OPEN_CLIENTS = []


def track(ws):
    """Registers a client so run() closes it: an asyncio loop that ends with
    open websockets connections waits out their close_timeout."""
    OPEN_CLIENTS.append(ws)
    return ws


def run(coro, timeout=30):
    """Runs a coroutine to completion with an overall timeout, then closes
    the clients it opened."""
    async def wrapper():
        try:
            return await asyncio.wait_for(coro, timeout)
        finally:
            clients = OPEN_CLIENTS[:]
            OPEN_CLIENTS.clear()
            await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    return asyncio.run(wrapper())


async def recv_json(ws, timeout=3.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def no_message(ws, wait=0.3):
    """Asserts nothing arrives within `wait` seconds."""
    try:
        msg = await asyncio.wait_for(ws.recv(), wait)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected message: %r" % (msg,))


class Redis:
    """A real redis-server on a free loopback port (or a Unix socket),
    started and stopped by the test; kill() and start() again simulate an
    outage on the same address."""

    def __init__(self, tmpdir, password=None, unix=False):
        self.port = free_port()
        self.password = password
        self.unix_path = os.path.join(str(tmpdir), "redis.sock") if unix else None
        self.proc = None
        self.start()

    def cmdline(self):
        cmd = ["redis-server", "--port", "0" if self.unix_path else str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        if self.unix_path:
            cmd += ["--unixsocket", self.unix_path, "--unixsocketperm", "700"]
        if self.password:
            cmd += ["--requirepass", self.password]
        return cmd

    def start(self):
        self.proc = subprocess.Popen(self.cmdline(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING", check=False).strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args, check=True, timeout=5):
        cmd = ["redis-cli"] + self.cli_args() + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("redis-cli failed: %r" % r.stderr)
        return r.stdout

    def cli_args(self):
        args = ["-s", self.unix_path] if self.unix_path else ["-p", str(self.port)]
        if self.password:
            args += ["--no-auth-warning", "-a", self.password]
        return args

    @property
    def url(self):
        if self.unix_path:
            return "unix://" + self.unix_path
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s127.0.0.1:%d" % (auth, self.port)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.stop()
