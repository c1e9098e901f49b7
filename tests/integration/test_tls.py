"""wss:// and https:// through OpenSSL: a self-signed certificate made with
the openssl command, real TLS clients (Python's ssl + websockets), large
messages that force partial TLS writes, and refusals."""
import asyncio
import json
import socket
import ssl
import subprocess

import pytest
import websockets

from conftest import free_port, recv_json, run, track


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return str(crt), str(key)


def client_ctx(crt):
    ctx = ssl.create_default_context(cafile=crt)
    return ctx


def tls_gateway(gateway_factory, cert, *extra):
    crt, key = cert
    port = free_port()
    gw = gateway_factory("--tls-listen", "127.0.0.1:%d" % port, "--tls-cert", crt, "--tls-key", key, *extra)
    gw.tls_port = port
    gw.wss = "wss://127.0.0.1:%d/ws" % port
    return gw


def test_wss_chat_and_large_messages(gateway_factory, cert):
    gw = tls_gateway(gateway_factory, cert, "--max-message-size", "1MiB", "--max-queued-bytes", "4MiB")
    async def main():
        ctx = client_ctx(cert[0])
        a = track(await websockets.connect(gw.wss, ssl=ctx, max_size=2 ** 21, close_timeout=2))
        b = track(await websockets.connect(gw.wss, ssl=ctx, max_size=2 ** 21, close_timeout=2))
        wa, wb = await recv_json(a), await recv_json(b)
        assert wa["op"] == "welcome" and wb["op"] == "welcome"
        await a.send(json.dumps({"op": "emit", "event": "chat", "to": "broadcast", "data": "over tls", "id": 1}))
        assert await recv_json(a) == {"op": "ack", "id": 1}
        assert (await recv_json(b))["data"] == "over tls"
        # 700 KB of data: many TLS records, partial writes, WANT_WRITE retries.
        big = "z" * 700_000
        for i in range(5):
            await a.send(json.dumps({"op": "emit", "event": "big", "to": "broadcast", "data": big + str(i)}))
        for i in range(5):
            msg = await recv_json(b, timeout=10)
            assert msg["data"] == big + str(i)
        # Cleartext listener still works beside the TLS one.
        c = track(await websockets.connect(gw.url, close_timeout=2))
        assert (await recv_json(c))["op"] == "welcome"
    run(main(), timeout=60)


def test_https_healthz(gateway_factory, cert):
    gw = tls_gateway(gateway_factory, cert)
    ctx = client_ctx(cert[0])
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and b'"status":"ok"' in data


def test_tls_refusals_counted(gateway_factory, cert):
    gw = tls_gateway(gateway_factory, cert, "--tls-min-version", "1.3")
    # Plain HTTP bytes on the TLS port: the TLS handshake fails, the server closes.
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while True:
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        # Nothing but (at most) a TLS alert record comes back, then the close.
        assert got == b"" or got[0] == 0x15, got[:20]
    # A client that only speaks TLS 1.2 is refused when 1.3 is the minimum.
    ctx = client_ctx(cert[0])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    assert gw.metrics()['wsgw_handshake_failures_total{reason="tls"}'] >= 2


def test_bad_certificate_stops_startup(tmp_path):
    from conftest import BIN
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    r = subprocess.run([BIN, "--tls-listen", "127.0.0.1:%d" % free_port(), "--tls-cert", str(bogus),
                        "--tls-key", str(bogus)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "tls_cert" in r.stderr


def s_client(port, *args):
    """One TLS 1.2 handshake with `openssl s_client`; returns (ok, output)."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    out = r.stdout + r.stderr
    # "New, SSLv3, Cipher is AES128-SHA": OpenSSL names the version that
    # defined the cipher there, not the one negotiated.
    ok = r.returncode == 0 and "Cipher is (NONE)" not in out and ", Cipher is " in out
    return ok, out


def test_tls12_offers_ecdhe_aead_only(gateway_factory, cert):
    """TLS 1.2 by default: ECDHE key exchange and AEAD ciphers only, no
    static RSA (no forward secrecy) and no CBC (padding-oracle history)."""
    gw = tls_gateway(gateway_factory, cert)
    for weak in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384"):
        ok, out = s_client(gw.tls_port, "-cipher", weak)
        assert not ok, weak + ":\n" + out
    for strong in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"):
        ok, out = s_client(gw.tls_port, "-cipher", strong)
        assert ok and "Cipher is " + strong in out, strong + ":\n" + out


def test_tls_ciphers_overrides_and_is_checked(gateway_factory, cert, tmp_path):
    gw = tls_gateway(gateway_factory, cert, "--tls-ciphers", "ECDHE-RSA-AES256-GCM-SHA384")
    ok, out = s_client(gw.tls_port, "-cipher", "ECDHE-RSA-AES256-GCM-SHA384")
    assert ok, out
    ok, out = s_client(gw.tls_port, "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert not ok, out
    from conftest import BIN
    r = subprocess.run([BIN, "--tls-listen", "127.0.0.1:%d" % free_port(), "--tls-cert", cert[0],
                        "--tls-key", cert[1], "--tls-ciphers", "NO-SUCH-CIPHER"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "tls_ciphers" in r.stderr, r.stderr
