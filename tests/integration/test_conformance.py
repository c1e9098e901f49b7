"""RFC 6455 / RFC 7692 conformance of the echo example, case by case as the
Autobahn|Testsuite (fuzzingclient) would run them: 1.* framing, 2.* pings
and pongs, 3.* reserved bits, 4.* reserved opcodes, 5.* fragmentation,
6.* UTF-8, 7.* the closing handshake, 9.* (bounded) large messages,
10.* the message size limit, 12.*/13.* permessage-deflate.

The server is build/examples-asan/echo (AddressSanitizer + UBSan), one
process per configuration for the whole module; teardown stops each one and
fails on any sanitizer report, and every test checks they are still up.

Frames are written with RawClient below: a bare socket, so every byte,
mask, RSV bit and split of the sends is exact.  Every frame the server
sends is checked too (unmasked, minimal length, no reserved bits, control
frames final and <= 125 bytes).  Failure cases assert the close code the
server sends and that the server then closes the TCP connection, without a
close from us; then that a fresh connection still echoes.
"""
import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
import time
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from conftest import ROOT, Gateway

ECHO = os.path.join(ROOT, "build", "examples-asan", "echo")
T = 5.0                      # bound on every answer the server owes us

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 4, 2, 1   # as the 3-bit RSV field: RSV1 is the high bit
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TAIL = b"\x00\x00\xff\xff"   # RFC 7692 §7.2.1

CONFIGS = {
    "base":  ["--max-message-size", "1MiB"],
    "big":   ["--max-message-size", "16MiB", "--max-queued-bytes", "32MiB"],
    "limit": ["--max-message-size", "64KiB"],
    "pmd":   ["--enable-compression", "true", "--compression-threshold", "0",
              "--max-message-size", "1MiB"],
}


# ---- servers -------------------------------------------------------------------

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


# ---- the raw client ---------------------------------------------------------------

def xor_mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(op, payload=b"", fin=True, rsv=0, length=None, key=None):
    """One masked client frame; `length` overrides the announced length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4) if key is None else key
    return hdr + key + xor_mask(payload, key)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def deflate(data, wbits=15, strategy=zlib.Z_DEFAULT_STRATEGY):
    """A permessage-deflate payload (RFC 7692 §7.2.1), no context takeover."""
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits, 8, strategy)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def assert_same(got, want, what="payload"):
    if got != want:   # no pytest diff of megabytes
        i = first_diff(got, want)
        pytest.fail("%s differs: got %d bytes, want %d; first difference at %d: got %r want %r"
                    % (what, len(got), len(want), i, bytes(got[i:i + 16]), bytes(want[i:i + 16])))


class Closed(Exception):
    pass


class RawClient:
    """A WebSocket client on a bare socket: exact bytes, any split of the
    sends, frames read with a deadline, the TCP close detected."""

    def __init__(self, gw, extensions=None):
        self.sock = socket.create_connection(("127.0.0.1", gw.port), timeout=T)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        req = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               % (gw.port, key))
        if extensions:
            req += b"Sec-WebSocket-Extensions: " + extensions.encode() + b"\r\n"
        self.sock.sendall(req + b"\r\n")
        self.buf = bytearray()
        deadline = time.monotonic() + T
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101 "), head
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        assert self.headers["sec-websocket-accept"] == want
        self.extensions = self.headers.get("sec-websocket-extensions")
        self.pmd = parse_pmd_response(self.extensions) if self.extensions else None
        self.in_compressed = False

    # -- sending --
    def send_raw(self, data, chop=None, delay=0.0):
        """Sends data whole, or in sends of `chop` bytes `delay` s apart."""
        if not chop:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), chop):
            self.sock.sendall(data[i:i + chop])
            if delay:
                time.sleep(delay)

    def send(self, op, payload=b"", fin=True, rsv=0, chop=None, delay=0.0):
        self.send_raw(frame(op, payload, fin, rsv), chop, delay)

    def send_frames(self, frames, mode="one"):
        """mode: one = all frames in one send; frames = one send per frame;
        bytes = one send per byte."""
        data = b"".join(frames)
        if mode == "one":
            self.send_raw(data)
        elif mode == "frames":
            for f in frames:
                self.send_raw(f)
                time.sleep(0.002)
        elif mode == "bytes":
            self.send_raw(data, chop=1)
        else:
            raise ValueError(mode)

    def close(self):
        self.sock.close()

    # -- receiving --
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError from None
        except (ConnectionResetError, BrokenPipeError):
            raise Closed from None
        if not chunk:
            raise Closed
        self.buf += chunk

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_frame(self, timeout=T):
        """The next frame (fin, rsv, op, payload), checked as a strict client
        checks a server's frames."""
        deadline = time.monotonic() + timeout
        try:
            b0, b1 = self._need(2, deadline)
            fin, rsv, op = b0 >> 7, (b0 >> 4) & 7, b0 & 0x0F
            assert not b1 & 0x80, "server frame is masked"
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._need(2, deadline))[0]
                assert n >= 126, "16-bit length %d not minimal" % n
            elif n == 127:
                n = struct.unpack("!Q", self._need(8, deadline))[0]
                assert 65536 <= n < 1 << 63, "64-bit length %d not minimal" % n
            payload = self._need(n, deadline)
        except TimeoutError:
            pytest.fail("no frame from the server within %.1fs" % timeout)
        except Closed:
            raise
        assert op in (CONT, TEXT, BINARY, CLOSE, PING, PONG), "server sent opcode %d" % op
        if op & 8:
            assert fin and n <= 125 and rsv == 0, "bad control frame from server"
        elif rsv:
            assert rsv == RSV1 and self.pmd and op != CONT, "server set RSV %d" % rsv
        return fin, rsv, op, payload

    def recv_message(self, timeout=T):
        """(op, payload, compressed): a whole data message (fragments joined,
        inflated when RSV1 was set) or one control frame."""
        deadline = time.monotonic() + timeout
        parts, first_op, compressed = [], None, False
        while True:
            fin, rsv, op, payload = self.recv_frame(max(deadline - time.monotonic(), 0.01))
            if op & 8:
                assert first_op is None, "control frame inside a fragmented message from server"
                return op, payload, False
            if first_op is None:
                assert op != CONT, "continuation without a message from server"
                first_op, compressed = op, bool(rsv & RSV1)
            else:
                assert op == CONT, "new data frame inside a fragmented message from server"
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                if compressed:
                    d = zlib.decompressobj(-self.pmd["server_max_window_bits"])
                    data = d.decompress(data + TAIL) + d.flush()
                return first_op, data, compressed

    def expect(self, op, payload, timeout=T):
        got_op, got, _ = self.recv_message(timeout)
        assert got_op == op, "expected opcode %d, got %d (%r)" % (op, got_op, got[:80])
        assert_same(got, payload)

    def expect_eof(self, timeout=T):
        """The server closes the TCP connection, with nothing more sent."""
        deadline = time.monotonic() + timeout
        assert not self.buf, "bytes after the close frame: %r" % bytes(self.buf[:80])
        try:
            self._fill(deadline)
        except Closed:
            return
        except TimeoutError:
            pytest.fail("server did not close the TCP connection within %.1fs" % timeout)
        pytest.fail("bytes after the close frame: %r" % bytes(self.buf[:80]))

    def expect_close(self, timeout=T):
        """The next frame is a close: returns its raw payload."""
        try:
            op, payload, _ = self.recv_message(timeout)
        except Closed:
            pytest.fail("TCP closed without a close frame")
        assert op == CLOSE, "expected a close frame, got opcode %d (%r)" % (op, payload[:80])
        assert len(payload) != 1
        if payload:
            payload[2:].decode("utf-8")      # a reason is UTF-8
        return payload

    def expect_fail(self, code):
        """Failure case: the server sends close `code`, then closes TCP."""
        payload = self.expect_close()
        assert len(payload) >= 2, "close without a code, expected %d" % code
        got = struct.unpack("!H", payload[:2])[0]
        assert got == code, "close code %d (%r), expected %d" % (got, payload[2:], code)
        self.expect_eof()
        self.close()

    def finish(self, code=1000, reason=b""):
        """A clean close from our side: the code is echoed, TCP is closed."""
        self.send(CLOSE, close_payload(code, reason))
        payload = self.expect_close()
        assert payload[:2] == struct.pack("!H", code), "close reply %r" % payload
        self.expect_eof()
        self.close()


