"""RFC 6455 / RFC 7692 conformance of the echo example, case by case as the
Autobahn|Testsuite (fuzzingclient) would run them: 12.* / 13.* permessage-deflate
(RFC 7692).

Servers: conformance.py (one echo process per configuration, ASan +
UBSan, stopped and checked at the end of the module).  Frames: wsraw.py
(a bare socket, every byte exact; every server frame checked).  Failure
cases assert the close code the server sends and that the server then
closes the TCP connection, without a close from us; then that a fresh
connection still echoes.
"""
import asyncio
import random
import time
import zlib

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from conformance import servers, servers_stay_up, limit, pmd  # noqa: F401,F811 (fixtures)
from wsraw import (BINARY, CLOSE, CONT, PING, PONG, RSV1, RSV2, RSV3, RawClient, T, TEXT,
                   assert_same, assert_serves, close_payload, deflate, frame, parse_pmd_response,
                   payload_of, text_of)


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
