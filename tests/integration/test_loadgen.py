"""The load generator (build/bench/loadgen) in its smoke sizes against the
ASan gateway: a correctness check of both sides, never a timing check.

Fan-out must deliver every message exactly once and in order to every
subscriber, echo must see each of its messages come back, and the
generator must fail loudly (non-zero status, one line saying why) on a
refused handshake, an error envelope and a server that never answers."""
import os
import re
import socket
import subprocess

from conftest import ROOT

LOADGEN = os.path.join(ROOT, "build", "bench", "loadgen")


def loadgen(url, *args, timeout=20):
    """Runs the generator; returns (status, stdout, stderr, RESULT dict)."""
    p = subprocess.run([LOADGEN, "--url", url, "--timeout", "15"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    result = {}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = dict(kv.split("=", 1) for kv in line.split()[1:])
    return p.returncode, p.stdout, p.stderr, result


def test_fanout_delivers_each_message_once_in_order(gateway):
    rc, out, err, r = loadgen(gateway.url, "fanout", "--subscribers", 50, "--messages", 200,
                              "--window", 16)
    assert rc == 0, out + err
    assert r["scenario"] == "fanout"
    assert int(r["deliveries"]) == 50 * 200
    assert (r["missing"], r["duplicate"], r["reordered"]) == ("0", "0", "0")


def test_fanout_paced_and_large_payloads(gateway):
    rc, out, err, r = loadgen(gateway.url, "fanout", "--subscribers", 20, "--messages", 30,
                              "--rate", 200, "--size", 20000)
    assert rc == 0, out + err
    assert int(r["deliveries"]) == 20 * 30
    assert (r["missing"], r["duplicate"], r["reordered"]) == ("0", "0", "0")


def test_echo_round_trips(gateway):
    rc, out, err, r = loadgen(gateway.url, "echo", "--conns", 10, "--messages", 100)
    assert rc == 0, out + err
    assert int(r["round_trips"]) == 10 * 100


def test_handshakes_and_idle(gateway):
    rc, out, err, r = loadgen(gateway.url, "handshakes", 200, "--concurrency", 20)
    assert rc == 0, out + err
    assert r["count"] == "200"
    rc, out, err, r = loadgen(gateway.url, "idle", 50, "--hold", 0)
    assert rc == 0, out + err
    assert "ALL_JOINED connections=50" in out
    # The gateway saw clean close handshakes for the 200 and counts them.
    m = gateway.metrics()
    assert sum(v for k, v in m.items() if k.startswith("wsgw_connections_total")) >= 250


def test_refused_handshake_fails_loudly(gateway):
    rc, out, err, _ = loadgen(gateway.url.replace("/ws", "/nope"), "echo", "--conns", 2,
                              "--messages", 1)
    assert rc == 1
    assert "handshake refused: HTTP/1.1 404" in err


def test_error_envelope_fails_loudly(gateway_factory):
    gw = gateway_factory("--join-rooms", "other-*")
    rc, out, err, _ = loadgen(gw.url, "fanout", "--subscribers", 3, "--messages", 1)
    assert rc == 1
    assert "error envelope" in err and "forbidden" in err


def test_timeout_exits_2():
    # A listener that never accepts: the handshake cannot complete.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        url = "ws://127.0.0.1:%d/ws" % s.getsockname()[1]
        p = subprocess.run([LOADGEN, "--url", url, "--timeout", "0.5", "echo", "--conns", "2"],
                           capture_output=True, text=True, timeout=20)
    assert p.returncode == 2
    assert re.search(r"timeout after [0-9.]+ s: connect phase, 0 of 2", p.stderr), p.stderr


# ---- the modes make bench-compare uses: wss://, permessage-deflate ------------

def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return crt, key


def test_wss_fanout_echo_and_handshakes(gateway_factory, tmp_path):
    """Over TLS a client's burst of emits arrives as many records; the gateway
    must hand every one out (records gathered per read) and lose nothing."""
    from conftest import free_port
    crt, key = make_cert(str(tmp_path))
    port = free_port()
    gateway_factory("--tls-listen", "127.0.0.1:%d" % port, "--tls-cert", crt, "--tls-key", key,
                    "--rate-messages", "0", "--rate-bytes", "0")
    url = "wss://127.0.0.1:%d/ws" % port
    rc, out, err, r = loadgen(url, "fanout", "--subscribers", 40, "--messages", 300, "--window", 64)
    assert rc == 0, out + err
    assert r["tls"] == "1" and int(r["deliveries"]) == 40 * 300
    assert (r["missing"], r["duplicate"], r["reordered"]) == ("0", "0", "0")
    rc, out, err, r = loadgen(url, "echo", "--conns", 5, "--messages", 100)
    assert rc == 0, out + err
    assert int(r["round_trips"]) == 5 * 100
    rc, out, err, r = loadgen(url, "handshakes", 40, "--concurrency", 8)
    assert rc == 0, out + err
    assert r["count"] == "40"


def test_deflate_fanout_compresses_each_message_once(gateway_factory):
    """permessage-deflate with no server context takeover: every subscriber
    gets the same compressed bytes for a message, so the generator, which
    caches by compressed input, inflates each message once."""
    gw = gateway_factory("--enable-compression", "true", "--rate-messages", "0", "--rate-bytes", "0")
    rc, out, err, r = loadgen(gw.url, "--deflate", "fanout", "--subscribers", 30, "--messages", 100,
                              "--window", 8, "--size", 300)
    assert rc == 0, out + err
    assert r["deflate"] == "1" and "server_no_context_takeover" in r["pmd"]
    assert int(r["deliveries"]) == 30 * 100
    assert (r["missing"], r["duplicate"], r["reordered"]) == ("0", "0", "0")
    assert int(r["compressed"]) >= 30 * 100, r
    assert int(r["inflate_misses"]) == 100, r
