#!/usr/bin/env bash
# run-bench.sh — `make bench`: build/wsgw under load from build/bench/loadgen.
#
# For each scenario a fresh gateway is started on a free loopback port
# (pinned to CPU 0, the generator to CPU 1, when taskset and two CPUs are
# there), the generator runs against it, and the gateway is stopped with
# SIGTERM and must exit 0.  Scenarios:
#   idle        IDLE_N connections joined to one room: server VmRSS before
#               and after, bytes per connection
#   handshakes  HS_N connect + upgrade + welcome + close, HS_CONC at a time
#   fanout      FAN_SUBS subscribers of one room: full speed (window
#               FAN_WINDOW) for throughput, then paced at FAN_RATE msgs/s
#               for latency below saturation
#   echo        ECHO_CONNS connections, one message in flight each
#   cross       the fanout again with --workers 2 and a redis-server the
#               script starts: subscribers on both workers, the publisher on
#               one, so half the deliveries cross Redis (CROSS=0 skips it)
# The last four run REPEAT times (default 3) and the median run is shown
# with the spread.  Prints a table; exits 1 if any scenario failed.  Logs and the generator's
# full output are kept in build/bench/results/.  Sizes can be overridden
# from the environment (IDLE_N=1000 make bench).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WSGW=${WSGW:-$ROOT/build/wsgw}
LOADGEN=${LOADGEN:-$ROOT/build/bench/loadgen}
OUT=${BENCH_OUT:-$ROOT/build/bench/results}
IDLE_N=${IDLE_N:-10000}
IDLE_HOLD=${IDLE_HOLD:-3}
HS_N=${HS_N:-20000}
HS_CONC=${HS_CONC:-100}
FAN_SUBS=${FAN_SUBS:-5000}
FAN_MSGS=${FAN_MSGS:-2000}
FAN_WINDOW=${FAN_WINDOW:-64}
FAN_RATE=${FAN_RATE:-20}
FAN_RATE_SECS=${FAN_RATE_SECS:-5}
ECHO_CONNS=${ECHO_CONNS:-100}
ECHO_MSGS=${ECHO_MSGS:-3000}
TIMEOUT=${TIMEOUT:-60}
REPEAT=${REPEAT:-3}

mkdir -p "$OUT"
for f in "$WSGW" "$LOADGEN"; do
    [ -x "$f" ] || { echo "run-bench: $f is missing (make $f)" >&2; exit 2; }
done

# Each connection is a descriptor, on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_N + 64)) ]; then
    echo "run-bench: open-file limit $(ulimit -n) is under IDLE_N=$IDLE_N" >&2
    exit 2
fi

# shellcheck source=bench-lib.sh
. "$ROOT/tests/bench/bench-lib.sh"
warn_if_busy run-bench
echo "== make bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r); $PINNING"

GW_PID=
GW_PORT=
GW_LOG=
GW_EXTRA=()    # more gateway flags for a scenario (the cross-process one)
start_gw() {   # start_gw NAME
    GW_PORT=$(free_port)
    GW_LOG="$OUT/wsgw-$1.log"
    "${SRV_PIN[@]}" "$WSGW" --listen "127.0.0.1:$GW_PORT" --max-connections 20000 \
        --max-pending-handshakes 20000 --log-level warn --drain-timeout 2s \
        --rate-messages 0 --rate-bytes 0 "${GW_EXTRA[@]}" >"$GW_LOG" 2>&1 &
    GW_PID=$!
    wait_port "$GW_PORT" "$GW_PID" && return 0
    echo "run-bench: wsgw did not start:" >&2
    cat "$GW_LOG" >&2
    return 1
}

stop_gw() {    # returns wsgw's exit status (0 expected)
    kill -TERM "$GW_PID" 2>/dev/null
    for _ in $(seq 200); do
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$GW_PID" 2>/dev/null; then
        echo "run-bench: wsgw did not exit after SIGTERM" >&2
        kill -KILL "$GW_PID"
    fi
    wait "$GW_PID"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }


ROWS=()
NOTES=()
FAILED=0
row() { ROWS+=("$(printf '%-34s %-33s %-19s %-5s %-5s %s' "$@")"); }
fail() { echo "run-bench: $1 FAILED (see $OUT)" >&2; FAILED=1; row "$1" FAILED - - - -; }

