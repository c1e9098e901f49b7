#!/usr/bin/env bash
# Runs each libFuzzer target given for a bounded time and fails when any of
# them found something (`make fuzz`).
#
#   tests/fuzz/run-fuzz.sh [--seconds N] [--out DIR] BINARY...
#
# BINARY is a libFuzzer executable named fuzz_NAME; its seed corpus is
# tests/fuzz/corpus/NAME when that exists.  Each target runs to the end
# whatever the others did, for N seconds (default 60).  New corpus entries
# go to DIR/corpus-NAME, crash/leak/timeout/oom inputs to
# DIR/artifacts-NAME/, the full log to DIR/log-NAME.txt (DIR defaults to
# build/fuzz).  At the end one line per target that failed names its exit
# status and the input that made it fail; the exit status is 1 when any
# failed, else 0.
set -u

seconds=60 out=build/fuzz
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "run-fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "usage: run-fuzz.sh [--seconds N] [--out DIR] BINARY..." >&2
    exit 2
fi
case "$seconds" in ''|*[!0-9]*) echo "run-fuzz.sh: --seconds wants a number, not '$seconds'" >&2; exit 2 ;; esac

failures=()
for bin in "$@"; do
    base=$(basename "$bin")
    name=${base#fuzz_}
    seeds=()
    [ -d "tests/fuzz/corpus/$name" ] && seeds=("tests/fuzz/corpus/$name")
    corpus="$out/corpus-$name" artifacts="$out/artifacts-$name" log="$out/log-$name.txt"
    mkdir -p "$corpus" "$artifacts"
    echo "== fuzz $name for ${seconds}s"
    # -max_total_time bounds a healthy run; the outer timeout only a fuzzer
    # that stops answering altogether (it then counts as a failure, 124).
    timeout --kill-after=10 $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    tail -n 12 "$log"
    if [ "$rc" -ne 0 ]; then
        # libFuzzer names the input it saved: "Test unit written to PATH".
        written=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | paste -sd' ')
        failures+=("FAILED $name (exit $rc): ${written:-no input saved} (log: $log)")
    fi
    echo "   new corpus entries: $corpus (merge with: make fuzz-merge)"
done

echo "== fuzz: $# targets, ${#failures[@]} failed"
for f in "${failures[@]}"; do echo "$f"; done
[ ${#failures[@]} -eq 0 ]
