#!/usr/bin/env python3
"""relay.py: a TCP relay that can delay or freeze traffic (issue 12,
"Faults": there is no netem qdisc on these machines).

    relay.py LISTEN_HOST LISTEN_PORT UP_HOST UP_PORT [CTL_FILE]

Forwards every connection to UP_HOST:UP_PORT and prints "ready" once it
listens.  A process of its own, so the soak driver's event loop does not pay
for the forwarding.  Used by tests/integration/test_partition.py and
tests/soak/soak.py.

Delay.  SIGUSR1 turns the delay on: from then on each chunk read, in each
direction, is held a random 150-250 ms, never released before the chunk
ahead of it (order kept).  With CTL_FILE, SIGUSR1 reads it first: a list of
client (peer) ports, and only the connections from those ports are delayed
(empty: all).  SIGUSR2 turns the delay off (held chunks still go out in
order).  A connection whose upstream refuses is closed at once.

Freeze (a stale connection: open, carrying nothing).  A connection whose
client sent SUBSCRIBE is a subscriber.  Commands, one per line on stdin,
each answered with one line on stdout:

    subs                 "subs PORT ..." : client ports of the live subscriber connections
    freeze PORT SECONDS  "ok" or "none"  : stop forwarding that connection in both
                                           directions for SECONDS, both sockets left
                                           open and not read (what either side sends
                                           waits in the kernel, as on a half-open
                                           path); then forwarding resumes
    count                "count N"       : connections accepted so far

End of stdin does not end the relay (a test may give it none); SIGTERM does.
"""
import asyncio
import random
import signal
import sys

DELAY = {"on": False, "ports": None}     # ports: None = every connection
CONNS = {}                               # client port -> Conn
ACCEPTED = [0]


class Conn:
    def __init__(self, port):
        self.port = port
        self.sub = False
        self.seen = b""
        self.frozen_until = 0.0
        self.transports = []


def delayed(port):
    return DELAY["on"] and (DELAY["ports"] is None or port in DELAY["ports"])


async def wait_thawed(c, loop):
    """While c is frozen: reading paused on both sockets, nothing sent."""
    if loop.time() >= c.frozen_until:
        return
    for t in c.transports:
        t.pause_reading()
    while loop.time() < c.frozen_until:
        await asyncio.sleep(min(0.05, c.frozen_until - loop.time()))
    for t in c.transports:
        if not t.is_closing():
            t.resume_reading()


async def pipe(reader, writer, c, upward):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def sender():
        while True:
            item = await q.get()
            if item is None:
                break
            release, data = item
            d = release - loop.time()
            if d > 0:
                await asyncio.sleep(d)
            await wait_thawed(c, loop)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass
    task = asyncio.ensure_future(sender())
    last = 0.0
    try:
        while True:
            await wait_thawed(c, loop)
            data = await reader.read(65536)
            if not data:
                break
            if upward and not c.sub:
                c.seen = (c.seen + data)[-8192:]
                c.sub = b"SUBSCRIBE" in c.seen.upper()
            t = loop.time()
            last = max(t + random.uniform(0.150, 0.250) if delayed(c.port) else t, last)
            q.put_nowait((last, data))
    except OSError:
        pass
    q.put_nowait(None)
    try:
        await task
    except OSError:
        pass
    writer.close()


async def handle(cr, cw, up_host, up_port):
    port = cw.get_extra_info("peername")[1]
    ACCEPTED[0] += 1
    try:
        ur, uw = await asyncio.open_connection(up_host, up_port)
    except OSError:
        cw.close()
        return
    c = Conn(port)
    c.transports = [cw.transport, uw.transport]
    CONNS[port] = c
    try:
        await asyncio.gather(pipe(cr, uw, c, True), pipe(ur, cw, c, False), return_exceptions=True)
    finally:
        CONNS.pop(port, None)


def on(ctl):
    if ctl:
        try:
            ports = {int(x) for x in open(ctl).read().split()}
        except (OSError, ValueError):
            ports = set()
        DELAY["ports"] = ports or None
    DELAY["on"] = True


def command(line, loop):
    words = line.split()
    if not words:
        return None
    if words[0] == "subs":
        return "subs " + " ".join(str(p) for p, c in CONNS.items() if c.sub)
    if words[0] == "freeze" and len(words) == 3:
        c = CONNS.get(int(words[1]))
        if c:
            c.frozen_until = loop.time() + float(words[2])
        return "ok" if c else "none"
    if words[0] == "count":
        return "count %d" % ACCEPTED[0]
    return "error unknown command"


async def commands(loop):
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (OSError, ValueError):
        return                      # no usable stdin: signals only
    while True:
        line = await reader.readline()
        if not line:
            return
        answer = command(line.decode(errors="replace"), loop)
        if answer is not None:
            print(answer, flush=True)


async def main(listen_host, listen_port, up_host, up_port, ctl=None):
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, on, ctl)
    loop.add_signal_handler(signal.SIGUSR2, DELAY.__setitem__, "on", False)
    srv = await asyncio.start_server(lambda r, w: handle(r, w, up_host, int(up_port)), listen_host, int(listen_port))
    print("ready", flush=True)
    reader_task = asyncio.ensure_future(commands(loop))   # held: the loop keeps only a weak reference
    async with srv:
        await srv.serve_forever()
    reader_task.cancel()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
