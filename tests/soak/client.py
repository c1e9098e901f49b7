"""client.py: the soak's WebSocket clients: a minimal client on
asyncio.Protocol (frames from tests/wsframe.py) and the behaviours: Normal
(the receivers the accounting checks), NonReader, Vanisher, Garbage, and
slot(), which keeps one client of a kind running for the whole load.
"""
import asyncio
import atexit
import base64
import collections
import datetime
import gc
import hashlib
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

from settings import *  # noqa: F401,F403
from state import *  # noqa: F401,F403
import state as S
import wsframe
from judge import deliver

# ---- a minimal WebSocket client ------------------------------------------------------

def frame(op, payload, mask=True, fin=True):
    """wsframe.frame, masked with a key from the seeded `random` (SOAK_SEED)."""
    key = random.getrandbits(32).to_bytes(4, "big") if mask else None
    return wsframe.frame(op, payload, fin=fin, key=key, mask=mask)


class WSProto(asyncio.Protocol):
    def __init__(self, client):
        self.c = client
        client.proto = self
        self.t = None
        self.buf = b""
        self.upgraded = False
        self.frag = None
        self.frag_op = 0
        self.close_sent = False

    def connection_made(self, t):
        self.t = t
        self.key = base64.b64encode(os.urandom(16))
        t.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (S.GW.port, self.key))

    def send(self, op, payload, mask=True):
        if not self.t.is_closing():
            self.t.write(frame(op, payload, mask))

    def send_text(self, s):
        if not self.t.is_closing():
            self.t.write(frame(1, s))

    def close(self, code=1000):
        if not self.close_sent and not self.t.is_closing():
            self.close_sent = True
            self.t.write(frame(8, wsframe.close_payload(code)))

    def data_received(self, data):
        try:
            self._data_received(data)
        except Exception as e:       # a driver bug: counted, never silent
            ST.bad("driver_exception", "%s: %r" % (self.c.kind, e))
            self.t.abort()

    def _data_received(self, data):
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.upgraded:
            i = data.find(b"\r\n\r\n")
            if i < 0:
                self.buf = data
                return
            head, data = data[:i], data[i + 4:]
            accept = wsframe.accept_key(self.key)
            if not head.startswith(b"HTTP/1.1 101") or b"Sec-WebSocket-Accept: " + accept not in head:
                self.c.on_refused(head.split(b"\r\n", 1)[0].decode("latin-1"))
                self.t.abort()
                return
            self.upgraded = True
        n, pos = len(data), 0
        c = self.c
        while True:
            h = wsframe.parse_header(data, pos)
            if h is None:
                break
            fin, _, op, masked, ln, hl = h
            end = pos + hl + ln
            if end > n:
                break
            if masked:
                c.on_protocol_error("masked frame from the server")
            payload = data[pos + hl:end]
            pos = end
            if op == 1 or op == 2:
                if fin:
                    c.on_message(op, payload)
                else:
                    self.frag_op, self.frag = op, [payload]
            elif op == 0:
                if self.frag is None:
                    c.on_protocol_error("continuation without a start")
                    continue
                self.frag.append(payload)
                if fin:
                    p, self.frag = b"".join(self.frag), None
                    c.on_message(self.frag_op, p)
            elif op == 8:
                code = wsframe.close_code(payload)
                if not self.close_sent:
                    self.close_sent = True
                    self.t.write(frame(8, payload[:2]))
                c.on_close_frame(code)
                self.t.close()
                self.buf = b""
                return
            elif op == 9:
                self.send(10, payload)
            if self.t.is_closing():
                return
        self.buf = data[pos:] if pos < n else b""

    def connection_lost(self, exc):
        self.c.on_lost(exc)


