#!/usr/bin/env bash
# compare.sh — `make bench-compare`: wsgw side by side with its peers, one
# load generator (build/bench/loadgen), one table.
#
# Servers (tests/bench/peers/README.md):
#   ceiling  build/bench/ceiling: pre-framed bytes, no JSON, no rooms — what
#            the kernel allows on this machine
#   wsgw     build/wsgw, the full gateway path (envelopes decoded, rooms,
#            metrics), rate limits off
#   bun      Bun.serve (uWebSockets topics), installed from npm
#   ws       Node + ws, installed from npm
#   sio      Socket.IO 4 + Redis adapter, 2 processes (cross-process row only)
# The npm packages go to a cache outside the tree (peers/install.sh).
#
# Scenarios, each against a fresh server pinned to CPU 0 with the generator
# on CPU 1: idle memory (IDLE_N joined connections, after a warm-up, anon
# and total RSS per connection), handshakes, fan-out to FAN_SUBS
# subscribers of one room at full speed and paced at PACED_RATE
# deliveries/s (latency), echo, fan-out with permessage-deflate, over TLS,
# across 2 processes through Redis (wsgw workers / Socket.IO adapter), and
# BIG_N connections over BIG_WORKERS wsgw workers.  Throughput figures are
# the median of REPEAT runs.  Each row says whether the generator, not the
# server, was the limit.
#
# Exit status: 0 when every scenario ran (targets missed are reported, not
# fatal: this measures); 1 when a scenario failed; 2 when something is
# missing.  Results and logs: build/bench/compare/.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$ROOT/build
OUT=${BENCH_OUT:-$B/bench/compare}
LOADGEN=$B/bench/loadgen
WSGW=$B/wsgw
CEILING=$B/bench/ceiling
PEERS=$ROOT/tests/bench/peers
IDLE_N=${IDLE_N:-10000}
HS_N=${HS_N:-20000}
HS_CONC=${HS_CONC:-100}
FAN_SUBS=${FAN_SUBS:-5000}
FAN_MSGS=${FAN_MSGS:-2000}         # per run for the fast servers
SLOW_MSGS=${SLOW_MSGS:-200}        # for Node ws and Socket.IO (~0.1 M deliveries/s)
FAN_WINDOW=${FAN_WINDOW:-64}
PACED_RATE=${PACED_RATE:-50000}    # deliveries/s for the latency rows
PACED_SECS=${PACED_SECS:-5}
ECHO_CONNS=${ECHO_CONNS:-100}
ECHO_MSGS=${ECHO_MSGS:-3000}
BIG_N=${BIG_N:-100000}
BIG_WORKERS=${BIG_WORKERS:-6}
REPEAT=${REPEAT:-3}
TIMEOUT=${TIMEOUT:-120}
SERVERS=${SERVERS:-"ceiling wsgw bun ws"}
SKIP=${SKIP:-}                      # scenario names to leave out, e.g. SKIP="big tls"

