#!/usr/bin/env bash
# benches/mem_per_key.sh - memory per key of cache-node and redis-server, side by side in
# the same run.
#
# Usage:
#   benches/mem_per_key.sh [options]
#
# Options (defaults in brackets):
#   --keys N            keys to load ["key:0" .. "key:N-1"] [1000000]
#   --value-size B      value bytes [32]
#   --node-bin PATH     cache-node binary [<repo>/target/release/cache-node, or if that
#                       does not exist /work/target-main/release/cache-node]
#   -h, --help          show this help
#
# What it does: starts a fresh redis-server (--save "" --appendonly no, no maxmemory) and a
# fresh cache-node (no maxmemory) on free ports on 127.0.0.1 (never 6379); for each, reads
# INFO memory used_memory and /proc/PID/status VmRSS, loads N `SET key:i <B bytes>` with
# `redis-cli --pipe` (the same stream for both, generated once), waits 1 s, reads both again
# and DBSIZE. Reports the deltas divided by N (bytes/key) and the ratio cache-node / redis.
# The servers are loaded one after the other (redis first), each PING-checked within 10 s at
# start, and killed on exit (also on Ctrl-C); each load runs under `timeout 300`.
# Needs: bash, python3, awk, redis-server, redis-cli, timeout.
set -euo pipefail

PROG=mem_per_key.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=127.0.0.1
N=1000000 B=32 NODE_BIN=""
CLI_TMO=60

parse_options --keys=N --value-size=B --node-bin=NODE_BIN -- "$@"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "--keys must be a positive integer"
[[ $B =~ ^[1-9][0-9]*$ ]] || die "--value-size must be a positive integer"
need_tools python3 awk redis-server redis-cli timeout
default_node_bin
[ -x "$NODE_BIN" ] || die "cache-node binary not found: $NODE_BIN (build it or pass --node-bin)"
NODE_BIN=$(abs_path "$NODE_BIN")

SRV_PID=""
stop_all() { stop_pid "$SRV_PID"; }  # for cleanup (lib.sh)
init_tmp ferrocache-memkey
private_node_copy

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SRV_PID/status"; }

start_server() {  # redis|node
  PORT=$(free_ports 1); LOG=$TMP/$1.log
  if [ "$1" = redis ]; then
    redis-server --port "$PORT" --bind "$HOST" --save "" --appendonly no --daemonize no \
      --dir "$TMP" --logfile "$LOG" </dev/null >/dev/null 2>&1 &
  else
    (cd "$TMP" && exec "$NODE_RUN" --port "$PORT" --bind "$HOST") </dev/null >"$LOG" 2>&1 &
  fi
  SRV_PID=$!
  wait_ready "$1" "$PORT" "$SRV_PID" "$LOG" "$1"
}

echo "[$(date +%T)] generating $N SET commands ($B-byte values)" >&2
awk -v n="$N" -v b="$B" 'BEGIN {
    v = sprintf("%*s", b, ""); gsub(/ /, "v", v)
    for (i = 0; i < n; i++) { k = "key:" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, b, v } }' >"$TMP/load.resp"

RES=$TMP/res.txt; : >"$RES"
LOADAVG0=$(loadavg)
for server in redis node; do
  start_server "$server"
  sleep 1
  u0=$(info_field memory used_memory); r0=$(rss_kb)
  echo "[$(date +%T)] $server (pid $SRV_PID, port $PORT): loading" >&2
  t0=$(date +%s.%N)
  timeout 300 redis-cli -h "$HOST" -p "$PORT" --pipe <"$TMP/load.resp" >"$TMP/pipe-$server.txt" 2>&1 ||
    { cat "$TMP/pipe-$server.txt" >&2; die "$server: redis-cli --pipe failed"; }
  t1=$(date +%s.%N)
  sleep 1
  u1=$(info_field memory used_memory); r1=$(rss_kb); d=$(cli DBSIZE)
  perrs=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$TMP/pipe-$server.txt" | tail -n 1)
  echo "$server $u0 $u1 $r0 $r1 ${d:-0} $t0 $t1 ${perrs:-?}" >>"$RES"
  stop_pid "$SRV_PID"; SRV_PID=""
done

redis_version=$(redis_server_version)
echo "# memory per key: cache-node vs redis-server"
echo
echo "- date: $(utc_now), host: $(uname -n), $(nproc) CPUs, loadavg before: $LOADAVG0, after: $(loadavg)"
echo "- redis-server $redis_version; cache-node: $NODE_DESC"
echo "- load: $N x \`SET key:<i> <$B bytes>\` through \`redis-cli --pipe\`, into a fresh server, no maxmemory; deltas measured 1 s after the load"
echo
awk -v n="$N" '
  { s[$1] = 1; u0[$1] = $2; u1[$1] = $3; r0[$1] = $4; r1[$1] = $5; d[$1] = $6; t[$1] = $8 - $7; e[$1] = $9
    ub[$1] = ($3 - $2) / n; rb[$1] = ($5 - $4) * 1024 / n }
  END {
    print "| | redis-server | cache-node | cache-node / redis |"
    print "|---|---:|---:|---:|"
    printf "| DBSIZE after load | %d | %d | |\n", d["redis"], d["node"]
    printf "| pipe errors | %s | %s | |\n", e["redis"], e["node"]
    printf "| load time (s) | %.2f | %.2f | %.2f |\n", t["redis"], t["node"], t["node"] / t["redis"]
    printf "| used_memory before -> after (bytes) | %d -> %d | %d -> %d | |\n", u0["redis"], u1["redis"], u0["node"], u1["node"]
    printf "| **used_memory delta / key (bytes)** | **%.1f** | **%.1f** | **%.2f** |\n", ub["redis"], ub["node"], ub["node"] / ub["redis"]
    printf "| VmRSS before -> after (KiB) | %d -> %d | %d -> %d | |\n", r0["redis"], r1["redis"], r0["node"], r1["node"]
    printf "| **VmRSS delta / key (bytes)** | **%.1f** | **%.1f** | **%.2f** |\n", rb["redis"], rb["node"], rb["node"] / rb["redis"]
  }' "$RES"
