#!/usr/bin/env bash
# benches/backing.sh - SET and GET throughput of cache-node per backing mode, in one run:
# none, write-back (SQLite, PostgreSQL), write-through (SQLite, PostgreSQL).
#
# Usage: benches/backing.sh [--no-build] [--requests N] [--runs R]
#
#   redis-benchmark -t set,get -n N -c 50 -d 32 -r 100000 --csv   (client pinned to CPU 0)
#   cache-node --backing-mode M --backing-url U                     (node pinned to CPU 1)
#   PostgreSQL's running processes are pinned to CPU 1 too while the script runs (server-side
#   work; restored on exit; needs the right to change their affinity, e.g. root).
#
# Each configuration gets a fresh node, a fresh directory and (PostgreSQL) its own table,
# dropped afterwards. PostgreSQL comes from FERROCACHE_POSTGRES
# [postgres://postgres@127.0.0.1:5432/test]; without psql or a server those rows are skipped.
# Printed: ops/sec, p99, the ratio to `none`; for write-through also the latency a write
# adds (average SET latency minus none's) and the group commit's average batch (commands
# per transaction) and average commit time, from INFO backing. With --runs R (default 3)
# every configuration is measured R times, in a rotated order, and medians are shown: on a
# shared machine single runs swing by tens of percent.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=200000
RUNS=3
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --requests) REQUESTS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/cache-node"
if [ "$BUILD" = 1 ]; then
  cargo build --release -p cache-node >&2
fi
PG="${FERROCACHE_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
pg_ok=0
if command -v psql >/dev/null && psql "$PG" -qAtc 'select 1' >/dev/null 2>&1; then
  pg_ok=1
fi

WORK="$(mktemp -d /tmp/ferrocache-bench-backing.XXXXXX)"
NODE_PID=""
# The database is server-side work: PostgreSQL's processes (the postmaster, and so every
# backend it forks afterwards) share CPU 1 with the node, leaving CPU 0 to redis-benchmark,
# as `none` does. Unpinned, they take CPU from the client, which at -P 1 is the bottleneck,
# and every PostgreSQL row (GET included) measures that instead. Restored on exit.
PG_PINNED=""
if [ "$pg_ok" = 1 ]; then
  for pid in $(pgrep -x postgres || true); do
    taskset -acp 1 "$pid" >/dev/null 2>&1 && PG_PINNED+=" $pid"
  done
fi
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
  for pid in $PG_PINNED; do taskset -acp "0-$(($(nproc) - 1))" "$pid" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NAME MODE URL [EXTRA NODE ARGS...] -> fills the arrays below for NAME
declare -A SET_RPS SET_P99 SET_AVG GET_RPS GET_P99 BATCH COMMIT
run() {
  local name="$1" mode="$2" url="$3" table="bench_$$_${RANDOM}"
  shift 3
  local dir="$WORK/$name" port
  mkdir -p "$dir"
  port="$(free_port)"
  local args=(--port "$port" --loglevel warning --dir "$dir")
  if [ "$mode" != none ]; then
    args+=(--backing-mode "$mode" --backing-url "$url" --backing-table "$table")
  fi
  args+=("$@")
  taskset -c 1 "$BIN" "${args[@]}" >"$dir/log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local csv
  csv="$(taskset -c 0 redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$REQUESTS" -c 50 -d 32 -r 100000 --csv 2>/dev/null)"
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  SET_RPS[$name]+=" $(echo "$csv" | awk -F'"' '$2=="SET"{print $4}')"
  SET_AVG[$name]+=" $(echo "$csv" | awk -F'"' '$2=="SET"{print $6}')"
  SET_P99[$name]+=" $(echo "$csv" | awk -F'"' '$2=="SET"{print $14}')"
  GET_RPS[$name]+=" $(echo "$csv" | awk -F'"' '$2=="GET"{print $4}')"
  GET_P99[$name]+=" $(echo "$csv" | awk -F'"' '$2=="GET"{print $14}')"
  local info
  info="$(redis-cli -p "$port" info backing | tr -d '\r')"
  BATCH[$name]+=" $(echo "$info" | awk -F: '$1=="backing_avg_batch"{print $2}')"
  COMMIT[$name]+=" $(echo "$info" | awk -F: '$1=="backing_avg_commit_usec"{print $2}')"
  kill "$NODE_PID" 2>/dev/null || true
  wait "$NODE_PID" 2>/dev/null || true
  NODE_PID=""
  if [ "$mode" != none ] && [[ "$url" == postgres* ]]; then
    psql "$PG" -qAtc "DROP TABLE IF EXISTS $table" >/dev/null 2>&1 || true
  fi
}