lg() {         # lg NAME ARGS... : runs the generator, prints its output, sets RES
    local name=$1; shift
    "${GEN_PIN[@]}" "$LOADGEN" --url "ws://127.0.0.1:$GW_PORT/ws" --server-pid "$GW_PID" \
        --timeout "$TIMEOUT" "$@" >"$OUT/$name.out" 2>&1
    local rc=$?
    sed 's/^/    /' "$OUT/$name.out"
    RES=$(grep '^RESULT ' "$OUT/$name.out" | tail -n 1)
    return $rc
}

pct() { awk -v x="$1" 'BEGIN { if (x < 0) print "-"; else printf "%.0f%%", x * 100 }'; }
us() { awk -v x="$1" 'BEGIN { if (x >= 10000) printf "%.1f ms", x / 1000; else printf "%.0f us", x }'; }

# ---- idle: memory per connection --------------------------------------------------
echo "== idle: $IDLE_N connections joined to one room, server memory before and after"
# A warm-up of 500 connections first, so the library and code pages read at
# the first connection are in the baseline; then the growth of anonymous
# memory (the heap: what connections cost) and of the whole RSS.
anon_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
if start_gw idle; then
    "${GEN_PIN[@]}" "$LOADGEN" --url "ws://127.0.0.1:$GW_PORT/ws" --timeout "$TIMEOUT" --hold 0 idle 500 \
        >"$OUT/idle-warmup.out" 2>&1
    sleep 0.5
    before=$(rss_kb "$GW_PID") abefore=$(anon_kb "$GW_PID")
    "${GEN_PIN[@]}" "$LOADGEN" --url "ws://127.0.0.1:$GW_PORT/ws" --server-pid "$GW_PID" \
        --timeout "$TIMEOUT" --hold "$IDLE_HOLD" idle "$IDLE_N" >"$OUT/idle.out" 2>&1 &
    lg_pid=$!
    after=
    for _ in $(seq $((TIMEOUT * 10))); do
        if grep -q '^ALL_JOINED' "$OUT/idle.out"; then
            sleep 1                      # let the last replies drain
            after=$(rss_kb "$GW_PID") aafter=$(anon_kb "$GW_PID")
            break
        fi
        kill -0 "$lg_pid" 2>/dev/null || break
        sleep 0.1
    done
    wait "$lg_pid"; rc=$?
    sed 's/^/    /' "$OUT/idle.out"
    RES=$(grep '^RESULT ' "$OUT/idle.out" | tail -n 1)
    stop_gw; grc=$?
    if [ $rc -eq 0 ] && [ $grc -eq 0 ] && [ -n "$after" ]; then
        per=$(( (after - before) * 1024 / IDLE_N )) aper=$(( (aafter - abefore) * 1024 / IDLE_N ))
        echo "    wsgw VmRSS ${before} kB -> ${after} kB ($per B/connection), RssAnon ${abefore} kB -> ${aafter} kB ($aper B/connection)"
        row "idle memory, $IDLE_N conns" "$aper B/conn anon, $per B RSS" - "$(pct "$(value gen_cpu "$RES")")" \
            "$(pct "$(value srv_cpu "$RES")")" "memory"
    else
        fail "idle memory, $IDLE_N conns"
    fi
else
    fail "idle memory, $IDLE_N conns"
fi

