#!/usr/bin/env bash
# benches/compare.sh - benchmark cache-node against a real redis-server, side by
# side in the same run, with redis-benchmark.
#
# Usage:
#   benches/compare.sh [options]
#
# Options (defaults in brackets):
#   --node-bin PATH     cache-node binary [<repo>/target/release/cache-node]
#   --build             run `cargo build --release -p cache-node` first
#                       (nothing is ever built without this flag)
#   --tests LIST        redis-benchmark -t list [set,get,incr,mset]
#   --requests N        requests per test (redis-benchmark -n) [200000]
#   --runs R            repetitions; the median ops/s and median p99 are reported [3]
#   --extra "ARGS"      extra redis-benchmark arguments, appended as-is, e.g.
#                       --extra "-t lpush,rpop,sadd,hset,zadd,lrange_100"
#                       (a -t in ARGS replaces --tests)
#   --pipelines "P.."   pipeline depths (-P) [1 16]
#   --modes "M.."       'pinned' and/or 'unpinned' [pinned unpinned]
#   --raw FILE          also write the raw per-run CSV rows to FILE
#   -h, --help          show this help
#
# Workload (per test, per pipeline depth, per server, per run):
#   redis-benchmark -h 127.0.0.1 -p PORT -c 50 -d 32 -r 100000 -n N -P {1,16} \
#                   -t set,get,incr,mset --csv
# Every call is wrapped in `timeout 120`. redis-benchmark 7 aborts on the first
# error reply (e.g. an unsupported command); such rows show as n/a and the
# error is listed under "warnings".
#
# Modes:
#   pinned    redis-benchmark runs under `taskset -c 0`; redis-server and
#             cache-node are started under `taskset -c 1` (so a multi-threaded
#             server sizes itself for one CPU).
#   unpinned  nothing is pinned.
# Both servers are (re)started fresh for each mode, on free ports on 127.0.0.1
# (never 6379), warmed up with one short unmeasured pass (-P 16, N/4 requests),
# and killed when the script exits. Within a mode, the two servers are measured
# alternately (order flipped every run).
#
# Output: one markdown table per mode
#   | test | P | redis ops/s | cache-node ops/s | ratio | redis p99 ms | cache-node p99 ms |
# (ratio = cache-node ops/s / redis ops/s), followed by the geometric mean and
# the minimum of the ratios for that mode, the share of machine CPU used by
# unrelated processes during that mode (> 10% adds a warning: e.g. a cargo
# build running alongside skews the numbers), and the exact commands used.
# Needs: bash, redis-server, redis-cli, redis-benchmark, python3, timeout,
# taskset (pinned mode only).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_BIN=""
BUILD=0
TESTS=set,get,incr,mset
REQUESTS=200000
RUNS=3
EXTRA=""
PIPES="1 16"
MODES="pinned unpinned"
RAW_OUT=""
CLIENTS=50
DSIZE=32
KEYSPACE=100000
TMO=120
CLIENT_CPU=0
SERVER_CPU=1
HOST=127.0.0.1

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "compare.sh: $*" >&2; exit 1; }
need_arg() { [ $# -ge 2 ] || die "option $1 needs an argument (see --help)"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --node-bin) need_arg "$@"; NODE_BIN=$2; shift 2 ;;
    --build) BUILD=1; shift ;;
    --tests) need_arg "$@"; TESTS=$2; shift 2 ;;
    --requests|-n) need_arg "$@"; REQUESTS=$2; shift 2 ;;
    --runs) need_arg "$@"; RUNS=$2; shift 2 ;;
    --extra) need_arg "$@"; EXTRA=$2; shift 2 ;;
    --pipelines) need_arg "$@"; PIPES=$2; shift 2 ;;
    --modes) need_arg "$@"; MODES=$2; shift 2 ;;
    --raw) need_arg "$@"; RAW_OUT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# ---- validate ---------------------------------------------------------------
[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
for p in $PIPES; do [[ $p =~ ^[1-9][0-9]*$ ]] || die "bad pipeline depth: $p"; done
[ -n "${PIPES// /}" ] || die "--pipelines is empty"
for m in $MODES; do
  case "$m" in pinned|unpinned) ;; *) die "bad mode: $m (use pinned and/or unpinned)" ;; esac
done
[ -n "${MODES// /}" ] || die "--modes is empty"

