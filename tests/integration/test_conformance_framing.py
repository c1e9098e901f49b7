"""RFC 6455 / RFC 7692 conformance of the echo example, case by case as the
Autobahn|Testsuite (fuzzingclient) would run them: 1.* framing, 2.* pings and pongs, 3.* reserved bits, 4.* reserved
opcodes, 5.* fragmentation.

Servers: conformance.py (one echo process per configuration, ASan +
UBSan, stopped and checked at the end of the module).  Frames: wsraw.py
(a bare socket, every byte exact; every server frame checked).  Failure
cases assert the close code the server sends and that the server then
closes the TCP connection, without a close from us; then that a fresh
connection still echoes.
"""
import base64
import os
import socket
import struct

import pytest

from conformance import servers, servers_stay_up, base  # noqa: F401,F811 (fixtures)
from wsraw import (BINARY, CLOSE, CONT, OPS, PING, PONG, RSV1, RSV2, RSV3, RawClient, T, TEXT,
                   assert_serves, close_payload, fragments, frame, payload_of, text_of, xor_mask)


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
