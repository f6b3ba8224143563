#!/usr/bin/env bash
# benches/hit_ratio.sh - cache hit ratio of cache-node's eviction policies next to
# redis-server's, under the same maxmemory, with a cache-aside Zipf workload.
#
# Usage:
#   benches/hit_ratio.sh [options]
#
# Options (defaults in brackets; --quick changes the defaults to the second value):
#   --maxmemory SIZE    maxmemory of both servers [64mb | quick: 16mb]
#   --keys K            Zipf working set, in keys [500000 | quick: 125000]
#   --requests N        counted requests per run [500000 | quick: 150000]
#   --value-size B      value bytes [2000]
#   --scan-every N      scan workload: one scan after every N requests [requests/10]
#   --scan-length L     scan workload: never-seen keys per scan
#                       [about half of what maxmemory holds: maxmemory/(B+100)/2]
#   --samples S         maxmemory-samples of both servers [5]
#   --rate R            cap the driver at R counted requests/s [0 = unlimited]; see "Time
#                       scale" below
#   --policies LIST     cache-node's policies, space-separated ["allkeys-lru allkeys-lfu
#                       allkeys-random allkeys-tinylfu"]
#   --redis-policies LIST
#                       redis-server's policies ["allkeys-lru allkeys-lfu allkeys-random"];
#                       "" for none
#   --workloads LIST    which workloads ["zipf-0.99 zipf-0.8 zipf-0.99+scan"]
#   --node-bin PATH     cache-node binary [<repo>/target/release/cache-node, or if
#                       that does not exist /work/target-main/release/cache-node]
#   --quick             the ~2 minute version (smaller maxmemory, keys and requests)
#   -h, --help          show this help
#
# Runs (each on a freshly started server, so nothing carries over between runs):
#   workloads  zipf-0.99        Zipf alpha 0.99
#              zipf-0.8         Zipf alpha 0.8
#              zipf-0.99+scan   alpha 0.99 plus a one-off sequential scan of L never-seen
#                               keys (cache-aside: GET miss, SET) after every N requests;
#                               scan accesses are not counted in the hit ratio
#   policies   redis-server: allkeys-lru, allkeys-lfu, allkeys-random
#              cache-node:   allkeys-lru, allkeys-lfu, allkeys-random, allkeys-tinylfu
# The driver is benches/zipf_hit_ratio.py (standard-library python3): GET per request, SET of
# a missed key, pipelined in batches of 100, seed 1, so both servers see the same request
# sequence. The first half of the requests warms the cache and is not counted: the reported
# hit ratio is the driver's hit_ratio_after_warmup (Zipf/hot-set requests only).
#
# Time scale: unthrottled, a run takes seconds and the cache turns over in well under a
# second. Redis's LRU clock ticks once per second, so in such runs Redis's allkeys-lru can
# hardly tell recent keys from old ones and scores close to allkeys-random; cache-node's LRU
# clock is in milliseconds. --rate (e.g. 5000) stretches every run to show Redis's LRU at a
# realistic time scale (each run then takes requests/R seconds).
#
# Output (stdout, markdown): one table
#   | workload | policy | redis hit ratio | cache-node hit ratio | redis DBSIZE | cache-node DBSIZE
#   | redis used_memory | cache-node used_memory |
# (DBSIZE and INFO memory used_memory read right after the run), then a per-run detail table
# (evicted_keys, ideal top-K hit ratio for the resident key count, scan keys still resident,
# errors, driver req/s) and warnings (errors, OOM, no eviction, used_memory over maxmemory).
# Progress goes to stderr. Servers listen on free ports on 127.0.0.1 (never 6379), must answer
# PING within 10 s, and are killed on exit (also on Ctrl-C). Each driver run is bounded by
# `timeout`. Needs: bash, python3, redis-server, redis-cli, timeout.
set -euo pipefail

