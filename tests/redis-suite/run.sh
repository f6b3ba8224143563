#!/usr/bin/env bash
# Runs Redis 7.0.15's own Tcl test suite (../shared/redis-suite, beside the repository) against
# fresh cache-nodes and fails when a unit passes fewer tests than its floor in floors.txt.
#
#   tests/redis-suite/run.sh [NODE_BIN]      (default: target/debug/cache-node)
#
# Each group of floors.txt (separated by a blank line) runs against one fresh node, in the
# suite's own order: the default units share one server as upstream's external mode expects
# (they leave CONFIG changes behind); every further unit gets a node of its own.
# Prints SKIPPED and succeeds where the suite is absent (a clone without ../shared).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SUITE=${FERROCACHE_REDIS_SUITE:-$ROOT/../shared/redis-suite}
# A clone elsewhere on the development machine still finds the shared copy.
[ -x "$SUITE/run.sh" ] || SUITE=/work/shared/redis-suite
NODE_BIN=${1:-$ROOT/target/debug/cache-node}
FLOORS=$HERE/floors.txt
LOGS=${TMPDIR:-/tmp}/ferrocache-redis-suite-$$

if [ ! -x "$SUITE/run.sh" ]; then
  echo "SKIPPED redis suite: $SUITE not found"
  exit 0
fi
if ! command -v tclsh >/dev/null 2>&1 && ! command -v tclsh8.6 >/dev/null 2>&1; then
  echo "SKIPPED redis suite: no tclsh"
  exit 0
fi
[ -x "$NODE_BIN" ] || { echo "redis suite: no node binary at $NODE_BIN" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Groups of units from floors.txt: "unit floor" lines, blank lines between groups.
mapfile -t LINES < <(sed -e 's/#.*//' "$FLOORS"; echo)
declare -A FLOOR
UNIT_GROUPS=()
group=""
for line in "${LINES[@]}"; do
  set -- $line
  if [ $# -eq 0 ]; then
    [ -n "$group" ] && UNIT_GROUPS+=("$group")
    group=""
    continue
  fi
  FLOOR[$1]=$2
  group="$group $1"
done

failed=0
total=0
for group in "${UNIT_GROUPS[@]}"; do
  port=$(free_port)
  dir=$(mktemp -d)
  "$NODE_BIN" --port "$port" --dir "$dir" --loglevel warning >"$dir/node.log" 2>&1 &
  node=$!
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  out=$(TCL_LOG_DIR="$LOGS" TCL_BASEPORT=${FERROCACHE_SUITE_BASEPORT:-21079} "$SUITE/run.sh" 127.0.0.1 "$port" $group 2>&1)
  kill "$node" 2>/dev/null
  wait "$node" 2>/dev/null
  rm -rf "$dir"
  for unit in $group; do
    line=$(grep -E "^$unit: [0-9]+ passed" <<<"$out" | tail -1)
    passed=$(sed -E 's/^[^:]+: ([0-9]+) passed.*/\1/' <<<"$line")
    passed=${passed:-0}
    total=$((total + passed))
    if [ "$passed" -lt "${FLOOR[$unit]}" ]; then
      echo "FAIL $unit: $passed passed, floor ${FLOOR[$unit]} ($line)"
      grep -A40 "^--- $unit\$" <<<"$out" | grep -E "FAIL|ABORT" | head -20
      failed=1
    else
      echo "ok   $unit: $passed passed (floor ${FLOOR[$unit]})"
    fi
  done
done
echo "redis suite: $total passed in all; per-unit logs in $LOGS"
exit $failed