class Client:
    kind = "client"

    def __init__(self):
        self.idx = len(CLIENTS)
        CLIENTS.append(self)
        self.proto = None
        self.conn_id = None
        self.pid = None
        self.lport = None
        self.t_welcome = None
        self.t_close = None
        self.close_code = None       # from the server's close frame
        self.closing = False         # we started the close
        self.lost = False
        self.welcome = S.LOOP.create_future()
        self.gone = S.LOOP.create_future()
        self.refused = None

    async def connect(self, rcvbuf=None):
        s = socket.socket()
        s.setblocking(False)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        t_start = now()
        try:
            await asyncio.wait_for(S.LOOP.sock_connect(s, ("127.0.0.1", S.GW.port)), 10)
            self.lport = s.getsockname()[1]
            await S.LOOP.create_connection(lambda: WSProto(self), sock=s)
        except (OSError, asyncio.TimeoutError) as e:
            s.close()
            note_connect_failure(self, t_start, "connect: %r" % e)
            return False
        try:
            await asyncio.wait_for(asyncio.shield(self.welcome), 10)
        except asyncio.TimeoutError:
            note_connect_failure(self, t_start, "no welcome in 10 s")
            self.abort()
            return False
        except ConnectionError as e:
            note_connect_failure(self, t_start, str(e))
            return False
        return True

    def abort(self):
        if self.proto is not None and self.proto.t is not None:
            self.proto.t.abort()

    # protocol callbacks
    def on_refused(self, status):
        self.refused = status

    def on_protocol_error(self, why):
        ST.bad("client_protocol", "%s: %s" % (self.kind, why))

    def on_message(self, op, payload):
        if op != 1:
            return
        if self.conn_id is None:
            msg = json.loads(payload)
            if msg.get("op") == "welcome":
                self.conn_id = msg["conn"]
                self.t_welcome = now()
                self.on_welcome()
                if not self.welcome.done():
                    self.welcome.set_result(True)
            return
        self.on_text(payload)

    def on_welcome(self):
        resolve_soon(self)

    def on_text(self, payload):
        pass

    def on_close_frame(self, code):
        self.close_code = code

    def on_lost(self, exc):
        t = now()
        self.lost = True
        if self.t_close is None:
            self.t_close = t
        if not self.welcome.done():
            self.welcome.set_exception(ConnectionError(
                "refused: %s" % self.refused if self.refused else "connection lost before the welcome"))
            self.welcome.exception()   # retrieved: no warning
        self.on_gone(t)
        if not self.gone.done():
            self.gone.set_result(t)
        S.LOOP.call_later(2.0, self.release)

    async def wait_gone(self, timeout):
        """True once the connection is gone, False after `timeout` seconds."""
        if self.lost:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self.gone), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def release(self):
        """Drops what the judging does not need (every client is kept to
        the end): the protocol (a reference cycle), buffers, futures."""
        if self.proto is not None:
            self.proto.c = None
            self.proto.t = None
        self.proto = None
        self.welcome = self.gone = None

    def on_gone(self, t):
        pass

    async def close(self, wait=5.0):
        self.closing = True
        if self.t_close is None:
            self.t_close = now()
        self.on_gone(self.t_close)
        self.proto.close(1000)
        if not await self.wait_gone(wait):
            ST.bad("close_timeout", "%s %s: no close from the server in %.0f s" % (self.kind, self.conn_id, wait))
            self.abort()


def note_connect_failure(c, t_start, why):
    # A connection being set up when its worker was killed fails: allowed
    # when a kill falls between the connect and the failure.
    t = now()
    if any(t_start - 0.5 <= tk <= t + 0.5 for tk in KILL_TIMES):
        ST.c["connect_failed_in_kill"] += 1
    else:
        ST.bad("connect_failed", "%s connecting at %.1fs, failed at %.1fs: %s" % (c.kind, rel(t_start), rel(t), why))


def next_mid():
    m = NEXT_MID[0]
    NEXT_MID[0] += 1
    return m


PAD = "x" * 2048


def pad():
    r = random.random()
    return PAD[:random.randrange(1500, 2048)] if r < 0.02 else PAD[:random.randrange(0, 120)]


async def pause(d):
    """Sleeps d seconds, or until the load stops."""
    try:
        await asyncio.wait_for(RUN["stop"].wait(), d)
    except asyncio.TimeoutError:
        pass


