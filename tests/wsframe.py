"""RFC 6455 frames as pure functions, the one frame helper of the tests:
opcodes, client frame builders (masked, or unmasked on purpose), the
handshake's accept value, and a header parser that works on whatever bytes
have arrived.  No sockets, no pytest, no event loop, so both the raw
integration client (tests/integration/wsraw.py, and through it
test_gateway.py and test_conformance_*.py) and the soak's asyncio client
(tests/soak/client.py) build and read frames here.
"""
import base64
import hashlib
import os
import struct

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 4, 2, 1   # as the 3-bit RSV field: RSV1 is the high bit
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TAIL = b"\x00\x00\xff\xff"   # RFC 7692 §7.2.1


def xor_mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(op, payload=b"", fin=True, rsv=0, length=None, key=None, mask=True):
    """One client frame, masked with `key` (default: 4 random bytes), or
    unmasked when mask=False (a protocol error from a client); `length`
    overrides the announced length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4) if key is None else key
    return hdr + key + xor_mask(payload, key)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def close_code(payload):
    """The code of a close frame's payload, 1005 when it has none."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (both bytes, base64)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def parse_header(data, pos=0):
    """The header of the frame at data[pos:]: (fin, rsv, op, masked, length,
    header_len), header_len counting the mask key of a masked frame; None
    while the header is not all there.  Lengths are not checked for being
    minimal: the caller decides what it tolerates."""
    have = len(data) - pos
    if have < 2:
        return None
    b0, b1 = data[pos], data[pos + 1]
    n, hl = b1 & 0x7F, 2
    if n == 126:
        if have < 4:
            return None
        n, hl = (data[pos + 2] << 8) | data[pos + 3], 4
    elif n == 127:
        if have < 10:
            return None
        n, hl = int.from_bytes(data[pos + 2:pos + 10], "big"), 10
    masked = bool(b1 & 0x80)
    if masked:
        hl += 4
        if have < hl:
            return None
    return b0 >> 7, (b0 >> 4) & 7, b0 & 0x0F, masked, n, hl
