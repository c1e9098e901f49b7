#!/usr/bin/env bash
# install.sh — installs the npm packages of the peer servers (Bun, ws,
# Socket.IO with its Redis adapter) into a cache folder outside the tree,
# so `make clean` and a fresh work tree do not download ~100 MB again.
#
#   CACHE=${WSGW_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsgw-bench}
#
# package.json and package-lock.json are copied there and `npm ci` runs only
# when the lock's hash differs from the one stored after the last good
# install.  The last line of stdout is the cache path; everything else goes
# to stderr.  Exits 1 with a message when node or npm is missing or the
# install fails (a half-done install is not marked good).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${WSGW_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsgw-bench}
STAMP=$CACHE/.lock-sha256

die() { echo "peers/install.sh: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is missing (apt-get install nodejs npm, or make deps)"
command -v npm >/dev/null 2>&1 || die "npm is missing (apt-get install npm, or make deps)"

want=$(sha256sum "$HERE/package-lock.json" "$HERE/package.json" | sha256sum | cut -d' ' -f1)

# bun's own package replaces bin/bun.exe with the platform binary in its
# postinstall script.  When scripts do not run (ignore-scripts, or an npm
# that blocks unapproved install scripts) the binary is still on disk in
# the optional @oven/bun-linux-x64 package: point .bin/bun at it.
bun_works() { "$CACHE/node_modules/.bin/bun" --version >/dev/null 2>&1; }
fix_bun() {
    bun_works && return 0
    local arch
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=aarch64 ;;
        *) die "no Bun build for $(uname -m)" ;;
    esac
    local bin=$CACHE/node_modules/@oven/bun-linux-$arch/bin/bun
    [ -x "$bin" ] || die "Bun's binary is not in $bin after npm ci"
    ln -sf "$bin" "$CACHE/node_modules/.bin/bun"
    bun_works || die "$bin does not run"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && bun_works; then
    echo "$CACHE"
    exit 0
fi

mkdir -p "$CACHE"
rm -f "$STAMP"
cp "$HERE/package.json" "$HERE/package-lock.json" "$CACHE/"
echo "peers/install.sh: npm ci in $CACHE" >&2
(cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error >&2) \
    || die "npm ci failed in $CACHE (is the npm registry reachable?)"
fix_bun
echo "peers/install.sh: bun $("$CACHE/node_modules/.bin/bun" --version)," \
     "node $(node --version)" >&2
echo "$want" > "$STAMP"
echo "$CACHE"