class Normal(Client):
    kind = "normal"

    def __init__(self):
        super().__init__()
        self.rooms = {}        # room -> "joining" | "joined" | "leaving"
        self.iv = {}           # room -> its open interval in ROOM_IV
        self.pending = {}      # id -> ("e", Msg) | ("j", room, fut) | ("l", room) | ("b", t)
        self.rid = 0
        self.last = {}         # (sender idx, to) -> last mid: order and duplicates
        self.lifetime = random.uniform(0.4, 1.6) * LIFETIME
        self.live_pos = None
        self.unexpected = None

    def next_id(self):
        self.rid += 1
        return self.rid

    def on_welcome(self):
        super().on_welcome()
        self.live_pos = len(LIVE)
        LIVE.append(self)

    def join(self, room):
        rid = self.next_id()
        fut = S.LOOP.create_future()
        self.rooms[room] = "joining"
        self.pending[rid] = ("j", room, fut)
        self.proto.send_text(b'{"op":"join","room":"%s","id":%d}' % (room.encode(), rid))
        return fut

    def leave(self, room):
        rid = self.next_id()
        self.rooms[room] = "leaving"
        iv = self.iv.pop(room, None)
        if iv:
            iv[2] = now()
        self.pending[rid] = ("l", room)
        self.proto.send_text(b'{"op":"leave","room":"%s","id":%d}' % (room.encode(), rid))

    def emit(self, to):
        rid = self.next_id()
        if to is None:
            self.pending[rid] = ("b", now())
            self.proto.send_text(b'{"op":"emit","event":"m","data":0,"id":%d}' % rid)
            ST.c["backend_emits"] += 1
            return
        mid = next_mid()
        m = Msg(mid, self.idx, to, now())
        MSGS[mid] = m
        self.pending[rid] = ("e", m)
        self.proto.send_text(('{"op":"emit","event":"m","to":"%s","data":[%d,%d,"%s"],"id":%d}'
                              % (to, mid, self.idx, pad(), rid)).encode())
        ST.c["emits"] += 1

    def on_text(self, payload):
        t = now()
        msg = json.loads(payload)
        op = msg.get("op")
        if op is None:
            deliver(self, msg, t)
            return
        rid = msg.get("id")
        entry = self.pending.pop(rid, None) if rid is not None else None
        if op == "ack":
            if entry is None:
                ST.bad("stray_ack", "%s: %s" % (self.conn_id, payload[:100]))
            elif entry[0] == "e":
                entry[1].t_ack = t
                entry[1].result = "ack"
                ST.c["acked"] += 1
            elif entry[0] == "j":
                room = entry[1]
                self.rooms[room] = "joined"
                iv = [self.idx, t, None]
                ROOM_IV[room].append(iv)
                self.iv[room] = iv
                if not entry[2].done():
                    entry[2].set_result(True)
            elif entry[0] == "l":
                self.rooms.pop(entry[1], None)
            elif entry[0] == "b":
                ST.bad("backend_acked", "an emit without `to` was acked though no backend listens")
        elif op == "error":
            code = msg.get("code")
            if entry is None:
                ST.bad("stray_error", "%s: %s" % (self.conn_id, payload[:160]))
            elif entry[0] == "e":
                entry[1].t_ack = t
                entry[1].result = code
                ST.c["error_" + str(code)] += 1
                if code != "unavailable":
                    ST.bad("emit_error", "%s to %s: %s" % (self.conn_id, entry[1].target, payload[:160]))
            elif entry[0] == "b":
                ST.c["backend_" + str(code)] += 1
                if code not in ("no_backend", "unavailable"):
                    ST.bad("emit_error", "backend emit: %s" % payload[:160])
            else:
                ST.bad("join_leave_error", "%s: %s" % (self.conn_id, payload[:160]))
                if entry[0] == "j":
                    self.rooms.pop(entry[1], None)
                    if not entry[2].done():
                        entry[2].set_result(False)
        else:
            ST.bad("unexpected_envelope", payload[:160])

    def release(self):
        super().release()
        self.pending = {}
        self.rooms = {}
        self.last = {}

    def on_gone(self, t):
        for room, iv in self.iv.items():
            if iv[2] is None:
                iv[2] = t
        self.iv = {}
        if self.live_pos is not None:
            last = LIVE.pop()
            if last is not self:
                LIVE[self.live_pos] = last
                last.live_pos = self.live_pos
            self.live_pos = None
            RECENT.append((t, self))
        self.last = {}
        for entry in self.pending.values():
            if entry[0] == "j" and not entry[2].done():
                entry[2].set_result(False)
        if not self.closing and self.unexpected is None:
            self.unexpected = (t, self.close_code)

    async def run(self):
        if not await self.connect():
            return
        try:
            want = random.sample(ROOMS, random.randint(1, min(3, len(ROOMS))))
            futs = [self.join(r) for r in want]
            await asyncio.wait_for(asyncio.gather(*futs), 15)
        except (asyncio.TimeoutError, ConnectionError):
            if not self.lost:
                ST.bad("join_timeout", "%s: no join ack in 15 s" % self.conn_id)
        end = self.t_welcome + self.lifetime
        while RUN["load"] and not self.lost:
            d = random.expovariate(RATE)
            if now() + d > end:
                await pause(max(0.0, end - now()))
                break
            await pause(d)
            if self.lost or not RUN["load"]:
                break
            self.act()
        if self.lost:
            return
        if not RUN["load"]:      # the end of the run: stay subscribed until the accounting is done
            await RUN["close"].wait()
        if not self.lost:
            await self.close()

    def act(self):
        r = random.random()
        joined = [k for k, v in self.rooms.items() if v == "joined"]
        if r < 0.08:
            if joined and (len(self.rooms) >= 3 or random.random() < 0.5):
                self.leave(random.choice(joined))
            else:
                free = [x for x in random.sample(ROOMS, min(4, len(ROOMS))) if x not in self.rooms]
                if free:
                    self.join(free[0])
            return
        r = random.random()
        if r < 0.01:
            self.emit(None)
        elif r < 0.06 and len(LIVE) > 1:
            other = random.choice(LIVE)
            self.emit("conn:" + other.conn_id)
        elif r < 0.06 + P_BCAST or not joined:
            self.emit("broadcast" if random.random() < 0.5 else "all")
        else:
            self.emit("room:" + random.choice(joined))


