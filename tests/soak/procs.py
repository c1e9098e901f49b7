"""procs.py: process control for the soak: redis-server (RedisProc), the
gateway master and its workers (SoakGateway: tests/gateway_proc.py's
launcher plus which worker holds a connection, from sock_diag and
/proc/PID/fd), tests/soak/relay.py between the workers and Redis, and the
faults done to them: iptables partition and loss on loopback, relay delay,
the stale-subscriber freeze.
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
from gateway_proc import Gateway, free_port

# ---- processes ----------------------------------------------------------------------

def rss_fds(pid):
    """(VmRSS kB, open fds, cpu seconds) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        return rss, fds, cpu
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return sorted(int(p) for p in f.read().split())
    except OSError:
        return []


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class RedisProc:
    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.log = open(os.path.join(OUT, "redis.log"), "a")

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = now() + 10
        while now() < deadline:
            if self.ping():
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port)] + list(args),
                           capture_output=True, text=True, timeout=10)
        return r.stdout

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Diag:
    """sock_diag exact lookup: the inode of the socket 127.0.0.1:lport <->
    127.0.0.1:rport (0 while not yet accepted; None when there is none)."""

    def __init__(self):
        self.nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)   # NETLINK_SOCK_DIAG
        self.seq = 0
        self.lo = socket.inet_aton("127.0.0.1") + b"\0" * 12

    def inode(self, lport, rport):
        r = self.info(lport, rport)
        return r[3] if r else None

    def info(self, lport, rport):
        """(state, rqueue, wqueue, inode) of that socket, or None."""
        self.seq += 1
        sockid = struct.pack(">HH", lport, rport) + self.lo + self.lo + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)
        req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
        self.nl.send(struct.pack("=IHHII", 16 + len(req), 20, 1, self.seq, 0) + req)   # SOCK_DIAG_BY_FAMILY
        while True:
            data = self.nl.recv(65536)
            _, typ, _, seq, _ = struct.unpack_from("=IHHII", data, 0)
            if seq == self.seq:
                break
        if typ == 2 or len(data) < 88:      # NLMSG_ERROR: no such socket
            return None
        if data[17] == 10:                  # the lookup fell back to the listener
            return None
        rq, wq, _, ino = struct.unpack_from("=IIII", data, 72)
        return data[17], rq, wq, ino



# ---- the gateway, its workers, and which worker holds what -----------------------------

class SoakGateway(Gateway):
    """`wsgw --workers 2` behind the relay, started by tests/gateway_proc.py's
    launcher without waiting (run_all waits for both workers' /healthz),
    plus which worker holds what: a connection's server side is found by
    sock_diag and the worker whose /proc/PID/fd holds its inode."""

    def __init__(self, redis):
        # A small quarantine: freed memory held by ASan is RSS too, and the
        # RSS checks allow for it (ASAN_QUARANTINE_MB).
        super().__init__(BIN, ["--workers", "2",
                               "--redis-url", "redis://127.0.0.1:%d" % redis_port_seen(),
                               "--max-queued-bytes", MAX_QUEUED, "--redis-max-pending", MAX_PENDING,
                               "--emit-targets", "broadcast,all,room,conn", "--max-connections", "20000",
                               "--drain-timeout", "5s"],
                         log_path=os.path.join(OUT, "wsgw.log"),
                         log_level=os.environ.get("SOAK_LOG_LEVEL", "warn"),
                         asan_options="quarantine_size_mb=%d" % ASAN_QUARANTINE_MB, wait=False)
        self.diag = Diag()
        self.owner = {}          # inode -> worker pid (from the last scan)

    def workers(self):
        return children(self.pid)

    def scan(self):
        owner = {}
        for pid in self.workers():
            try:
                names = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in names:
                try:
                    link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if link.startswith("socket:["):
                    owner[int(link[8:-1])] = pid
        self.owner = owner

    def pid_of(self, lport, rescan=True):
        ino = self.diag.inode(self.port, lport)
        if not ino:
            return None
        pid = self.owner.get(ino)
        if pid is None and rescan:
            self.scan()
            pid = self.owner.get(ino)
        return pid

    async def get_any(self, path):
        """GET path from whichever worker takes it: (pid, t_req, t_resp, status, body)."""
        t_req = now()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 5)
        except (OSError, asyncio.TimeoutError):
            return None
        lport = w.get_extra_info("sockname")[1]
        pid = None
        try:
            give_up = now() + 2.0
            while now() < give_up:
                pid = self.pid_of(lport)
                if pid:
                    break
                await asyncio.sleep(0.005)
            w.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
            data = await asyncio.wait_for(r.read(), 5)
        except (OSError, asyncio.TimeoutError):
            return None
        finally:
            w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        try:
            status = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None
        return pid, t_req, now(), status, body.decode()

    async def each_worker(self, path, tries=16):
        got = {}
        for _ in range(tries):
            want = set(self.workers())
            if want and want <= set(got):
                break
            res = await self.get_any(path)
            if res and res[0]:
                got[res[0]] = res
        return got


