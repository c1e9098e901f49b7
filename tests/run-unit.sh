#!/usr/bin/env bash
# Runs every test binary given on the command line, prints their output and
# a final "N passed, N failed" line that sums their "# ... : N passed, M failed"
# summaries.  A binary that crashes or exits non-zero without a summary
# counts as one failure, so a sanitizer abort can never read as a pass.
set -u
passed=0 failed=0
for bin in "$@"; do
    out=$($bin 2>&1); rc=$?  # unquoted: "binary args..."
    printf '%s\n' "$out" | grep -v '^ok ' | sed '/^$/d'
    sums=$(printf '%s\n' "$out" | sed -n 's/^# .*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    if [ -z "$sums" ]; then
        echo "FAIL $bin exited $rc without a summary"; failed=$((failed + 1)); continue
    fi
    while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done <<<"$sums"
    if [ "$rc" -ne 0 ] && [ -z "$(printf '%s\n' "$sums" | awk '$2 > 0')" ]; then
        echo "FAIL $bin exited $rc"; failed=$((failed + 1))
    fi
done
echo "# total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
