"""static_dir files are streamed from the open file as the socket drains
(sendfile in cleartext, 64 KiB chunks with TLS): a file of any size is
served intact, a slow reader holds an fd and at most one chunk (never the
file), and the fd is closed on every path a response can end by."""
import functools
import hashlib
import os
import socket
import time

import pytest

from conftest import ROOT
from test_tls import cert, client_ctx, tls_gateway  # noqa: F401  (cert is a fixture)

CHUNK = 64 << 10


def fds(gw):
    return len(os.listdir("/proc/%d/fd" % gw.proc.pid))


def rss_kib(gw):
    with open("/proc/%d/status" % gw.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def connect(gw, tls=None, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if tls:
        s.connect(("127.0.0.1", gw.tls_port))
        s = tls.wrap_socket(s, server_hostname="127.0.0.1")
    else:
        s.connect(("127.0.0.1", gw.port))
    s.settimeout(30)
    return s


def fetch(gw, path, tls=None, method="GET"):
    """(status, headers, body length, body sha256) of one request, read to EOF."""
    with connect(gw, tls) as s:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method.encode(), path.encode()))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        h = hashlib.sha256(body)
        n = len(body)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    return status, headers, n, h.hexdigest()


@pytest.mark.parametrize("use_tls", [False, True], ids=["http", "https"])
def test_large_file_downloads_intact(gateway_factory, tmp_path, cert, use_tls):  # noqa: F811
    """20 MiB (past the old 8 MiB limit) arrive byte for byte, with the
    right Content-Length; HEAD says the same length and sends no body; the
    file is closed once it is sent."""
    data = os.urandom(20 << 20)
    (tmp_path / "big.bin").write_bytes(data)
    gw = tls_gateway(gateway_factory, cert, "--static-dir", str(tmp_path))
    ctx = client_ctx(cert[0]) if use_tls else None
    time.sleep(0.2)
    base = fds(gw)
    status, headers, n, digest = fetch(gw, "/big.bin", ctx)
    assert status == 200 and headers["content-length"] == str(len(data))
    assert headers["content-type"] == "application/octet-stream"
    assert n == len(data) and digest == hashlib.sha256(data).hexdigest()
    status, headers, n, _ = fetch(gw, "/big.bin", ctx, method="HEAD")
    assert status == 200 and headers["content-length"] == str(len(data)) and n == 0
    (tmp_path / "empty.txt").write_bytes(b"")
    status, headers, n, _ = fetch(gw, "/empty.txt", ctx)
    assert status == 200 and headers["content-length"] == "0" and n == 0
    assert fetch(gw, "/nothing.bin", ctx)[0] == 404
    assert wait_for(lambda: fds(gw) == base), (fds(gw), base)
    assert gw.metrics()["wsgw_http_responses"] == 1          # this /metrics only


