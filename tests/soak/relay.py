#!/usr/bin/env python3
"""relay.py: a TCP relay that can delay traffic (issue 12, "Faults"; there is
no netem qdisc on these machines).

    relay.py LISTEN_HOST LISTEN_PORT UP_HOST UP_PORT [CTL_FILE]

Forwards every connection to UP_HOST:UP_PORT and prints "ready" once it
listens.  SIGUSR1 turns the delay on: from then on each chunk read, in each
direction, is held a random 150-250 ms, never released before the chunk
ahead of it (order kept).  With CTL_FILE, SIGUSR1 reads it first: a list of
client (peer) ports, and only the connections from those ports are delayed
(empty: all).  SIGUSR2 turns the delay off (held chunks still go out in
order).  A connection whose upstream refuses is closed at once.  Used by
tests/integration/test_partition.py and tests/soak/soak.py."""
import asyncio
import random
import signal
import sys

DELAY = {"on": False, "ports": None}     # ports: None = every connection


def delayed(port):
    return DELAY["on"] and (DELAY["ports"] is None or port in DELAY["ports"])


async def pipe(reader, writer, port):
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
            data = await reader.read(65536)
            if not data:
                break
            t = loop.time()
            last = max(t + random.uniform(0.150, 0.250) if delayed(port) else t, last)
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
    try:
        ur, uw = await asyncio.open_connection(up_host, up_port)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw, port), pipe(ur, cw, port), return_exceptions=True)


def on(ctl):
    if ctl:
        try:
            ports = {int(x) for x in open(ctl).read().split()}
        except (OSError, ValueError):
            ports = set()
        DELAY["ports"] = ports or None
    DELAY["on"] = True


async def main(listen_host, listen_port, up_host, up_port, ctl=None):
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, on, ctl)
    loop.add_signal_handler(signal.SIGUSR2, DELAY.__setitem__, "on", False)
    srv = await asyncio.start_server(lambda r, w: handle(r, w, up_host, int(up_port)), listen_host, int(listen_port))
    print("ready", flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
