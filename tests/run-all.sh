#!/usr/bin/env bash
# make test: unit binaries (and corpus replays) via run-unit.sh, then the
# integration suite with pytest, then the Node tests (node --test); prints
# one closing line that adds them all up:
#   "total: N passed, M failed"  (one word and a colon before it: the form CI reads)
# Usage: run-all.sh UNIT_CMD... -- PYTEST_ARGS... [--node NODE_TEST_FILE...]
# NODE_TEST_FLAGS in the environment is added to `node --test`.
set -u
unit=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do unit+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
pyargs=()
while [ $# -gt 0 ] && [ "$1" != "--node" ]; do pyargs+=("$1"); shift; done
node_mode=0
if [ "${1:-}" = "--node" ]; then node_mode=1; shift; fi
node_tests=("$@")
set -- "${pyargs[@]+"${pyargs[@]}"}"
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
np=0; nf=0
if [ "$node_mode" = 1 ]; then
    echo "== Node tests (node --test: clients/js/wsgw.js, the demo page in Chromium, real gateways and Redis)"
    # The spec reporter for people, TAP in a file for the counts.
    nlog=$(mktemp)
    start=$(date +%s)
    if [ ${#node_tests[@]} -eq 0 ]; then echo "FAIL no Node test files given"; fi
    # shellcheck disable=SC2086 # NODE_TEST_FLAGS is a list of flags
    rc=1
    [ ${#node_tests[@]} -gt 0 ] && { node --test ${NODE_TEST_FLAGS:-} \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$nlog" "${node_tests[@]}" 2>&1; rc=$?; }
    tap() { sed -n "s/^# $1 \([0-9]*\)\$/\1/p" "$nlog" | tail -n 1; }
    np=$(tap pass); np=${np:-0}
    nf=$(tap fail); nc=$(tap cancelled)
    nf=$(( ${nf:-0} + ${nc:-0} ))
    echo "# node: $np passed, $nf failed in $(( $(date +%s) - start ))s"
    # No test at all (no files, nothing collected) is a failure, not a pass;
    # so is a non-zero exit that no count explains.
    if [ "$np" -eq 0 ] && [ "$nf" -eq 0 ]; then nf=1; fi
    if [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then nf=1; fi
    rm -f "$nlog"
fi
echo "total: $((up + ip + np)) passed, $((uf + if_ + nf)) failed"
[ $((uf + if_ + nf)) -eq 0 ]
