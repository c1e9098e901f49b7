# bench-lib.sh — shell helpers shared by run-bench.sh (make bench) and
# compare.sh (make bench-compare).  Sourced; needs OUT (the results folder).

# CPU pinning: the server on CPU 0, the generator on CPU 1, when possible.
SRV_PIN=() GEN_PIN=() PINNING="not pinned (taskset or a second CPU missing)"
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    SRV_PIN=(taskset -c 0) GEN_PIN=(taskset -c 1) PINNING="server on CPU 0, generator on CPU 1"
fi

# Other work on the machine skews every figure: warn_if_busy NAME says so
# when the CPUs are less than 90% idle over one second before the run.
warn_if_busy() {
    local a b t=0 k idle
    read -ra a < /proc/stat; sleep 1; read -ra b < /proc/stat
    for k in 1 2 3 4 5 6 7 8; do t=$((t + b[k] - a[k])); done
    idle=$(( t > 0 ? (b[4] - a[4]) * 100 / t : 100 ))
    if [ "$idle" -lt 90 ]; then
        echo "$1: warning: the CPUs were only $idle% idle before the run: other work on this machine will skew the figures" >&2
    fi
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT [PID]: until 127.0.0.1:PORT accepts (5 s), or PID exits.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}

# A redis-server on a free loopback port: REDIS_PORT, REDIS_PID.
REDIS_PID= REDIS_PORT=
start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --loglevel warning >"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_port "$REDIS_PORT" "$REDIS_PID" && return 0
    echo "bench: redis-server did not start (see $OUT/redis.log)" >&2
    return 1
}
stop_redis() { [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null; REDIS_PID=; }

# value KEY RESULT-LINE: one key=value of the generator's RESULT line.
value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
# si X: 4.22M, 168k, 950
si() { awk -v x="$1" 'BEGIN { if (x >= 1e6) printf "%.2fM", x / 1e6; else if (x >= 1e4) printf "%.0fk", x / 1e3; else printf "%.0f", x }'; }