for tool in redis-server redis-cli redis-benchmark python3 timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
done
NCPU=$(nproc 2>/dev/null || echo 1)
if [[ " $MODES " == *" pinned "* ]]; then
  skip=""
  if ! command -v taskset >/dev/null 2>&1; then
    skip="taskset not found"
  elif [ "$NCPU" -lt 2 ]; then
    skip="it needs >= 2 CPUs (have $NCPU)"
  fi
  if [ -n "$skip" ]; then
    echo "compare.sh: warning: skipping pinned mode: $skip" >&2
    kept=""
    for m in $MODES; do [ "$m" = pinned ] || kept="$kept $m"; done
    MODES=${kept# }
  fi
fi
[ -n "${MODES// /}" ] || die "no mode left to run"

EXTRA_ARGS=()
[ -z "$EXTRA" ] || read -r -a EXTRA_ARGS <<<"$EXTRA"
TEST_ARGS=(-t "$TESTS")
for a in ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}; do
  if [ "$a" = -t ]; then TEST_ARGS=(); fi
done

if [ "$BUILD" = 1 ]; then
  echo "compare.sh: building: (cd $ROOT && cargo build --release -p cache-node)" >&2
  (cd "$ROOT" && cargo build --release -p cache-node) || die "build failed"
fi
if [ -z "$NODE_BIN" ]; then
  NODE_BIN=$ROOT/target/release/cache-node
fi
if [ ! -x "$NODE_BIN" ]; then
  echo "compare.sh: cache-node binary not found (or not executable): $NODE_BIN" >&2
  echo "  build it with:  (cd $ROOT && cargo build --release -p cache-node)" >&2
  echo "  or pass --build, or point --node-bin at a binary" >&2
  exit 1
fi
NODE_BIN=$(cd "$(dirname "$NODE_BIN")" && pwd)/$(basename "$NODE_BIN")

# ---- process management -------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferrocache-compare.XXXXXX")
RAW=$TMP/raw.csv
REDIS_PID=""; NODE_PID=""; BENCH_PID=""