mkdir -p "$OUT"
rm -f "$OUT"/*.out "$OUT"/*.log
die() { echo "bench-compare: $*" >&2; exit 2; }
skip() { [[ " $SKIP " == *" $1 "* ]]; }
for f in "$LOADGEN" "$WSGW" "$CEILING"; do [ -x "$f" ] || die "$f is missing (make $f)"; done
command -v redis-server >/dev/null || die "redis-server is missing (make deps)"
command -v openssl >/dev/null || die "openssl is missing (make deps)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_N + 100)) ] ||
    die "open-file limit $(ulimit -n) is under IDLE_N=$IDLE_N"

CACHE=$("$PEERS/install.sh" | tail -n 1) || die "installing the npm peers failed (tests/bench/peers/install.sh)"
BUN=$CACHE/node_modules/.bin/bun
[ -x "$BUN" ] || die "bun is not in $CACHE"
NODE=$(command -v node) || die "node is missing"
export NODE_PATH=$CACHE/node_modules

# shellcheck source=bench-lib.sh
. "$ROOT/tests/bench/bench-lib.sh"
warn_if_busy bench-compare
MACHINE="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB, Linux $(uname -r)"
echo "== make bench-compare: $MACHINE; $PINNING"
echo "   bun $("$BUN" --version), node $("$NODE" --version), $(redis-server --version | cut -d' ' -f3)"

# A self-signed certificate for the TLS rows (P-256, as a deployment would).
CERT=$OUT/cert.pem KEY=$OUT/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -keyout "$KEY" -out "$CERT" >/dev/null 2>&1 || die "openssl could not make a certificate"

# ---- servers -------------------------------------------------------------------------

SRV_PID= SRV_PORT= SRV_LOG= SRV_SCHEME=ws SRV_PATH=/ws DIALECT=()

# start_server KIND NAME [plain|deflate|tls|cross|big]
start_server() {
    local kind=$1 name=$2 mode=${3:-plain}
    SRV_PORT=$(free_port) SRV_LOG="$OUT/$name.log" SRV_SCHEME=ws SRV_PATH=/ws DIALECT=()
    local cmd=() ready=port
    case $kind in
    ceiling)
        cmd=("$CEILING" "$SRV_PORT")
        [ "$mode" = tls ] && cmd+=(--tls "$CERT" "$KEY") ;;
    wsgw)
        local lis=(--listen "127.0.0.1:$SRV_PORT")
        [ "$mode" = tls ] && lis=(--listen "127.0.0.1:$(free_port)" --tls-listen "127.0.0.1:$SRV_PORT"
                                  --tls-cert "$CERT" --tls-key "$KEY")
        # Per process: the file limit here is 20 000, so one worker holds
        # at most 19 500 connections.
        cmd=("$WSGW" "${lis[@]}" --max-connections 19500 --max-pending-handshakes 19500
             --log-level warn --drain-timeout 2s --rate-messages 0 --rate-bytes 0)
        [ "$mode" = deflate ] && cmd+=(--enable-compression true)
        [ "$mode" = cross ] && cmd+=(--workers 2 --redis-url "redis://127.0.0.1:$REDIS_PORT")
        [ "$mode" = big ] && cmd+=(--workers "$BIG_WORKERS" --redis-url "redis://127.0.0.1:$REDIS_PORT") ;;
    bun)
        cmd=("$BUN" "$PEERS/bun-peer.js" --port "$SRV_PORT") ready=line
        [ "$mode" = deflate ] && cmd+=(--deflate)
        [ "$mode" = tls ] && cmd+=(--tls "$CERT" "$KEY") ;;
    ws)
        cmd=("$NODE" "$PEERS/ws-peer.js" --port "$SRV_PORT") ready=line
        [ "$mode" = deflate ] && cmd+=(--deflate) ;;
    sio)
        cmd=("$NODE" "$PEERS/sio-peer.js" --port "$SRV_PORT" --redis "redis://127.0.0.1:$REDIS_PORT") ready=line
        [ "$mode" = cross ] && cmd+=(--workers 2)
        SRV_PATH=/socket.io/ DIALECT=(--dialect sio) ;;
    esac
    [ "$mode" = tls ] && SRV_SCHEME=wss
    "${SRV_PIN[@]}" "${cmd[@]}" >"$SRV_LOG" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 300); do
        if ! kill -0 "$SRV_PID" 2>/dev/null; then break; fi
        if [ $ready = line ]; then grep -q '^LISTENING' "$SRV_LOG" && return 0
        elif (exec 3<>"/dev/tcp/127.0.0.1/$SRV_PORT") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench-compare: $kind ($mode) did not start:" >&2
    tail -n 20 "$SRV_LOG" >&2
    return 1
}

stop_server() {
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$SRV_PID" 2>/dev/null && { pkill -KILL -P "$SRV_PID" 2>/dev/null; kill -KILL "$SRV_PID"; }
    wait "$SRV_PID" 2>/dev/null
    return 0
}

# The server's processes: the one started and its children (wsgw workers,
# node cluster workers).
server_pids() { echo "$SRV_PID" $(pgrep -P "$SRV_PID" 2>/dev/null); }
# Sum of a /proc/PID/status field (kB) over the server's processes.
status_kb() {
    local field=$1 sum=0 p v
    for p in $(server_pids); do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# ---- the generator ------------------------------------------------------------------

RES=
lg() {          # lg NAME ARGS...: one generator run against the running server
    local name=$1; shift
    local extra=()
    [ "${LG_DEFLATE:-0}" = 1 ] && extra+=(--deflate)
    "${GEN_PIN[@]}" "$LOADGEN" --url "$SRV_SCHEME://127.0.0.1:$SRV_PORT$SRV_PATH" --server-pid "$(server_pids | tr ' ' ',')" \
        --timeout "$TIMEOUT" "${DIALECT[@]}" "${extra[@]}" "$@" >"$OUT/$name.out" 2>&1
    local rc=$?
    RES=$(grep '^RESULT ' "$OUT/$name.out" | tail -n 1)
    if [ $rc -ne 0 ]; then
        echo "bench-compare: $name: the generator exited $rc:" >&2
        tail -n 5 "$OUT/$name.out" >&2
    fi
    return $rc
}

declare -A R        # R[server:scenario] = the figure
declare -A SHOW     # SHOW[server:scenario] = how it is printed
declare -A BOUND    # BOUND[server:scenario] = the generator's verdict (server-bound, ...)
declare -A LO HI    # the lowest and highest figure over the runs
declare -A COST     # server CPU microseconds per operation in the median run
FAILED=0
ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1000 }'; }

# measure SERVER SCENARIO MODE METRIC LOADGEN-ARGS...: REPEAT runs against
# fresh servers, the median run by METRIC is kept.
measure() {
    local srv=$1 sc=$2 mode=$3 metric=$4; shift 4
    local runs=() i n=$REPEAT
    for i in $(seq "$n"); do
        echo "-- $srv $sc (run $i of $n)"
        if [ "$mode" = cross ] || [ "$mode" = big ]; then start_redis || { FAILED=1; return 1; }; fi
        if ! start_server "$srv" "$srv-$sc-$i" "$mode"; then FAILED=1; stop_redis; return 1; fi
        if [ "$mode" = cross ]; then sleep 1; fi       # every worker subscribed to Redis
        LG_DEFLATE=$([ "$mode" = deflate ] && echo 1 || echo 0) lg "$srv-$sc-$i" "$@"; local rc=$?
        stop_server; stop_redis
        if [ $rc -ne 0 ]; then FAILED=1; SHOW[$srv:$sc]=FAILED; return 1; fi
        runs+=("$(value "$metric" "$RES") $RES")
        sed -n 's/^RESULT /   /p' "$OUT/$srv-$sc-$i.out"
    done
    local med sorted
    sorted=$(printf '%s\n' "${runs[@]}" | sort -n)
    med=$(sed -n "$(( (n + 1) / 2 ))p" <<<"$sorted" | cut -d' ' -f2-)
    LO[$srv:$sc]=$(head -n 1 <<<"$sorted" | cut -d' ' -f1)
    HI[$srv:$sc]=$(tail -n 1 <<<"$sorted" | cut -d' ' -f1)
    # Server CPU per operation (us): what a generator-bound run still shows.
    COST[$srv:$sc]=$(awk -v c="$(value srv_cpu "$med")" -v r="$(value "$metric" "$med")" \
        'BEGIN { if (r > 0) printf "%.2f", c * 1e6 / r }')
    R[$srv:$sc]=$(value "$metric" "$med")
    BOUND[$srv:$sc]=$(value bound "$med")
    case $metric in
    p99_us) SHOW[$srv:$sc]="$(ms "$(value p50_us "$med")")/$(ms "$(value p99_us "$med")") ms" ;;
    *)      SHOW[$srv:$sc]=$(si "${R[$srv:$sc]}") ;;
    esac
    [ "${BOUND[$srv:$sc]}" = generator-bound ] || [ "${BOUND[$srv:$sc]}" = both-saturated ] && SHOW[$srv:$sc]+="*"
}

# idle SERVER: bytes of anonymous memory (heap) and of total RSS per idle
# connection that joined a room, after a warm-up that touched every code
# path once (so library pages read at the first connection are not counted).
idle() {
    local srv=$1
    echo "-- $srv idle ($IDLE_N connections)"
    start_server "$srv" "$srv-idle" plain || { FAILED=1; return 1; }
    lg "$srv-warmup" --hold 0 idle 500 || { stop_server; FAILED=1; return 1; }
    sleep 1
    local anon0 rss0 anon1 rss1
    anon0=$(status_kb RssAnon) rss0=$(status_kb VmRSS)
    "${GEN_PIN[@]}" "$LOADGEN" --url "$SRV_SCHEME://127.0.0.1:$SRV_PORT$SRV_PATH" --server-pid "$SRV_PID" \
        --timeout "$TIMEOUT" "${DIALECT[@]}" --hold 30 idle "$IDLE_N" >"$OUT/$srv-idle.out" 2>&1 &
    local lgp=$!
    for _ in $(seq $((TIMEOUT * 10))); do
        grep -q '^ALL_JOINED' "$OUT/$srv-idle.out" && break
        kill -0 $lgp 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ALL_JOINED' "$OUT/$srv-idle.out"; then
        kill $lgp 2>/dev/null; wait $lgp; stop_server; FAILED=1; SHOW[$srv:idle]=FAILED
        tail -n 5 "$OUT/$srv-idle.out" >&2
        return 1
    fi
    sleep 2        # replies drained, garbage collectors settled
    anon1=$(status_kb RssAnon) rss1=$(status_kb VmRSS)
    kill -TERM $lgp 2>/dev/null; wait $lgp 2>/dev/null
    stop_server
    R[$srv:idle]=$(( (anon1 - anon0) * 1024 / IDLE_N ))
    R[$srv:idle_rss]=$(( (rss1 - rss0) * 1024 / IDLE_N ))
    SHOW[$srv:idle]="${R[$srv:idle]} B"
    SHOW[$srv:idle_rss]="${R[$srv:idle_rss]} B"
    echo "   anon $anon0 -> $anon1 kB, RSS $rss0 -> $rss1 kB"
}

suite() {       # suite SERVER: every single-process scenario it supports
    local srv=$1 msgs=$FAN_MSGS
    [ "$srv" = ws ] && msgs=$SLOW_MSGS
    skip idle || idle "$srv"
    skip handshakes || measure "$srv" handshakes plain per_s handshakes "$HS_N" --concurrency "$HS_CONC"
    skip fanout || measure "$srv" fanout plain deliveries_per_s \
        fanout --subscribers "$FAN_SUBS" --messages "$msgs" --window "$FAN_WINDOW"
    local rate=$((PACED_RATE / FAN_SUBS))
    skip paced || measure "$srv" paced plain p99_us \
        fanout --subscribers "$FAN_SUBS" --messages $((rate * PACED_SECS)) --rate "$rate" --window 1000000
    skip echo || measure "$srv" echo plain per_s echo --conns "$ECHO_CONNS" --messages "$ECHO_MSGS"
    if [ "$srv" != ceiling ] && ! skip deflate; then
        # Bun and ws compress per subscriber: fewer messages keep a run short.
        local dmsgs=$msgs
        [ "$srv" = bun ] && dmsgs=$((FAN_MSGS / 5))
        [ "$srv" = ws ] && dmsgs=$((SLOW_MSGS / 10))
        measure "$srv" deflate deflate deliveries_per_s \
            fanout --subscribers "$FAN_SUBS" --messages "$dmsgs" --window "$FAN_WINDOW"
    fi
    if [ "$srv" != ws ] && ! skip tls; then
        measure "$srv" tls tls deliveries_per_s \
            fanout --subscribers "$FAN_SUBS" --messages "$msgs" --window "$FAN_WINDOW"
    fi
}

for srv in $SERVERS; do suite "$srv"; done

# ---- across processes through Redis --------------------------------------------------
if ! skip cross; then
    measure wsgw cross cross deliveries_per_s \
        fanout --subscribers "$FAN_SUBS" --messages "$FAN_MSGS" --window "$FAN_WINDOW"
    rate=$((PACED_RATE / FAN_SUBS))
    measure wsgw cross_paced cross p99_us \
        fanout --subscribers "$FAN_SUBS" --messages $((rate * PACED_SECS)) --rate "$rate" --window 1000000
    measure sio cross cross deliveries_per_s \
        fanout --subscribers "$FAN_SUBS" --messages "$SLOW_MSGS" --window "$FAN_WINDOW"
fi

# ---- BIG_N connections over workers ----------------------------------------------------
# One generator process per 20 000 connections (the per-process file limit),
# each from its own source address so the ephemeral ports suffice.
if ! skip big; then
    echo "-- wsgw $BIG_N connections over $BIG_WORKERS workers"
    if start_redis && start_server wsgw wsgw-big big; then
        sleep 1
        ngen=$(( (BIG_N + 18999) / 19000 ))
        per=$(( (BIG_N + ngen - 1) / ngen )) gens=() left=$BIG_N k=0
        while [ "$left" -gt 0 ]; do
            n=$(( left < per ? left : per )); left=$((left - n)); k=$((k + 1))
            "${GEN_PIN[@]}" "$LOADGEN" --url "ws://127.0.0.1:$SRV_PORT/ws" --bind "127.0.0.$((k + 1))" \
                --timeout "$TIMEOUT" --hold 60 idle "$n" >"$OUT/big-$k.out" 2>&1 &
            gens+=($!)
        done
        ok=1
        for ((i = 1; i <= k; i++)); do
            for _ in $(seq $((TIMEOUT * 10))); do
                grep -q '^ALL_JOINED' "$OUT/big-$i.out" && break
                kill -0 "${gens[$((i - 1))]}" 2>/dev/null || break
                sleep 0.1
            done
            grep -q '^ALL_JOINED' "$OUT/big-$i.out" || { ok=0; tail -n 3 "$OUT/big-$i.out" >&2; }
        done
        sleep 2
        worker_rss=() total=0 conns=0
        for p in $(pgrep -P "$SRV_PID"); do
            kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
            worker_rss+=("$((kb / 1024))")
            total=$((total + kb))
        done
        kill -TERM "${gens[@]}" 2>/dev/null; wait "${gens[@]}" 2>/dev/null
        stop_server
        if [ $ok = 1 ]; then
            R[wsgw:big]=$BIG_N
            SHOW[wsgw:big]="$BIG_N conns, worker RSS MiB: ${worker_rss[*]} (total $((total / 1024)) MiB)"
        else
            FAILED=1; SHOW[wsgw:big]=FAILED
        fi
    else
        FAILED=1
    fi
    stop_redis
fi

# ---- the table ------------------------------------------------------------------------
ratio() {       # ratio A B: A/B, or -
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'
}
echo
echo "== results: $MACHINE; $PINNING; medians of $REPEAT"
echo "   (* the generator was at its limit too (bound=generator-bound or both-saturated): the server may do more)"
declare -A LABEL=(
    [idle]="idle memory, B/conn (anon)" [idle_rss]="idle memory, B/conn (RSS)"
    [handshakes]="handshakes/s" [fanout]="fan-out deliveries/s"
    [paced]="p50/p99 at $(si "$PACED_RATE") deliv/s" [echo]="echo round trips/s"
    [deflate]="fan-out, permessage-deflate" [tls]="fan-out, wss://"
    [cross]="fan-out, 2 processes + Redis" [cross_paced]="p50/p99, 2 procs, $(si "$PACED_RATE")/s" [big]="connections over workers"
)
cols=(ceiling wsgw bun ws sio)
printf '%-30s' scenario; for c in "${cols[@]}"; do printf ' %-14s' "$c"; done
printf ' %-10s %-10s %-10s %s\n' wsgw/ceil wsgw/bun wsgw/ws wsgw/sio
for sc in idle idle_rss handshakes fanout paced echo deflate tls cross cross_paced; do
    printf '%-30s' "${LABEL[$sc]}"
    for c in "${cols[@]}"; do printf ' %-14s' "${SHOW[$c:$sc]:--}"; done
    w=${R[wsgw:$sc]:-}
    if [[ $sc == idle* || $sc == *paced ]]; then
        printf ' %-10s %-10s %-10s %s\n' "$(ratio "${R[ceiling:$sc]:-}" "$w")" "$(ratio "${R[bun:$sc]:-}" "$w")" \
            "$(ratio "${R[ws:$sc]:-}" "$w")" "$(ratio "${R[sio:$sc]:-}" "$w")"
    else
        printf ' %-10s %-10s %-10s %s\n' "$(ratio "$w" "${R[ceiling:$sc]:-}")" "$(ratio "$w" "${R[bun:$sc]:-}")" \
            "$(ratio "$w" "${R[ws:$sc]:-}")" "$(ratio "$w" "${R[sio:$sc]:-}")"
    fi
done
echo "   (for memory and latency the ratio is peer/wsgw: above 1x, wsgw uses less)"
printf '%-30s' "server CPU us per delivery"
for c in "${cols[@]}"; do printf ' %-14s' "${COST[$c:fanout]:--}"; done; echo
printf '%-30s' "server CPU us per echo"
for c in "${cols[@]}"; do printf ' %-14s' "${COST[$c:echo]:--}"; done; echo
printf '%-30s' "fan-out range over runs"
for c in "${cols[@]}"; do
    if [ -n "${LO[$c:fanout]:-}" ]; then printf ' %-14s' "$(si "${LO[$c:fanout]}")-$(si "${HI[$c:fanout]}")"; else printf ' %-14s' -; fi
done; echo
[ -n "${SHOW[wsgw:big]:-}" ] && echo "${LABEL[big]}: ${SHOW[wsgw:big]}"

# ---- the targets (issue 8) --------------------------------------------------------------
echo
echo "== targets"
verdict() {     # verdict TEXT AWK-CONDITION VALUES...
    local text=$1 cond=$2; shift 2
    local r
    r=$(awk -v a="${1:-}" -v b="${2:-}" -v c="${3:-}" -v d="${4:-}" "BEGIN { if (a == \"\" || b == \"\") print \"n/a\"; else print (($cond) ? \"met\" : \"MISSED\") }")
    printf '  %-62s %s\n' "$text" "$r"
}
verdict "fan-out >= 2.0M deliveries/s" "a >= 2000000" "${R[wsgw:fanout]:-}" 1
verdict "fan-out >= 1.5x Bun" "a >= 1.5 * b" "${R[wsgw:fanout]:-}" "${R[bun:fanout]:-}"
verdict "fan-out >= 85% of the ceiling" "a >= 0.85 * b" "${R[wsgw:fanout]:-}" "${R[ceiling:fanout]:-}"
verdict "idle joined connection <= 512 B (anon)" "a <= 512" "${R[wsgw:idle]:-}" 1
# Within noise: the ranges over the runs overlap, or wsgw's server CPU per
# round trip is within 10% of the ceiling's (both are usually generator-bound).
verdict "echo within noise of the ceiling (ranges overlap or CPU/rt +10%)" "a >= b || (c > 0 && c <= 1.1 * d)" \
    "${HI[wsgw:echo]:-}" "${LO[ceiling:echo]:-}" "${COST[wsgw:echo]:-0}" "${COST[ceiling:echo]:-0}"
verdict "cross-process >= 10x Socket.IO" "a >= 10 * b" "${R[wsgw:cross]:-}" "${R[sio:cross]:-}"
verdict "cross-process p99 <= single-process p99 + 1 ms" "a <= b + 1000" "${R[wsgw:cross_paced]:-}" "${R[wsgw:paced]:-}"
verdict "permessage-deflate >= 70% of plain" "a >= 0.7 * b" "${R[wsgw:deflate]:-}" "${R[wsgw:fanout]:-}"
verdict "wss:// >= 60% of cleartext" "a >= 0.6 * b" "${R[wsgw:tls]:-}" "${R[wsgw:fanout]:-}"
verdict "handshakes >= 20k/s on one core" "a >= 20000" "${R[wsgw:handshakes]:-}" 1
verdict "$BIG_N connections over workers" "a >= $BIG_N" "${R[wsgw:big]:-}" 1
echo "   logs and generator output: $OUT"
if [ $FAILED -ne 0 ]; then
    echo "bench-compare: some scenarios FAILED" >&2
    exit 1
fi