def parse_metrics(body):
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def track_workers(t):
    cur = S.GW.workers()
    for pid in cur:
        if pid not in WORKERS:
            # A new worker can only have started after its predecessor died.
            start = max([S.T_GW_START] + [tk for tk in KILL_TIMES if tk <= t])
            WORKERS[pid] = {"start": start, "end": None}
    for pid, w in WORKERS.items():
        if w["end"] is None and pid not in cur:
            w["end"] = t
    return cur


# ---- partition faults (issue 12) --------------------------------------------------
# One worker cut off from Redis while everything else goes on: iptables DROP
# rules on the loopback interface matching that worker's two Redis
# connections (their local ports, read from /proc), in both directions, at
# the receiving end (INPUT), as a dropped packet on a real link.  "partition"
# drops 100 % for PART_SECONDS, then heals; "loss" drops 5 % (-m statistic)
# for LOSS_SECONDS.  The rules live in a chain of this run's own
# (WSGWSOAK<random>), jumped to from INPUT for `-i lo` only, removed at the end
# even on failure.  Nothing in the gateway notices (no reconnect: TCP
# retransmits after the heal), so the messages of the window arrive late, not
# lost: a message sent in a window is judged no earlier than PART_HOLD after
# the heal, and its expected receivers must stay that long.  Without root or
# iptables the faults are skipped and the report says so.
PART_KINDS = ("partition", "loss", "delay")
PART_SECONDS = min(5.0, max(1.0, 0.05 * L))
LOSS_SECONDS = min(30.0, max(2.0, 0.08 * L))
PART_HOLD = 8.0          # the first retransmission after a 5 s drop comes up to ~3.2 s late
PARTITIONS = []          # {"kind", "pid", "ports", "start", "heal", "dropped"}
PART = {"chain": None, "skip": None}
DELAY_SECONDS = min(15.0, max(2.0, 0.06 * L))
RELAY = {"proc": None, "port": None, "ctl": None}   # tests/soak/relay.py between the workers and Redis