def parse_pmd_response(value):
    """Parses and checks a permessage-deflate response (RFC 7692 §7.1)."""
    items = [p.strip() for p in value.split(";")]
    assert items[0] == "permessage-deflate", value
    params = {}
    for item in items[1:]:
        name, eq, val = item.partition("=")
        name = name.strip()
        assert name not in params, "repeated parameter in %r" % value
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            assert not eq, value
            params[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            val = val.strip().strip('"')
            assert eq and val.isdigit() and val[0] != "0" and 8 <= int(val) <= 15, value
            params[name] = int(val)
        else:
            raise AssertionError("unknown parameter %r in %r" % (name, value))
    params.setdefault("server_max_window_bits", 15)
    return params


def assert_serves(gw):
    """The server still accepts and echoes on a fresh connection."""
    c = RawClient(gw)
    c.send(TEXT, b"still alive")
    c.expect(TEXT, b"still alive")
    c.finish()


def text_of(n, seed=0):
    """n bytes of valid UTF-8 (1- to 4-byte characters), exactly."""
    rnd = random.Random(seed)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789 .,µßé€κόσμε😀𐍈"
    out = "".join(rnd.choice(chars) for _ in range(min(n, 4096))).encode()
    while len(out) < n:
        out += out
    out = out[:n]
    while out:                          # back off to a character boundary
        try:
            out.decode()
            break
        except UnicodeDecodeError:
            out = out[:-1]
    return out + b"a" * (n - len(out))


def payload_of(kind, n):
    return text_of(n, n) if kind == "text" else random.Random(n).randbytes(n)


OPS = {"text": TEXT, "binary": BINARY}


# ---- 1.* framing -------------------------------------------------------------------

SIZES = [0, 1, 16, 125, 126, 127, 128, 1000, 65535, 65536, 100000]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_1_echo(base, kind, size):
    data = payload_of(kind, size)
    c = RawClient(base)
    c.send(OPS[kind], data)
    c.expect(OPS[kind], data)
    c.finish()


@pytest.mark.parametrize("kind,size,chop", [
    ("text", 0, 1), ("text", 125, 1), ("binary", 126, 1), ("text", 127, 1),
    ("binary", 65536, 1), ("text", 65536, 997), ("binary", 65536, 997),
], ids=lambda v: str(v))
def test_1_echo_chopped(base, kind, size, chop):
    data = payload_of(kind, size)
    c = RawClient(base)
    c.send(OPS[kind], data, chop=chop, delay=0.001 if size < 1000 else 0)
    c.expect(OPS[kind], data)
    c.finish()


def test_1_many_messages_in_one_send(base):
    msgs = [(TEXT if i % 2 else BINARY, payload_of("text" if i % 2 else "binary", i * 37))
            for i in range(50)]
    c = RawClient(base)
    c.send_raw(b"".join(frame(op, p) for op, p in msgs))
    for op, p in msgs:
        c.expect(op, p)
    c.finish()


def test_1_frames_pipelined_with_the_handshake(base):
    """Frames sent in the same segment as the upgrade request are read."""
    sock = socket.create_connection(("127.0.0.1", base.port), timeout=T)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                 b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + frame(TEXT, b"early") + frame(PING, b"p"))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed during the handshake"
        data += chunk
    assert data.startswith(b"HTTP/1.1 101 ")
    c = RawClient.__new__(RawClient)
    c.sock, c.buf, c.pmd = sock, bytearray(data.split(b"\r\n\r\n", 1)[1]), None
    c.expect(TEXT, b"early")
    c.expect(PONG, b"p")
    c.finish()


@pytest.mark.parametrize("n,wire", [
    (5, struct.pack("!BBH", 0x82, 0x80 | 126, 5)),
    (200, struct.pack("!BBQ", 0x82, 0x80 | 127, 200)),
], ids=["16bit-len-5", "64bit-len-200"])
def test_1_non_minimal_length_is_1002(base, n, wire):
    """RFC 6455 §5.2: the minimal number of bytes MUST be used."""
    c = RawClient(base)
    key = os.urandom(4)
    c.send_raw(wire + key + xor_mask(b"x" * n, key))
    c.expect_fail(1002)
    assert_serves(base)


def test_1_length_msb_set_is_1002(base):
    """RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0."""
    c = RawClient(base)
    c.send_raw(frame(BINARY, b"", length=1 << 63))
    c.expect_fail(1002)
    assert_serves(base)