P_BCAST = min(0.2, BCAST_RATE / max(1e-9, RATE * N_NORMAL))


class NonReader(Client):
    """Stops reading and floods a room of its own: a slow consumer."""
    kind = "nonreader"

    def __init__(self):
        super().__init__()
        self.acks = {}

    async def run(self):
        if not await self.connect(rcvbuf=4096):
            return
        rooms = random.sample(ROOMS, min(2, len(ROOMS))) + ["sink-%d" % self.idx]
        for i, room in enumerate(rooms):
            self.acks[i + 1] = S.LOOP.create_future()
            self.proto.send_text(b'{"op":"join","room":"%s","id":%d}' % (room.encode(), i + 1))
        try:
            await asyncio.wait_for(asyncio.gather(*self.acks.values()), 15)
        except (asyncio.TimeoutError, ConnectionError):
            if not self.lost:
                ST.bad("nonreader", "no join ack in 15 s")
            self.abort()
            return
        self.proto.t.pause_reading()
        self.tl = [("pause", time.time())]
        # Flood a room only this connection is in, past the gateway's kernel
        # send buffer (up to tcp_wmem's max) and max_queued_bytes, until the
        # gateway has read all of it, or until it is seen to cut us off: it
        # queues its close frame and, once that is in the kernel, half-closes
        # (its side leaves ESTABLISHED).  Stop then and read at once: the
        # gateway closes the socket 2 s after that (linger), and closing with
        # our flood still arriving is a reset that discards the frame.
        blob = b'{"op":"emit","event":"sink","to":"room:sink-%d","data":"%s"}' % (self.idx, b"y" * 60000)
        limit = 2 * 1024 * 1024 + tcp_wmem_max()
        deadline, sent, cut = now() + 15.0, 0, False
        while not self.lost and now() < deadline:
            info = S.GW.diag.info(S.GW.port, self.lport)
            if info is None or info[0] != 1:
                cut = True
                break
            if sent < limit:
                # In bursts: the gateway allows 7 s from the cut to our close
                # (2 s linger + 5 s write timeout), whatever our loop's lag.
                while sent < limit and self.proto.t.get_write_buffer_size() < 2 << 20:
                    self.proto.send(1, blob)
                    sent += len(blob)
            elif self.proto.t.get_write_buffer_size() == 0 and info[1] == 0:
                break            # all of it read by the gateway, and no cut
            await asyncio.sleep(0.01)
        # Not seen cut off (its close frame waits behind a full kernel
        # buffer, or there was no cut): the close code read now decides.
        self.tl.append(("cut" if cut else "flood_read", time.time()))
        if not self.lost:
            self.proto.t.resume_reading()
        self.tl.append(("resume", time.time()))
        if not await self.wait_gone(15):
            self.abort()
        t = self.t_close or now()
        self.tl.append(("gone", time.time()))
        NR_LOG.append("%s %s %s" % (self.conn_id, self.close_code, " ".join("%s=%.3f" % x for x in self.tl)))
        if self.close_code == 1008:
            ST.c["nonreader_1008"] += 1
        elif self.close_code is None and near_kill(t, self):
            ST.c["nonreader_interrupted"] += 1
        else:
            ST.bad("nonreader", "%s: closed with %r, not 1008, at %.1fs" % (self.conn_id, self.close_code, rel(t)))

    def on_text(self, payload):
        if payload.startswith(b'{"op":"ack"'):
            rid = json.loads(payload).get("id")
            f = self.acks.get(rid)
            if f and not f.done():
                f.set_result(True)

    def on_gone(self, t):
        for f in self.acks.values():
            if not f.done():
                f.set_exception(ConnectionError("lost"))
                f.exception()


