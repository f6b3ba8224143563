#!/usr/bin/env bash
# benches/persistence.sh - snapshots beside redis-server, in one run: SAVE time and file size
# for N keys of 32-byte values and for N/10 keys of 1 KiB values, the load time at start, and
# SET p50/p99 (redis-benchmark) with and without a BGSAVE running (Redis forks for it; the
# node copies on write).
#
# Usage: benches/persistence.sh [--no-build] [--keys N]     (default N = 1000000)
#
# Each server gets a free port and its own temp directory, removed at the end. The data is
# loaded with `redis-cli --pipe`. Load time is from process start to the first PING answered
# (after the file is loaded: Redis answers -LOADING until then, the node does not listen).
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=1000000
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --keys) KEYS="$2"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "persistence.sh: $tool not found" >&2; exit 1; }
done
BIN="${CARGO_TARGET_DIR:-target}/release/cache-node"
[ "$BUILD" = 1 ] && cargo build --release -p cache-node >&2

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

# start KIND DIR PORT: starts redis-server or cache-node and waits until PING answers PONG.
start() {
  local kind=$1 dir=$2 port=$3
  if [ "$kind" = redis ]; then
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
      --logfile "$dir/log" &
  else
    "$BIN" --port "$port" --dir "$dir" --loglevel warning >"$dir/log" 2>&1 &
  fi
  PIDS+=($!)
  until [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ]; do sleep 0.01; done
}

stop() {  # PORT: SHUTDOWN NOSAVE and wait for the port to close
  redis-cli -p "$1" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  while redis-cli -p "$1" PING >/dev/null 2>&1; do sleep 0.01; done
}

fill() {  # PORT N SIZE
  awk -v n="$2" -v size="$3" 'BEGIN {
    v = sprintf("%" size "s", ""); gsub(/ /, "v", v)
    for (i = 0; i < n; i++) {
      k = "key:" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, size, v
    }
  }' | redis-cli -p "$1" --pipe >/dev/null
}

p99() {  # PORT: SET p50 and p99 in ms from redis-benchmark's CSV
  redis-benchmark -p "$1" -t set -n 200000 -c 20 -d 32 -r 100000 --csv 2>/dev/null |
    awk '/"SET"/ { gsub(/"/, ""); split($0, f, ","); print f[5] " " f[7] }'
}

printf '%-10s %-22s %10s %12s %10s %18s %18s\n' server data save_ms file_bytes load_ms \
  'SET p50/p99 idle' 'p50/p99 BGSAVE'
for data in "$KEYS 32" "$((KEYS / 10)) 1024"; do
  read -r n size <<<"$data"
  for kind in redis node; do
    dir="$TMP/$kind-$size"; mkdir -p "$dir"
    port=$(free_port)
    start "$kind" "$dir" "$port"
    fill "$port" "$n" "$size"
    t0=$(now_ms); redis-cli -p "$port" SAVE >/dev/null; t1=$(now_ms)
    save_ms=$((t1 - t0))
    bytes=$(stat -c %s "$dir/dump.rdb")
    idle=$(p99 "$port")
    # A BGSAVE loop beside the benchmark.
    ( while true; do
        redis-cli -p "$port" BGSAVE >/dev/null 2>&1 || true
        sleep 0.05
      done ) &
    loop=$!
    busy=$(p99 "$port")
    kill "$loop"; wait "$loop" 2>/dev/null || true
    while redis-cli -p "$port" INFO persistence | grep -q 'rdb_bgsave_in_progress:1'; do sleep 0.05; done
    stop "$port"
    t0=$(now_ms); start "$kind" "$dir" "$port"; t1=$(now_ms)
    load_ms=$((t1 - t0))
    stop "$port"
    printf '%-10s %-22s %10s %12s %10s %18s %18s\n' "$kind" "$n x ${size}B" "$save_ms" "$bytes" \
      "$load_ms" "${idle/ //}" "${busy/ //}"
  done
done