def test_1_unmasked_client_frame_is_1002(base):
    c = RawClient(base)
    c.send_raw(b"\x81\x05hello")
    c.expect_fail(1002)
    assert_serves(base)


# ---- 2.* pings and pongs ------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b"", b"Hello, world!", bytes([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]),
    b"*" * 125, bytes(range(125)),
], ids=["empty", "text", "binary", "125-bytes", "125-binary"])
def test_2_ping_gets_pong(base, payload):
    c = RawClient(base)
    c.send(PING, payload)
    c.expect(PONG, payload)
    c.finish()


def test_2_ping_chopped_across_sends(base):
    c = RawClient(base)
    c.send(PING, b"*" * 125, chop=1, delay=0.001)
    c.expect(PONG, b"*" * 125)
    c.finish()


def test_2_ping_126_bytes_is_1002(base):
    c = RawClient(base)
    c.send(PING, b"*" * 126)
    c.expect_fail(1002)
    assert_serves(base)


@pytest.mark.parametrize("payload", [b"", b"unsolicited pong payload"], ids=["empty", "payload"])
def test_2_unsolicited_pong_ignored(base, payload):
    c = RawClient(base)
    c.send(PONG, payload)
    c.send(PING, b"after the pong")
    c.expect(PONG, b"after the pong")      # the first thing back: nothing for the pong
    c.finish()


@pytest.mark.parametrize("mode", ["one", "frames", "bytes"])
def test_2_ten_pings_ten_pongs_in_order(base, mode):
    c = RawClient(base)
    c.send_frames([frame(PING, b"payload-%d" % i) for i in range(10)], mode)
    for i in range(10):
        c.expect(PONG, b"payload-%d" % i)
    c.finish()


# ---- 3.* reserved bits -------------------------------------------------------------

RSV_FRAMES = {
    "text": lambda rsv: frame(TEXT, b"Hello, world!", rsv=rsv),
    "binary": lambda rsv: frame(BINARY, b"\x00\xff\xfe\xfd", rsv=rsv),
    "ping": lambda rsv: frame(PING, b"ping", rsv=rsv),
    "close": lambda rsv: frame(CLOSE, close_payload(1000), rsv=rsv),
    "cont": lambda rsv: frame(CONT, b"x", rsv=rsv),
}


@pytest.mark.parametrize("rsv", range(1, 8), ids=lambda r: "rsv%d" % r)
@pytest.mark.parametrize("kind", ["text", "binary", "ping", "close"])
def test_3_reserved_bits_are_1002_after_echo(base, kind, rsv):
    """A valid message first (echoed first), the bad frame, then a ping that
    must not be answered."""
    c = RawClient(base)
    c.send_raw(frame(TEXT, b"valid first") + RSV_FRAMES[kind](rsv) + frame(PING, b"late"))
    c.expect(TEXT, b"valid first")
    c.expect_fail(1002)
    assert_serves(base)


@pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3], ids=["rsv1", "rsv2", "rsv3"])
def test_3_reserved_bits_alone_chopped(base, rsv):
    c = RawClient(base)
    c.send_raw(RSV_FRAMES["text"](rsv), chop=1, delay=0.001)
    c.expect_fail(1002)
    assert_serves(base)


def test_3_reserved_bit_on_continuation_is_1002(base):
    c = RawClient(base)
    c.send_raw(frame(TEXT, b"frag", fin=False) + frame(CONT, b"ment", rsv=RSV2))
    c.expect_fail(1002)
    assert_serves(base)


# ---- 4.* reserved opcodes ------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"reserved opcode payload"], ids=["empty", "payload"])
@pytest.mark.parametrize("op", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF], ids=lambda o: "op%X" % o)
def test_4_reserved_opcode_is_1002_after_echo(base, op, payload):
    c = RawClient(base)
    c.send_raw(frame(TEXT, b"valid first") + frame(op, payload) + frame(PING, b"late"))
    c.expect(TEXT, b"valid first")
    c.expect_fail(1002)
    assert_serves(base)


def test_4_pong_before_reserved_opcode_close(base):
    c = RawClient(base)
    c.send_raw(frame(PING, b"first") + frame(0xB, b"") + frame(TEXT, b"late"))
    c.expect(PONG, b"first")
    c.expect_fail(1002)
    assert_serves(base)


# ---- 5.* fragmentation ------------------------------------------------------------------

