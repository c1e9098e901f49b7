"""state.py: the state the soak's parts share: the clients, the emits in
flight and their losses, the run's phase, what was seen of the workers
(kills, outages, /healthz, metrics, samples), and the handles main() sets
(S.LOOP, S.GW, S.REDIS, S.T_GW_START).
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
import state as S  # noqa: F401

# ---- state shared by everything ----------------------------------------------------

class Stats:
    def __init__(self):
        self.c = collections.Counter()
        self.examples = collections.defaultdict(list)

    def bad(self, kind, example):
        self.c[kind] += 1
        if len(self.examples[kind]) < 6:
            self.examples[kind].append(example)


ST = Stats()
CLIENTS = []           # every client ever, by idx
LIVE = []              # normal clients open (welcome received, not closed)
RECENT = collections.deque()   # (t_close, client): normal clients closed lately
ROOM_IV = {r: [] for r in ROOMS}   # room -> [ [idx, t_from, t_to], ... ]
MSGS = {}              # mid -> Msg, until judged
LOSSES = {}            # (mid, ridx) -> Msg summary tuple
NEXT_MID = [1]
RUN = {"load": True, "phase": "start"}
T0 = [0.0]


class Msg:
    __slots__ = ("mid", "sender", "target", "t_send", "t_ack", "result", "recv")

    def __init__(self, mid, sender, target, t_send):
        self.mid, self.sender, self.target, self.t_send = mid, sender, target, t_send
        self.t_ack = None
        self.result = None
        self.recv = set()


def rel(t):
    return t - T0[0]


RESOLVE = []
FAULT = [False]      # a scheduled fault is under way: poll /healthz faster
KILLED = {}          # worker pid -> time we sent SIGKILL
KILL_TIMES = []
REDIS_OUTAGES = []   # (t_kill, t_back)
WORKERS = {}         # pid -> {"start": t, "end": t or None}
HEALTH = collections.defaultdict(list)   # pid -> [(t_req, t_resp, backplane)]
METRICS = {}         # pid -> last metrics
SAMPLES = []         # (t, phase, {pid: (rss, fds, cpu)}, {pid: conns})


def resolve_soon(c):
    RESOLVE.append(c)


SAMPLE_RATE = [(0.0, 0, 0)]
SELF_CPU = [0.0]
LAG = [0.0]
MAX_LAG = [0.0]


# Rebound once by soak.main(): read them as S.LOOP, S.GW ... (import state as S).
LOOP = None
GW = None              # the Gateway (procs.SoakGateway)
REDIS = None           # the RedisProc
T_GW_START = 0.0