PROG=hit_ratio.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRIVER=$ROOT/benches/zipf_hit_ratio.py
HOST=127.0.0.1
QUICK=0
MAXMEM="" KEYS="" REQUESTS="" VSIZE=2000 SCAN_EVERY="" SCAN_LEN="" SAMPLES=5 NODE_BIN="" RATE=0
RUN_TMO=300
CLI_TMO=10
REDIS_POLICIES="allkeys-lru allkeys-lfu allkeys-random"
NODE_POLICIES="allkeys-lru allkeys-lfu allkeys-random allkeys-tinylfu"
WORKLOADS="zipf-0.99 zipf-0.8 zipf-0.99+scan"

parse_options --maxmemory=MAXMEM --keys=KEYS --requests=REQUESTS --value-size=VSIZE \
  --scan-every=SCAN_EVERY --scan-length=SCAN_LEN --samples=SAMPLES --rate=RATE --node-bin=NODE_BIN \
  --policies=NODE_POLICIES --redis-policies=REDIS_POLICIES --workloads=WORKLOADS \
  --quick=QUICK=1 -- "$@"

if [ "$QUICK" = 1 ]; then
  : "${MAXMEM:=16mb}" "${KEYS:=125000}" "${REQUESTS:=150000}"
else
  : "${MAXMEM:=64mb}" "${KEYS:=500000}" "${REQUESTS:=500000}"
fi

MAXMEM_BYTES=$(to_bytes "$MAXMEM") || die "bad --maxmemory: $MAXMEM"
for v in KEYS REQUESTS VSIZE SAMPLES; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$(tr 'A-Z_' 'a-z-' <<<"$v") must be a positive integer"
done
: "${SCAN_EVERY:=$((REQUESTS / 10))}"
: "${SCAN_LEN:=$((MAXMEM_BYTES / (VSIZE + 100) / 2))}"
[[ $SCAN_EVERY =~ ^[1-9][0-9]*$ ]] || die "--scan-every must be a positive integer"
[[ $SCAN_LEN =~ ^[1-9][0-9]*$ ]] || die "--scan-length must be a positive integer"
[[ $RATE =~ ^[0-9]+$ ]] || die "--rate must be a non-negative integer"
if [ "$RATE" -gt 0 ]; then RUN_TMO=$((REQUESTS / RATE + 300)); fi

need_tools python3 redis-server redis-cli timeout
[ -f "$DRIVER" ] || die "driver not found: $DRIVER"

default_node_bin
[ -x "$NODE_BIN" ] || die "cache-node binary not found: $NODE_BIN (build it: cargo build --release -p cache-node, or pass --node-bin)"
NODE_BIN=$(abs_path "$NODE_BIN")

# ---- process management -------------------------------------------------------
SRV_PID=""; BENCH_PID=""  # BENCH_PID: the driver (bg_wait)
stop_all() { stop_pid "$BENCH_PID"; stop_pid "$SRV_PID"; }  # for cleanup (lib.sh)
init_tmp ferrocache-hitratio
private_node_copy

start_server() {  # server policy -> sets SRV_PID PORT LOG
  local server=$1 policy=$2 got
  PORT=$(free_ports 1)
  LOG=$TMP/$server-$RUN_ID.log
  if [ "$server" = redis ]; then
    redis-server --port "$PORT" --bind "$HOST" --save "" --appendonly no --daemonize no \
      --dir "$TMP" --logfile "$LOG" --maxmemory "$MAXMEM" --maxmemory-policy "$policy" \
      --maxmemory-samples "$SAMPLES" </dev/null >/dev/null 2>&1 &
  else
    (cd "$TMP" && exec "$NODE_RUN" --port "$PORT" --bind "$HOST" --maxmemory "$MAXMEM" \
      --maxmemory-policy "$policy" --maxmemory-samples "$SAMPLES") </dev/null >"$LOG" 2>&1 &
  fi
  SRV_PID=$!
  wait_ready "$server" "$PORT" "$SRV_PID" "$LOG" "$server ($policy)"
  got=$(cli CONFIG GET maxmemory-policy | sed -n 2p)
  [ "$got" = "$policy" ] || die "$server reports maxmemory-policy '$got', expected '$policy' (binary too old?)"
}

