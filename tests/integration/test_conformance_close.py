"""RFC 6455 / RFC 7692 conformance of the echo example, case by case as the
Autobahn|Testsuite (fuzzingclient) would run them: 7.* the closing handshake.

Servers: conformance.py (one echo process per configuration, ASan +
UBSan, stopped and checked at the end of the module).  Frames: wsraw.py
(a bare socket, every byte exact; every server frame checked).  Failure
cases assert the close code the server sends and that the server then
closes the TCP connection, without a close from us; then that a fresh
connection still echoes.
"""
import socket

import pytest

from conformance import servers, servers_stay_up, base  # noqa: F401,F811 (fixtures)
from wsraw import (CLOSE, CONT, PING, PONG, RawClient, TEXT, assert_serves, close_payload, frame,
                   text_of)


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