is_running() {  # pid: alive and not a zombie
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

stop_pid() {  # pid: TERM, wait up to 5 s, then KILL; always reap
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    is_running "$pid" || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_servers() {
  stop_pid "$REDIS_PID"; REDIS_PID=""
  stop_pid "$NODE_PID"; NODE_PID=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$BENCH_PID"
  stop_servers
  if [ "$rc" -eq 0 ]; then
    rm -rf "$TMP"
  else
    echo "compare.sh: exit status $rc; logs kept in $TMP" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_ports() {  # count -> that many distinct free TCP ports on 127.0.0.1, never 6379
  python3 - "$1" <<'EOF'
import socket, sys
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)  # keep bound until all are chosen, so they are distinct
    p = s.getsockname()[1]
    if p != 6379:
        ports.append(p)
print(" ".join(map(str, ports)))
EOF
}

log_tail() {  # name file
  echo "---- last lines of $1 log ($2) ----" >&2
  tail -n 20 "$2" >&2 2>/dev/null || true
}

wait_ready() {  # name port pid log: PING until PONG, at most 10 s
  local name=$1 port=$2 pid=$3 log=$4 i
  for ((i = 0; i < 100; i++)); do
    if ! is_running "$pid"; then
      log_tail "$name" "$log"; die "$name exited during startup (port $port)"
    fi
    if [ "$(timeout 2 redis-cli -h "$HOST" -p "$port" ping 2>/dev/null)" = PONG ]; then
      return 0
    fi
    sleep 0.1
  done
  log_tail "$name" "$log"
  die "$name did not answer PING on port $port within 10 s"
}

warmup() {  # mode port: short unmeasured pass so neither server starts from an empty keyspace
  local pre=()
  [ "$1" = pinned ] && pre=(taskset -c "$CLIENT_CPU")
  timeout "$TMO" ${pre[@]+"${pre[@]}"} redis-benchmark -h "$HOST" -p "$2" -c "$CLIENTS" \
    -d "$DSIZE" -r "$KEYSPACE" -n $((REQUESTS / 4 + 1)) -P 16 ${TEST_ARGS[@]+"${TEST_ARGS[@]}"} \
    ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} --csv </dev/null >/dev/null 2>&1 &
  BENCH_PID=$!
  wait "$BENCH_PID" || true
  BENCH_PID=""
}

start_servers() {  # mode
  local mode=$1 pre=() ports
  [ "$mode" = pinned ] && pre=(taskset -c "$SERVER_CPU")
  ports=$(free_ports 2)
  REDIS_PORT=${ports%% *}; NODE_PORT=${ports##* }
  ${pre[@]+"${pre[@]}"} redis-server --port "$REDIS_PORT" --save "" --appendonly no \
    --bind "$HOST" --daemonize no --dir "$TMP" --logfile "$TMP/redis-$mode.log" \
    </dev/null >/dev/null 2>&1 &
  REDIS_PID=$!
  # cache-node runs in the temp dir so that anything it writes stays out of the repo
  (cd "$TMP" && exec ${pre[@]+"${pre[@]}"} "$NODE_BIN" --port "$NODE_PORT" --bind "$HOST") \
    </dev/null >"$TMP/node-$mode.log" 2>&1 &
  NODE_PID=$!
  wait_ready redis-server "$REDIS_PORT" "$REDIS_PID" "$TMP/redis-$mode.log"
  wait_ready cache-node "$NODE_PORT" "$NODE_PID" "$TMP/node-$mode.log"
  warmup "$mode" "$REDIS_PORT"
  warmup "$mode" "$NODE_PORT"
}

# ---- benchmark ------------------------------------------------------------------
WARN=$TMP/warnings.txt; : >"$WARN"
CMDS=$TMP/commands.txt; : >"$CMDS"
warn() { echo "warning: $*" >&2; echo "$*" >>"$WARN"; }

bench_one() {  # mode server P run
  local mode=$1 server=$2 P=$3 run=$4 port pid log pre=() cmd rc=0 out err
  if [ "$server" = redis ]; then port=$REDIS_PORT; pid=$REDIS_PID; log=$TMP/redis-$mode.log
  else port=$NODE_PORT; pid=$NODE_PID; log=$TMP/node-$mode.log; fi
  [ "$mode" = pinned ] && pre=(taskset -c "$CLIENT_CPU")
  cmd=(redis-benchmark -h "$HOST" -p "$port" -c "$CLIENTS" -d "$DSIZE" -r "$KEYSPACE"
       -n "$REQUESTS" -P "$P" ${TEST_ARGS[@]+"${TEST_ARGS[@]}"}
       ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} --csv)
  [ "$run" = 1 ] && echo "$mode|$server|timeout $TMO ${pre[*]+${pre[*]} }${cmd[*]}" >>"$CMDS"
  out=$TMP/out.csv; err=$TMP/err.txt
  # background + wait, so that INT/TERM are handled immediately
  timeout "$TMO" ${pre[@]+"${pre[@]}"} "${cmd[@]}" </dev/null >"$out" 2>"$err" &
  BENCH_PID=$!
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  if [ "$rc" -eq 124 ]; then
    warn "$mode $server P=$P run $run: redis-benchmark timed out after ${TMO}s"
  elif [ "$rc" -ne 0 ]; then
    warn "$mode $server P=$P run $run: redis-benchmark exited with status $rc: $(head -c 300 "$err" | tr '\n' ' ')"
  fi
  grep '^"' "$out" | grep -v '^"test"' |
    sed "s/^/\"$mode\",\"$server\",\"$P\",\"$run\",/" >>"$RAW" || true
  if ! is_running "$pid"; then
    log_tail "$server" "$log"
    die "$server (port $port) died during: ${cmd[*]}"
  fi
}

# noise check: CPU used by processes other than this script, its children and the
# two servers, as % of the whole machine (a cargo build next to the benchmark
# would show up here)
cpu_sample() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $2+$3+$4+$7+$8}' /proc/stat; }
own_ticks() {  # utime+stime of the servers + cutime+cstime of this shell (reaped children)
  local sum=0 p v
  for p in "$REDIS_PID" "$NODE_PID"; do
    [ -n "$p" ] && [ -r "/proc/$p/stat" ] || continue
    v=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
    sum=$((sum + v))
  done
  v=$(sed 's/^.*) //' "/proc/$$/stat" | awk '{print $14 + $15}')
  echo $((sum + v))
}
OTHER_PCT=$TMP/other_pct.txt; : >"$OTHER_PCT"

redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1 || true)
echo "# cache-node vs redis-server (redis-benchmark)"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host: $(uname -n), $NCPU CPUs${cpu_model:+ ($cpu_model)}, loadavg before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo "- redis-server $redis_version; cache-node: $NODE_BIN"
echo "- requests=$REQUESTS clients=$CLIENTS size=$DSIZE keyspace=$KEYSPACE pipelines=[$PIPES] runs=$RUNS (median reported) modes=[$MODES]"
echo

