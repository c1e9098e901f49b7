"""judge.py: the soak's delivery judge: every delivery checked as it
arrives (duplicates, order, unsubscribed receivers), every accepted emit
judged against its expected receivers, the fault windows, and each miss
classified (slow consumer, lost in the backplane counted or not, unexplained)
into LOSS_LOG, which the report writes to losses.tsv.
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
from procs import PARTITIONS, STALE_FAULTS, partition_hold, partition_outages

def deliver(r, msg, t):
    """A delivery to a normal client: checks and accounting."""
    if SELFTEST != {""} and random.random() < 0.0005:
        if "drop" in SELFTEST:
            return
        if "dup" in SELFTEST:
            _deliver(r, msg, t)
    _deliver(r, msg, t)


def _deliver(r, msg, t):
    ST.c["deliveries"] += 1
    data = msg.get("data")
    to = msg.get("to")
    try:
        mid, sidx = data[0], data[1]
        sender = CLIENTS[sidx]
    except (TypeError, IndexError, KeyError):
        ST.bad("foreign_delivery", "%s got %r" % (r.conn_id, msg))
        return
    if msg.get("from") != sender.conn_id or msg.get("event") != "m":
        ST.bad("misrouted", "%s got mid %d with from=%r (sender %r)" % (r.conn_id, mid, msg.get("from"), sender.conn_id))
    if to.startswith("room:"):
        if to[5:] not in r.rooms:
            ST.bad("misrouted", "%s not in %s got mid %d at %.1fs" % (r.conn_id, to, mid, rel(t)))
    elif to == "broadcast":
        if sidx == r.idx:
            ST.bad("misrouted", "%s got its own broadcast mid %d" % (r.conn_id, mid))
    elif to.startswith("conn:"):
        if to[5:] != r.conn_id:
            ST.bad("misrouted", "%s got mid %d for %s" % (r.conn_id, mid, to))
    elif to != "all":
        ST.bad("misrouted", "%s got mid %d to %r" % (r.conn_id, mid, to))
    key = (sidx, to)
    last = r.last.get(key, 0)
    m = MSGS.get(mid)
    if m is not None:
        if m.target != to:
            ST.bad("misrouted", "mid %d sent to %s arrived as %s" % (mid, m.target, to))
        if r.idx in m.recv:
            ST.bad("duplicate", "mid %d to %s twice at %s (%.1fs)" % (mid, to, r.conn_id, rel(t)))
        elif mid <= last:
            ST.bad("reordered", "mid %d after mid %d from %s to %s at %s (%.1fs)" % (mid, last, sender.conn_id, to, r.conn_id, rel(t)))
        m.recv.add(r.idx)
    else:
        if mid == last:
            ST.bad("duplicate", "mid %d to %s twice at %s (%.1fs)" % (mid, to, r.conn_id, rel(t)))
        elif mid < last:
            ST.bad("reordered", "mid %d after mid %d from %s to %s at %s (%.1fs)" % (mid, last, sender.conn_id, to, r.conn_id, rel(t)))
        if LOSSES.pop((mid, r.idx), None) is not None:
            ST.c["late_deliveries"] += 1
    if mid > last:
        r.last[key] = mid


def stale_windows(pid, ups):
    """Fault windows of the stale faults on worker pid: from the freeze to
    the first /healthz "up" after the stale connection was replaced."""
    out = []
    for victim, tk, td, _ in STALE_FAULTS:
        if victim == pid:
            back = next((o[1] for o in ups if o[0] >= (td or tk + STALE_FREEZE)), INF)
            out.append((tk - PRE, back + POST))
    return out


# ---- judging emits ------------------------------------------------------------------------

def expected_receivers(m):
    ts, limit = m.t_send, max(m.t_ack + GRACE, partition_hold(m.t_send) - SETTLE)
    out = set()
    if m.target.startswith("room:"):
        for idx, t_from, t_to in ROOM_IV[m.target[5:]]:
            if t_from < ts and (t_to is None or t_to > limit):
                out.add(idx)
        return out
    if m.target.startswith("conn:"):
        cid = m.target[5:]
        for c in LIVE:
            if c.conn_id == cid:
                break
        else:
            c = next((c for _, c in RECENT if c.conn_id == cid), None)
        if c and c.t_welcome < ts and (c.t_close is None or c.t_close > limit):
            out.add(c.idx)
        return out
    for c in LIVE:
        if c.t_welcome < ts:
            out.add(c.idx)
    for t_close, c in RECENT:
        if t_close > limit and c.t_welcome < ts:
            out.add(c.idx)
    if m.target == "broadcast":
        out.discard(m.sender)
    return out


def judge(m):
    if m.result != "ack":
        ST.c["not_accepted"] += 1
        return
    ST.c["accepted"] += 1
    exp = expected_receivers(m)
    got = m.recv & exp
    ST.c["expected"] += len(exp)
    ST.c["delivered"] += len(got)
    ST.c["extra"] += len(m.recv) - len(got)
    for ridx in exp - m.recv:
        LOSSES[(m.mid, ridx)] = (m.mid, m.sender, ridx, m.target, m.t_send, m.t_ack)
    note_baseline(m, got)


BASELINE = {}          # (sender worker, channel, receiving worker) -> first t_send delivered


def channel_of(target):
    return "all" if target in ("broadcast", "all") else target


def note_baseline(m, got):
    """A receiving worker counts a gap only after a first number from that
    sender worker on that channel (docs/protocol.md: a loss before it is
    not detectable): remember when that first delivered message was sent."""
    spid = CLIENTS[m.sender].pid
    if spid is None:
        return
    chan = channel_of(m.target)
    for ridx in got:
        rpid = CLIENTS[ridx].pid
        if rpid is None or rpid == spid:
            continue
        key = (spid, chan, rpid)
        if key not in BASELINE or m.t_send < BASELINE[key]:
            BASELINE[key] = m.t_send


async def judge_loop(final=False):
    while True:
        t = now()
        done = []
        for mid, m in MSGS.items():
            if m.result is not None:
                if final or t > max(m.t_ack + GRACE + SETTLE, partition_hold(m.t_send)):
                    done.append(mid)
            else:
                s = CLIENTS[m.sender]
                if s.lost or s.closing:
                    m.result = "no_ack"
                    done.append(mid)
                elif t - m.t_send > ACK_TIMEOUT or final:
                    ST.bad("ack_missing", "mid %d from %s to %s sent at %.1fs: no answer in %.0f s"
                           % (mid, s.conn_id, m.target, rel(m.t_send), t - m.t_send))
                    m.result = "ack_missing"
                    done.append(mid)
        for mid in done:
            judge(MSGS.pop(mid))
        horizon = t - 60
        while RECENT and RECENT[0][0] < horizon:
            RECENT.popleft()
        for room, ivs in ROOM_IV.items():
            if len(ivs) > 64 and any(iv[2] is not None and iv[2] < horizon for iv in ivs):
                ROOM_IV[room] = [iv for iv in ivs if iv[2] is None or iv[2] >= horizon]
        if final:
            return
        await asyncio.sleep(1.0)


# ---- fault windows ------------------------------------------------------------------------

def merge(ws):
    out = []
    for a, b in sorted(ws):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def windows():
    """pid -> merged windows in which its backplane was not up; and the
    non-up observations no scheduled fault explains."""
    wins, unscheduled = {}, []
    for pid, w in WORKERS.items():
        obs = sorted(HEALTH.get(pid, []))
        sched = []
        ups = [o for o in obs if o[2] == "up"]
        first_up = ups[0][1] if ups else INF
        sched.append((w["start"] - PRE, first_up + POST))            # start-up
        for tk, tb in REDIS_OUTAGES + partition_outages():
            if w["start"] > tb or (w["end"] is not None and w["end"] < tk):
                continue
            back = next((o[1] for o in ups if o[0] >= tb), INF)
            sched.append((tk - PRE, back + POST))
        sched += stale_windows(pid, ups)
        seen = []
        prev_up, run_start = None, None
        for t_req, t_resp, bp in obs:
            if bp != "up":
                # The answer was made somewhere between the request and
                # its response (the driver may send it late when loaded):
                # explained by a window that interval overlaps.
                inside = [a for a, b in sched if a <= t_resp and t_req <= b]
                if run_start is None:
                    run_start = prev_up if prev_up is not None else t_req
                    # Inside a scheduled fault it began no earlier than the fault.
                    if inside:
                        run_start = max(run_start, min(inside) + PRE)
                if not inside:
                    unscheduled.append((pid, rel(t_req), bp))
            else:
                if run_start is not None:
                    seen.append((run_start - PRE, t_resp + POST))
                    run_start = None
                prev_up = t_req
        if run_start is not None:
            seen.append((run_start - PRE, INF))
        wins[pid] = merge(sched + seen)
    return wins, unscheduled


LOSS_LOG = []


CAT_SLOW = "dropped: receiver cut off as a slow consumer"
CAT_COUNTED = "lost in the backplane, counted (wsgw_backplane_lost_total)"
CAT_UNCOUNTED = "lost in the backplane, NOT counted by the receiving worker"
CAT_UNBASELINED = ("lost in the backplane before the receiving worker had any number from that "
                   "worker on that channel (not detectable: docs/protocol.md)")
CAT_UNEXPLAINED = "unexplained"
LOST_BY_WORKER = []    # report lines: receiving worker, messages missed, its lost counter


def classify(wins):
    """Each missed delivery gets a category.  A miss between workers must
    be matched by the receiving worker's wsgw_backplane_lost_total (gaps in
    the sender's per-channel seq; docs/protocol.md, "Sequence numbers and
    loss counting"): per receiving worker, the messages it missed (one per
    message, however many of its clients missed it: the counter counts
    messages) may not exceed its counter.  Publisher drops do not come in:
    an accepted emit was acked, so Redis took its PUBLISH."""
    cats = collections.Counter()
    examples = collections.defaultdict(list)
    allw = merge([tuple(x) for ws in wins.values() for x in ws])

    def inwin(t, pid):
        ws = wins.get(pid) if pid is not None else allw
        return any(a <= t <= b for a, b in (ws or allw))

    first = []
    missed_msgs = collections.defaultdict(set)      # receiving worker -> mids
    for (mid, sidx, ridx, target, ts, ta) in LOSSES.values():
        s, r = CLIENTS[sidx], CLIENTS[ridx]
        cross = s.pid is None or r.pid is None or s.pid != r.pid
        if r.unexpected and r.unexpected[1] == 1008:
            cat = CAT_SLOW
        elif cross and not target.startswith("conn:") and (
                s.pid is not None and r.pid is not None and
                ts < BASELINE.get((s.pid, channel_of(target), r.pid), float("inf"))):
            # (a connection's own channel is counted from its first number)
            cat = CAT_UNBASELINED                    # before the receiver had a first number
        elif cross:
            cat = None                               # decided below, per receiving worker
            missed_msgs[r.pid].add(mid)
        else:
            cat = CAT_UNEXPLAINED
        first.append((cat, mid, s, r, target, ts, ta))
    total_lost = sum(m.get("wsgw_backplane_lost_total", 0) for m in METRICS.values())
    counted_ok = {}
    for pid, mids in sorted(missed_msgs.items(), key=lambda kv: str(kv[0])):
        # A receiver whose worker is unknown: against every worker's count.
        lost = total_lost if pid is None else METRICS.get(pid, {}).get("wsgw_backplane_lost_total", 0)
        counted_ok[pid] = len(mids) <= lost
        LOST_BY_WORKER.append("worker %s: missed %d messages from other workers, wsgw_backplane_lost_total %d%s"
                              % (pid, len(mids), lost, "" if counted_ok[pid] else "  <-- NOT all counted"))
    for cat, mid, s, r, target, ts, ta in first:
        if cat is None:
            cat = CAT_COUNTED if counted_ok[r.pid] else CAT_UNCOUNTED
        fault = any(inwin(t, p) for t in (ts, ta) for p in (s.pid, r.pid))
        if cat == CAT_UNBASELINED and not fault:
            cat = CAT_UNEXPLAINED                    # Redis loses nothing outside a fault
        cats[cat] += 1
        LOSS_LOG.append("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.3f\t%s\t%s" % (
            cat, mid, target, s.conn_id, r.conn_id, s.pid, r.pid, rel(ts), rel(ta),
            "%.3f" % rel(r.t_close) if r.t_close else "-", "yes" if fault else "no"))
        if len(examples[cat]) < 8:
            examples[cat].append("mid %d %s -> %s (%s, workers %s -> %s) sent %.2fs acked %.2fs, receiver closed %s%s"
                                 % (mid, s.conn_id, r.conn_id, target, s.pid, r.pid, rel(ts), rel(ta),
                                    "%.2fs" % rel(r.t_close) if r.t_close else "at the end",
                                    ", in a fault window" if fault else ""))
    return cats, examples
