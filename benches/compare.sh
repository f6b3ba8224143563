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
#   --command "CMD.."   benchmark this one command instead of -t tests, given as
#                       redis-benchmark takes it (`__rand_int__` is replaced), e.g.
#                       --command "XADD bench:s * f 0123456789abcdef0123456789abcdef"
#   --setup "SHELL"     run before the warm-up against each fresh server, with $PORT set,
#                       e.g. --setup 'redis-cli -p $PORT XGROUP CREATE s g $ MKSTREAM'
#   --node-args "ARGS"  extra cache-node arguments, e.g. --node-args "--threads 1"
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

PROG=compare.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_BIN=""
BUILD=0
TESTS=set,get,incr,mset
REQUESTS=200000
RUNS=3
EXTRA=""
COMMAND=""
SETUP=""
NODE_ARGS=""
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

parse_options --node-bin=NODE_BIN --build=BUILD=1 --tests=TESTS '--requests|-n=REQUESTS' --runs=RUNS \
  --extra=EXTRA --command=COMMAND --setup=SETUP --node-args=NODE_ARGS --pipelines=PIPES --modes=MODES --raw=RAW_OUT -- "$@"

# ---- validate ---------------------------------------------------------------
[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
check_pipelines "$PIPES"
for m in $MODES; do
  case "$m" in pinned|unpinned) ;; *) die "bad mode: $m (use pinned and/or unpinned)" ;; esac
done
[ -n "${MODES// /}" ] || die "--modes is empty"

need_tools redis-server redis-cli redis-benchmark python3 timeout
NCPU=$(nproc 2>/dev/null || echo 1)
if [[ " $MODES " == *" pinned "* ]]; then
  skip="" pin=0
  can_pin || pin=$?
  if [ "$pin" = 1 ]; then
    skip="taskset not found"
  elif [ "$pin" = 2 ]; then
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
NODE_EXTRA=()
[ -z "$NODE_ARGS" ] || read -r -a NODE_EXTRA <<<"$NODE_ARGS"
TEST_ARGS=(-t "$TESTS")
for a in ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}; do
  if [ "$a" = -t ]; then TEST_ARGS=(); fi
done
# A custom command goes last (redis-benchmark reads the command after its options).
COMMAND_ARGS=()
if [ -n "$COMMAND" ]; then
  read -r -a COMMAND_ARGS <<<"$COMMAND"
  TEST_ARGS=()
fi

if [ "$BUILD" = 1 ]; then
  echo "compare.sh: building: (cd $ROOT && cargo build --release -p cache-node)" >&2
  (cd "$ROOT" && cargo build --release -p cache-node) || die "build failed"
fi
if [ -z "$NODE_BIN" ]; then
  NODE_BIN=$ROOT/target/release/cache-node
fi
need_binary cache-node "$NODE_BIN" "or pass --build, or point --node-bin at a binary"
NODE_BIN=$(abs_path "$NODE_BIN")

# ---- process management -------------------------------------------------------
REDIS_PID=""; NODE_PID=""; BENCH_PID=""

stop_servers() {
  stop_pid "$REDIS_PID"; REDIS_PID=""
  stop_pid "$NODE_PID"; NODE_PID=""
}

stop_all() { stop_pid "$BENCH_PID"; stop_servers; }  # for cleanup (lib.sh)
init_tmp ferrocache-compare
RAW=$TMP/raw.csv

warmup() {  # mode port: short unmeasured pass so neither server starts from an empty keyspace
  local pre=()
  [ "$1" = pinned ] && pre=(taskset -c "$CLIENT_CPU")
  bg_wait /dev/null /dev/null timeout "$TMO" ${pre[@]+"${pre[@]}"} redis-benchmark -h "$HOST" \
    -p "$2" -c "$CLIENTS" -d "$DSIZE" -r "$KEYSPACE" -n $((REQUESTS / 4 + 1)) -P 16 \
    ${TEST_ARGS[@]+"${TEST_ARGS[@]}"} ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} --csv \
    ${COMMAND_ARGS[@]+"${COMMAND_ARGS[@]}"} || true
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
  (cd "$TMP" && exec ${pre[@]+"${pre[@]}"} "$NODE_BIN" --port "$NODE_PORT" --bind "$HOST" ${NODE_EXTRA[@]+"${NODE_EXTRA[@]}"}) \
    </dev/null >"$TMP/node-$mode.log" 2>&1 &
  NODE_PID=$!
  wait_ready redis-server "$REDIS_PORT" "$REDIS_PID" "$TMP/redis-$mode.log"
  wait_ready cache-node "$NODE_PORT" "$NODE_PID" "$TMP/node-$mode.log"
  if [ -n "$SETUP" ]; then
    PORT=$REDIS_PORT bash -c "$SETUP" >/dev/null || die "--setup failed on redis-server"
    PORT=$NODE_PORT bash -c "$SETUP" >/dev/null || die "--setup failed on cache-node"
  fi
  warmup "$mode" "$REDIS_PORT"
  warmup "$mode" "$NODE_PORT"
}