NR_LOG = []


def tcp_wmem_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


def near_kill(t, c):
    return (c.pid is not None and c.pid in KILLED) or any(tk - 0.5 <= t <= tk + 3 for tk in KILL_TIMES)


class Vanisher(Client):
    """Joins, emits (tracked like any emit), then disappears without a close."""
    kind = "vanisher"

    def __init__(self):
        super().__init__()
        self.pending = {}

    async def run(self):
        mode = random.choice(["rst", "fin", "partial", "handshake"])
        ST.c["vanish_" + mode] += 1
        if mode == "handshake":
            await self.half_handshake()
            return
        if not await self.connect():
            return
        rooms = random.sample(ROOMS, random.randint(1, min(2, len(ROOMS))))
        futs = []
        for i, room in enumerate(rooms):
            f = S.LOOP.create_future()
            self.pending[i + 1] = ("j", f)
            futs.append(f)
            self.proto.send_text(b'{"op":"join","room":"%s","id":%d}' % (room.encode(), i + 1))
        try:
            await asyncio.wait_for(asyncio.gather(*futs), 15)
        except (asyncio.TimeoutError, ConnectionError):
            self.abort()
            return
        rid = 100
        for _ in range(random.randint(1, 4)):
            if self.lost:
                return
            rid += 1
            mid = next_mid()
            to = "room:" + random.choice(rooms)
            m = Msg(mid, self.idx, to, now())
            MSGS[mid] = m
            self.pending[rid] = ("e", m)
            self.proto.send_text(('{"op":"emit","event":"m","to":"%s","data":[%d,%d,"v"],"id":%d}'
                                  % (to, mid, self.idx, rid)).encode())
            ST.c["emits"] += 1
            await asyncio.sleep(random.uniform(0, 0.5))
        await asyncio.sleep(random.uniform(0, 2))
        if self.lost:
            return
        self.closing = True
        t = self.proto.t
        if mode == "fin":
            t.close()                     # FIN, no close frame
        else:
            if mode == "partial":
                t.write(b"\x81\xfe\x01")  # half a frame header
            sock = t.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.abort()                     # RST
        ST.c["vanished"] += 1

    async def half_handshake(self):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", S.GW.port), 10)
        except (OSError, asyncio.TimeoutError):
            return
        w.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        await asyncio.sleep(random.uniform(0.05, 1))
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()
        ST.c["vanished"] += 1

    def on_text(self, payload):
        if not payload.startswith(b'{"op":'):
            return
        msg = json.loads(payload)
        entry = self.pending.pop(msg.get("id"), None)
        if entry is None:
            return
        if entry[0] == "j":
            if not entry[1].done():
                entry[1].set_result(msg["op"] == "ack")
        elif msg["op"] == "ack":
            entry[1].t_ack = now()
            entry[1].result = "ack"
            ST.c["acked"] += 1
        else:
            entry[1].t_ack = now()
            entry[1].result = msg.get("code")

    def on_gone(self, t):
        for entry in self.pending.values():
            if entry[0] == "j" and not entry[1].done():
                entry[1].set_exception(ConnectionError("lost"))
                entry[1].exception()


