"""report.py: the soak's checks and its report: check() records a check,
report() runs the final ones (accounting categories, gauges back to zero,
workers, exit status, log, RSS and fds) and prints the table of checks and
"soak: N passed, M failed", exiting 1 when a check failed.
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
from procs import PART, PARTITIONS, PART_KINDS, STALE_FAULTS, rss_fds, stale_lines
from client import Normal, near_kill
from judge import CAT_COUNTED, CAT_SLOW, CAT_UNBASELINED, CAT_UNCOUNTED, CAT_UNEXPLAINED, LOST_BY_WORKER

CHECKS = []


def check(name, ok, detail):
    CHECKS.append((name, bool(ok), detail))


def partition_check():
    want = sum(1 for _, w in SCHEDULE if w in PART_KINDS)
    delays = [w for w in PARTITIONS if w["kind"] == "delay"]
    check("faults: worker-Redis delay (relay)", len(delays) == sum(1 for _, w in SCHEDULE if w == "delay")
          and all(w["heal"] and len(w["ports"]) == 2 for w in delays),
          "; ".join("worker %s %.1f-%.1fs, ports %s" % (w["pid"], rel(w["start"]), rel(w["heal"] or 0), w["ports"])
                    for w in delays) or "none run")
    want -= len(delays)
    if PART["skip"]:
        check("faults: worker-Redis partitions (iptables)", True,
              "SKIPPED, not run: %s (needs root and iptables)" % PART["skip"])
        return
    drops = [w for w in PARTITIONS if w["kind"] != "delay"]
    ok = len(drops) == want and all(w["heal"] and w["dropped"] > 0 and len(w["ports"]) == 2 for w in drops)
    check("faults: worker-Redis partitions (iptables)", ok, "; ".join(
        "%s of worker %s %.1f-%.1fs, ports %s, %d packets dropped" % (
            w["kind"], w["pid"], rel(w["start"] or 0), rel(w["heal"] or 0), w["ports"], w["dropped"])
        for w in drops) or "none run")


def check_stale(final_metrics, probe_channels, workers_now, log):
    if not STALE:
        return
    want = sum(1 for _, w in SCHEDULE if w == "stale")
    found = [f for f in STALE_FAULTS if f[2] is not None and f[2] - f[1] <= 5.0]
    # A backplane_stale line belongs to a stale fault (from the freeze to
    # the end of the freeze), or to a partition of the same worker's Redis
    # connections: a probe that a 100 % drop (or, rarely, repeated 5 %
    # losses) holds back past 3 intervals is a stale connection too, and
    # finding it is the probe's job.  Any other is a false alarm.
    wall = time.time() - now()          # monotonic -> wall clock
    freezes = [(f[3], f[3] + STALE_FREEZE + 1.0) for f in STALE_FAULTS]
    cuts = [(r["start"] + wall, (r["heal"] or r["start"]) + wall + 1.0) for r in PARTITIONS
            if r["kind"] in ("partition", "loss") and r["start"] is not None]
    times = stale_lines()
    in_freeze = [t for t in times if any(a <= t <= b for a, b in freezes)]
    in_cut = [t for t in times if t not in in_freeze and any(a <= t <= b for a, b in cuts)]
    stray = len(times) - len(in_freeze) - len(in_cut)
    victims = {f[0] for f in STALE_FAULTS} | {r["pid"] for r in PARTITIONS if r["kind"] in ("partition", "loss")}
    others = {p: m.get("wsgw_backplane_stale_total", 0) for p, m in METRICS.items()
              if p not in victims and m.get("wsgw_backplane_stale_total", 0)}
    check("faults: stale subscriber found within 5 s, reconnected",
          len(STALE_FAULTS) == want and len(found) == want and len(in_freeze) == want and not stray and not others,
          "%d frozen, found after %s s; backplane_stale lines: %d in freezes, %d in partitions, %d elsewhere%s"
          % (len(STALE_FAULTS), ", ".join("%.1f" % (f[2] - f[1]) if f[2] else "never" for f in STALE_FAULTS),
             len(in_freeze), len(in_cut), stray,
             "; stale counted by workers never frozen or cut off: %r" % others if others else ""))
    check("leaks: one probe channel per worker", len(probe_channels) == len(workers_now),
          "%d wsgw:probe:* channels for %d workers" % (len(probe_channels), len(workers_now)))


ASAN_NOTE = " + 2 x ASan quarantine (%d MB)" % ASAN_QUARANTINE_MB if ASAN else ""


def fmt_mb(kb):
    return "%.1f MB" % (kb / 1024)


def report(initial, final_procs, final_metrics, channels, numsub, wins, unscheduled, cats, examples,
           workers_now, died, code, stop_s, log):
    c = ST.c
    print()
    print("== accounting")
    print("  emits sent %d (normal and vanishing clients), accepted (acked) %d, not accepted %d: %s"
          % (c["emits"], c["accepted"], c["not_accepted"],
             ", ".join("%s %d" % (k[6:], v) for k, v in sorted(c.items()) if k.startswith("error_")) or "no errors"))
    print("  backend emits %d: no_backend %d, unavailable %d" % (c["backend_emits"], c["backend_no_backend"], c["backend_unavailable"]))
    print("  deliveries received %d; expected %d, delivered %d, extra (not required) %d, late %d"
          % (c["deliveries"], c["expected"], c["delivered"], c["extra"], c["late_deliveries"]))
    for cat, n in sorted(cats.items()):
        print("  missing: %-46s %d" % (cat, n))
        for e in examples[cat][:4]:
            print("      e.g. " + e)
    for line in LOST_BY_WORKER:
        print("  backplane losses, " + line)
    print("  fault windows (s after start, backplane not up, per worker):")
    for pid, ws in sorted(wins.items()):
        print("      %d: %s" % (pid, ", ".join("%.1f-%s" % (rel(a), "end" if b == INF else "%.1f" % rel(b)) for a, b in ws)))
    totals = collections.Counter()
    for pid, mt in METRICS.items():
        for k, v in mt.items():
            totals[k] += v
            if "{" in k:                       # a labelled family: its sum under the bare name too
                totals[k.split("{")[0]] += v
    keys = ["wsgw_dropped_messages_total", "wsgw_slow_consumer_closes_total", "wsgw_backplane_dropped_total",
            "wsgw_backplane_lost_total",
            "wsgw_envelope_errors_total", "wsgw_rate_limited_messages_total", "wsgw_connections_total",
            "wsgw_backplane_reconnects_total"]
    print("  gateway counters (sum over every worker's last sample): " +
          ", ".join("%s %d" % (k[5:], totals[k]) for k in keys))
    print("  disconnects by reason: " + ", ".join(
        "%s %d" % (k.split('"')[1], v) for k, v in sorted(totals.items()) if k.startswith("wsgw_disconnects_total{") and v))
    print("  clients: %d connections in all (%s); %s"
          % (len(CLIENTS), ", ".join("%s %d" % (k, v) for k, v in
                                     sorted(collections.Counter(type(x).kind for x in CLIENTS).items())),
             ", ".join("%s %d" % (k, v) for k, v in sorted(c.items())
                       if k.startswith(("vanish", "nonreader_", "garbage_", "connect_failed_in")))))
    opened = [x for x in CLIENTS if x.t_welcome]
    print("  worker of each connection known for %d of %d connections (the others closed within 0.5 s)"
          % (sum(1 for x in opened if x.pid), len(opened)))
    loadw = [x for x in SAMPLES if x[1] == "load"]
    span = loadw[-1][0] - loadw[0][0] if len(loadw) > 1 else 1.0
    gw_cpu = 0.0
    for pid in set(p for x in loadw for p in x[2]):
        seen = [x[2][pid][2] for x in loadw if pid in x[2]]
        gw_cpu += seen[-1] - seen[0]
    print("  CPU under load: gateway processes %.0f%% of one core (2 workers + master), driver %.0f s in all; "
          "driver's max event-loop lag under load %.0f ms; RSS of the driver %.0f MB"
          % (100 * gw_cpu / span, sum(os.times()[:2]), MAX_LAG[0] * 1000, (rss_fds(os.getpid()) or (0,))[0] / 1024))

    # Memory and fds.
    print()
    print("== processes (VmRSS, fds)")
    loaded = [s for s in SAMPLES if s[1] == "load"]
    rss_lines, rss_ok, rss_load_ok, fd_ok = [], True, True, True
    fd_detail = []
    idle_fds = {pid: v[1] for pid, v in initial.items() if v}
    worker_idle_fds = max(v for p, v in idle_fds.items() if p != S.GW.pid)
    for pid, v in sorted(final_procs.items()):
        # Warmed up: 15% of the run after the process started (a third of
        # its loaded life for a worker restarted late); the steady window
        # is the next 13% (at least two samples).
        start = max(WORKERS[pid]["start"] if pid in WORKERS else T0[0], T0[0])
        life_s = T0[0] + L - start
        warm = start + min(0.15 * L, life_s / 3)
        life = [s[2][pid][0] for s in loaded if pid in s[2] and s[0] >= warm]
        base_w = [s[2][pid][0] for s in loaded if pid in s[2] and warm <= s[0] <= warm + min(0.13 * L, life_s / 3)]
        if len(base_w) < 2:
            base_w = life[:2] or [s[2][pid][0] for s in SAMPLES if pid in s[2]][:1]
        base = statistics.median(base_w)
        last_w = [s[2][pid][0] for s in loaded if pid in s[2] and s[0] >= T0[0] + 0.9 * L]
        last = statistics.median(last_w) if last_w else base
        peak = max(life) if life else base
        allow = max(8 * 1024, 0.2 * base) + (2 * ASAN_QUARANTINE_MB * 1024 if ASAN else 0)
        ok_final = v[0] - base < allow
        ok_load = last - base < allow
        rss_ok &= ok_final
        rss_load_ok &= ok_load
        name = "master" if pid == S.GW.pid else "worker %d%s" % (pid, " (restarted)" if WORKERS[pid]["start"] > S.T_GW_START else "")
        rss_lines.append("  %-24s RSS steady %s, end of load %s, peak %s, after idle %s (%+.1f MB, allowed < %.1f MB)"
                         % (name, fmt_mb(base), fmt_mb(last), fmt_mb(peak), fmt_mb(v[0]), (v[0] - base) / 1024, allow / 1024))
        want = idle_fds.get(S.GW.pid) if pid == S.GW.pid else worker_idle_fds
        okf = v[1] <= want + 2
        fd_ok &= okf
        fd_detail.append("%s %d (idle start %d)" % (name, v[1], want))
        rss_lines.append("  %-24s fds idle start %d, peak %d, after idle %d"
                         % ("", want, max([s[2][pid][1] for s in SAMPLES if pid in s[2]]), v[1]))
    print("\n".join(rss_lines))

    # Checks.
    unexplained = cats.get(CAT_UNEXPLAINED, 0)
    dropped = cats.get(CAT_SLOW, 0)
    check("delivery: no unexplained loss", unexplained == 0 and c["expected"] > 0,
          "%d expected deliveries, %d delivered, %d lost in the backplane and counted, %d dropped with a slow consumer, %d unexplained"
          % (c["expected"], c["delivered"], cats.get(CAT_COUNTED, 0), dropped, unexplained))
    check("delivery: backplane losses counted by the gateway", cats.get(CAT_UNCOUNTED, 0) == 0,
          ("; ".join(LOST_BY_WORKER) or "no delivery missed between workers") +
          ("; %d more in fault windows before a first number (not detectable)" % cats[CAT_UNBASELINED]
           if cats.get(CAT_UNBASELINED) else ""))
    check("delivery: drops are counted by the gateway",
          dropped == 0 or (totals["wsgw_slow_consumer_closes_total"] > 0 and totals["wsgw_dropped_messages_total"] > 0),
          "%d drop-explained misses; slow_consumer_closes %d, dropped_messages %d"
          % (dropped, totals["wsgw_slow_consumer_closes_total"], totals["wsgw_dropped_messages_total"]))
    check("delivery: no duplicates", c["duplicate"] == 0, "%d duplicate deliveries" % c["duplicate"])
    check("delivery: order per sender and target", c["reordered"] == 0, "%d out of order" % c["reordered"])
    check("delivery: only to subscribers", c["misrouted"] + c["foreign_delivery"] == 0,
          "%d misrouted, %d unknown payloads" % (c["misrouted"], c["foreign_delivery"]))
    check("acks: every envelope answered, as documented",
          sum(c[k] for k in ("ack_missing", "emit_error", "stray_ack", "stray_error", "join_leave_error",
                             "unexpected_envelope", "backend_acked", "join_timeout", "client_protocol")) == 0,
          "%d accepted; ack missing %d, unexpected errors %d, stray %d, join/leave errors %d, join timeouts %d"
          % (c["accepted"], c["ack_missing"], c["emit_error"], c["stray_ack"] + c["stray_error"] + c["unexpected_envelope"],
             c["join_leave_error"], c["join_timeout"]))
    check("misbehaving: garbage gets error envelopes and close codes", c["garbage"] == 0 and c["garbage_ok"] > 0,
          "%d garbage clients as expected, %d interrupted by a kill, %d wrong" % (c["garbage_ok"], c["garbage_interrupted"], c["garbage"]))
    # A killed worker's counters since its last sample die with it: the log
    # has a line for every cut.
    cut_lines = sum(1 for l in log.splitlines() if "event=slow_consumer" in l)
    check("misbehaving: non-readers cut off as slow consumers (1008)",
          c["nonreader"] == 0 and c["nonreader_1008"] > 0 and totals["wsgw_slow_consumer_closes_total"] > 0
          and cut_lines >= c["nonreader_1008"],
          "%d closed 1008, %d interrupted by a kill, %d wrong; the gateway logged %d slow-consumer cuts (counters: %d)"
          % (c["nonreader_1008"], c["nonreader_interrupted"], c["nonreader"], cut_lines,
             totals["wsgw_slow_consumer_closes_total"]))
    unexp = [x for x in CLIENTS if isinstance(x, Normal) and x.unexpected and not near_kill(x.unexpected[0], x)]
    check("clients: no unexpected disconnects or connect failures", not unexp and c["connect_failed"] == 0 and c["close_timeout"] == 0
          and c["client_not_closed"] == 0 and c["driver_exception"] == 0,
          "%d normal clients closed by the server outside kills%s, %d connect failures, %d close timeouts, %d driver exceptions"
          % (len(unexp), " (codes %s)" % dict(collections.Counter(x.unexpected[1] for x in unexp)) if unexp else "",
             c["connect_failed"], c["close_timeout"], c["driver_exception"]))
    gauges = ["wsgw_connections", "wsgw_handshakes_pending", "wsgw_rooms", "wsgw_room_memberships",
              "wsgw_queued_bytes", "wsgw_backplane_pending_bytes"]
    # The /metrics request is itself a connection in its handshake: 1 is zero.
    want = {"wsgw_handshakes_pending": 1}
    left = {pid: {g[5:]: int(m.get(g, -1)) for g in gauges if m.get(g, -1) != want.get(g, 0)}
            for pid, m in final_metrics.items()}
    left = {p: v for p, v in left.items() if v}
    check("leaks: gateway gauges back to zero", len(final_metrics) == 2 and not left,
          "both workers: connections, rooms, memberships, queued bytes, pending publishes 0, handshakes 1 (the /metrics request)" if not left
          else "left: %r" % left)
    subs = {pid: int(m.get("wsgw_backplane_subscriptions", -1)) for pid, m in final_metrics.items()}
    check("leaks: backplane subscriptions back to P:all", channels == ["wsgw:all"] and numsub[-1:] == ["2"]
          and all(v == 1 for v in subs.values()),
          "Redis channels %s, wsgw:all subscribers %s, per-worker subscriptions %s"
          % (channels[:6] + (["..."] if len(channels) > 6 else []), numsub[-1:], subs))
    backs = all(not ws or ws[-1][1] != INF for ws in (wins.get(p) for p in workers_now))
    check("faults: Redis restarted, workers killed and restarted, backplane back up",
          len(REDIS_OUTAGES) == sum(1 for _, w in SCHEDULE if w == "redis") and len(KILLED) == sum(1 for _, w in SCHEDULE if w == "worker")
          and len(workers_now) == 2 and not set(workers_now) & set(KILLED) and backs,
          "%d Redis restarts, %d workers killed, workers now %s, backplane up on both: %s"
          % (len(REDIS_OUTAGES), len(KILLED), workers_now, backs))
    check("faults: backplane up outside the scheduled faults", not unscheduled,
          "%d /healthz answers not up outside the fault windows%s" % (len(unscheduled), (": %s" % unscheduled[:5]) if unscheduled else ""))
    partition_check()
    died_log = [l for l in log.splitlines() if "worker_died" in l]
    check("processes: only the killed workers died", not died and len(died_log) == len(KILLED)
          and all("signal=9" in l for l in died_log),
          "%d worker deaths logged (%d killed by the soak)%s" % (len(died_log), len(KILLED), "; unexpected: %s" % died if died else ""))
    check("processes: master exits 0 on SIGTERM", code == 0, "exit status %s after %.1f s" % (code, stop_s))
    san = [l for l in log.splitlines() if "Sanitizer" in l or "runtime error:" in l]
    errs = [l for l in log.splitlines() if "level=error" in l]
    check("processes: no sanitizer report, no error log lines", not san and not errs,
          "%d sanitizer lines, %d level=error lines%s" % (len(san), len(errs), (": " + (san + errs)[0][:200]) if san or errs else ""))
    check("resources: fd counts back to the idle baseline", fd_ok, "; ".join(fd_detail))
    check("resources: RSS bounded under load", rss_load_ok,
          "end-of-load median vs steady median after warm-up, < max(8 MB, 20%%)%s per process" % ASAN_NOTE)
    check("resources: RSS bounded after the final idle phase", rss_ok,
          "after idle vs steady median after warm-up, < max(8 MB, 20%%)%s per process" % ASAN_NOTE)

    print()
    print("== failures")
    shown = False
    for kind, exs in sorted(ST.examples.items()):
        print("  %s: %d, e.g." % (kind, ST.c[kind]))
        for e in exs:
            print("      " + e)
        shown = True
    if not shown:
        print("  none")
    print()
    print("== checks")
    passed = failed = xfailed = 0
    for name, ok, detail in CHECKS:
        tag = "PASS" if ok else ("XFAIL" if name in XFAIL else "FAIL")
        if ok:
            passed += 1
        elif name in XFAIL:
            xfailed += 1
        else:
            failed += 1
        print("  %-5s %-58s %s" % (tag, name, detail))
    print()
    print("soak: %d passed, %d failed%s" % (passed, failed, ", %d xfailed" % xfailed if xfailed else ""), flush=True)
    sys.exit(1 if failed else 0)