# ---- benchmark ------------------------------------------------------------------
WARN=$TMP/warnings.txt; : >"$WARN"
CMDS=$TMP/commands.txt; : >"$CMDS"

bench_one() {  # mode server P run
  local mode=$1 server=$2 P=$3 run=$4 port pid log pre=() cmd
  if [ "$server" = redis ]; then port=$REDIS_PORT; pid=$REDIS_PID; log=$TMP/redis-$mode.log
  else port=$NODE_PORT; pid=$NODE_PID; log=$TMP/node-$mode.log; fi
  [ "$mode" = pinned ] && pre=(taskset -c "$CLIENT_CPU")
  cmd=(redis-benchmark -h "$HOST" -p "$port" -c "$CLIENTS" -d "$DSIZE" -r "$KEYSPACE"
       -n "$REQUESTS" -P "$P" ${TEST_ARGS[@]+"${TEST_ARGS[@]}"}
       ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} --csv ${COMMAND_ARGS[@]+"${COMMAND_ARGS[@]}"})
  run_bench "$mode" "$server" "$P" "$run" ${pre[@]+"${pre[@]}"} "${cmd[@]}"
  check_alive "$pid" "$server" "$log" "$server (port $port) died during: ${cmd[*]}"
}

# noise check (lib.sh), per mode: the two servers are not "other processes"
OTHER_PCT=$TMP/other_pct.txt; : >"$OTHER_PCT"

redis_version=$(redis_server_version)
cpu_model=$(cpu_model_name)
echo "# cache-node vs redis-server (redis-benchmark)"
echo
echo "- date: $(utc_now), host: $(uname -n), $NCPU CPUs${cpu_model:+ ($cpu_model)}, loadavg before: $(loadavg)"
echo "- redis-server $redis_version; cache-node: $NODE_BIN"
echo "- requests=$REQUESTS clients=$CLIENTS size=$DSIZE keyspace=$KEYSPACE pipelines=[$PIPES] runs=$RUNS (median reported) modes=[$MODES]"
echo

for mode in $MODES; do
  start_servers "$mode"
  echo "[$(date +%T)] $mode: redis-server pid $REDIS_PID port $REDIS_PORT, cache-node pid $NODE_PID port $NODE_PORT" >&2
  noise_begin "$REDIS_PID" "$NODE_PID"
  bench_rounds "$mode" "redis node"
  noise_end "$mode" "$REDIS_PID" "$NODE_PID"
  stop_servers
done

write_raw mode server

{ bench_report_py; cat <<'EOF'
import math, sys
raw, cmds_file, modes = sys.argv[1], sys.argv[2], sys.argv[3].split()
other = dict(l.split() for l in open(sys.argv[4]) if l.strip())
data, tests = load_runs(raw)
cmds = [l.rstrip("\n") for l in open(cmds_file)]

for mode in modes:
    keys = sorted({(P, t) for (m, _s, P, t) in data if m == mode},
                  key=lambda k: (k[0], tests.index(k[1])))
    pin = " (redis-benchmark on CPU 0, server on CPU 1)" if mode == "pinned" else ""
    print(f"## {mode}{pin}\n")
    print("| test | P | redis ops/s | cache-node ops/s | ratio | redis p99 ms | cache-node p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for P, t in keys:
        rr, nr = med(data, (mode, "redis", P, t), 0), med(data, (mode, "node", P, t), 0)
        rp, np_ = med(data, (mode, "redis", P, t), 1), med(data, (mode, "node", P, t), 1)
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
} | python3 - "$RAW" "$CMDS" "$MODES" "$OTHER_PCT"

print_warnings