def fragments(op, data, n):
    """data as n frames: op + (n-1) continuations, FIN on the last."""
    cuts = [len(data) * i // n for i in range(n + 1)]
    return [frame(op if i == 0 else CONT, data[cuts[i]:cuts[i + 1]], fin=i == n - 1)
            for i in range(n)]


@pytest.mark.parametrize("mode", ["one", "frames", "bytes"])
@pytest.mark.parametrize("n", [2, 3, 10])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_5_fragmented_echo(base, kind, n, mode):
    data = payload_of(kind, 300)
    c = RawClient(base)
    c.send_frames(fragments(OPS[kind], data, n), mode)
    c.expect(OPS[kind], data)
    c.finish()


@pytest.mark.parametrize("mode", ["one", "frames", "bytes"])
@pytest.mark.parametrize("n", [2, 5])
def test_5_pings_between_fragments_answered_first(base, n, mode):
    data = text_of(200)
    frags = fragments(TEXT, data, n)
    frames = []
    for i, f in enumerate(frags):
        frames.append(f)
        if i < n - 1:
            frames.append(frame(PING, b"ping-%d" % i))
    c = RawClient(base)
    c.send_frames(frames, mode)
    for i in range(n - 1):
        c.expect(PONG, b"ping-%d" % i)
    c.expect(TEXT, data)
    c.finish()


def test_5_unsolicited_pong_between_fragments(base):
    c = RawClient(base)
    c.send_frames([frame(TEXT, b"fragment1", fin=False), frame(PONG, b"pong"),
                   frame(CONT, b"fragment2")])
    c.expect(TEXT, b"fragment1fragment2")
    c.finish()


@pytest.mark.parametrize("frags,want", [
    ([b"", b"", b""], b""),
    ([b"", b"abc", b""], b"abc"),
    ([b"abc", b"", b"def"], b"abcdef"),
    ([b"", b""], b""),
], ids=["all-empty", "empty-first-last", "empty-middle", "two-empty"])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_5_empty_fragments(base, kind, frags, want):
    c = RawClient(base)
    n = len(frags)
    c.send_frames([frame(OPS[kind] if i == 0 else CONT, f, fin=i == n - 1)
                   for i, f in enumerate(frags)])
    c.expect(OPS[kind], want)
    c.finish()


@pytest.mark.parametrize("mode", ["one", "bytes"])
@pytest.mark.parametrize("fin", [True, False], ids=["fin", "nofin"])
def test_5_continuation_without_start_is_1002(base, fin, mode):
    c = RawClient(base)
    c.send_frames([frame(CONT, b"non-continuation payload", fin=fin)], mode)
    c.expect_fail(1002)
    assert_serves(base)


def test_5_continuation_after_finished_message_is_1002(base):
    c = RawClient(base)
    c.send_frames([frame(TEXT, b"whole"), frame(CONT, b"stray")])
    c.expect(TEXT, b"whole")
    c.expect_fail(1002)
    assert_serves(base)


@pytest.mark.parametrize("second", [TEXT, BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("second_fin", [True, False], ids=["fin", "nofin"])
def test_5_new_data_frame_inside_fragmented_message_is_1002(base, second, second_fin):
    c = RawClient(base)
    c.send_frames([frame(TEXT, b"fragment1", fin=False), frame(CONT, b"fragment2", fin=False),
                   frame(second, b"fragment3", fin=second_fin)])
    c.expect_fail(1002)
    assert_serves(base)


@pytest.mark.parametrize("op", [PING, PONG, CLOSE], ids=["ping", "pong", "close"])
def test_5_fragmented_control_frame_is_1002(base, op):
    c = RawClient(base)
    c.send_frames([frame(op, b"fragment1", fin=False), frame(CONT, b"fragment2")])
    c.expect_fail(1002)
    assert_serves(base)


# ---- 6.* UTF-8 -----------------------------------------------------------------------

VALID_UTF8 = [
    ("hello", "Hello-µ@ßöäüàá-UTF-8!!".encode()),
    ("kosme", "κόσμε".encode()),
    ("nul", b"\x00"),
    ("u007f", b"\x7f"),
    ("u0080", b"\xc2\x80"),
    ("u07ff", b"\xdf\xbf"),
    ("u0800", b"\xe0\xa0\x80"),
    ("ud7ff", b"\xed\x9f\xbf"),
    ("ue000", b"\xee\x80\x80"),
    ("ufffd", b"\xef\xbf\xbd"),
    ("ufffe", b"\xef\xbf\xbe"),
    ("uffff", b"\xef\xbf\xbf"),
    ("u10000", b"\xf0\x90\x80\x80"),
    ("emoji", "😀".encode()),
    ("u10ffff", b"\xf4\x8f\xbf\xbf"),
    ("mixed", "a¢€𐍈z".encode() * 3),
]

# (id, bytes, detectable before the message ends)
INVALID_UTF8 = [
    ("overlong-2", b"\xc0\xaf", True),
    ("overlong-3", b"\xe0\x80\xaf", True),
    ("overlong-4", b"\xf0\x80\x80\xaf", True),
    ("overlong-max-2", b"\xc1\xbf", True),
    ("overlong-max-3", b"\xe0\x9f\xbf", True),
    ("overlong-max-4", b"\xf0\x8f\xbf\xbf", True),
    ("overlong-nul", b"\xc0\x80", True),
    ("surrogate-d800", b"\xed\xa0\x80", True),
    ("surrogate-dbff", b"\xed\xaf\xbf", True),
    ("surrogate-dc00", b"\xed\xb0\x80", True),
    ("surrogate-dfff", b"\xed\xbf\xbf", True),
    ("surrogate-pair", b"\xed\xa0\x80\xed\xb0\x80", True),
    ("above-10ffff", b"\xf4\x90\x80\x80", True),
    ("f7", b"\xf7\xbf\xbf\xbf", True),
    ("5-byte", b"\xf8\x88\x80\x80\x80", True),
    ("6-byte", b"\xfc\x84\x80\x80\x80\x80", True),
    ("f5", b"\xf5\x80\x80\x80", True),
    ("fe", b"\xfe", True),
    ("ff", b"\xff", True),
    ("lone-cont-80", b"\x80", True),
    ("lone-cont-bf", b"\xbf", True),
    ("cont-run", b"\x80\xbf\x80\xbf", True),
    ("lonely-start-c2", b"\xc2\x20", True),
    ("lonely-start-e0", b"\xe0\x20", True),
    ("lonely-start-f0", b"\xf0\x20", True),
    ("missing-last-3", b"\xe2\x82\x20", True),
    ("trunc-2-at-end", b"\xc2", False),
    ("trunc-3-at-end", b"\xe2\x82", False),
    ("trunc-4-at-end", b"\xf0\x9f\x98", False),
]
FAIL_FAST = [(i, b) for i, b, early in INVALID_UTF8 if early]


def invalid_message(seq, early):
    """The bad sequence inside valid text (at the very end when it is a
    truncated one)."""
    return "κόσμε".encode() + seq + (b"edited" if early else b"")


@pytest.mark.parametrize("data", [d for _, d in VALID_UTF8], ids=[i for i, _ in VALID_UTF8])
def test_6_valid_utf8_echoed(base, data):
    c = RawClient(base)
    c.send(TEXT, data)
    c.expect(TEXT, data)
    c.send_frames([frame(TEXT if i == 0 else CONT, data[i:i + 1], fin=i == len(data) - 1)
                   for i in range(len(data))])            # one byte per fragment
    c.expect(TEXT, data)
    c.finish()


def test_6_valid_utf8_split_inside_code_points(base):
    data = "κόσμε😀𐍈€".encode()
    c = RawClient(base)
    for cut in range(1, len(data)):
        c.send_frames([frame(TEXT, data[:cut], fin=False), frame(CONT, data[cut:])])
        c.expect(TEXT, data)
    c.finish()


def test_6_empty_text(base):
    c = RawClient(base)
    c.send(TEXT, b"")
    c.expect(TEXT, b"")
    c.finish()


@pytest.mark.parametrize("seq,early", [(b, e) for _, b, e in INVALID_UTF8],
                         ids=[i for i, _, _ in INVALID_UTF8])
def test_6_invalid_utf8_is_1007(base, seq, early):
    c = RawClient(base)
    c.send(TEXT, invalid_message(seq, early))
    c.expect_fail(1007)
    assert_serves(base)


@pytest.mark.parametrize("seq,early", [(b, e) for _, b, e in INVALID_UTF8],
                         ids=[i for i, _, _ in INVALID_UTF8])
def test_6_invalid_utf8_one_byte_per_fragment_is_1007(base, seq, early):
    data = invalid_message(seq, early)
    c = RawClient(base)
    c.send_frames([frame(TEXT if i == 0 else CONT, data[i:i + 1], fin=i == len(data) - 1)
                   for i in range(len(data))])
    c.expect_fail(1007)
    assert_serves(base)


@pytest.mark.parametrize("seq", [b for _, b in FAIL_FAST], ids=[i for i, _ in FAIL_FAST])
def test_6_fail_fast_on_first_fragment(base, seq):
    """Autobahn 6.4.*: the first fragment (FIN=0) holds the invalid bytes;
    the server fails at once, the rest of the message is never sent."""
    c = RawClient(base)
    c.send(TEXT, "κόσμε".encode() + seq, fin=False)
    c.expect_fail(1007)
    assert_serves(base)


@pytest.mark.parametrize("seq", [b for _, b in FAIL_FAST], ids=[i for i, _ in FAIL_FAST])
def test_6_fail_fast_inside_one_frame(base, seq):
    """Autobahn 6.4.3/6.4.4: one final frame sent in chops; the chop with
    the invalid byte fails at once, before the rest of the frame arrives."""
    data = "κόσμε".encode() + seq + b"edited" * 10
    wire = frame(TEXT, data)
    cut = len(wire) - len(data) + len("κόσμε".encode())
    c = RawClient(base)
    c.send_raw(wire[:cut])
    time.sleep(0.01)
    c.send_raw(wire[cut:cut + len(seq)])    # the invalid bytes, the frame unfinished
    c.expect_fail(1007)
    assert_serves(base)


@pytest.mark.parametrize("frags", [
    [b"ab\xed", b"\xa0\x80cd"],
    [b"ab\xf4", b"\x90", b"\x80\x80"],
    [b"ab\xe0", b"\x80\xafcd"],
    [b"ab\xf0\x9f", b"\x98"],
], ids=["surrogate", "above-10ffff", "overlong", "truncated"])
def test_6_invalid_split_across_fragments_is_1007(base, frags):
    c = RawClient(base)
    c.send_frames([frame(TEXT if i == 0 else CONT, f, fin=i == len(frags) - 1)
                   for i, f in enumerate(frags)], "frames")
    c.expect_fail(1007)
    assert_serves(base)


def test_6_fail_fast_across_fragments(base):
    """The invalid byte is in the second of more fragments (both FIN=0):
    1007 without the rest."""
    c = RawClient(base)
    c.send(TEXT, b"valid \xf4", fin=False)
    c.send(CONT, b"\x90 and more", fin=False)
    c.expect_fail(1007)
    assert_serves(base)


@pytest.mark.parametrize("last", [b"\xed\xa0\x80", b"\xe2\x82", b"\xff"], ids=["surrogate", "truncated", "ff"])
def test_6_invalid_only_in_last_fragment_is_1007(base, last):
    c = RawClient(base)
    c.send_frames([frame(TEXT, b"good ", fin=False), frame(CONT, "κόσμε ".encode(), fin=False),
                   frame(CONT, b"end" + last)], "frames")
    c.expect_fail(1007)
    assert_serves(base)


def test_6_binary_is_not_utf8_checked(base):
    data = b"\xed\xa0\x80\xff\xfe\xc0\xaf"
    c = RawClient(base)
    c.send(BINARY, data)
    c.expect(BINARY, data)
    c.finish()


# ---- 7.* closing handshake --------------------------------------------------------------

def test_7_empty_close_echoed(base):
    """§5.5.1: the server echoes the status code it received; with none, an
    empty close (or 1000, which Autobahn also accepts).  Ours is empty."""
    c = RawClient(base)
    c.send(CLOSE, b"")
    payload = c.expect_close()
    assert payload in (b"", close_payload(1000))
    assert payload == b"", "this server answers an empty close with an empty close"
    c.expect_eof()
    c.close()


def test_7_close_1000_with_reason(base):
    c = RawClient(base)
    c.finish(1000, "goodbye, κόσμε".encode())


def test_7_close_125_byte_payload(base):
    c = RawClient(base)
    c.finish(1000, b"r" * 123)


def test_7_close_126_byte_payload_is_1002(base):
    c = RawClient(base)
    c.send(CLOSE, close_payload(1000, b"r" * 124))
    c.expect_fail(1002)
    assert_serves(base)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_7_valid_close_code_echoed(base, code):
    c = RawClient(base)
    c.finish(code, b"reason")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                  5000, 65535])
def test_7_invalid_close_code_is_1002(base, code):
    c = RawClient(base)
    c.send(CLOSE, close_payload(code))
    c.expect_fail(1002)
    assert_serves(base)


@pytest.mark.parametrize("reason,code", [(b"chopped reason \xce\xba", 1000), (b"bad \xce", 1007)],
                         ids=["valid", "invalid-utf8"])
def test_7_close_chopped(base, reason, code):
    c = RawClient(base)
    c.send(CLOSE, close_payload(1000, reason), chop=1, delay=0.001)
    if code == 1000:
        assert c.expect_close() == close_payload(1000)
        c.expect_eof()
        c.close()
    else:
        c.expect_fail(code)
    assert_serves(base)


def test_7_close_payload_one_byte_is_1002(base):
    c = RawClient(base)
    c.send(CLOSE, b"\x03")
    c.expect_fail(1002)
    assert_serves(base)


@pytest.mark.parametrize("reason", [b"\xed\xa0\x80", b"ab\xff", b"\xc2"], ids=["surrogate", "ff", "truncated"])
def test_7_close_reason_invalid_utf8_is_1007(base, reason):
    c = RawClient(base)
    c.send(CLOSE, close_payload(1000, "κόσμε".encode() + reason))
    c.expect_fail(1007)
    assert_serves(base)


def test_7_message_then_close(base):
    c = RawClient(base)
    c.send_raw(frame(TEXT, b"Hello World!") + frame(CLOSE, close_payload(1000)))
    c.expect(TEXT, b"Hello World!")
    assert c.expect_close() == close_payload(1000)
    c.expect_eof()
    c.close()


@pytest.mark.parametrize("after", [
    [frame(CLOSE, close_payload(1000))],
    [frame(PING, b"ping after close")],
    [frame(TEXT, b"text after close")],
    [frame(0x3, b"")],                                 # even a bad frame is ignored
    [frame(TEXT, b"x"), frame(PING, b"y"), frame(CLOSE, close_payload(1001))],
], ids=["close", "ping", "text", "reserved-opcode", "mixed"])
@pytest.mark.parametrize("mode", ["one", "frames"])
def test_7_data_after_close_ignored(base, after, mode):
    c = RawClient(base)
    try:
        c.send_frames([frame(CLOSE, close_payload(1000))] + after, mode)
    except (BrokenPipeError, ConnectionResetError):
        pass                             # the server may be gone already: its right
    assert c.expect_close() == close_payload(1000)
    c.expect_eof()                                      # no echo, no pong, no 2nd close
    c.close()


def test_7_close_inside_fragmented_message(base):
    """Fragment, close, continuation: the close is answered, the message is
    dropped."""
    c = RawClient(base)
    c.send_frames([frame(TEXT, b"fragment1", fin=False), frame(CLOSE, close_payload(1000)),
                   frame(CONT, b"fragment2")])
    assert c.expect_close() == close_payload(1000)
    c.expect_eof()
    c.close()


def test_7_large_message_ping_close(base):
    data = text_of(256 * 1024)
    c = RawClient(base)
    c.send_raw(frame(TEXT, data) + frame(PING, b"p") + frame(CLOSE, close_payload(1000)))
    c.expect(TEXT, data)
    c.expect(PONG, b"p")
    assert c.expect_close() == close_payload(1000)
    c.expect_eof()
    c.close()


def test_7_close_then_half_close(base):
    """A client that sends its close and shuts down its side at once still
    gets the close reply, then the server closes."""
    c = RawClient(base)
    c.send_raw(frame(TEXT, b"last") + frame(CLOSE, close_payload(1000)))
    c.sock.shutdown(socket.SHUT_WR)
    c.expect(TEXT, b"last")
    assert c.expect_close() == close_payload(1000)
    c.expect_eof()
    c.close()


# ---- 9.* large messages (bounded) ----------------------------------------------------------

BIG = [64 << 10, 256 << 10, 1 << 20, 4 << 20]


@pytest.mark.parametrize("split", ["whole", "64k-frags"])
@pytest.mark.parametrize("size", BIG, ids=["64k", "256k", "1m", "4m"])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_9_large_echo(big, kind, size, split):
    data = payload_of(kind, size)
    c = RawClient(big)
    if split == "whole":
        c.send(OPS[kind], data)
    else:
        n = size // (64 << 10)
        frames = [frame(OPS[kind] if i == 0 else CONT, data[i << 16:(i + 1) << 16], fin=i == n - 1)
                  for i in range(n)]
        c.send_raw(b"".join(frames))
    c.expect(OPS[kind], data, timeout=20)
    c.finish()


@pytest.mark.parametrize("kind,size,fragsize", [
    ("text", 1 << 20, 64), ("binary", 1 << 20, 64), ("text", 4 << 20, 4096),
], ids=["text-1m-64b-frags", "binary-1m-64b-frags", "text-4m-4k-frags"])
def test_9_large_echo_small_fragments(big, kind, size, fragsize):
    data = payload_of(kind, size)
    c = RawClient(big)
    n = size // fragsize
    c.send_raw(b"".join(frame(OPS[kind] if i == 0 else CONT, data[i * fragsize:(i + 1) * fragsize],
                              fin=i == n - 1) for i in range(n)))
    c.expect(OPS[kind], data, timeout=20)
    c.finish()


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_9_large_echo_chopped(big, kind):
    data = payload_of(kind, 1 << 20)
    c = RawClient(big)
    c.send(OPS[kind], data, chop=997)
    c.expect(OPS[kind], data, timeout=20)
    c.finish()


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_9_large_echo_then_protocol_error(big, kind):
    """The close for an error goes out after the echo queued before it."""
    data = payload_of(kind, 4 << 20)
    c = RawClient(big)
    c.send_raw(frame(OPS[kind], data) + frame(0x3, b"") + frame(PING, b"late"))
    c.expect(OPS[kind], data, timeout=20)
    c.expect_fail(1002)
    assert_serves(big)


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_9_many_small_messages(big, kind):
    msgs = [payload_of(kind, 16 + i % 7) for i in range(1000)]
    c = RawClient(big)
    c.send_raw(b"".join(frame(OPS[kind], m) for m in msgs))
    for m in msgs:
        c.expect(OPS[kind], m)
    c.finish()


# ---- 10.* the message size limit (--max-message-size 64KiB) -----------------------------------

@pytest.mark.parametrize("kind", ["text", "binary"])
def test_10_message_at_limit_echoed(limit, kind):
    data = payload_of(kind, 64 << 10)
    c = RawClient(limit)
    c.send(OPS[kind], data)
    c.expect(OPS[kind], data)
    c.send_frames(fragments(OPS[kind], data, 16))
    c.expect(OPS[kind], data)
    c.finish()


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_10_message_at_limit_echoed_when_queue_equals_limit(base, kind):
    """--max-message-size 1MiB with the default --max-queued-bytes 1MiB
    (a configuration the gateway accepts as consistent): a message of
    exactly the limit, echoed to a client whose queue is empty, must go
    out, not be taken for a slow consumer."""
    data = payload_of(kind, 1 << 20)
    c = RawClient(base)
    c.send(OPS[kind], data)
    c.expect(OPS[kind], data)
    c.finish()


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_10_message_over_limit_is_1009(limit, kind):
    c = RawClient(limit)
    c.send(OPS[kind], payload_of(kind, (64 << 10) + 1))
    c.expect_fail(1009)
    assert_serves(limit)


@pytest.mark.parametrize("announced", [(64 << 10) + 1, 1 << 40], ids=["limit+1", "1TiB"])
def test_10_announced_length_over_limit_fails_before_payload(limit, announced):
    """1009 on the header alone: the server does not wait for (or buffer)
    the payload it will refuse."""
    c = RawClient(limit)
    c.send_raw(frame(BINARY, b"", length=announced))
    c.expect_fail(1009)
    assert_serves(limit)


@pytest.mark.parametrize("nfrags,fragsize", [(3, 30000), (17, 4096), (2, 65536)],
                         ids=["3x30000", "17x4096", "2x65536"])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_10_fragments_over_limit_are_1009(limit, kind, nfrags, fragsize):
    data = payload_of(kind, nfrags * fragsize)
    c = RawClient(limit)
    frames = [frame(OPS[kind] if i == 0 else CONT, data[i * fragsize:(i + 1) * fragsize],
                    fin=i == nfrags - 1) for i in range(nfrags)]
    c.send_raw(b"".join(frames))
    c.expect_fail(1009)
    assert_serves(limit)


def test_10_fragments_over_limit_fail_before_final_fragment(limit):
    """The fragment that passes the limit fails at once (FIN=0 throughout)."""
    c = RawClient(limit)
    c.send(BINARY, b"a" * 40000, fin=False)
    c.send(CONT, b"b" * 40000, fin=False)
    c.expect_fail(1009)
    assert_serves(limit)


# ---- 12.* / 13.* permessage-deflate ---------------------------------------------------------

PMD_SIZES = [16, 64, 256, 1024, 4096, 16384, 65536, 262144]


def pmd_payloads():
    for size in PMD_SIZES:
        rnd = random.Random(size)
        words = ["alpha", "beta", "gamma", "δέλτα", "€uro", "😀"]
        comp_text = " ".join(rnd.choice(words) for _ in range(size)).encode()[:size]
        while True:                       # trim to a character boundary
            try:
                comp_text.decode()
                break
            except UnicodeDecodeError:
                comp_text = comp_text[:-1]
        yield "text-compressible-%d" % size, comp_text.decode()
        yield "text-random-%d" % size, text_of(size, seed=size * 7).decode()
        yield "binary-compressible-%d" % size, (b"0123456789abcdef" * (size // 16 + 1))[:size]
        yield "binary-random-%d" % size, rnd.randbytes(size)


PMD_COMBOS = {
    "defaults": {},
    "client-nct": dict(client_no_context_takeover=True),
    "server-nct": dict(server_no_context_takeover=True),
    "both-nct": dict(client_no_context_takeover=True, server_no_context_takeover=True),
    "server-bits-8": dict(server_max_window_bits=8),
    "server-bits-9": dict(server_max_window_bits=9),
    "server-bits-15": dict(server_max_window_bits=15),
    "client-bits-9": dict(client_max_window_bits=9),
    "client-bits-15": dict(client_max_window_bits=15),
    "client-bits-none": dict(client_max_window_bits=None),
    "server-nct-bits-8": dict(server_no_context_takeover=True, server_max_window_bits=8),
    "all-9": dict(client_no_context_takeover=True, server_no_context_takeover=True,
                  server_max_window_bits=9, client_max_window_bits=9),
}


def check_pmd_response(offer, params):
    """RFC 7692 §7.1: what a response to `offer` may say."""
    if offer.get("server_no_context_takeover"):
        assert params.get("server_no_context_takeover"), "§7.1.1.1: must be echoed"
    if "server_max_window_bits" in offer and offer["server_max_window_bits"]:
        assert params["server_max_window_bits"] <= offer["server_max_window_bits"]
    cbits = offer.get("client_max_window_bits", True)
    if cbits is None:
        assert "client_max_window_bits" not in params, "§7.1.2.2: not offered, must not appear"
    elif cbits is not True:
        assert params.get("client_max_window_bits", cbits) <= cbits


@pytest.mark.parametrize("combo", list(PMD_COMBOS))
def test_13_permessage_deflate_echo(pmd, combo):
    """12.* sizes and contents under each 13.* offer, with python websockets:
    it fails the handshake on an invalid response, and inflates what the
    server sends."""
    offer = PMD_COMBOS[combo]
    payloads = list(pmd_payloads())

    async def main():
        ext = ClientPerMessageDeflateFactory(**offer)
        async with websockets.connect(pmd.url, extensions=[ext], max_size=2 << 20,
                                      close_timeout=2) as ws:
            value = ws.response_headers["Sec-WebSocket-Extensions"]
            check_pmd_response(offer, parse_pmd_response(value))
            assert len(ws.extensions) == 1, value
            for _ in range(2):            # twice: no state leaks between messages
                for name, msg in payloads:
                    await ws.send(msg)
                    got = await asyncio.wait_for(ws.recv(), T)
                    assert type(got) is type(msg), name
                    if got != msg:
                        assert_same(got if isinstance(got, bytes) else got.encode(),
                                    msg if isinstance(msg, bytes) else msg.encode(), name)
            await ws.close()
            assert ws.close_code == 1000
    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("bits", [8, 9, 10, 12, 15])
def test_13_server_window_bits_honoured(pmd, bits):
    """What the server sends inflates with the window it agreed to (zlib
    refuses a distance beyond it), and carries RSV1 (threshold 0).  The
    server sends a message uncompressed when deflate would not shrink it,
    so the payload repeats within 50 bytes (it compresses at any window)
    and also 3000 bytes apart (a server ignoring the window would refer
    back that far)."""
    c = RawClient(pmd, "permessage-deflate; server_max_window_bits=%d" % bits)
    assert c.pmd["server_max_window_bits"] <= bits
    rng = random.Random(bits)
    block = b"".join(rng.randbytes(50) * 6 for _ in range(10))    # 3000 bytes
    data = block * 8                     # repeats 3000 bytes apart: > 2^8..2^11
    c.send(BINARY, deflate(data), rsv=RSV1)
    op, got, compressed = c.recv_message()
    assert op == BINARY and compressed
    assert_same(got, data)
    c.finish()


@pytest.mark.parametrize("offer", [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=8",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "x-unknown, permessage-deflate; server_max_window_bits=10",
    "permessage-deflate; unknown_param, permessage-deflate; server_max_window_bits=11",
    "permessage-deflate; server_no_context_takeover; server_max_window_bits=9, "
    "permessage-deflate; server_max_window_bits=12, permessage-deflate",
], ids=["plain", "cbits", "cbits-8", "both-nct", "after-unknown", "second-offer", "first-of-three"])
def test_13_raw_offers_and_response(pmd, offer):
    c = RawClient(pmd, offer)
    assert c.pmd is not None, "offer declined: %r" % offer
    if "client_max_window_bits" not in offer:
        assert "client_max_window_bits" not in c.pmd
    if "server_max_window_bits=" in offer:
        want = int(offer.split("server_max_window_bits=", 1)[1][:2].rstrip(",; "))
        assert c.pmd["server_max_window_bits"] == want, "the first acceptable offer is taken"
    cbits = c.pmd.get("client_max_window_bits", 15)
    # Huffman-only: no back-reference at all, so any client window is honoured.
    strategy = zlib.Z_HUFFMAN_ONLY if cbits < 15 else zlib.Z_DEFAULT_STRATEGY
    for data in [b"", b"x", text_of(5000), b"abc" * 10000]:
        c.send(TEXT, deflate(data, 15, strategy), rsv=RSV1)
        c.expect(TEXT, data)
    c.finish()


def test_13_uncompressed_message_on_pmd_connection(pmd):
    c = RawClient(pmd, "permessage-deflate")
    c.send(TEXT, b"plain")
    c.expect(TEXT, b"plain")
    c.finish()


@pytest.mark.parametrize("mode", ["one", "bytes"])
def test_13_compressed_message_fragmented(pmd, mode):
    data = text_of(20000)
    z = deflate(data)
    cuts = [0, 1, len(z) // 2, len(z)]
    frames = [frame(TEXT if i == 0 else CONT, z[cuts[i]:cuts[i + 1]], fin=i == 2,
                    rsv=RSV1 if i == 0 else 0) for i in range(3)]
    frames.insert(2, frame(PING, b"between"))
    c = RawClient(pmd, "permessage-deflate")
    c.send_frames(frames, mode)
    c.expect(PONG, b"between")
    c.expect(TEXT, data)
    c.finish()


def test_13_compressed_message_one_byte_fragments(pmd):
    data = text_of(3000)
    z = deflate(data)
    c = RawClient(pmd, "permessage-deflate")
    c.send_raw(b"".join(frame(TEXT if i == 0 else CONT, z[i:i + 1], fin=i == len(z) - 1,
                              rsv=RSV1 if i == 0 else 0) for i in range(len(z))))
    c.expect(TEXT, data)
    c.finish()


def test_13_pipelined_compressed_and_plain_messages(pmd):
    msgs = [(TEXT if i % 3 else BINARY, payload_of("text" if i % 3 else "binary", 50 * i), i % 2 == 0)
            for i in range(40)]
    c = RawClient(pmd, "permessage-deflate")
    c.send_raw(b"".join(frame(op, deflate(m) if z else m, rsv=RSV1 if z else 0) for op, m, z in msgs))
    for op, m, _ in msgs:
        c.expect(op, m)
    c.finish()


def test_13_interleaved_connections_share_nothing(pmd):
    """Fragments of compressed messages on two connections, interleaved, and
    different server windows: each gets its own message back."""
    a = RawClient(pmd, "permessage-deflate; server_max_window_bits=9")
    b = RawClient(pmd, "permessage-deflate")
    da, db = text_of(9000, 1), text_of(9000, 2)
    za, zb = deflate(da), deflate(db)
    for i, (x, y) in enumerate(((za[:100], zb[:100]), (za[100:], zb[100:]))):
        a.send(TEXT if i == 0 else CONT, x, fin=i == 1, rsv=RSV1 if i == 0 else 0)
        b.send(TEXT if i == 0 else CONT, y, fin=i == 1, rsv=RSV1 if i == 0 else 0)
        time.sleep(0.01)
    a.expect(TEXT, da)
    b.expect(TEXT, db)
    a.finish()
    b.finish()


def test_13_rsv1_on_continuation_is_1002(pmd):
    z = deflate(b"hello hello hello")
    c = RawClient(pmd, "permessage-deflate")
    c.send_frames([frame(TEXT, z[:3], fin=False, rsv=RSV1), frame(CONT, z[3:], rsv=RSV1)])
    c.expect_fail(1002)
    assert_serves(pmd)


@pytest.mark.parametrize("op", [PING, CLOSE], ids=["ping", "close"])
def test_13_rsv1_on_control_frame_is_1002(pmd, op):
    c = RawClient(pmd, "permessage-deflate")
    c.send(op, close_payload(1000) if op == CLOSE else b"p", rsv=RSV1)
    c.expect_fail(1002)
    assert_serves(pmd)


@pytest.mark.parametrize("rsv", [RSV2, RSV3], ids=["rsv2", "rsv3"])
def test_13_other_rsv_bits_still_1002(pmd, rsv):
    c = RawClient(pmd, "permessage-deflate")
    c.send(TEXT, deflate(b"hello"), rsv=RSV1 | rsv)
    c.expect_fail(1002)
    assert_serves(pmd)


def test_13_compressed_invalid_utf8_is_1007(pmd):
    c = RawClient(pmd, "permessage-deflate")
    c.send(TEXT, deflate(b"valid then \xed\xa0\x80 invalid"), rsv=RSV1)
    c.expect_fail(1007)
    assert_serves(pmd)


def test_13_corrupt_deflate_data_is_1007(pmd):
    c = RawClient(pmd, "permessage-deflate")
    c.send(BINARY, b"\xff\xff\xff\xff garbage", rsv=RSV1)
    c.expect_fail(1007)
    assert_serves(pmd)


def test_13_inflated_size_at_limit_echoed(pmd):
    data = b"z" * (1 << 20)
    c = RawClient(pmd, "permessage-deflate")
    c.send(BINARY, deflate(data), rsv=RSV1)
    c.expect(BINARY, data)
    c.finish()


def test_13_incompressible_message_at_limit_echoed(pmd):
    """A 1MiB random message (the limit) on a compressed connection: deflate
    cannot shrink it, and it must still be echoed (compressed or not)."""
    data = random.Random(7).randbytes(1 << 20)
    c = RawClient(pmd, "permessage-deflate")
    c.send(BINARY, deflate(data), rsv=RSV1)
    c.expect(BINARY, data)
    c.finish()


@pytest.mark.parametrize("size", [(1 << 20) + 1, 64 << 20], ids=["limit+1", "64MiB-bomb"])
def test_13_inflated_size_over_limit_is_1009(pmd, size):
    c = RawClient(pmd, "permessage-deflate")
    c.send(BINARY, deflate(b"\x00" * size), rsv=RSV1)
    c.expect_fail(1009)
    assert_serves(pmd)


def test_13_rsv1_without_negotiation_is_1002(pmd):
    c = RawClient(pmd)                   # no offer: no extension
    assert c.pmd is None
    c.send(TEXT, deflate(b"hello"), rsv=RSV1)
    c.expect_fail(1002)
    assert_serves(pmd)