@pytest.mark.parametrize("use_tls", [False, True], ids=["http", "https"])
def test_file_closed_on_every_path(gateway_factory, tmp_path, cert, use_tls):  # noqa: F811
    """One fd per response while it is written, none after: read to the
    end, the client gone mid-file, cut after http_write_timeout, refused
    past max_http_responses, the file shrinking under the response, and the
    gateway shutting down with responses under way."""
    size = 10 << 20
    (tmp_path / "big.bin").write_bytes(b"y" * size)
    (tmp_path / "shrinks.bin").write_bytes(b"z" * size)
    gw = tls_gateway(gateway_factory, cert, "--static-dir", str(tmp_path),
                     "--http-write-timeout", "2s", "--max-http-responses", "4")
    ctx = client_ctx(cert[0]) if use_tls else None
    time.sleep(0.2)
    base = fds(gw)
    get = b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"

    # Four slow readers: each holds its socket and its file.
    slow = [connect(gw, ctx, rcvbuf=4096) for _ in range(4)]
    for s in slow:
        s.sendall(get)
    assert wait_for(lambda: fds(gw) == base + 8), (fds(gw), base)
    # A fifth is refused (503) and holds nothing.
    with connect(gw, ctx) as s:
        s.sendall(get)
        assert s.recv(12) == b"HTTP/1.1 503"
    # Two leave mid-file: their files are closed.
    slow.pop().close()
    slow.pop().close()
    assert wait_for(lambda: fds(gw) == base + 4), (fds(gw), base)
    # The other two are cut after http_write_timeout (2 s).
    assert wait_for(lambda: fds(gw) == base, timeout=5), (fds(gw), base)
    for s in slow:
        s.close()
    # The file shrinks under a slow response: cut short, file closed.
    with connect(gw, ctx, rcvbuf=4096) as s:
        s.sendall(b"GET /shrinks.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(12) == b"HTTP/1.1 200"
        assert wait_for(lambda: fds(gw) == base + 2)
        os.truncate(tmp_path / "shrinks.bin", 1 << 20)
        got = 0
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except (ConnectionResetError, OSError):
            pass
        assert got < size
    assert wait_for(lambda: fds(gw) == base), (fds(gw), base)
    assert "event=http_file_error" in gw.output()
    # Shut down with a response under way (ASan would see a leaked struct).
    s = connect(gw, ctx, rcvbuf=4096)
    s.sendall(get)
    assert wait_for(lambda: fds(gw) == base + 2)
    code, out = gw.stop()
    s.close()
    assert code == 0
    assert out.count("event=http_write_timeout") >= 2


@pytest.mark.parametrize("use_tls", [False, True], ids=["http", "https"])
def test_slow_readers_hold_no_copy_of_the_file(gateway_factory, tmp_path, cert, use_tls):  # noqa: F811
    """50 readers of a 10 MiB file that do not read: the gateway (build/wsgw,
    no ASan, for a true RSS) holds at most one 64 KiB chunk per response,
    not 50 x 10 MiB."""
    size = 10 << 20
    (tmp_path / "big.bin").write_bytes(b"w" * size)
    plain = functools.partial(gateway_factory, binary=os.path.join(ROOT, "build", "wsgw"))
    gw = tls_gateway(plain, cert, "--static-dir", str(tmp_path),
                     "--http-write-timeout", "60s", "--max-http-responses", "64")
    ctx = client_ctx(cert[0]) if use_tls else None
    # Warm up: one full download, so the allocator and TLS state are primed.
    assert fetch(gw, "/big.bin", ctx)[2] == size
    time.sleep(0.3)
    before = rss_kib(gw)
    readers = []
    try:
        for _ in range(50):
            s = connect(gw, ctx, rcvbuf=4096)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            readers.append(s)
        assert wait_for(lambda: gw.metrics()["wsgw_http_responses"] == 51)
        time.sleep(0.5)                           # every socket buffer filled
        m = gw.metrics()
        grown = rss_kib(gw) - before
        assert m["wsgw_http_responses"] == 51
        # The gauge of what is queued: at most one chunk (and its head) each.
        assert m["wsgw_queued_bytes"] <= 50 * (CHUNK + 1024), m["wsgw_queued_bytes"]
        # And the process: 50 x 10 MiB would be 500 MiB.
        assert grown < 50 * 1024, "RSS grew by %d KiB" % grown
    finally:
        for s in readers:
            s.close()


def test_a_fifo_in_static_dir_does_not_block_the_gateway(gateway_factory, tmp_path):
    """open(2) of a FIFO for reading waits for a writer: a FIFO (or a device
    node) in static_dir must be a 404 at once, never a gateway whose event
    loop sleeps in open() until someone writes to it."""
    (tmp_path / "index.html").write_text("hi\n")
    os.mkfifo(str(tmp_path / "pipe"))
    gw = gateway_factory("--static-dir", str(tmp_path))
    s = connect(gw)
    s.settimeout(3)
    s.sendall(b"GET /pipe HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert s.recv(4096).split(b"\r\n")[0] == b"HTTP/1.1 404 Not Found"
        assert gw.get("/healthz")[0] == 200
    finally:
        s.close()
        # Unblock a gateway stuck in open() so that the fixture can stop it
        # (ENXIO: no reader, nothing to unblock).
        try:
            os.close(os.open(str(tmp_path / "pipe"), os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
