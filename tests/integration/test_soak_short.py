"""The soak (tests/soak/soak.py, `make soak`) in short: 40 s, 200
connections, against the ASan build ($WSGW_BIN, default build/wsgw-asan),
with the same faults (Redis killed and restarted, a worker killed) and the
same checks.  It must end with exit status 0 ("soak: N passed, 0 failed").

A check that fails because of a known gateway bug goes into KNOWN_BUGS
(check name as printed by soak.py -> the bug): soak.py then reports it as
XFAIL without failing, and this test is marked xfail with that reason; every
other check still counts.
"""
import os
import subprocess
import sys

import pytest

from conftest import BIN, ROOT

SOAK = os.path.join(ROOT, "tests", "soak", "soak.py")

# check name (as in soak.py's table) -> reason naming the bug; empty: none known.
KNOWN_BUGS = {}


def test_soak_short(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOAK_")}
    env.update(SOAK_SECONDS="40", SOAK_CONNS="200", SOAK_RATE="0.5", WSGW_BIN=BIN,
               SOAK_DIR=str(tmp_path), SOAK_XFAIL=",".join(KNOWN_BUGS))
    r = subprocess.run([sys.executable, SOAK], env=env, capture_output=True, text=True, timeout=180)
    out = r.stdout + r.stderr
    last = out.strip().splitlines()[-1] if out.strip() else ""
    assert r.returncode == 0 and last.startswith("soak: ") and " 0 failed" in last, \
        "soak failed (exit %d), logs in %s:\n%s" % (r.returncode, tmp_path, out[-20000:])
    xfailed = [l for l in out.splitlines() if l.strip().startswith("XFAIL")]
    if xfailed:
        pytest.xfail("; ".join(KNOWN_BUGS[name] for name in KNOWN_BUGS if any(name in l for l in xfailed)))