# ---- throughput scenarios: REPEAT runs each, the median is reported --------------
# measure LABEL METRIC UNIT NAME LOADGEN-ARGS...: runs the generator REPEAT
# times, each against a fresh gateway, and adds the median run (by METRIC,
# a RESULT key) to the table with the spread of METRIC over all runs.
measure() {
    local label=$1 metric=$2 unit=$3 name=$4; shift 4
    local results=() i
    for i in $(seq "$REPEAT"); do
        echo "== $label (run $i of $REPEAT)"
        if ! start_gw "$name-$i"; then fail "$label"; return; fi
        lg "$name-$i" "$@"; local rc=$?
        stop_gw; local grc=$?
        if [ $rc -ne 0 ] || [ $grc -ne 0 ]; then
            [ $grc -ne 0 ] && echo "run-bench: wsgw exited with status $grc" >&2
            fail "$label"; return
        fi
        results+=("$RES")
    done
    local sorted med lo hi
    sorted=$(for r in "${results[@]}"; do echo "$(value "$metric" "$r") $r"; done | sort -n)
    med=$(sed -n "$(( (REPEAT + 1) / 2 ))p" <<<"$sorted" | cut -d' ' -f2-)
    lo=$(head -n 1 <<<"$sorted" | cut -d' ' -f1)
    hi=$(tail -n 1 <<<"$sorted" | cut -d' ' -f1)
    local lat=-
    if [ -n "$(value p50_us "$med")" ]; then lat="$(us "$(value p50_us "$med")") / $(us "$(value p99_us "$med")")"; fi
    local spread="" shown
    if [ "$metric" = p50_us ]; then
        # A paced run: the rate is fixed, the latency is the figure.
        shown="$(si "$(value deliveries_per_s "$med")") $unit"
        [ "$REPEAT" -gt 1 ] && spread=" (p50 $(us "$lo")-$(us "$hi"))"
    else
        shown="$(si "$(value "$metric" "$med")") $unit"
        [ "$REPEAT" -gt 1 ] && spread=" ($(si "$lo")-$(si "$hi"))"
    fi
    row "$label" "$shown$spread" "$lat" \
        "$(pct "$(value gen_cpu "$med")")" "$(pct "$(value srv_cpu "$med")")" "$(value bound "$med")"
    if [ -n "$(value first10_ms "$med")" ]; then
        NOTES+=("$label: mean latency of the first-joined 10% of subscribers $(value first10_ms "$med") ms, of the last-joined 10% $(value last10_ms "$med") ms")
    fi
}

measure "handshakes, $HS_N x $HS_CONC concurrent" per_s "hs/s" handshakes \
    handshakes "$HS_N" --concurrency "$HS_CONC"
measure "fanout $FAN_SUBS subs, full speed" deliveries_per_s "deliv/s" fanout \
    fanout --subscribers "$FAN_SUBS" --messages "$FAN_MSGS" --window "$FAN_WINDOW"
measure "fanout $FAN_SUBS subs, $FAN_RATE msg/s" p50_us "deliv/s" fanout-paced \
    fanout --subscribers "$FAN_SUBS" --messages $((FAN_RATE * FAN_RATE_SECS)) --rate "$FAN_RATE" --window 1000
measure "echo, $ECHO_CONNS conns" per_s "rt/s" echo \
    echo --conns "$ECHO_CONNS" --messages "$ECHO_MSGS"

# ---- across processes: 2 workers sharing a room through Redis ---------------------
# The subscribers land on both workers (SO_REUSEPORT), the publisher on one
# of them: every delivery to the other worker's half crosses Redis.  The
# server CPU column counts the master only (the workers are its children).
if [ "${CROSS:-1}" = 1 ] && command -v redis-server >/dev/null 2>&1; then
    if start_redis; then
        GW_EXTRA=(--workers 2 --redis-url "redis://127.0.0.1:$REDIS_PORT")
        measure "fanout $FAN_SUBS subs, 2 workers+Redis" deliveries_per_s "deliv/s" cross \
            fanout --subscribers "$FAN_SUBS" --messages "$FAN_MSGS" --window "$FAN_WINDOW"
        measure "fanout $FAN_SUBS subs, 2 workers, $FAN_RATE/s" p50_us "deliv/s" cross-paced \
            fanout --subscribers "$FAN_SUBS" --messages $((FAN_RATE * FAN_RATE_SECS)) --rate "$FAN_RATE" --window 1000
        GW_EXTRA=()
        stop_redis
    else
        fail "fanout $FAN_SUBS subs, 2 workers+Redis"
    fi
fi

# ---- table -------------------------------------------------------------------------------
echo
echo "== results ($PINNING; CPU = share of one core during the measured phase)"
printf '%-34s %-33s %-19s %-5s %-5s %s\n' scenario result "p50 / p99" gen srv limit
for r in "${ROWS[@]}"; do echo "$r"; done
for n in "${NOTES[@]}"; do echo "  $n"; done
if [ $FAILED -ne 0 ]; then
    echo "run-bench: some scenarios FAILED" >&2
    exit 1
fi
