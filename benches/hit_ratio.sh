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

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRIVER=$ROOT/benches/zipf_hit_ratio.py
HOST=127.0.0.1
QUICK=0
MAXMEM="" KEYS="" REQUESTS="" VSIZE=2000 SCAN_EVERY="" SCAN_LEN="" SAMPLES=5 NODE_BIN="" RATE=0
RUN_TMO=300
REDIS_POLICIES="allkeys-lru allkeys-lfu allkeys-random"
NODE_POLICIES="allkeys-lru allkeys-lfu allkeys-random allkeys-tinylfu"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "hit_ratio.sh: $*" >&2; exit 1; }
need_arg() { [ $# -ge 2 ] || die "option $1 needs an argument (see --help)"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --maxmemory) need_arg "$@"; MAXMEM=$2; shift 2 ;;
    --keys) need_arg "$@"; KEYS=$2; shift 2 ;;
    --requests) need_arg "$@"; REQUESTS=$2; shift 2 ;;
    --value-size) need_arg "$@"; VSIZE=$2; shift 2 ;;
    --scan-every) need_arg "$@"; SCAN_EVERY=$2; shift 2 ;;
    --scan-length) need_arg "$@"; SCAN_LEN=$2; shift 2 ;;
    --samples) need_arg "$@"; SAMPLES=$2; shift 2 ;;
    --rate) need_arg "$@"; RATE=$2; shift 2 ;;
    --node-bin) need_arg "$@"; NODE_BIN=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "hit_ratio.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ "$QUICK" = 1 ]; then
  : "${MAXMEM:=16mb}" "${KEYS:=125000}" "${REQUESTS:=150000}"
else
  : "${MAXMEM:=64mb}" "${KEYS:=500000}" "${REQUESTS:=500000}"
fi

to_bytes() {  # redis-style size (64mb, 1gb, 1048576) -> bytes
  python3 - "$1" <<'EOF'
import re, sys
m = re.fullmatch(r"(\d+)\s*(b|k|kb|m|mb|g|gb)?", sys.argv[1].strip().lower())
if not m:
    sys.exit(1)
mult = {None: 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
print(int(m.group(1)) * mult[m.group(2)])
EOF
}
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

for tool in python3 redis-server redis-cli timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
done
[ -f "$DRIVER" ] || die "driver not found: $DRIVER"

FALLBACK_BIN=/work/target-main/release/cache-node
if [ -z "$NODE_BIN" ]; then
  NODE_BIN=$ROOT/target/release/cache-node
  [ -x "$NODE_BIN" ] || NODE_BIN=$FALLBACK_BIN
  if [ "$NODE_BIN" != "$FALLBACK_BIN" ] && [ -x "$FALLBACK_BIN" ] && [ "$FALLBACK_BIN" -nt "$NODE_BIN" ]; then
    echo "hit_ratio.sh: warning: $FALLBACK_BIN is newer than $NODE_BIN; pass --node-bin to use it" >&2
  fi
fi
[ -x "$NODE_BIN" ] || die "cache-node binary not found: $NODE_BIN (build it: cargo build --release -p cache-node, or pass --node-bin)"
NODE_BIN=$(cd "$(dirname "$NODE_BIN")" && pwd)/$(basename "$NODE_BIN")

# ---- process management -------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferrocache-hitratio.XXXXXX")
SRV_PID=""; DRV_PID=""

is_running() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}
stop_pid() {  # TERM, wait up to 5 s, KILL; always reap
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
  stop_pid "$DRV_PID"; stop_pid "$SRV_PID"
  rm -f "$TMP/cache-node"  # the private copy of the binary
  if [ "$rc" -eq 0 ]; then rm -rf "$TMP"; else echo "hit_ratio.sh: exit status $rc; logs kept in $TMP" >&2; fi
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
  python3 - <<'EOF'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p != 6379:
        print(p); break
EOF
}
cli() { timeout 10 redis-cli -h "$HOST" -p "$PORT" "$@" 2>/dev/null | tr -d '\r'; }
info_field() { cli INFO "$1" | awk -F: -v f="$2" '$1 == f { print $2 }'; }

start_server() {  # server policy -> sets SRV_PID PORT LOG
  local server=$1 policy=$2 i got
  PORT=$(free_port)
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
  for ((i = 0; i < 100; i++)); do
    is_running "$SRV_PID" || { tail -n 20 "$LOG" >&2; die "$server ($policy) exited during startup"; }
    [ "$(timeout 2 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  [ "$i" -lt 100 ] || { tail -n 20 "$LOG" >&2; die "$server did not answer PING on port $PORT within 10 s"; }
  got=$(cli CONFIG GET maxmemory-policy | sed -n 2p)
  [ "$got" = "$policy" ] || die "$server reports maxmemory-policy '$got', expected '$policy' (binary too old?)"
}

# ---- runs ---------------------------------------------------------------------------
RES=$TMP/results.tsv; : >"$RES"
WORKLOADS="zipf-0.99 zipf-0.8 zipf-0.99+scan"
RUN_ID=0
redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
nruns=$(( $(wc -w <<<"$WORKLOADS") * ($(wc -w <<<"$REDIS_POLICIES") + $(wc -w <<<"$NODE_POLICIES")) ))
T_START=$(date +%s)
LOADAVG0=$(cut -d" " -f1-3 /proc/loadavg 2>/dev/null || echo "?")

for wl in $WORKLOADS; do
  args=(--keys "$KEYS" --requests "$REQUESTS" --value-size "$VSIZE" --seed 1 --batch 100 --quiet
        --max-seconds $((RUN_TMO - 30)) --rate "$RATE")
  case "$wl" in
    zipf-0.99) args+=(--alpha 0.99) ;;
    zipf-0.8) args+=(--alpha 0.8) ;;
    zipf-0.99+scan) args+=(--alpha 0.99 --scan-every "$SCAN_EVERY" --scan-length "$SCAN_LEN") ;;
  esac
  for policy in $NODE_POLICIES; do
    for server in redis node; do
      if [ "$server" = redis ] && [[ " $REDIS_POLICIES " != *" $policy "* ]]; then continue; fi
      RUN_ID=$((RUN_ID + 1))
      echo "[$(date +%T)] run $RUN_ID/$nruns: $wl $policy $server" >&2
      start_server "$server" "$policy"
      out=$TMP/run-$RUN_ID.out; rc=0
      timeout "$RUN_TMO" python3 "$DRIVER" --host "$HOST" --port "$PORT" "${args[@]}" \
        </dev/null >"$out" 2>"$TMP/run-$RUN_ID.err" &
      DRV_PID=$!
      wait "$DRV_PID" || rc=$?
      DRV_PID=""
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
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host: $(uname -n), $(nproc) CPUs, loadavg before: $LOADAVG0, after: $(cut -d" " -f1-3 /proc/loadavg 2>/dev/null || echo "?"), $((T_END - T_START)) s for $nruns runs"
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
python3 - "$RES" "$MAXMEM_BYTES" <<'EOF'
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
if warns:
    print("## warnings\n")
    for w in warns:
        print(f"- {w}")
    print()
EOF
