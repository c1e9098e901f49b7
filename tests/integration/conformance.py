"""The echo servers the conformance tests run against (test_conformance_*.py):
build/examples-asan/echo (AddressSanitizer + UBSan), one process per
configuration for each test module, started on first use; teardown stops
each one and fails on any sanitizer report, and every test checks they are
still up.  A test module uses them with
    from conformance import servers, servers_stay_up, base, big, limit, pmd
"""
import os

import pytest

from conftest import ROOT, Gateway

ECHO = os.path.join(ROOT, "build", "examples-asan", "echo")

CONFIGS = {
    "base":  ["--max-message-size", "1MiB"],
    "big":   ["--max-message-size", "16MiB", "--max-queued-bytes", "32MiB"],
    "limit": ["--max-message-size", "64KiB"],
    "pmd":   ["--enable-compression", "true", "--compression-threshold", "0",
              "--max-message-size", "1MiB"],
}


class Servers:
    """One echo process per configuration, started on first use."""

    def __init__(self):
        self.started = {}

    def __call__(self, name):
        if name not in self.started:
            if not os.path.exists(ECHO):
                pytest.fail("%s is missing: run `make build/examples-asan/echo`" % ECHO)
            self.started[name] = Gateway(ECHO, CONFIGS[name], None)
        return self.started[name]


@pytest.fixture(scope="module")
def servers():
    s = Servers()
    yield s
    for name, g in s.started.items():
        code, _ = g.stop()          # asserts no sanitizer report
        assert code == 0, "echo server %r exit status %r" % (name, code)


@pytest.fixture(autouse=True)
def servers_stay_up(servers):
    yield
    for name, g in servers.started.items():
        assert g.proc.poll() is None, "echo server %r died:\n%s" % (name, g.output()[-6000:])


@pytest.fixture
def base(servers):
    return servers("base")


@pytest.fixture
def big(servers):
    return servers("big")


@pytest.fixture
def limit(servers):
    return servers("limit")


@pytest.fixture
def pmd(servers):
    return servers("pmd")
