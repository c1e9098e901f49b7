"""RFC 6455 / RFC 7692 conformance of the echo example, case by case as the
Autobahn|Testsuite (fuzzingclient) would run them: 6.* UTF-8: valid text echoed, invalid text
closed 1007, failing fast across fragments.

Servers: conformance.py (one echo process per configuration, ASan +
UBSan, stopped and checked at the end of the module).  Frames: wsraw.py
(a bare socket, every byte exact; every server frame checked).  Failure
cases assert the close code the server sends and that the server then
closes the TCP connection, without a close from us; then that a fresh
connection still echoes.
"""
import time

import pytest

from conformance import servers, servers_stay_up, base  # noqa: F401,F811 (fixtures)
from wsraw import (BINARY, CONT, RawClient, TEXT, assert_serves, fragments, frame)


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
