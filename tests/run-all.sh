#!/usr/bin/env bash
# make test: unit binaries (and corpus replays) via run-unit.sh, then the
# integration suite with pytest; prints one closing line that adds both up:
#   "# all tests: N passed, M failed"
# Usage: run-all.sh UNIT_CMD... -- PYTEST_ARGS...
set -u
unit=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do unit+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
here=$(dirname "$0")

ulog=$(mktemp)
"$here/run-unit.sh" "${unit[@]}" | tee "$ulog"
read -r up uf < <(sed -n 's/^# total: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$ulog" | tail -n 1)
rm -f "$ulog"
up=${up:-0}; uf=${uf:-1}

ip=0; if_=0
if [ $# -gt 0 ]; then
    echo "== integration tests (pytest, real gateway processes, Python websockets)"
    plog=$(mktemp)
    /usr/bin/python3 -m pytest -p no:cacheprovider -q "$@" 2>&1 | tee "$plog"
    rc=${PIPESTATUS[0]}
    last=$(grep -E '(passed|failed|error)' "$plog" | tail -n 1)
    count() { grep -oE "[0-9]+ $1" <<<"$last" | grep -oE '[0-9]+' | head -n 1; }
    ip=$(count passed); ip=${ip:-0}
    f1=$(count failed); f1=${f1:-0}
    f2=$(count 'errors?'); f2=${f2:-0}
    if_=$((f1 + f2))
    # pytest exit 5 = no test collected: that is a failure here, not a pass.
    if [ "$rc" -ne 0 ] && [ "$if_" -eq 0 ]; then if_=1; fi
    rm -f "$plog"
fi
echo "# all tests: $((up + ip)) passed, $((uf + if_)) failed"
[ $((uf + if_)) -eq 0 ]
