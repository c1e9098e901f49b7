"""RFC 6455 / RFC 7692 conformance of the echo example, case by case as the
Autobahn|Testsuite (fuzzingclient) would run them: 9.* (bounded) large messages and 10.* the
message size limit.

Servers: conformance.py (one echo process per configuration, ASan +
UBSan, stopped and checked at the end of the module).  Frames: wsraw.py
(a bare socket, every byte exact; every server frame checked).  Failure
cases assert the close code the server sends and that the server then
closes the TCP connection, without a close from us; then that a fresh
connection still echoes.
"""
import pytest

from conformance import servers, servers_stay_up, base, big, limit  # noqa: F401,F811 (fixtures)
from wsraw import (BINARY, CONT, OPS, PING, RawClient, assert_serves, fragments, frame, payload_of)


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