# ---- runs ---------------------------------------------------------------------------
RES=$TMP/results.tsv; : >"$RES"
for wl in $WORKLOADS; do
  case "$wl" in zipf-0.99|zipf-0.8|zipf-0.99+scan) ;; *) die "unknown workload: $wl" ;; esac
done
[ -n "${WORKLOADS// /}" ] || die "--workloads is empty"
# Every policy either server runs, cache-node's order first, each once.
ALL_POLICIES=$(tr ' ' '\n' <<<"$NODE_POLICIES $REDIS_POLICIES" | awk 'NF && !seen[$0]++' | tr '\n' ' ')
RUN_ID=0
redis_version=$(redis_server_version)
nruns=$(( $(wc -w <<<"$WORKLOADS") * ($(wc -w <<<"$REDIS_POLICIES") + $(wc -w <<<"$NODE_POLICIES")) ))
T_START=$(date +%s)
LOADAVG0=$(loadavg)

for wl in $WORKLOADS; do
  args=(--keys "$KEYS" --requests "$REQUESTS" --value-size "$VSIZE" --seed 1 --batch 100 --quiet
        --max-seconds $((RUN_TMO - 30)) --rate "$RATE")
  case "$wl" in
    zipf-0.99) args+=(--alpha 0.99) ;;
    zipf-0.8) args+=(--alpha 0.8) ;;
    zipf-0.99+scan) args+=(--alpha 0.99 --scan-every "$SCAN_EVERY" --scan-length "$SCAN_LEN") ;;
  esac
  for policy in $ALL_POLICIES; do
    for server in redis node; do
      if [ "$server" = redis ] && [[ " $REDIS_POLICIES " != *" $policy "* ]]; then continue; fi
      if [ "$server" = node ] && [[ " $NODE_POLICIES " != *" $policy "* ]]; then continue; fi
      RUN_ID=$((RUN_ID + 1))
      echo "[$(date +%T)] run $RUN_ID/$nruns: $wl $policy $server" >&2
      start_server "$server" "$policy"
      out=$TMP/run-$RUN_ID.out; rc=0
      bg_wait "$out" "$TMP/run-$RUN_ID.err" timeout "$RUN_TMO" python3 "$DRIVER" --host "$HOST" \
        --port "$PORT" "${args[@]}" || rc=$?
      alive=1; pong=$(timeout 5 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null || true)
      [ "$pong" = PONG ] || alive=0
      used=$(info_field memory used_memory); dbsize=$(cli DBSIZE)
      json=$(tail -n 1 "$out" 2>/dev/null || true)
      [ -n "$json" ] || json='{}'
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$policy" "$server" "$rc" "$alive" \
        "${used:-}" "${dbsize:-}" "$json" "$(head -c 300 "$TMP/run-$RUN_ID.err" | tr '\t\n' '  ')" >>"$RES"
      stop_pid "$SRV_PID"; SRV_PID=""
    done
  done
done
T_END=$(date +%s)

# ---- report ---------------------------------------------------------------------------
echo "# hit ratio: cache-node vs redis-server (same maxmemory, cache-aside Zipf)"
echo
echo "- date: $(utc_now), host: $(uname -n), $(nproc) CPUs, loadavg before: $LOADAVG0, after: $(loadavg), $((T_END - T_START)) s for $nruns runs"
echo "- redis-server $redis_version; cache-node: $NODE_DESC"
echo "- maxmemory $MAXMEM ($MAXMEM_BYTES bytes), maxmemory-samples $SAMPLES; keys $KEYS x $VSIZE-byte values" \
     "(~$(( KEYS * (VSIZE + 100) / MAXMEM_BYTES ))x maxmemory); $REQUESTS requests per run, first half = warm-up (not counted)"
