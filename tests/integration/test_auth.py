"""JWT authentication at the handshake: every refusal is a 401 that says why
(and never logs the token), the three token sources, HS256/RS256/ES256, the
rooms/emit claims, the user id reaching a backend, expiry (4001) and
refresh."""
import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import time

import pytest
import websockets

from conftest import recv_json, run, track
from test_gateway import raw_request, upgrade_request

SECRET = "a-shared-secret-of-at-least-32-bytes!!"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(claims, secret=SECRET, alg="HS256"):
    head = b64u(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64u(sig))


def der_to_raw(der):
    """ECDSA DER (SEQUENCE of two INTEGERs) to the 64-byte R||S of JWS."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(32, b"\0")
        i += 2 + n
    return out


def signed(claims, key_path, alg):
    head = b64u(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path],
                         input=("%s.%s" % (head, body)).encode(), capture_output=True, check=True).stdout
    if alg == "ES256":
        sig = der_to_raw(sig)
    return "%s.%s.%s" % (head, body, b64u(sig))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name, gen in (("rsa", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                      ("rsa2", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                      ("ec", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        priv, pub = d / (name + ".key"), d / (name + ".pub")
        subprocess.run(["openssl"] + gen + ["-out", str(priv)], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True,
                       capture_output=True)
        out[name] = (str(priv), str(pub))
    return out


def now():
    return int(time.time())


def upgrade_with(gw, headers="", path="/ws"):
    return raw_request(gw.port, upgrade_request(path=path, extra=headers), read_until_close=False)


def test_hs256_sources_and_refusals(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET)
    good = hs256({"sub": "alice", "exp": now() + 600})
    # Each source admits.
    assert upgrade_with(gw, "Authorization: Bearer %s\r\n" % good).startswith(b"HTTP/1.1 101")
    assert upgrade_with(gw, path="/ws?x=1&token=" + good).startswith(b"HTTP/1.1 101")
    resp = upgrade_with(gw, "Sec-WebSocket-Protocol: wsgw, bearer.%s\r\n" % good)
    assert resp.startswith(b"HTTP/1.1 101") and b"Sec-WebSocket-Protocol: wsgw\r\n" in resp
    assert good.encode() not in resp
    # Each refusal: 401 with the reason, WWW-Authenticate, counted.
    cases = [
        ("", "missing token"),
        ("Authorization: Bearer not.a.token\r\n", "invalid token"),
        ("Authorization: Bearer %s\r\n" % hs256({"sub": "a", "exp": now() - 3600}), "expired"),
        ("Authorization: Bearer %s\r\n" % hs256({"sub": "a", "nbf": now() + 3600}), "not yet valid"),
        ("Authorization: Bearer %s\r\n" % hs256({"sub": "a"}, secret="another-secret-of-at-least-32-bytes!!"),
         "signature"),
        ("Authorization: Bearer %s\r\n" % hs256({"sub": "a"}, alg="none"), "none"),
    ]
    for headers, why in cases:
        resp = upgrade_with(gw, headers)
        assert resp.startswith(b"HTTP/1.1 401 "), (why, resp[:80])
        assert b"WWW-Authenticate: Bearer" in resp
        assert why.encode() in resp.lower() or why.encode() in resp, (why, resp)
    assert gw.metrics()['wsgw_handshake_failures_total{reason="auth"}'] == len(cases)
    out = gw.output()
    assert "handshake_refused" in out and good.split(".")[2] not in out    # never the token


def test_rs256_es256_and_another_key(gateway_factory, keys):
    for name, alg in (("rsa", "RS256"), ("ec", "ES256")):
        gw = gateway_factory("--auth-public-key", keys[name][1])
        ok = signed({"sub": "bob", "exp": now() + 600}, keys[name][0], alg)
        assert upgrade_with(gw, "Authorization: Bearer %s\r\n" % ok).startswith(b"HTTP/1.1 101")
        # HS256 with the public key as the secret: the classic confusion.
        pem = open(keys[name][1]).read()
        forged = hs256({"sub": "bob"}, secret=pem)
        assert upgrade_with(gw, "Authorization: Bearer %s\r\n" % forged).startswith(b"HTTP/1.1 401")
    gw = gateway_factory("--auth-public-key", keys["rsa"][1])
    other = signed({"sub": "mallory", "exp": now() + 600}, keys["rsa2"][0], "RS256")
    resp = upgrade_with(gw, "Authorization: Bearer %s\r\n" % other)
    assert resp.startswith(b"HTTP/1.1 401") and b"signature" in resp


def test_claims_narrow_permissions(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET)
    tok = hs256({"sub": "carol", "exp": now() + 600, "rooms": ["public.*"], "emit": ["room"]})
    async def main():
        ws = track(await websockets.connect(gw.url, extra_headers={"Authorization": "Bearer " + tok},
                                            close_timeout=2))
        await recv_json(ws)
        await ws.send(json.dumps({"op": "join", "room": "public.news", "id": 1}))
        assert await recv_json(ws) == {"op": "ack", "id": 1}
        await ws.send(json.dumps({"op": "join", "room": "secret", "id": 2}))
        assert (await recv_json(ws))["code"] == "forbidden"
        await ws.send(json.dumps({"op": "emit", "event": "e", "to": "broadcast", "data": 1, "id": 3}))
        assert (await recv_json(ws))["code"] == "forbidden"
        await ws.send(json.dumps({"op": "emit", "event": "e", "to": "room:public.news", "data": 1, "id": 4}))
        got = [await recv_json(ws), await recv_json(ws)]
        assert {"op": "ack", "id": 4} in got
    run(main())
    # Each refusal is counted under its code.
    assert gw.metrics()['wsgw_envelope_errors_total{code="forbidden"}'] == 2


def test_anonymous_is_a_choice(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--auth-anonymous", "true")
    assert upgrade_with(gw).startswith(b"HTTP/1.1 101")
    bad = hs256({"sub": "x"}, secret="another-secret-of-at-least-32-bytes!!")
    assert upgrade_with(gw, "Authorization: Bearer %s\r\n" % bad).startswith(b"HTTP/1.1 401")


def test_expiry_closes_4001_unless_refreshed(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--auth-leeway", "0")
    async def main():
        short = hs256({"sub": "dave", "exp": now() + 2})
        a = track(await websockets.connect(gw.url, extra_headers={"Authorization": "Bearer " + short},
                                           close_timeout=2))
        b = track(await websockets.connect(gw.url, extra_headers={"Authorization": "Bearer " + short},
                                           close_timeout=2))
        await recv_json(a)
        await recv_json(b)
        # b refreshes: another user's token is refused, its own is taken.
        await b.send(json.dumps({"op": "auth", "token": hs256({"sub": "eve", "exp": now() + 600}), "id": 1}))
        err = await recv_json(b)
        assert err["code"] == "unauthorized" and "another user" in err["message"]
        await b.send(json.dumps({"op": "auth", "token": hs256({"sub": "dave", "exp": now() + 600}), "id": 2}))
        assert await recv_json(b) == {"op": "ack", "id": 2}
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(a.recv(), 6)
        assert a.close_code == 4001 and a.close_reason == "token expired"
        await b.send(json.dumps({"op": "emit", "event": "e", "to": "all", "data": "still here"}))
        assert (await recv_json(b))["data"] == "still here"
    run(main(), timeout=30)
    assert gw.metrics()['wsgw_disconnects_total{reason="token_expired"}'] == 1


def test_refresh_with_narrower_rooms_leaves_the_rooms_it_no_longer_allows(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET)
    async def main():
        wide = hs256({"sub": "gina", "exp": now() + 600, "rooms": ["*"]})
        a = track(await websockets.connect(gw.url, extra_headers={"Authorization": "Bearer " + wide},
                                           close_timeout=2))
        other = track(await websockets.connect(gw.url, extra_headers={"Authorization": "Bearer " + hs256(
            {"sub": "hal", "exp": now() + 600})}, close_timeout=2))
        await recv_json(a)
        await recv_json(other)
        for i, room in enumerate(["public.a", "secret.b", "secret.c"]):
            await a.send(json.dumps({"op": "join", "room": room, "id": i}))
            assert await recv_json(a) == {"op": "ack", "id": i}
        await other.send(json.dumps({"op": "join", "room": "secret.b", "id": 9}))
        assert await recv_json(other) == {"op": "ack", "id": 9}
        narrow = hs256({"sub": "gina", "exp": now() + 600, "rooms": ["public.*"]})
        await a.send(json.dumps({"op": "auth", "token": narrow, "id": 5}))
        got = [await recv_json(a) for _ in range(3)]
        assert got[-1] == {"op": "ack", "id": 5}
        left = sorted(m["message"] for m in got[:2])
        assert all(m["op"] == "error" and m["code"] == "forbidden" and "id" not in m for m in got[:2])
        assert "left room secret.b" in left[0] and "left room secret.c" in left[1], left
        # No longer a member: nothing from secret.b reaches it, and it may not rejoin.
        await other.send(json.dumps({"op": "emit", "event": "e", "to": "room:secret.b", "data": "psst"}))
        assert (await recv_json(other))["data"] == "psst"
        await a.send(json.dumps({"op": "join", "room": "secret.b", "id": 6}))
        assert (await recv_json(a))["code"] == "forbidden"
        await a.send(json.dumps({"op": "emit", "event": "e", "to": "room:public.a", "data": "still in", "id": 7}))
        got = [await recv_json(a), await recv_json(a)]
        assert {"op": "ack", "id": 7} in got and any(m.get("data") == "still in" for m in got)
    run(main())


def test_user_id_reaches_backend(gateway_factory, redis_server):
    from test_cluster import wait_backplane_up
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--redis-url", redis_server.url)
    wait_backplane_up(gw)
    sub = subprocess.Popen(["redis-cli"] + redis_server.cli_args() + ["SUBSCRIBE", "wsgw:events", "wsgw:lifecycle"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    try:
        async def main():
            tok = hs256({"sub": "frank@example.com", "exp": now() + 600})
            ws = track(await websockets.connect(gw.url, extra_headers={"Authorization": "Bearer " + tok},
                                                close_timeout=2))
            await recv_json(ws)
            await ws.send(json.dumps({"op": "emit", "event": "hello", "data": 1, "id": 1}))
            assert await recv_json(ws) == {"op": "ack", "id": 1}
        run(main())
        time.sleep(0.3)
    finally:
        sub.terminate()
    payloads = [json.loads(l) for l in sub.communicate(timeout=5)[0].splitlines() if l.startswith("{")]
    assert any(p.get("op") == "connect" and p.get("user") == "frank@example.com" for p in payloads), payloads
    assert any(p.get("event") == "hello" and p.get("user") == "frank@example.com" for p in payloads), payloads


def test_bad_key_file_stops_startup(tmp_path):
    from conftest import BIN
    f = tmp_path / "not-a-key.pem"
    f.write_text("nope")
    r = subprocess.run([BIN, "--auth-public-key", str(f)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and str(f) in r.stderr


def test_exp_near_2_64_does_not_expire(gateway_factory):
    # handshake_timeout 400ms makes the sweep run every 100 ms.
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--handshake-timeout", "400ms")
    async def main():
        socks = []
        for exp in (2 ** 64 - 1, 2 ** 64 - 10):
            ws = track(await websockets.connect(gw.url, extra_headers={
                "Authorization": "Bearer " + hs256({"sub": "ivy", "exp": exp})}, close_timeout=2))
            await recv_json(ws)
            socks.append(ws)
        await asyncio.sleep(2.5)
        for i, ws in enumerate(socks):          # both still open: each emits to all, both receive
            await ws.send(json.dumps({"op": "emit", "event": "e", "to": "all", "data": i, "id": 1}))
            got = [await recv_json(ws), await recv_json(ws)]
            assert {"op": "ack", "id": 1} in got and any(m.get("data") == i for m in got)
            assert (await recv_json(socks[1 - i]))["data"] == i
    run(main())
    assert gw.metrics()['wsgw_disconnects_total{reason="token_expired"}'] == 0


def test_auth_require_exp(gateway_factory):
    no_exp = hs256({"sub": "jo"})
    # Off by default: a token without exp is admitted.
    gw = gateway_factory("--auth-hs256-secret", SECRET)
    assert upgrade_with(gw, "Authorization: Bearer %s\r\n" % no_exp).startswith(b"HTTP/1.1 101")
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--auth-require-exp", "true")
    resp = upgrade_with(gw, "Authorization: Bearer %s\r\n" % no_exp)
    assert resp.startswith(b"HTTP/1.1 401") and b"exp claim missing" in resp, resp
    assert gw.metrics()['wsgw_handshake_failures_total{reason="auth"}'] == 1
    assert any("handshake_refused" in l and "exp claim missing" in l for l in gw.output().splitlines())
    async def main():
        ws = track(await websockets.connect(gw.url, extra_headers={
            "Authorization": "Bearer " + hs256({"sub": "jo", "exp": now() + 600})}, close_timeout=2))
        await recv_json(ws)
        await ws.send(json.dumps({"op": "auth", "token": no_exp, "id": 1}))
        err = await recv_json(ws)
        assert err["op"] == "error" and err["code"] == "unauthorized" and "exp claim missing" in err["message"]
    run(main())


def log_fields(line):
    """key=value fields of a text log line (after the timestamp); a quoted
    value runs to the closing quote, with \\" and \\\\ escaped."""
    fields, i, n = {}, line.index(" ") + 1, len(line)
    while i < n:
        eq = line.index("=", i)
        key = line[i:eq]
        assert key and " " not in key and '"' not in key, (key, line)
        i = eq + 1
        if i < n and line[i] == '"':
            j, val = i + 1, ""
            while line[j] != '"':
                if line[j] == "\\":
                    j += 1
                val += line[j]
                j += 1
            i = j + 1
        else:
            j = line.find(" ", i)
            j = n if j < 0 else j
            val, i = line[i:j], j
        assert key not in fields, (key, line)
        fields[key] = val
        while i < n and line[i] == " ":
            i += 1
    return fields


def test_user_in_log_lines_cannot_forge_fields(gateway_factory):
    gw = gateway_factory("--auth-hs256-secret", SECRET, "--auth-leeway", "0", "--handshake-timeout", "400ms")
    subs = ["x role=admin", 'x" role="admin', "x\\\" role=admin"]
    async def main():
        for sub in subs:
            ws = track(await websockets.connect(gw.url, extra_headers={
                "Authorization": "Bearer " + hs256({"sub": sub, "exp": now() + 1})}, close_timeout=2))
            await recv_json(ws)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 4001
    run(main())
    lines = [l for l in gw.output().splitlines() if "event=token_expired" in l]
    assert len(lines) == len(subs), lines
    for line, sub in zip(lines, subs):
        f = log_fields(line)
        assert "role" not in f and f["user"] == sub, (line, f)
        assert set(f) == {"level", "event", "id", "user"}, line
