"""The PROXY protocol from trusted balancers (proxy_protocol): raw sockets
from 127.0.0.2 play the balancer (the gateway trusts 127.0.0.2/32), sockets
from 127.0.0.1 (the fixtures' own address) are untrusted clients.  The
client address the gateway uses is read from its debug log (conn_open and
handshake_refused name `remote=`), which prints the same conn_peer() that
remote_addr and the lifecycle events use."""
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import BIN, free_port
from test_gateway import upgrade_request
from test_tls import cert  # noqa: F401  (fixture)

BALANCER = "127.0.0.2"
TRUST = ("--proxy-protocol", BALANCER + "/32")
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, sport, dst=None, dport=8080, local=False):
    if local:
        return SIG + b"\x20\x00\x00\x00"
    if ":" in src:
        body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst or "2001:db8::1")
                + struct.pack(">HH", sport, dport))
        return SIG + b"\x21\x21" + struct.pack(">H", len(body)) + body
    body = (socket.inet_aton(src) + socket.inet_aton(dst or "10.0.0.1") + struct.pack(">HH", sport, dport))
    return SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body


def v1(src, sport, dst=None, dport=8080):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst or ("::1" if ":" in src else "10.0.0.1"), sport, dport)).encode()


def connect(port, source=BALANCER):
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_head(s):
    """The response head (through the blank line), or what came before EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def dropped(s):
    """The gateway closed without a byte of answer (a close with our
    request unread is a reset)."""
    try:
        return s.recv(65536) == b""
    except ConnectionResetError:
        return True


def through_balancer(gw, header, request=None, source=BALANCER):
    """Sends header + request from `source`; returns (socket, response head)."""
    s = connect(gw.port, source)
    s.sendall(header + (request if request is not None else upgrade_request()))
    return s, read_head(s)


def logged_remote(gw, event, remote, timeout=3.0):
    pattern = re.compile(r"event=%s .*remote=%s( |$)" % (event, re.escape(remote)), re.M)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pattern.search(gw.output()):
            return True
        time.sleep(0.05)
    return False


def failures(gw, reason):
    return gw.metrics()['wsgw_handshake_failures_total{reason="%s"}' % reason]


def test_v2_header_is_the_client_address(gateway_factory):
    gw = gateway_factory(*TRUST)
    s = connect(gw.port)
    header = v2("203.0.113.7", 4242)
    # In pieces, with pauses: the header is read as it trickles in.
    for piece in (header[:1], header[1:13], header[13:17], header[17:]):
        s.sendall(piece)
        time.sleep(0.05)
    s.sendall(upgrade_request())
    assert read_head(s).startswith(b"HTTP/1.1 101 ")
    assert logged_remote(gw, "conn_open", "203.0.113.7:4242"), gw.output()[-3000:]
    assert logged_remote(gw, "proxy_header", "203.0.113.7:4242")
    s.close()


def test_v1_header_ipv6_client(gateway_factory):
    gw = gateway_factory(*TRUST)
    s, head = through_balancer(gw, v1("2001:db8:5::7", 5555))
    assert head.startswith(b"HTTP/1.1 101 ")
    assert logged_remote(gw, "conn_open", r"[2001:db8:5::7]:5555"), gw.output()[-3000:]
    s.close()


def test_header_and_request_in_one_segment(gateway_factory):
    """The gateway takes the header's bytes only: the request after it in
    the same segment is parsed as usual."""
    gw = gateway_factory(*TRUST)
    s, head = through_balancer(gw, v2("198.51.100.9", 1), upgrade_request())
    assert head.startswith(b"HTTP/1.1 101 ")
    s.close()
    assert logged_remote(gw, "conn_open", "198.51.100.9:1")


def test_max_conns_per_ip_applies_to_the_header_address(gateway_factory):
    gw = gateway_factory(*TRUST, "--max-conns-per-ip", "1")
    a, ha = through_balancer(gw, v2("198.51.100.1", 1000))
    b, hb = through_balancer(gw, v1("198.51.100.2", 1001))     # same balancer, other client
    assert ha.startswith(b"HTTP/1.1 101 ") and hb.startswith(b"HTTP/1.1 101 ")
    c, hc = through_balancer(gw, v2("198.51.100.1", 1002))     # the first client again
    assert hc.startswith(b"HTTP/1.1 429 "), hc
    assert logged_remote(gw, "handshake_refused", "198.51.100.1:1002")
    assert failures(gw, "ip_conns") == 1
    for s in (a, b, c):
        s.close()
    time.sleep(0.2)
    d, hd = through_balancer(gw, v2("198.51.100.1", 1003))     # its slot is free again
    assert hd.startswith(b"HTTP/1.1 101 ")
    d.close()


def test_conn_rate_per_ip_applies_to_the_header_address(gateway_factory):
    gw = gateway_factory(*TRUST, "--conn-rate-per-ip", "1", "--conn-rate-per-ip-burst", "1")
    a, ha = through_balancer(gw, v2("192.0.2.10", 1))
    b, hb = through_balancer(gw, v2("192.0.2.10", 2))
    c, hc = through_balancer(gw, v2("192.0.2.11", 3))
    assert ha.startswith(b"HTTP/1.1 101 ") and hc.startswith(b"HTTP/1.1 101 ")
    assert hb.startswith(b"HTTP/1.1 429 ") and b"too fast" in hb
    for s in (a, b, c):
        s.close()
    time.sleep(1.1)                  # /metrics from 127.0.0.1 has its own bucket anyway
    assert failures(gw, "ip_rate") == 1


def test_ipv6_clients_are_limited_per_64(gateway_factory):
    gw = gateway_factory(*TRUST, "--max-conns-per-ip", "1")
    a, ha = through_balancer(gw, v2("2001:db8:1:2::1", 1))
    b, hb = through_balancer(gw, v2("2001:db8:1:2:ffff:ffff:ffff:ffff", 2))   # same /64
    c, hc = through_balancer(gw, v2("2001:db8:1:3::1", 3))                     # next /64
    assert ha.startswith(b"HTTP/1.1 101 ")
    assert hb.startswith(b"HTTP/1.1 429 "), hb
    assert hc.startswith(b"HTTP/1.1 101 ")
    assert failures(gw, "ip_conns") == 1
    for s in (a, b, c):
        s.close()


def test_trusted_source_without_a_header_is_refused(gateway_factory):
    gw = gateway_factory(*TRUST)
    s = connect(gw.port)
    s.sendall(upgrade_request())                        # a plain upgrade: no header
    assert dropped(s)                                   # no HTTP answer at all
    s.close()
    s = connect(gw.port)
    s.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n")    # malformed
    assert dropped(s)
    s.close()
    s = connect(gw.port)
    s.sendall(v2("2001:db8::1", 1)[:20])
    s.shutdown(socket.SHUT_WR)                          # EOF inside the header
    assert dropped(s)
    s.close()
    probe = connect(gw.port)                            # connect and close: a TCP probe,
    probe.close()                                       # not a refused header
    time.sleep(0.2)
    assert failures(gw, "proxy") == 3
    out = gw.output()
    assert 'event=proxy_refused remote=127.0.0.2:' in out
    assert 'reason="not a PROXY protocol header"' in out
    assert 'reason="PROXY protocol v1: malformed line"' in out
    assert 'reason="connection closed inside the PROXY header"' in out


def test_untrusted_source_with_a_header_is_a_bad_request(gateway_factory):
    gw = gateway_factory(*TRUST)
    s, head = through_balancer(gw, v2("203.0.113.7", 4242), source="127.0.0.1")
    assert head.startswith(b"HTTP/1.1 400 "), head
    s.close()
    # ... and a plain client from there is served as usual.
    s, head = through_balancer(gw, b"", source="127.0.0.1")
    assert head.startswith(b"HTTP/1.1 101 ")
    s.close()
    assert failures(gw, "proxy") == 0


def test_local_header_keeps_the_balancer_address(gateway_factory):
    """HAProxy's health checks with send-proxy-v2: a LOCAL header, then GET."""
    gw = gateway_factory(*TRUST)
    s, head = through_balancer(gw, v2("", 0, local=True), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    s.close()
    s, head = through_balancer(gw, b"PROXY UNKNOWN\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert logged_remote(gw, "conn_open", "%s:%d" % (BALANCER, s.getsockname()[1]))
    s.close()


def test_header_within_the_handshake_timeout(gateway_factory):
    gw = gateway_factory(*TRUST, "--handshake-timeout", "500ms")
    s = connect(gw.port)
    s.sendall(v2("203.0.113.7", 1)[:10])               # and nothing more
    t0 = time.time()
    assert s.recv(100) == b""
    assert time.time() - t0 < 3
    s.close()
    assert failures(gw, "timeout") == 1


def test_header_before_the_tls_client_hello(gateway_factory, cert):  # noqa: F811
    crt, key = cert
    port = free_port()
    gw = gateway_factory(*TRUST, "--tls-listen", "127.0.0.1:%d" % port, "--tls-cert", crt, "--tls-key", key)
    raw = socket.socket()
    raw.settimeout(5)
    raw.bind((BALANCER, 0))
    raw.connect(("127.0.0.1", port))
    raw.sendall(v2("203.0.113.99", 443))
    ctx = ssl.create_default_context(cafile=crt)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(upgrade_request())
    assert read_head(s).startswith(b"HTTP/1.1 101 ")
    assert logged_remote(gw, "conn_open", "203.0.113.99:443"), gw.output()[-3000:]
    s.close()
    # Without the header the ClientHello is refused as one, not as TLS.
    raw = connect(port)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        ctx.wrap_socket(raw, server_hostname="localhost")
    raw.close()
    time.sleep(0.2)
    assert failures(gw, "proxy") == 1


@pytest.mark.parametrize("value,why", [
    ("10.0.0.1/8", "host bits set"),
    ("10.0.0.0/33", "IPv4 prefix length over 32"),
    ("fd00::/129", "IPv6 prefix length over 128"),
    ("balancer.local", "not an IP address or CIDR"),
    ("10.0.0.0/", "prefix length must be a number"),
])
def test_bad_trusted_ranges_stop_the_start(value, why):
    r = subprocess.run([BIN, "--listen", "127.0.0.1:%d" % free_port(), "--proxy-protocol", "127.0.0.2," + value],
                       capture_output=True, text=True, timeout=20,
                       env={"ASAN_OPTIONS": "detect_leaks=1"})
    assert r.returncode != 0
    assert "proxy_protocol: --proxy-protocol=" in r.stderr and why in r.stderr, r.stderr
