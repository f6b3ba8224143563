#!/usr/bin/env bash
# benches/streams.sh - the stream rows (XADD, XRANGE of 100, XREADGROUP COUNT 10 from a
# consumer's history, XACK) of cache-node vs redis-server, pinned, alternated, medians of 3,
# through compare.sh (release cache-node: cargo build --release -p cache-node first).
set -uo pipefail
cd "$(dirname "$0")/.."
V=0123456789abcdef0123456789abcdef
C="bash benches/compare.sh --requests 100000 --runs 3 --pipelines '1 16' --modes pinned"
run() { echo "### $1"; shift; eval "$C $*" 2>/dev/null | grep -E '^\|' ; }
run "XADD" --command "'XADD bench:s * f $V'"
run "XRANGE 100" --setup "'redis-benchmark -p \$PORT -n 1000 -c 1 XADD bench:r \"*\" f $V'" --command "'XRANGE bench:r - + COUNT 100'"
run "XREADGROUP COUNT 10 (history)" --setup "'redis-benchmark -p \$PORT -n 1000 -c 1 XADD bench:g \"*\" f $V; redis-cli -p \$PORT XGROUP CREATE bench:g g 0; redis-cli -p \$PORT XREADGROUP GROUP g c COUNT 1000 STREAMS bench:g \">\"'" --command "'XREADGROUP GROUP g c COUNT 10 STREAMS bench:g 0'"
run "XACK" --setup "'redis-benchmark -p \$PORT -n 1000 -c 1 XADD bench:g \"*\" f $V; redis-cli -p \$PORT XGROUP CREATE bench:g g 0; redis-cli -p \$PORT XREADGROUP GROUP g c COUNT 1000 STREAMS bench:g \">\"'" --command "'XACK bench:g g 1-1'"
