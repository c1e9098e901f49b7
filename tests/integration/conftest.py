"""Fixtures for integration tests: start the real gateway binary on a free
loopback port, talk to it with independent clients (Python `websockets`,
raw sockets), stop it with SIGTERM and check it exited cleanly.

The binary under test is $WSGW_BIN (default: build/wsgw-asan, the
AddressSanitizer + UBSan build), so every integration test is also a memory
test: a sanitizer report in the server's stderr fails the test.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("WSGW_BIN", os.path.join(ROOT, "build", "wsgw-asan"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """One running gateway process."""

    def __init__(self, binary, args, env):
        self.port = free_port()
        self.url = "ws://127.0.0.1:%d/ws" % self.port
        self.http = "http://127.0.0.1:%d" % self.port
        self.log_path = "/tmp/wsgw-test-%d.log" % self.port
        self.log = open(self.log_path, "w+")
        # wsgw refuses unknown WSGW_* variables (typo guard): pass none of ours.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("WSGW_")}
        full_env.update({"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                         "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
        full_env.update(env or {})
        cmd = [binary, "--listen", "127.0.0.1:%d" % self.port, "--log-level", "debug"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        self.wait_ready()

    def wait_ready(self, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited early:\n" + self.output())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not listen in time:\n" + self.output())

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def get(self, path):
        """(status, headers, body) of a plain HTTP GET."""
        try:
            with urllib.request.urlopen(self.http + path, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def metrics(self):
        status, _, body = self.get("/metrics")
        assert status == 200
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("gateway did not exit after signal:\n" + self.output())
        out = self.output()
        self.log.close()
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert bad not in out, "sanitizer report in gateway output:\n" + out[-6000:]
        return self.proc.returncode, out


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