GARBAGE_STEPS = [
    (1, b'{"id":1,"op":', ("error", 1, "bad_json")),
    (2, b"\x00\x01\x02", ("error", None, "not_object")),
    (1, b"[1,2,3]", ("error", None, "not_object")),
    (1, b'{"op":"fly","id":2}', ("error", 2, "unknown_op")),
    (1, b'{"op":"emit","event":"m","to":"room:nojoin","data":0,"id":3}', ("error", 3, "not_joined")),
    (1, b'{"op":"join","room":"bad room","id":4}', ("error", 4, "bad_room")),
    (1, b'{"op":"emit","event":"m","to":"conn:nobody","data":0,"id":5}', ("ack", 5, None)),
]
GARBAGE_ENDS = {"oversize": 1009, "utf8": 1007, "unmasked": 1002, "reserved": 1002, "flood": 1008}


class Garbage(Client):
    kind = "garbage"

    def __init__(self):
        super().__init__()
        self.q = asyncio.Queue()

    async def run(self):
        if not await self.connect():
            return
        ok = True
        for op, data, want in GARBAGE_STEPS:
            self.proto.send(op, data)
            try:
                got = await asyncio.wait_for(self.q.get(), 10)
            except asyncio.TimeoutError:
                got = None
            if self.lost:
                break
            if got is None:
                ST.bad("garbage", "%s: no answer to %r" % (self.conn_id, data[:40]))
                ok = False
                break
            gop, gid, gcode = got.get("op"), got.get("id"), got.get("code")
            if want[0] == "ack" and gop == "error" and gcode == "unavailable":
                continue           # conn:nobody while Redis is away
            if (gop, gid, gcode) != want:
                ST.bad("garbage", "%s: %r answered %r, expected %r" % (self.conn_id, data[:40], got, want))
                ok = False
            await asyncio.sleep(random.uniform(0.01, 0.2))
        end = random.choice(sorted(GARBAGE_ENDS))
        if ok and not self.lost:
            if end == "oversize":
                self.proto.send(1, b'{"op":"emit","event":"m","to":"all","data":"' + b"z" * 70000 + b'"}')
            elif end == "utf8":
                self.proto.send(1, b'{"op":"\xff\xfe"}')
            elif end == "unmasked":
                self.proto.send(1, b'{"op":"join","room":"a"}', mask=False)
            elif end == "reserved":
                self.proto.send(3, b"abc")
            else:
                for _ in range(40):
                    self.proto.send(1, b"{")
        if not await self.wait_gone(10):
            ST.bad("garbage", "%s: not closed 10 s after %s" % (self.conn_id, end))
            self.abort()
            return
        if not ok:
            return
        t = self.t_close
        if self.close_code == GARBAGE_ENDS[end]:
            ST.c["garbage_ok"] += 1
        elif self.close_code is None and near_kill(t, self):
            ST.c["garbage_interrupted"] += 1
        else:
            ST.bad("garbage", "%s: %s closed with %r, expected %d" % (self.conn_id, end, self.close_code, GARBAGE_ENDS[end]))

    def on_text(self, payload):
        if payload.startswith(b'{"op":'):
            self.q.put_nowait(json.loads(payload))


async def slot(cls, i, n):
    """One concurrent connection of a kind, replaced when it ends."""
    await asyncio.sleep(RAMP * i / max(1, n))
    while RUN["load"]:
        c = cls()
        try:
            await c.run()
        except Exception as e:        # a bug here must not hide: count it
            ST.bad("driver_exception", "%s: %r" % (cls.kind, e))
            c.abort()
        if RUN["load"]:
            await asyncio.sleep(random.uniform(0.05, 0.5) if cls is Normal else random.uniform(0.2, 2))