def relay_start():
    """The workers reach Redis through tests/soak/relay.py (its own process),
    which delays the victim's connections 150-250 ms during a "delay" fault
    and freezes a subscribe connection during a "stale" one."""
    RELAY["port"] = free_port()
    RELAY["ctl"] = os.path.join(OUT, "relay.ctl")
    open(RELAY["ctl"], "w").close()
    RELAY["proc"] = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests", "soak", "relay.py"), "127.0.0.1", str(RELAY["port"]),
         "127.0.0.1", str(S.REDIS.port), RELAY["ctl"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    if RELAY["proc"].stdout.readline().strip() != "ready":
        raise SystemExit("soak: the Redis relay did not start")


def relay_cmd(line):
    """One command to the relay (subs, freeze PORT SECONDS, count), its
    answer as words."""
    RELAY["proc"].stdin.write(line + "\n")
    RELAY["proc"].stdin.flush()
    return RELAY["proc"].stdout.readline().split()


def redis_port_seen():
    """The port the workers connect to for Redis: the relay's."""
    return RELAY["port"] or S.REDIS.port


def _ipt(*args):
    return subprocess.run(["iptables", "-w"] + list(args), capture_output=True, text=True, timeout=20)


def partition_setup():
    if os.geteuid() != 0:
        PART["skip"] = "not root"
        return
    chain = "WSGWSOAK%06x" % random.SystemRandom().randrange(1 << 24)
    try:
        r = _ipt("-N", chain)
        if r.returncode == 0:
            PART["chain"] = chain
            atexit.register(partition_cleanup)
            r = _ipt("-I", "INPUT", "-i", "lo", "-j", chain)
            if r.returncode == 0:
                r = _ipt("-A", chain, "-p", "tcp", "-s", "192.0.2.1", "-m", "statistic", "--mode", "random",
                         "--probability", "0.05", "-j", "DROP")      # -m statistic works (TEST-NET, never seen)
                _ipt("-F", chain)
    except (OSError, subprocess.SubprocessError) as e:
        PART["skip"] = "iptables: %s" % e
        partition_cleanup()
        return
    if r.returncode != 0:
        PART["skip"] = "iptables: %s" % r.stderr.strip()
        partition_cleanup()


def partition_cleanup():
    proc, RELAY["proc"] = RELAY["proc"], None
    if proc and proc.poll() is None:
        proc.kill()
        proc.wait()
    chain, PART["chain"] = PART["chain"], None
    if chain:
        try:
            while _ipt("-D", "INPUT", "-i", "lo", "-j", chain).returncode == 0:
                pass
            _ipt("-F", chain)
            _ipt("-X", chain)
        except (OSError, subprocess.SubprocessError):
            pass


def redis_ports(pid):
    """Local ports of pid's TCP connections to Redis."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return []
    ports = []
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if int(p[2].split(":")[1], 16) == redis_port_seen() and p[3] == "01" and p[9] in inodes:
                ports.append(int(p[1].split(":")[1], 16))
    return sorted(ports)


def partition_dropped():
    out = _ipt("-L", PART["chain"], "-v", "-n", "-x").stdout
    return sum(int(l.split()[0]) for l in out.splitlines() if " DROP " in l and l.split()[0].isdigit())


async def delay_fault():
    counts = collections.Counter(c.pid for c in LIVE)
    pids = S.GW.workers()
    if not pids:
        return
    victim = max(pids, key=lambda p: counts.get(p, 0))
    ports = redis_ports(victim)
    rec = {"kind": "delay", "pid": victim, "ports": ports, "start": None, "heal": None, "dropped": 0}
    PARTITIONS.append(rec)
    with open(RELAY["ctl"], "w") as f:
        f.write(" ".join(map(str, ports)) + "\n")
    RELAY["proc"].send_signal(signal.SIGUSR1)
    rec["start"] = now()
    print("[%6.1fs fault  ] worker %d and Redis: 150-250 ms delay each way (relay, ports %s) for %.1f s"
          % (rel(rec["start"]), victim, ports, DELAY_SECONDS), flush=True)
    await asyncio.sleep(DELAY_SECONDS)
    RELAY["proc"].send_signal(signal.SIGUSR2)
    rec["heal"] = now()
    print("[%6.1fs fault  ] worker %d and Redis: delay off" % (rel(rec["heal"]), victim), flush=True)


async def partition_fault(kind):
    if kind == "delay":
        return await delay_fault()
    if not PART["chain"]:
        print("[%6.1fs fault  ] %s skipped: %s" % (rel(now()), kind, PART["skip"]), flush=True)
        return
    counts = collections.Counter(c.pid for c in LIVE)
    pids = S.GW.workers()
    if not pids:
        return
    victim = max(pids, key=lambda p: counts.get(p, 0))
    ports = redis_ports(victim)
    stat = ["-m", "statistic", "--mode", "random", "--probability", "0.05"] if kind == "loss" else []
    rules = []
    for p in ports:
        rules.append(["-p", "tcp", "--sport", str(p), "--dport", str(redis_port_seen())] + stat + ["-j", "DROP"])
        rules.append(["-p", "tcp", "--sport", str(redis_port_seen()), "--dport", str(p)] + stat + ["-j", "DROP"])
    rec = {"kind": kind, "pid": victim, "ports": ports, "start": None, "heal": None, "dropped": 0}
    PARTITIONS.append(rec)
    for rule in rules:
        await S.LOOP.run_in_executor(None, lambda r=rule: _ipt("-A", PART["chain"], *r))
    rec["start"] = now()
    secs = PART_SECONDS if kind == "partition" else LOSS_SECONDS
    print("[%6.1fs fault  ] worker %d cut off from Redis (ports %s): %s for %.1f s"
          % (rel(rec["start"]), victim, ports, "100 % of packets dropped" if kind == "partition" else "5 % loss", secs),
          flush=True)
    await asyncio.sleep(secs)
    rec["dropped"] = await S.LOOP.run_in_executor(None, partition_dropped)
    await S.LOOP.run_in_executor(None, lambda: _ipt("-F", PART["chain"]))
    rec["heal"] = now()
    print("[%6.1fs fault  ] worker %d and Redis healed: %d packets dropped"
          % (rel(rec["heal"]), victim, rec["dropped"]), flush=True)


def partition_hold(t_send):
    """A message sent in (or just before) a partition window is judged no
    earlier than this (0: not affected; INF: the window is still open)."""
    hold = 0.0
    for w in PARTITIONS:
        if w["start"] is not None and w["start"] - 1.0 <= t_send and (w["heal"] is None or t_send <= w["heal"] + 1.0):
            hold = max(hold, INF if w["heal"] is None else w["heal"] + PART_HOLD)
    return hold


def partition_outages():
    """(start, heal) of each window, for windows(): /healthz may say so."""
    return [(w["start"], w["heal"] if w["heal"] is not None else INF) for w in PARTITIONS if w["start"] is not None]



# ---- the stale-subscriber fault ---------------------------------------------------------------

STALE_FAULTS = []    # [victim pid, t_freeze, t_detected or None, t_freeze as wall-clock time]
async def fault_stale():
    """Freezes the subscribe connection of the busier worker for
    STALE_FREEZE s and watches its wsgw_backplane_stale_total: the probe must
    find it within 5 s."""
    ports = [int(p) for p in (await S.LOOP.run_in_executor(None, relay_cmd, "subs"))[1:]]
    S.GW.scan()
    subs = {}
    for p in ports:
        pid = S.GW.owner.get(S.GW.diag.inode(p, RELAY["port"]))
        if pid:
            subs[pid] = p
    counts = collections.Counter(c.pid for c in LIVE)
    if not subs:
        print("[%6.1fs fault  ] stale: no subscribe connection found at the relay" % rel(now()), flush=True)
        STALE_FAULTS.append([None, now(), None, time.time()])
        return
    victim = max(subs, key=lambda p: counts.get(p, 0))
    tk, tk_wall = now(), time.time()
    await S.LOOP.run_in_executor(None, relay_cmd, "freeze %d %.1f" % (subs[victim], STALE_FREEZE))
    fault = [victim, tk, None, tk_wall]
    STALE_FAULTS.append(fault)
    print("[%6.1fs fault  ] worker %d: subscribe connection frozen at the relay for %.0f s (%d normal clients)"
          % (rel(tk), victim, STALE_FREEZE, counts.get(victim, 0)), flush=True)
    await asyncio.sleep(STALE_FREEZE)
    # When the worker found it: its backplane_stale line (the driver's own
    # /metrics polling lags by seconds under load).
    found = [t for t in stale_lines() if t >= tk_wall]
    if found:
        fault[2] = tk + found[0] - tk_wall
        print("[%6.1fs fault  ] worker %d: stale found after %.1f s" % (rel(fault[2]), victim, fault[2] - tk), flush=True)
    else:
        print("[%6.1fs fault  ] worker %d: stale NOT found" % (rel(now()), victim), flush=True)


def stale_lines():
    """Wall-clock times of the gateway's backplane_stale log lines."""
    out = []
    with open(S.GW.log_path, errors="replace") as f:
        for l in f:
            if "event=backplane_stale" in l:
                try:
                    ts = datetime.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
                except ValueError:
                    continue
                out.append(ts.replace(tzinfo=datetime.timezone.utc).timestamp())
    return out