for mode in $MODES; do
  start_servers "$mode"
  echo "[$(date +%T)] $mode: redis-server pid $REDIS_PID port $REDIS_PORT, cache-node pid $NODE_PID port $NODE_PORT" >&2
  read -r t0 b0 <<<"$(cpu_sample)"; k0=$(own_ticks)
  for ((run = 1; run <= RUNS; run++)); do
    if ((run % 2)); then order="redis node"; else order="node redis"; fi
    for P in $PIPES; do
      for server in $order; do
        echo "[$(date +%T)] $mode run $run/$RUNS P=$P $server" >&2
        bench_one "$mode" "$server" "$P" "$run"
      done
    done
  done
  read -r t1 b1 <<<"$(cpu_sample)"; k1=$(own_ticks)
  other=$(awk -v dt=$((t1 - t0)) -v db=$((b1 - b0)) -v dk=$((k1 - k0)) \
    'BEGIN { f = db - dk; if (f < 0) f = 0; printf "%.1f", (dt > 0 ? 100 * f / dt : 0) }')
  echo "$mode $other" >>"$OTHER_PCT"
  if awk -v o="$other" 'BEGIN { exit !(o > 10) }'; then
    warn "$mode: other processes used ${other}% of the machine's CPU during the runs; results are probably skewed (loadavg now: $(cut -d' ' -f1-3 /proc/loadavg))"
  fi
  stop_servers
done

[ -z "$RAW_OUT" ] || {
  echo '"mode","server","pipeline","run","test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"'
  cat "$RAW"
} >"$RAW_OUT"

python3 - "$RAW" "$CMDS" "$MODES" "$OTHER_PCT" <<'EOF'
import csv, math, statistics as st, sys
raw, cmds_file, modes = sys.argv[1], sys.argv[2], sys.argv[3].split()
other = dict(l.split() for l in open(sys.argv[4]) if l.strip())
rows = list(csv.reader(open(raw)))
cmds = [l.rstrip("\n") for l in open(cmds_file)]
data, tests = {}, []
for r in rows:
    if len(r) < 11:
        continue
    mode, server, P, _run, test = r[0], r[1], int(r[2]), r[3], r[4]
    try:
        rps, p99 = float(r[5]), float(r[10])
    except ValueError:
        continue
    if test not in tests:
        tests.append(test)
    d = data.setdefault((mode, P, test, server), ([], []))
    d[0].append(rps); d[1].append(p99)

def med(key, i):
    v = data.get(key)
    return st.median(v[i]) if v and v[i] else None

def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)

for mode in modes:
    keys = sorted({(P, t) for (m, P, t, s) in data if m == mode},
                  key=lambda k: (k[0], tests.index(k[1])))
    pin = " (redis-benchmark on CPU 0, server on CPU 1)" if mode == "pinned" else ""
    print(f"## {mode}{pin}\n")
    print("| test | P | redis ops/s | cache-node ops/s | ratio | redis p99 ms | cache-node p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for P, t in keys:
        rr, nr = med((mode, P, t, "redis"), 0), med((mode, P, t, "node"), 0)
        rp, np_ = med((mode, P, t, "redis"), 1), med((mode, P, t, "node"), 1)
        ratio = nr / rr if rr and nr else None
        if ratio:
            ratios.append((ratio, t, P))
        print(f"| {t} | {P} | {fmt(rr, '.0f')} | {fmt(nr, '.0f')} | {fmt(ratio, '.2f')} "
              f"| {fmt(rp, '.3f')} | {fmt(np_, '.3f')} |")
    print()
    if ratios:
        gm = math.exp(sum(math.log(r) for r, _, _ in ratios) / len(ratios))
        lo = min(ratios)
        print(f"{mode}: geometric mean ratio (cache-node/redis) = **{gm:.3f}** over {len(ratios)} rows; "
              f"minimum ratio = **{lo[0]:.3f}** ({lo[1]}, P={lo[2]})")
    else:
        print(f"{mode}: no comparable rows")
    if mode in other:
        print(f"\nCPU used by other processes during {mode} runs: {other[mode]}% of the machine")
    print("\nredis-benchmark commands (same for every run):\n")
    print("```")
    for c in cmds:
        m, server, cmd = c.split("|", 2)
        if m == mode:
            print(f"{'redis' if server == 'redis' else 'cache-node'}: {cmd}")
    print("```\n")
EOF

if [ -s "$WARN" ]; then
  echo "## warnings"
  echo
  sed 's/^/- /' "$WARN"
fi
