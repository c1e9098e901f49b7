"""settings.py: the soak's settings (tests/soak/soak.py has the list of
environment variables) and the fault schedule, derived from SOAK_SECONDS and
SOAK_CONNS; seeds `random` with SOAK_SEED on import.
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



ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))   # wsframe.py, gateway_proc.py: shared with the integration tests


def env(name, default, cast=float):
    v = os.environ.get(name)
    return cast(v) if v not in (None, "") else default


L = env("SOAK_SECONDS", 600.0)
CONNS = env("SOAK_CONNS", 2000, int)
RATE = env("SOAK_RATE", 0.12)
BCAST_RATE = env("SOAK_BCAST_RATE", 2.0)
N_ROOMS = env("SOAK_ROOMS", max(4, CONNS // 20), int)
LIFETIME = env("SOAK_LIFETIME", 60.0)
SAMPLE = env("SOAK_SAMPLE", 5.0 if L >= 120 else 2.0)
SEED = env("SOAK_SEED", random.randrange(1 << 30), int)
BIN = os.environ.get("WSGW_BIN") or os.path.join(ROOT, "build", "wsgw")
OUT = os.environ.get("SOAK_DIR") or os.path.join(ROOT, "build", "soak")
SELFTEST = set(os.environ.get("SOAK_SELFTEST", "").split(","))   # drop, dup: checks the checker
XFAIL = {x.strip() for x in os.environ.get("SOAK_XFAIL", "").split(",") if x.strip()}

GRACE = 3.0          # a receiver must stay subscribed this long after the ack
SETTLE = 2.0         # then this long more before an emit is judged
ACK_TIMEOUT = 30.0   # an emit unanswered this long, sender still connected: failure
PRE, POST = 0.25, 0.5  # fault windows widened by these (timestamp jitter of the driver)
MAX_QUEUED = "64KiB"
MAX_PENDING = "64KiB"
N_NONREAD = max(1, CONNS // 200)
N_VANISH = max(2, CONNS // 50)
N_GARBAGE = max(2, CONNS // 50)
N_NORMAL = max(4, CONNS - N_NONREAD - N_VANISH - N_GARBAGE)
RAMP = min(20.0, 0.1 * L)
IDLE = 5.0 if L >= 120 else 2.0
ASAN = b"__asan_init" in open(BIN, "rb").read() if os.path.exists(BIN) else False
ASAN_QUARANTINE_MB = 4
ROOMS = ["r%d" % i for i in range(N_ROOMS)]
INF = float("inf")

# The fault schedule, in seconds after the load starts.
SCHEDULE = [(0.30 * L, "redis"), (0.55 * L, "worker")]
if L >= 120:
    SCHEDULE += [(0.75 * L, "redis"), (0.85 * L, "worker")]
SCHEDULE += [(0.20 * L, "delay"), (0.42 * L, "partition"), (0.64 * L, "loss")]   # one worker and Redis: issue 12
SCHEDULE.sort()
REDIS_DOWN = min(3.0, 0.05 * L)
STALE = env("SOAK_STALE", 1, int)
if STALE:
    # Not shortly before a worker kill: the victim needs a few seconds (up
    # to the 3 s trailers) to count what it missed while frozen, and a
    # worker killed before that leaves misses nobody could count.
    # Nor inside another fault of issue 12 (delay 0.20, partition 0.42,
    # loss 0.64 of the run): each fault's effect is seen alone.
    SCHEDULE += [(0.10 * L, "stale"), (0.90 * L, "stale")] if L >= 120 else [(0.80 * L, "stale")]
    SCHEDULE.sort()
STALE_FREEZE = 6.0   # longer than detection (1.5-2 s with redis_probe_interval = 500ms)

now = time.monotonic
random.seed(SEED)