echo "- scan workload: after every $SCAN_EVERY requests a scan of $SCAN_LEN never-seen keys (GET miss + SET), not counted"
echo "- driver: python3 benches/zipf_hit_ratio.py --keys $KEYS --requests $REQUESTS --value-size $VSIZE --seed 1 --batch 100 --rate $RATE --alpha A [--scan-every $SCAN_EVERY --scan-length $SCAN_LEN]"
if [ "$RATE" = 0 ]; then
  echo "- unthrottled (--rate 0): Redis's LRU clock has 1 s resolution, so at this time scale Redis's allkeys-lru is close to random (see --help, --rate)"
else
  echo "- driver throttled to $RATE requests/s (--rate)"
fi
echo
{ warnings_py; cat <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
maxmem = int(sys.argv[2])
res, order, warns = {}, [], []
for wl, pol, srv, rc, alive, used, dbsize, js, err in rows:
    try:
        j = json.loads(js)
    except ValueError:
        j = {}
    res[(wl, pol, srv)] = dict(rc=int(rc), alive=alive == "1", used=int(used) if used.isdigit() else None,
                               dbsize=int(dbsize) if dbsize.isdigit() else None, j=j, err=err)
    if (wl, pol) not in order:
        order.append((wl, pol))

def hr(r):
    v = r["j"].get("hit_ratio_after_warmup") if r else None
    return "n/a" if v is None else f"{v:.4f}"
def num(r, k):
    v = r.get(k) if r else None
    return "-" if v is None else f"{v}"
def mib(r):
    return "-" if not r or r["used"] is None else f"{r['used'] / 2**20:.1f} MiB"

print("| workload | policy | redis hit ratio | cache-node hit ratio | redis DBSIZE | cache-node DBSIZE | redis used_memory | cache-node used_memory |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for wl, pol in order:
    r, n = res.get((wl, pol, "redis")), res.get((wl, pol, "node"))
    print(f"| {wl} | {pol} | {hr(r) if r else '-'} | {hr(n) if n else '-'} | {num(r, 'dbsize')} | {num(n, 'dbsize')} | {mib(r)} | {mib(n)} |")
print()
print("Hit ratio = hits / counted GETs after the warm-up half (Zipf requests only; scan GETs excluded).")
print("DBSIZE and used_memory are read right after each run.")
print()
print("Per run:")
print()
print("| workload | policy | server | hit ratio (after warm-up) | overall | ideal top-K for DBSIZE | evicted_keys | scan keys resident | hit ratio incl. scans | errors | driver req/s |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for wl, pol in order:
    for srv in ("redis", "node"):
        r = res.get((wl, pol, srv))
        if not r:
            continue
        j = r["j"]
        name = "redis" if srv == "redis" else "cache-node"
        def g(k, fmt="{}"):
            v = j.get(k)
            return "-" if v is None else fmt.format(v)
        print(f"| {wl} | {pol} | {name} | {hr(r)} | {g('hit_ratio', '{:.4f}')} | {g('ideal_topk_hit_ratio', '{:.4f}')} "
              f"| {g('evicted_keys')} | {g('scan_keys_resident_end')} | {g('hit_ratio_incl_scans', '{:.4f}')} "
              f"| {j.get('errors', 0) + j.get('scan_errors', 0) if j else '-'} | {g('req_per_s')} |")
        tag = f"{wl} {pol} {name}"
        if not j:
            warns.append(f"{tag}: driver produced no result (exit {r['rc']}): {r['err'][:200]}")
        elif r["rc"] != 0:
            warns.append(f"{tag}: driver exit status {r['rc']} (errors={j.get('errors')}, scan_errors={j.get('scan_errors')}, stopped_early={j.get('stopped_early')}) {r['err'][:200]}")
        if not r["alive"]:
            warns.append(f"{tag}: server did not answer PING after the run")
        if j and not j.get("evicted_keys"):
            warns.append(f"{tag}: evicted_keys = {j.get('evicted_keys')} (no eviction happened)")
        if r["used"] is not None and r["used"] > 1.05 * maxmem:
            warns.append(f"{tag}: used_memory {r['used']} is {r['used'] / maxmem:.2f}x maxmemory after the run")
print()
print_warnings(warns)
EOF
} | python3 - "$RES" "$MAXMEM_BYTES"
