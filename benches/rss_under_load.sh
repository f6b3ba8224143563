#!/usr/bin/env bash
# benches/rss_under_load.sh - does memory stay bounded when a write load of 10x maxmemory
# of distinct keys goes through an allkeys-lru cache? cache-node and redis-server, one after
# the other, same settings.
#
# Usage:
#   benches/rss_under_load.sh [options]
#
# Options (defaults in brackets):
#   --maxmemory SIZE    maxmemory of both servers [100mb]
#   --policy P          maxmemory-policy [allkeys-lru]
#   --requests N        SETs to send (redis-benchmark -n) [1000000]
#   --value-size B      value bytes (redis-benchmark -d) [1000]; N x B is the volume written
#   --pipeline P        redis-benchmark -P [16]
#   --clients C         redis-benchmark -c [50]
#   --interval S        sampling period in seconds [1]
#   --rss-abort SIZE    stop the load if a server's VmRSS exceeds this [4gb]
#   --servers "S.."     'node' and/or 'redis' [node redis]
#   --node-bin PATH     cache-node binary [<repo>/target/release/cache-node, or if that
#                       does not exist /work/target-main/release/cache-node]
#   -h, --help          show this help
#
# For each server: start it fresh on a free port on 127.0.0.1 (never 6379) with
# --maxmemory SIZE --maxmemory-policy P, then run
#   redis-benchmark -t set -r 100000000 -d B -n N -P 16 -c 50 -q
# (random keys out of 10^8, so nearly every SET writes a new key: ~N x B bytes in total)
# under `timeout 600`, while sampling VmRSS (/proc/PID/status) and INFO memory used_memory
# every S seconds. 2 s after the load: one more sample, PING, DBSIZE, INFO stats.
# Reports per server: max VmRSS and max sampled used_memory (also as a multiple of
# maxmemory), final values, used_memory_peak if the server reports it, evicted_keys,
# DBSIZE, total_commands_processed, redis-benchmark's summary/errors, and whether the server
# still answers PING. Servers are killed on exit (also on Ctrl-C).
# Needs: bash, python3, awk, redis-server, redis-cli, redis-benchmark, timeout.
set -euo pipefail

PROG=rss_under_load.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=127.0.0.1
MAXMEM=100mb POLICY=allkeys-lru N=1000000 B=1000 PIPE=16 CLIENTS=50 INTERVAL=1 RSS_ABORT=4gb
SERVERS="node redis" NODE_BIN=""
LOAD_TMO=600
CLI_TMO=5

parse_options --maxmemory=MAXMEM --policy=POLICY --requests=N --value-size=B --pipeline=PIPE \
  --clients=CLIENTS --interval=INTERVAL --rss-abort=RSS_ABORT --servers=SERVERS --node-bin=NODE_BIN -- "$@"
MAXMEM_BYTES=$(to_bytes "$MAXMEM") || die "bad --maxmemory: $MAXMEM"
ABORT_BYTES=$(to_bytes "$RSS_ABORT") || die "bad --rss-abort: $RSS_ABORT"
for v in N B PIPE CLIENTS; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "bad numeric option value: ${!v}"; done
for s in $SERVERS; do case "$s" in node|redis) ;; *) die "bad server: $s" ;; esac; done
need_tools python3 awk redis-server redis-cli redis-benchmark timeout
default_node_bin
if [[ " $SERVERS " == *" node "* ]]; then
  [ -x "$NODE_BIN" ] || die "cache-node binary not found: $NODE_BIN (build it or pass --node-bin)"
  NODE_BIN=$(abs_path "$NODE_BIN")
fi

SRV_PID="" BENCH_PID=""
stop_all() { stop_pid "$BENCH_PID"; stop_pid "$SRV_PID"; }  # for cleanup (lib.sh)
init_tmp ferrocache-rss
private_node_copy

rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$SRV_PID/status" 2>/dev/null || true; }
sample() {  # t rss used -> samples file
  local t rss used
  t=$(date +%s.%N); rss=$(rss_bytes); used=$(info_field memory used_memory)
  echo "$t ${rss:--} ${used:--}" >>"$SAMPLES"
  echo "${rss:-0}"
}

start_server() {  # redis|node
  PORT=$(free_ports 1); LOG=$TMP/$1.log
  if [ "$1" = redis ]; then
    redis-server --port "$PORT" --bind "$HOST" --save "" --appendonly no --daemonize no \
      --dir "$TMP" --logfile "$LOG" --maxmemory "$MAXMEM" --maxmemory-policy "$POLICY" \
      </dev/null >/dev/null 2>&1 &
  else
    (cd "$TMP" && exec "$NODE_RUN" --port "$PORT" --bind "$HOST" --maxmemory "$MAXMEM" \
      --maxmemory-policy "$POLICY") </dev/null >"$LOG" 2>&1 &
  fi
  SRV_PID=$!
  wait_ready "$1" "$PORT" "$SRV_PID" "$LOG" "$1"
}

