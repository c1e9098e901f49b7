#!/usr/bin/env python3
"""redis_relay.py: a TCP relay between the soak's gateway and its
redis-server, for the stale-subscriber fault (soak.py, fault_stale).

    redis_relay.py LISTEN_PORT TARGET_PORT

Forwards every connection made to 127.0.0.1:LISTEN_PORT to
127.0.0.1:TARGET_PORT, two threads per connection (a process of its own, so
the soak driver's event loop does not pay for the forwarding).  A
connection whose client sent SUBSCRIBE is a subscriber.  Commands, one per
line on stdin, each answered with one line on stdout:

    subs                 "subs PORT ..." : the client ports of the live subscriber connections
    freeze PORT SECONDS  "ok" or "none"  : stop forwarding that connection in both
                                           directions for SECONDS, both sockets left open
                                           (nothing is read: what either side sends waits
                                           in the kernel, as on a half-open path); then
                                           forwarding resumes (by then the gateway has
                                           usually closed its side: the relay closes too)
    count                "count N"       : connections accepted so far

End of stdin ends the relay.
"""
import select
import socket
import sys
import threading
import time

now = time.monotonic


class Conn:
    def __init__(self, down, up, port):
        self.down, self.up, self.port = down, up, port
        self.frozen_until = 0.0
        self.seen = b""
        self.sub = False
        self.closed = False

    def close(self):
        self.closed = True
        for s in (self.down, self.up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


CONNS = {}
LOCK = threading.Lock()
ACCEPTED = [0]


def pump(c, src, dst, upward):
    while not c.closed:
        if now() < c.frozen_until:
            time.sleep(0.02)
            continue
        try:
            r, _, _ = select.select([src], [], [], 0.05)
        except (OSError, ValueError):
            break
        if not r or now() < c.frozen_until:
            continue
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            break
        if upward and not c.sub:
            c.seen = (c.seen + data)[-8192:]
            c.sub = b"SUBSCRIBE" in c.seen.upper()
        try:
            dst.sendall(data)
        except OSError:
            break
    c.close()
    with LOCK:
        CONNS.pop(c.port, None)


def acceptor(lsock, target):
    while True:
        try:
            down, addr = lsock.accept()
        except OSError:
            return
        ACCEPTED[0] += 1
        try:
            up = socket.create_connection(target, timeout=1.0)
            up.settimeout(None)
        except OSError:
            down.close()            # Redis away: the gateway sees the connection closed
            continue
        c = Conn(down, up, addr[1])
        with LOCK:
            CONNS[c.port] = c
        threading.Thread(target=pump, args=(c, down, up, True), daemon=True).start()
        threading.Thread(target=pump, args=(c, up, down, False), daemon=True).start()


def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen))
    lsock.listen(64)
    threading.Thread(target=acceptor, args=(lsock, ("127.0.0.1", target)), daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "subs":
            with LOCK:
                ports = [str(p) for p, c in CONNS.items() if c.sub and not c.closed]
            print("subs " + " ".join(ports), flush=True)
        elif words[0] == "freeze" and len(words) == 3:
            with LOCK:
                c = CONNS.get(int(words[1]))
            if c:
                c.frozen_until = now() + float(words[2])
            print("ok" if c else "none", flush=True)
        elif words[0] == "count":
            print("count %d" % ACCEPTED[0], flush=True)
        else:
            print("error unknown command", flush=True)


if __name__ == "__main__":
    main()
