#!/usr/bin/env bash
# benches/cluster.sh - redis-benchmark --cluster against three cache-nodes in cluster mode
# and against a three-master Redis 7 cluster, side by side in the same run.
#
# Usage:
#   benches/cluster.sh [--node-bin PATH] [--requests N] [--runs R] [--pipelines "1 16"]
#
# Each server is started under `taskset -c 1` in a temp dir of its own on free ports
# (Redis: `--cluster-enabled yes` + `redis-cli --cluster create`; cache-node:
# `--cluster-enabled yes` + the same three ranges pushed with CLUSTER SETTABLE), and
#   taskset -c 0 redis-benchmark --cluster -p PORT -c 50 -d 32 -r 100000 -n N -P P \
#                 -t set,get --csv
# runs against each; the median of R runs is printed, with ours / Redis's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODE_BIN=$ROOT/target/release/cache-node
REQUESTS=200000
RUNS=3
PIPES="1 16"
while [ $# -gt 0 ]; do
  case "$1" in
    --node-bin) NODE_BIN=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --pipelines) PIPES=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in redis-server redis-cli redis-benchmark taskset python3; do
  command -v "$tool" >/dev/null || { echo "cluster.sh: $tool not found" >&2; exit 1; }
done
[ -x "$NODE_BIN" ] || { echo "cluster.sh: no $NODE_BIN (cargo build --release -p cache-node)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/ferro-cluster-bench.XXXXXX)
PIDS=()
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'stop; rm -rf "$TMP"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.05; done; echo "port $1 never answered" >&2; exit 1; }
wait_ok() { for _ in $(seq 400); do redis-cli -p "$1" cluster info 2>/dev/null | grep -q cluster_state:ok && return; sleep 0.05; done; echo "port $1 never reached cluster_state:ok" >&2; exit 1; }

start_redis() {  # -> PORTS
  PORTS=()
  for i in 0 1 2; do
    local port bus; port=$(free_port); bus=$(free_port); mkdir -p "$TMP/redis$i"
    taskset -c 1 redis-server --port "$port" --cluster-port "$bus" --cluster-enabled yes \
      --dir "$TMP/redis$i" --save '' --appendonly no --logfile "$TMP/redis$i/log" &
    PIDS+=($!); PORTS+=("$port"); wait_up "$port"
  done
  redis-cli --cluster create "${PORTS[@]/#/127.0.0.1:}" --cluster-yes >/dev/null
  for p in "${PORTS[@]}"; do wait_ok "$p"; done
}

start_nodes() {  # -> PORTS
  PORTS=()
  local ids=() ranges=(0-5460 5461-10922 10923-16383) table=() i
  for i in 0 1 2; do
    local port; port=$(free_port)
    taskset -c 1 "$NODE_BIN" --port "$port" --cluster-enabled yes --save '' >"$TMP/node$i.log" 2>&1 &
    PIDS+=($!); PORTS+=("$port"); wait_up "$port"
    ids+=("$(redis-cli -p "$port" cluster myid)")
  done
  for i in 0 1 2; do table+=("${ids[$i]}" 127.0.0.1 "${PORTS[$i]}" - "${ranges[$i]}"); done
  for p in "${PORTS[@]}"; do redis-cli -p "$p" cluster settable 1 "${table[@]}" >/dev/null; done
  for p in "${PORTS[@]}"; do wait_ok "$p"; done
}

bench() {  # port pipeline -> "set get" ops/s of one run
  timeout 300 taskset -c 0 redis-benchmark --cluster -p "$1" -c 50 -d 32 -r 100000 \
    -n "$REQUESTS" -P "$2" -t set,get --csv 2>/dev/null |
    awk -F'","' '/^"(SET|GET)"/ { gsub(/"/, "", $2); v[substr($1, 2)] = $2 } END { print v["SET"], v["GET"] }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A RESULT
for server in redis ferrocache; do
  if [ $server = redis ]; then start_redis; else start_nodes; fi
  redis-benchmark --cluster -p "${PORTS[0]}" -n 20000 -t set,get -q >/dev/null 2>&1 || true  # warm-up
  for p in $PIPES; do
    : >"$TMP/runs"
    for _ in $(seq "$RUNS"); do bench "${PORTS[0]}" "$p" >>"$TMP/runs"; done
    RESULT[$server,set,$p]=$(awk '{ print $1 }' "$TMP/runs" | median)
    RESULT[$server,get,$p]=$(awk '{ print $2 }' "$TMP/runs" | median)
  done
  stop; PIDS=()
done

printf '%-6s %-4s %14s %14s %8s\n' test P redis ferrocache ratio
for p in $PIPES; do
  for t in set get; do
    r=${RESULT[redis,$t,$p]}; f=${RESULT[ferrocache,$t,$p]}
    printf '%-6s %-4s %14s %14s %8s\n' "$t" "$p" "$r" "$f" "$(awk -v a="$f" -v b="$r" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
  done
done