RES=$TMP/res.txt; : >"$RES"
LOADAVG0=$(loadavg)
for server in $SERVERS; do
  start_server "$server"
  got=$(cli CONFIG GET maxmemory | sed -n 2p)
  [ "$got" = "$MAXMEM_BYTES" ] || echo "rss_under_load.sh: warning: $server reports maxmemory '$got', expected $MAXMEM_BYTES" >&2
  SAMPLES=$TMP/samples-$server.txt; : >"$SAMPLES"
  sample >/dev/null
  cmd=(redis-benchmark -h "$HOST" -p "$PORT" -t set -r 100000000 -d "$B" -n "$N" -P "$PIPE" -c "$CLIENTS" -q)
  echo "[$(date +%T)] $server (pid $SRV_PID, port $PORT): ${cmd[*]}" >&2
  t0=$(date +%s.%N)
  timeout "$LOAD_TMO" "${cmd[@]}" </dev/null >"$TMP/bench-$server.out" 2>&1 &
  BENCH_PID=$!
  aborted=""
  while is_running "$BENCH_PID"; do
    sleep "$INTERVAL"
    rss=$(sample)
    if [ "${rss:-0}" -gt "$ABORT_BYTES" ]; then
      aborted="VmRSS $rss > --rss-abort $ABORT_BYTES: load stopped"
      echo "rss_under_load.sh: $server: $aborted" >&2
      kill -TERM "$BENCH_PID" 2>/dev/null || true
      break
    fi
    is_running "$SRV_PID" || { aborted="server died during the load"; break; }
  done
  brc=0; wait "$BENCH_PID" || brc=$?
  BENCH_PID=""
  t1=$(date +%s.%N)
  sleep 2
  alive=0
  if is_running "$SRV_PID"; then
    sample >/dev/null
    [ "$(timeout 5 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" = PONG ] && alive=1
  fi
  peak=$(info_field memory used_memory_peak); ev=$(info_field stats evicted_keys)
  tcp=$(info_field stats total_commands_processed); d=$(cli DBSIZE)
  # redis-benchmark -q prints "SET: <rps> requests per second, p50=..." on success, errors otherwise
  summary=$(tr '\r' '\n' <"$TMP/bench-$server.out" | grep -v '^ *$' | grep -v 'rps=' | tail -n 3 | tr '\n' ' ' | cut -c1-300)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$alive" "${peak:--}" "${ev:--}" "${tcp:--}" \
    "${d:--}" "$brc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "$summary" "$aborted" "$SAMPLES" >>"$RES"
  stop_pid "$SRV_PID"; SRV_PID=""
done

redis_version=$(redis_server_version)
echo "# memory under a write load of $(awk -v n="$N" -v b="$B" -v m="$MAXMEM_BYTES" 'BEGIN { printf "%.1fx", n * b / m }') maxmemory"
echo
echo "- date: $(utc_now), host: $(uname -n), $(nproc) CPUs, loadavg before: $LOADAVG0, after: $(loadavg)"
echo "- redis-server $redis_version; cache-node: $NODE_DESC"
echo "- both: --maxmemory $MAXMEM ($MAXMEM_BYTES bytes) --maxmemory-policy $POLICY; load: redis-benchmark -t set -r 100000000 -d $B -n $N -P $PIPE -c $CLIENTS -q"
echo "- VmRSS and INFO used_memory sampled every ${INTERVAL}s during the load and once 2 s after it"
echo
{ warnings_py; cat <<'EOF'
import sys
res = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
mm = int(sys.argv[2])
cols, warns = {}, []
for server, alive, peak, ev, tcp, d, brc, secs, summary, aborted, samples in res:
    rss, used = [], []
    for line in open(samples):
        t, r, u = line.split()
        if r.isdigit(): rss.append(int(r))
        if u.isdigit(): used.append(int(u))
    name = "cache-node" if server == "node" else "redis-server"
    mib = lambda b: f"{b / 2**20:.1f} MiB ({b / mm:.2f}x)"
    cols[name] = {
        "max VmRSS (x maxmemory)": mib(max(rss)) if rss else "-",
        "max sampled used_memory (x maxmemory)": mib(max(used)) if used else "-",
        "VmRSS at start": mib(rss[0]) if rss else "-",
        "VmRSS 2 s after the load": mib(rss[-1]) if rss else "-",
        "used_memory 2 s after the load": mib(used[-1]) if used else "-",
        "used_memory_peak (INFO)": mib(int(peak)) if peak.isdigit() else "not reported",
        "samples": str(len(rss)),
        "load time (s)": secs,
        "evicted_keys": ev,
        "DBSIZE after": d,
        "total_commands_processed": tcp,
        "redis-benchmark exit status": brc,
        "answers PING after the load": "yes" if alive == "1" else "**NO**",
    }
    cols[name]["redis-benchmark output"] = summary.replace("|", "/") or "-"
    if aborted:
        cols[name]["aborted"] = aborted
        warns.append(f"{name}: {aborted}")
    if alive != "1":
        warns.append(f"{name}: does not answer PING after the load")
    if brc != "0":
        warns.append(f"{name}: redis-benchmark exit status {brc}: {summary}")
    if rss and max(rss) > 2 * mm:
        warns.append(f"{name}: max VmRSS is {max(rss) / mm:.2f}x maxmemory")
    if used and max(used) > 1.1 * mm:
        warns.append(f"{name}: max sampled used_memory is {max(used) / mm:.2f}x maxmemory")
    if ev in ("0", "-"):
        warns.append(f"{name}: evicted_keys = {ev}")
names = list(cols)
rows = []
for n in names:
    for k in cols[n]:
        if k not in rows:
            rows.append(k)
print("| | " + " | ".join(names) + " |")
print("|---|" + "---:|" * len(names))
for k in rows:
    print(f"| {k} | " + " | ".join(cols[n].get(k, "-") for n in names) + " |")
print()
print_warnings(warns)
EOF
} | python3 - "$RES" "$MAXMEM_BYTES"
