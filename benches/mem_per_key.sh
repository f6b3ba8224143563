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

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=127.0.0.1
N=1000000 B=32 NODE_BIN=""

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "mem_per_key.sh: $*" >&2; exit 1; }
need_arg() { [ $# -ge 2 ] || die "option $1 needs an argument (see --help)"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) need_arg "$@"; N=$2; shift 2 ;;
    --value-size) need_arg "$@"; B=$2; shift 2 ;;
    --node-bin) need_arg "$@"; NODE_BIN=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "mem_per_key.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "--keys must be a positive integer"
[[ $B =~ ^[1-9][0-9]*$ ]] || die "--value-size must be a positive integer"
for tool in python3 awk redis-server redis-cli timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
done
FALLBACK_BIN=/work/target-main/release/cache-node
if [ -z "$NODE_BIN" ]; then
  NODE_BIN=$ROOT/target/release/cache-node
  [ -x "$NODE_BIN" ] || NODE_BIN=$FALLBACK_BIN
  if [ "$NODE_BIN" != "$FALLBACK_BIN" ] && [ -x "$FALLBACK_BIN" ] && [ "$FALLBACK_BIN" -nt "$NODE_BIN" ]; then
    echo "mem_per_key.sh: warning: $FALLBACK_BIN is newer than $NODE_BIN; pass --node-bin to use it" >&2
  fi
fi
[ -x "$NODE_BIN" ] || die "cache-node binary not found: $NODE_BIN (build it or pass --node-bin)"
NODE_BIN=$(cd "$(dirname "$NODE_BIN")" && pwd)/$(basename "$NODE_BIN")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferrocache-memkey.XXXXXX")
SRV_PID=""
is_running() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}
stop_pid() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do is_running "$pid" || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SRV_PID"
  rm -f "$TMP/cache-node"  # the private copy of the binary
  if [ "$rc" -eq 0 ]; then rm -rf "$TMP"; else echo "mem_per_key.sh: exit status $rc; logs kept in $TMP" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run a private copy of the binary, so a rebuild during the run cannot mix two builds.
NODE_RUN=""
NODE_DESC="-"
if [ -x "${NODE_BIN:-}" ]; then
  NODE_DESC="$NODE_BIN (built $(date -u -r "$NODE_BIN" '+%Y-%m-%d %H:%M:%S UTC'), sha256 $(sha256sum "$NODE_BIN" | cut -c1-12))"
  cp "$NODE_BIN" "$TMP/cache-node" || die "cannot copy $NODE_BIN"
  NODE_RUN=$TMP/cache-node
fi

free_port() {
  python3 -c 'import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p != 6379: print(p); break'
}
cli() { timeout 60 redis-cli -h "$HOST" -p "$PORT" "$@" 2>/dev/null | tr -d '\r'; }
info_field() { cli INFO memory | awk -F: -v f="$1" '$1 == f { print $2 }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SRV_PID/status"; }

start_server() {  # redis|node
  local i
  PORT=$(free_port); LOG=$TMP/$1.log
  if [ "$1" = redis ]; then
    redis-server --port "$PORT" --bind "$HOST" --save "" --appendonly no --daemonize no \
      --dir "$TMP" --logfile "$LOG" </dev/null >/dev/null 2>&1 &
  else
    (cd "$TMP" && exec "$NODE_RUN" --port "$PORT" --bind "$HOST") </dev/null >"$LOG" 2>&1 &
  fi
  SRV_PID=$!
  for ((i = 0; i < 100; i++)); do
    is_running "$SRV_PID" || { tail -n 20 "$LOG" >&2; die "$1 exited during startup"; }
    [ "$(timeout 2 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  tail -n 20 "$LOG" >&2; die "$1 did not answer PING on port $PORT within 10 s"
}

echo "[$(date +%T)] generating $N SET commands ($B-byte values)" >&2
awk -v n="$N" -v b="$B" 'BEGIN {
    v = sprintf("%*s", b, ""); gsub(/ /, "v", v)
    for (i = 0; i < n; i++) { k = "key:" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, b, v } }' >"$TMP/load.resp"

RES=$TMP/res.txt; : >"$RES"
LOADAVG0=$(cut -d" " -f1-3 /proc/loadavg 2>/dev/null || echo "?")
for server in redis node; do
  start_server "$server"
  sleep 1
  u0=$(info_field used_memory); r0=$(rss_kb)
  echo "[$(date +%T)] $server (pid $SRV_PID, port $PORT): loading" >&2
  t0=$(date +%s.%N)
  timeout 300 redis-cli -h "$HOST" -p "$PORT" --pipe <"$TMP/load.resp" >"$TMP/pipe-$server.txt" 2>&1 ||
    { cat "$TMP/pipe-$server.txt" >&2; die "$server: redis-cli --pipe failed"; }
  t1=$(date +%s.%N)
  sleep 1
  u1=$(info_field used_memory); r1=$(rss_kb); d=$(cli DBSIZE)
  perrs=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$TMP/pipe-$server.txt" | tail -n 1)
  echo "$server $u0 $u1 $r0 $r1 ${d:-0} $t0 $t1 ${perrs:-?}" >>"$RES"
  stop_pid "$SRV_PID"; SRV_PID=""
done

redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
echo "# memory per key: cache-node vs redis-server"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host: $(uname -n), $(nproc) CPUs, loadavg before: $LOADAVG0, after: $(cut -d" " -f1-3 /proc/loadavg 2>/dev/null || echo "?")"
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
