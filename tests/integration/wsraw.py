"""A raw RFC 6455 client for tests: a bare socket, so every byte, mask, RSV
bit and split of the sends is exact, and every frame the server sends is
checked (unmasked, minimal length, no reserved bits, control frames final
and <= 125 bytes).  Shared by the conformance tests (test_conformance_*.py)
and test_gateway.py.  The frames themselves (opcodes, frame(),
close_payload(), parse_header()) come from tests/wsframe.py, which the soak
uses too, and are re-exported here.
"""
import base64
import os
import random
import socket
import struct
import time
import zlib

import pytest

from wsframe import (BINARY, CLOSE, CONT, GUID, PING, PONG, RSV1, RSV2, RSV3, TAIL, TEXT,  # noqa: F401
                     accept_key, close_code, close_payload, frame, parse_header, xor_mask)

T = 5.0                      # bound on every answer the server owes us


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
        want = accept_key(key).decode()
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
            while len(self.buf) < 2:
                self._fill(deadline)
            assert not self.buf[1] & 0x80, "server frame is masked"
            head = parse_header(self.buf)
            while head is None:
                self._fill(deadline)
                head = parse_header(self.buf)
            fin, rsv, op, _, n, hl = head
            if hl == 4:
                assert n >= 126, "16-bit length %d not minimal" % n
            elif hl == 10:
                assert 65536 <= n < 1 << 63, "64-bit length %d not minimal" % n
            del self.buf[:hl]
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


def fragments(op, data, n):
    """data as n frames: op + (n-1) continuations, FIN on the last."""
    cuts = [len(data) * i // n for i in range(n + 1)]
    return [frame(op if i == 0 else CONT, data[cuts[i]:cuts[i + 1]], fin=i == n - 1)
            for i in range(n)]