CONFIGS=("none|none|")
CONFIGS+=("write-back sqlite|write-back|sqlite:$WORK/wb.sqlite")
# The defaults before 2026-11-28 (100 ms, 512 keys): many small transactions, each rewriting
# many b-tree pages (random keys land on every page), whatever its size.
CONFIGS+=("write-back sqlite 100ms/512|write-back|sqlite:$WORK/wb2.sqlite|--write-back-delay 100 --write-back-batch 512")
[ "$pg_ok" = 1 ] && CONFIGS+=("write-back postgres|write-back|$PG")
CONFIGS+=("write-through sqlite|write-through|sqlite:$WORK/wt.sqlite")
[ "$pg_ok" = 1 ] && CONFIGS+=("write-through postgres|write-through|$PG")

n=${#CONFIGS[@]}
for r in $(seq 1 "$RUNS"); do
  for i in $(seq 0 $((n - 1))); do
    c="${CONFIGS[$(( (i + r - 1) % n ))]}"
    IFS='|' read -r name mode url extra <<<"$c"
    echo "run $r/$RUNS: $name" >&2
    # shellcheck disable=SC2086 # extra holds several arguments
    run "$name" "$mode" "$url" $extra
  done
done

median() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
for name in "${!SET_RPS[@]}"; do
  SET_RPS[$name]="$(median "${SET_RPS[$name]}")"
  SET_AVG[$name]="$(median "${SET_AVG[$name]}")"
  SET_P99[$name]="$(median "${SET_P99[$name]}")"
  GET_RPS[$name]="$(median "${GET_RPS[$name]}")"
  GET_P99[$name]="$(median "${GET_P99[$name]}")"
  BATCH[$name]="$(median "${BATCH[$name]}")"
  COMMIT[$name]="$(median "${COMMIT[$name]}")"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "n/a" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.3f", a-b }'; }

echo
echo "redis-benchmark -t set,get -n $REQUESTS -c 50 -d 32 -r 100000 (client: taskset -c 0, node: taskset -c 1$([ -n "$PG_PINNED" ] && echo ", PostgreSQL: taskset -c 1")); median of $RUNS runs"
echo
echo "| mode | SET ops/s | SET p99 ms | SET vs none | GET ops/s | GET p99 ms | GET vs none | write latency added ms | avg batch | avg commit us |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for c in "${CONFIGS[@]}"; do
  IFS='|' read -r name mode url _ <<<"$c"
  extra="| - | - | - |"
  if [ "$mode" = write-through ]; then
    extra="| $(added "${SET_AVG[$name]}" "${SET_AVG[none]}") | ${BATCH[$name]} | ${COMMIT[$name]} |"
  elif [ "$mode" = write-back ]; then
    extra="| - | ${BATCH[$name]} | ${COMMIT[$name]:-} |"
  fi
  echo "| $name | ${SET_RPS[$name]} | ${SET_P99[$name]} | $(ratio "${SET_RPS[$name]}" "${SET_RPS[none]}") | ${GET_RPS[$name]} | ${GET_P99[$name]} | $(ratio "${GET_RPS[$name]}" "${GET_RPS[none]}") $extra"
done
[ "$pg_ok" = 1 ] || echo "(PostgreSQL rows skipped: no psql or no server at $PG)"
