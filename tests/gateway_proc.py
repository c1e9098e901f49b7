"""The one launcher of a wsgw process for the Python tests: the integration
fixtures (tests/integration/conftest.py re-exports Gateway and free_port)
and the soak (tests/soak/procs.py adds worker lookups on top of it).

A Gateway listens on a free loopback port, writes stdout and stderr to one
log file, and runs with the sanitizers set to report (ASAN_OPTIONS with
detect_leaks=1, UBSAN_OPTIONS halting on the first error).  The options say
what differs between users: the log file and level, extra ASAN_OPTIONS (the
soak's small quarantine), an environment passed whole instead of added to
ours, a preexec_fn (a low RLIMIT_NOFILE), and whether to wait until the
port accepts connections.  stop() signals, waits, and fails on any
sanitizer report in the log.  No pytest here: the soak imports it too.
"""
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Gateway:
    """One running gateway process (a master with --workers N counts as one).

    binary, args: the command is [binary, --listen 127.0.0.1:PORT,
    --log-level LOG_LEVEL] + args.  env: variables added to ours (every
    WSGW_* of ours left out: wsgw refuses unknown ones), or, with
    exact_env=True, the whole environment.  log_path: default
    /tmp/wsgw-test-PORT.log.  asan_options: appended to ASAN_OPTIONS.
    wait: return only once the port accepts connections."""

    def __init__(self, binary, args=(), env=None, log_path=None, log_level="debug", asan_options="",
                 exact_env=False, preexec_fn=None, wait=True):
        self.port = free_port()
        self.url = "ws://127.0.0.1:%d/ws" % self.port
        self.http = "http://127.0.0.1:%d" % self.port
        self.log_path = log_path or "/tmp/wsgw-test-%d.log" % self.port
        self.log = open(self.log_path, "w+")
        if exact_env:
            full_env = dict(env or {})
        else:
            full_env = {k: v for k, v in os.environ.items() if not k.startswith("WSGW_")}
            full_env.update({"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0" + (":" + asan_options if asan_options else ""),
                             "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
            full_env.update(env or {})
        self.cmd = [binary, "--listen", "127.0.0.1:%d" % self.port, "--log-level", log_level] + list(args)
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                     preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        if wait:
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
        # sig=None: the test already signalled the gateway and only waits for it to
        # exit; a second SIGTERM during a drain is a forced exit (status 1).
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("gateway did not exit after signal:\n" + self.output())
        out = self.output()
        self.log.close()
        for bad in SANITIZER_REPORTS:
            assert bad not in out, "sanitizer report in gateway output:\n" + out[-6000:]
        return self.proc.returncode, out
