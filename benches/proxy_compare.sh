#!/usr/bin/env bash
# benches/proxy_compare.sh - benchmark cache-proxy against twemproxy (nutcracker), both in
# front of the same three backends (three redis-servers, then three cache-nodes), with
# redis-benchmark.
#
# Usage:
#   benches/proxy_compare.sh [options]
#
# Options (defaults in brackets):
#   --requests N        requests per test (redis-benchmark -n) at every pipeline depth
#                       [100000 at P=1, 200000 at P=16]
#   --runs K            repetitions; the median ops/s and median p99 are reported [3]
#   --quick             1 run, 20000 requests at P=1 and 50000 at P=16 (an explicit
#                       --runs / --requests still wins)
#   --ketama            run cache-proxy with --distribution ketama --hash fnv1a_64
#                       (twemproxy's ring) instead of its default (rendezvous)
#   --only PROXY        twemproxy or cache-proxy: run only that proxy's rows (no ratios);
#                       --only twemproxy works before cache-proxy is built
#   --backends KIND     redis, cache-node or both [both; cache-node rows are skipped
#                       with a warning if the cache-node binary is missing]
#   --proxy-bin PATH    cache-proxy binary [<repo>/target/release/cache-proxy]
#   --node-bin PATH     cache-node binary [<repo>/target/release/cache-node]
#   --nutcracker PATH   twemproxy binary [nutcracker in PATH, else /usr/sbin/nutcracker]
#   --mbuf N            nutcracker -m, its mbuf chunk size in bytes [16384, which is
#                       nutcracker's own default; its docs suggest 512 for many connections]
#   --tests LIST        redis-benchmark -t list [set,get,mset,incr]
#   --pipelines "P.."   pipeline depths (-P) [1 16]
#   --raw FILE          also write the raw per-run CSV rows to FILE
#   -h, --help          show this help
#
# Workload (per backend kind, per proxy, per pipeline depth, per run):
#   redis-benchmark -h 127.0.0.1 -p PROXYPORT -t set,get,mset,incr -c 50 -d 32 -r 100000 \
#                   -n N -P {1,16} --csv
# Every call runs under `timeout 300`. redis-benchmark 7 exits on the first error reply
# (e.g. twemproxy's "-ERR Connection timed out"); such rows show as n/a and the error is
# listed under "warnings". (Through twemproxy, redis-benchmark always prints "WARNING:
# Could not fetch server CONFIG" on stderr: twemproxy does not proxy CONFIG. Harmless.)
#
# Setup, all on 127.0.0.1, on free ports chosen by the script (never 6379):
#   - three backends of one kind: redis-server --save "" --appendonly no, or cache-node
#     --save "" --appendonly no (run in a temp dir);
#   - twemproxy in front of them: a pool with hash fnv1a_64, hash_tag "{}", distribution
#     ketama, redis true, timeout 1000, server_retry_timeout 2000, server_failure_limit 2,
#     auto_eject_hosts true, preconnect true, started as
#     nutcracker -c CONF -s STATSPORT -a 127.0.0.1 -o LOG -m MBUF;
#   - cache-proxy in front of the same backends:
#     cache-proxy --port PORT --node 127.0.0.1:P1 --node 127.0.0.1:P2 --node 127.0.0.1:P3
#     (+ --distribution ketama --hash fnv1a_64 with --ketama).
# redis-benchmark runs under `taskset -c 0`; the backends and the proxies all run under
# `taskset -c 1` (multi-threaded ones size themselves for that one CPU). Each process must
# answer PING within 10 s. Each proxy gets one short unmeasured warm-up pass (-P 16, N/4
# requests). Before every measured redis-benchmark call, every backend is sent FLUSHALL
# directly, so each call starts from an empty keyspace (within a call, SET runs before GET).
# Both proxies stay up during a backend kind; the measurements alternate between them and
# the order flips every run. Everything the script starts is killed when it exits
# (also on Ctrl-C); if the run fails, the logs stay in the temp dir and the path is printed.
#
# Output (markdown, on stdout; progress on stderr): per backend kind a table
#   | test | P | twemproxy ops/s | cache-proxy ops/s | ratio | twemproxy p99 ms |
#   | cache-proxy p99 ms | p99 ratio |
# (ratio = cache-proxy ops/s / twemproxy ops/s; p99 ratio = cache-proxy p99 / twemproxy
# p99, lower is better), then the geometric mean and the minimum of the ratios per backend
# kind and over all rows, next to the targets (geomean >= 1.5, no row < 1.35, p99 no worse:
# every p99 ratio <= 1.00), the share of keys each backend held after the last run, the
# CPU used by unrelated processes (> 10% adds a warning), and the exact commands.
# Needs: bash, redis-server, redis-cli, redis-benchmark, nutcracker (apt-get install -y
# nutcracker), python3, timeout, taskset.
set -euo pipefail

PROG=proxy_compare.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROXY_BIN=""
NODE_BIN=""
NC_BIN=""
TESTS=set,get,mset,incr
REQUESTS=""
RUNS=""
QUICK=0
KETAMA=0
ONLY=""
BACKENDS=both
BACKENDS_SET=0
MBUF=16384
PIPES="1 16"
RAW_OUT=""
CLIENTS=50
DSIZE=32
KEYSPACE=100000
TMO=300
CLIENT_CPU=0
SERVER_CPU=1
HOST=127.0.0.1

parse_options '--requests|-n=REQUESTS' --runs=RUNS --quick=QUICK=1 --ketama=KETAMA=1 --only=ONLY \
  --backends=BACKENDS --proxy-bin=PROXY_BIN --node-bin=NODE_BIN --nutcracker=NC_BIN --mbuf=MBUF \
  --tests=TESTS --pipelines=PIPES --raw=RAW_OUT -- "$@"
[[ $OPTS_GIVEN != *" BACKENDS "* ]] || BACKENDS_SET=1

# ---- validate ---------------------------------------------------------------
if [ -z "$RUNS" ]; then
  if [ "$QUICK" = 1 ]; then RUNS=1; else RUNS=3; fi
fi
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[ -z "$REQUESTS" ] || [[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive integer"
[[ $MBUF =~ ^[1-9][0-9]*$ ]] || die "--mbuf must be a positive integer"
check_pipelines "$PIPES"
[ -n "$TESTS" ] || die "--tests is empty"

requests_for() {  # P -> requests per test at that pipeline depth
  if [ -n "$REQUESTS" ]; then echo "$REQUESTS"
  elif [ "$QUICK" = 1 ] && [ "$1" = 1 ]; then echo 20000
  elif [ "$QUICK" = 1 ]; then echo 50000
  elif [ "$1" = 1 ]; then echo 100000
  else echo 200000
  fi
}

case "$ONLY" in
  "") PROXIES="twemproxy cache-proxy" ;;
  twemproxy|nutcracker) PROXIES=twemproxy ;;
  cache-proxy) PROXIES=cache-proxy ;;
  *) die "--only must be twemproxy or cache-proxy" ;;
esac
case "$BACKENDS" in
  redis) KINDS=redis ;;
  cache-node|node) KINDS=cache-node ;;
  both) KINDS="redis cache-node" ;;
  *) die "--backends must be redis, cache-node or both" ;;
esac

need_tools redis-server redis-cli redis-benchmark python3 timeout sha256sum
NCPU=$(nproc 2>/dev/null || echo 1)
PIN=1 pin=0
can_pin || pin=$?
if [ "$pin" = 1 ]; then
  echo "proxy_compare.sh: warning: taskset not found; nothing is pinned" >&2; PIN=0
elif [ "$pin" = 2 ]; then
  echo "proxy_compare.sh: warning: pinning needs >= 2 CPUs (have $NCPU); nothing is pinned" >&2; PIN=0
fi
CLIENT_PRE=(); SERVER_PRE=()
if [ "$PIN" = 1 ]; then CLIENT_PRE=(taskset -c "$CLIENT_CPU"); SERVER_PRE=(taskset -c "$SERVER_CPU"); fi

if [[ " $PROXIES " == *" twemproxy "* ]]; then
  if [ -z "$NC_BIN" ]; then
    NC_BIN=$(command -v nutcracker 2>/dev/null || true)
    [ -n "$NC_BIN" ] || NC_BIN=/usr/sbin/nutcracker
  fi
  [ -x "$NC_BIN" ] || die "nutcracker (twemproxy) not found: $NC_BIN; install it with: apt-get install -y nutcracker"
fi
if [[ " $PROXIES " == *" cache-proxy "* ]]; then
  [ -n "$PROXY_BIN" ] || PROXY_BIN=$ROOT/target/release/cache-proxy
  need_binary cache-proxy "$PROXY_BIN" "or point --proxy-bin at a binary, or pass --only twemproxy"
  PROXY_BIN=$(abs_path "$PROXY_BIN")
fi
if [[ " $KINDS " == *" cache-node "* ]]; then
  [ -n "$NODE_BIN" ] || NODE_BIN=$ROOT/target/release/cache-node
  if [ ! -x "$NODE_BIN" ]; then
    if [ "$BACKENDS_SET" = 0 ]; then
      echo "proxy_compare.sh: warning: cache-node binary not found ($NODE_BIN); skipping the cache-node backends" >&2
      KINDS=redis
    else
      need_binary cache-node "$NODE_BIN"
    fi
  else
    NODE_BIN=$(abs_path "$NODE_BIN")
  fi
fi

# ---- process management -------------------------------------------------------
BACKEND_PIDS=(); BACKEND_PORTS=()
TW_PID=""; CP_PID=""; BENCH_PID=""
TW_PORT=""; TW_STATS_PORT=""; CP_PORT=""

stop_proxies() {
  stop_pid "$TW_PID"; TW_PID=""
  stop_pid "$CP_PID"; CP_PID=""
}

stop_backends() {
  local pid
  for pid in ${BACKEND_PIDS[@]+"${BACKEND_PIDS[@]}"}; do stop_pid "$pid"; done
  BACKEND_PIDS=(); BACKEND_PORTS=()
}

stop_all() { stop_pid "$BENCH_PID"; stop_proxies; stop_backends; }  # for cleanup (lib.sh)
init_tmp ferrocache-proxy-compare
RAW=$TMP/raw.csv; : >"$RAW"

PROXY_DESC="-"; NODE_DESC="-"; PROXY_RUN=""; NODE_RUN=""
if [ -n "$PROXY_BIN" ]; then private_copy "$PROXY_BIN" cache-proxy PROXY_RUN PROXY_DESC; fi
if [[ " $KINDS " == *" cache-node "* ]]; then private_node_copy; fi

start_backends() {  # kind: three backends on free ports
  local kind=$1 i port log
  for i in 1 2 3; do
    port=${ALL_PORTS[$((i - 1))]}
    log=$TMP/$kind-$i.log
    if [ "$kind" = redis ]; then
      ${SERVER_PRE[@]+"${SERVER_PRE[@]}"} redis-server --port "$port" --save "" --appendonly no \
        --bind "$HOST" --daemonize no --dir "$TMP" --logfile "$log" </dev/null >/dev/null 2>&1 &
    else
      # cache-node runs in the temp dir so that anything it writes stays out of the repo
      (cd "$TMP" && exec ${SERVER_PRE[@]+"${SERVER_PRE[@]}"} "$NODE_RUN" --port "$port" \
        --bind "$HOST" --save "" --appendonly no) </dev/null >"$log" 2>&1 &
    fi
    BACKEND_PIDS+=($!); BACKEND_PORTS+=("$port")
  done
  for i in 0 1 2; do
    wait_ready "$kind-$((i + 1))" "${BACKEND_PORTS[$i]}" "${BACKEND_PIDS[$i]}" "$TMP/$kind-$((i + 1)).log"
  done
}

TW_CMD=""; CP_CMD=""
start_twemproxy() {  # kind
  local kind=$1 conf=$TMP/nutcracker-$1.yml log=$TMP/nutcracker-$1.log port
  TW_PORT=${ALL_PORTS[3]}; TW_STATS_PORT=${ALL_PORTS[4]}
  {
    echo "ferrocache_bench:"
    echo "  listen: $HOST:$TW_PORT"
    echo "  hash: fnv1a_64"
    echo "  hash_tag: \"{}\""
    echo "  distribution: ketama"
    echo "  redis: true"
    echo "  timeout: 1000"
    echo "  server_retry_timeout: 2000"
    echo "  server_failure_limit: 2"
    echo "  auto_eject_hosts: true"
    echo "  preconnect: true"
    echo "  servers:"
    for port in "${BACKEND_PORTS[@]}"; do echo "   - $HOST:$port:1"; done
  } >"$conf"
  "$NC_BIN" -t -c "$conf" >"$TMP/nutcracker-test.out" 2>&1 ||
    { cat "$TMP/nutcracker-test.out" >&2; die "nutcracker rejected its config $conf"; }
  local cmd=("$NC_BIN" -c "$conf" -s "$TW_STATS_PORT" -a "$HOST" -o "$log" -m "$MBUF")
  TW_CMD="${SERVER_PRE[*]+${SERVER_PRE[*]} }${cmd[*]}"
  (cd "$TMP" && exec ${SERVER_PRE[@]+"${SERVER_PRE[@]}"} "${cmd[@]}") \
    </dev/null >"$TMP/nutcracker-$kind.out" 2>&1 &
  TW_PID=$!
  wait_ready twemproxy "$TW_PORT" "$TW_PID" "$log"
}

start_cache_proxy() {  # kind
  local kind=$1 log=$TMP/cache-proxy-$1.log port args=()
  CP_PORT=${ALL_PORTS[5]}
  args=(--port "$CP_PORT" --bind "$HOST")
  for port in "${BACKEND_PORTS[@]}"; do args+=(--node "$HOST:$port"); done
  [ "$KETAMA" = 1 ] && args+=(--distribution ketama --hash fnv1a_64)
  CP_CMD="${SERVER_PRE[*]+${SERVER_PRE[*]} }cache-proxy ${args[*]}"
  (cd "$TMP" && exec ${SERVER_PRE[@]+"${SERVER_PRE[@]}"} "$PROXY_RUN" "${args[@]}") \
    </dev/null >"$log" 2>&1 &
  CP_PID=$!
  wait_ready cache-proxy "$CP_PORT" "$CP_PID" "$log"
  grep -q "addr=$HOST:$CP_PORT" "$log" ||
    warn "$kind: cache-proxy answers PING but its log has no 'addr=$HOST:$CP_PORT' line"
}

proxy_port() { if [ "$1" = twemproxy ]; then echo "$TW_PORT"; else echo "$CP_PORT"; fi; }
proxy_pid() { if [ "$1" = twemproxy ]; then echo "$TW_PID"; else echo "$CP_PID"; fi; }
proxy_log() { if [ "$1" = twemproxy ]; then echo "$TMP/nutcracker-$2.log"; else echo "$TMP/cache-proxy-$2.log"; fi; }

flush_backends() {  # FLUSHALL on each backend directly
  local port out
  for port in "${BACKEND_PORTS[@]}"; do
    out=$(timeout 10 redis-cli -h "$HOST" -p "$port" flushall 2>&1 || true)
    [ "$out" = OK ] || warn "FLUSHALL on backend port $port answered: $out"
  done
}

backend_keys() {  # -> "n1 n2 n3": DBSIZE of each backend
  local port out=""
  for port in "${BACKEND_PORTS[@]}"; do
    out="$out $(timeout 10 redis-cli -h "$HOST" -p "$port" dbsize 2>/dev/null || echo '?')"
  done
  echo "${out# }"
}

warmup() {  # port: short unmeasured pass
  local n
  n=$(( $(requests_for 16) / 4 + 1 ))
  bg_wait /dev/null /dev/null timeout "$TMO" ${CLIENT_PRE[@]+"${CLIENT_PRE[@]}"} redis-benchmark \
    -h "$HOST" -p "$1" -c "$CLIENTS" -d "$DSIZE" -r "$KEYSPACE" -n "$n" -P 16 -t "$TESTS" --csv || true
}

# ---- benchmark ------------------------------------------------------------------
WARN=$TMP/warnings.txt; : >"$WARN"
CMDS=$TMP/commands.txt; : >"$CMDS"
KEYS=$TMP/keys.txt; : >"$KEYS"
NOTES=$TMP/notes.txt; : >"$NOTES"
# through twemproxy, redis-benchmark always says this on stderr (harmless, see the top)
BENCH_ERR_SKIP='Could not fetch server CONFIG'

bench_one() {  # kind proxy P run
  local kind=$1 proxy=$2 P=$3 run=$4 port pid n cmd i
  port=$(proxy_port "$proxy"); pid=$(proxy_pid "$proxy"); n=$(requests_for "$P")
  cmd=(redis-benchmark -h "$HOST" -p "$port" -t "$TESTS" -c "$CLIENTS" -d "$DSIZE"
       -r "$KEYSPACE" -n "$n" -P "$P" --csv)
  flush_backends
  run_bench "$kind" "$proxy" "$P" "$run" ${CLIENT_PRE[@]+"${CLIENT_PRE[@]}"} "${cmd[@]}"
  echo "$kind $proxy $P $run $(backend_keys)" >>"$KEYS"
  check_alive "$pid" "$proxy" "$(proxy_log "$proxy" "$kind")" "$proxy (port $port) died during: ${cmd[*]}"
  for i in 0 1 2; do
    check_alive "${BACKEND_PIDS[$i]}" "$kind-$((i + 1))" "$TMP/$kind-$((i + 1)).log" \
      "backend $kind-$((i + 1)) (port ${BACKEND_PORTS[$i]}) died during: ${cmd[*]}"
  done
}

# noise check (lib.sh), per backend kind: the backends and the proxies are not "other processes"
OTHER_PCT=$TMP/other_pct.txt; : >"$OTHER_PCT"

START_S=$SECONDS
redis_version=$(redis_server_version)
bench_version=$(redis-benchmark --version 2>/dev/null | awk '{print $2}')
nc_version="-"
[ -z "$NC_BIN" ] || nc_version=$("$NC_BIN" -V 2>&1 | sed -n 's/^This is //p' | head -n 1)
cpu_model=$(cpu_model_name)
cp_mode=rendezvous
[ "$KETAMA" = 1 ] && cp_mode="ketama (fnv1a_64)"
pipe_reqs=""
for P in $PIPES; do pipe_reqs="$pipe_reqs P=$P:$(requests_for "$P")"; done
echo "# cache-proxy vs twemproxy (redis-benchmark)"
echo
echo "- date: $(utc_now), host: $(uname -n), $NCPU CPUs${cpu_model:+ ($cpu_model)}, loadavg before: $(loadavg)"
echo "- proxies: [$PROXIES]; backends: [$KINDS] (three of each kind)"
[[ " $PROXIES " != *" twemproxy "* ]] || echo "- twemproxy: $nc_version ($NC_BIN), mbuf $MBUF bytes"
[[ " $PROXIES " != *" cache-proxy "* ]] || echo "- cache-proxy: $PROXY_DESC, distribution $cp_mode"
[[ " $KINDS " != *" cache-node "* ]] || echo "- cache-node: $NODE_DESC"
echo "- redis-server $redis_version, redis-benchmark $bench_version"
echo "- tests=$TESTS requests=[${pipe_reqs# }] clients=$CLIENTS size=$DSIZE keyspace=$KEYSPACE runs=$RUNS (median reported)"
if [ "$PIN" = 1 ]; then
  echo "- pinning: redis-benchmark on CPU $CLIENT_CPU; backends and proxies on CPU $SERVER_CPU"
else
  echo "- pinning: none (see warnings)"
fi
echo

for kind in $KINDS; do
  read -r -a ALL_PORTS <<<"$(free_ports 6)"
  start_backends "$kind"
  msg="$kind: backends on ports ${BACKEND_PORTS[*]} (pids ${BACKEND_PIDS[*]})"
  for proxy in $PROXIES; do
    if [ "$proxy" = twemproxy ]; then
      start_twemproxy "$kind"; msg="$msg; twemproxy pid $TW_PID port $TW_PORT"
      echo "$kind|twemproxy|$TW_CMD" >>"$NOTES"
    else
      start_cache_proxy "$kind"; msg="$msg; cache-proxy pid $CP_PID port $CP_PORT"
      echo "$kind|cache-proxy|$CP_CMD" >>"$NOTES"
    fi
  done
  echo "[$(date +%T)] $msg" >&2
  for proxy in $PROXIES; do
    echo "[$(date +%T)] $kind: warming up $proxy" >&2
    warmup "$(proxy_port "$proxy")"
  done
  noise_begin ${BACKEND_PIDS[@]+"${BACKEND_PIDS[@]}"} "$TW_PID" "$CP_PID"
  bench_rounds "$kind" "$PROXIES"
  noise_end "$kind" ${BACKEND_PIDS[@]+"${BACKEND_PIDS[@]}"} "$TW_PID" "$CP_PID"
  if [ -n "$CP_PID" ]; then
    { echo "$kind|cache-proxy PROXY NODES after the runs:"
      timeout 10 redis-cli -h "$HOST" -p "$CP_PORT" proxy nodes 2>&1 | tr -d '\r' | sed -e '/^[[:space:]]*$/d' -e 's/^/    /' || true
    } >>"$TMP/proxy-state-$kind.txt"
  fi
  if [ -n "$TW_PID" ]; then
    # anything in nutcracker's log besides its banner and the CONFIG that redis-benchmark
    # sends at start (twemproxy does not proxy CONFIG and closes that connection)
    grep -v -e 'nutcracker-.* started on pid' -e 'run, rabbit run' \
      -e "unsupported command 'CONFIG'" "$TMP/nutcracker-$kind.log" 2>/dev/null |
      head -n 5 >"$TMP/nc-unexpected.txt" || true
    if [ -s "$TMP/nc-unexpected.txt" ]; then
      warn "$kind: nutcracker log ($(wc -l <"$TMP/nutcracker-$kind.log") lines) has unexpected lines, e.g.: $(head -c 400 "$TMP/nc-unexpected.txt" | tr '\n' ' ')"
    fi
  fi
  stop_proxies
  stop_backends
done
ELAPSED=$((SECONDS - START_S))

write_raw backends proxy

{ bench_report_py; cat <<'EOF'
import math, os, sys
raw, cmds_file, kinds, proxies = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
other = dict(l.split() for l in open(sys.argv[5]) if l.strip())
keys_lines = [l.split() for l in open(sys.argv[6]) if l.strip()]
notes = [l.rstrip("\n").split("|", 2) for l in open(sys.argv[7]) if l.strip()]
tmp = sys.argv[8]
cmds = [l.rstrip("\n").split("|", 2) for l in open(cmds_file) if l.strip()]
KIND_NAME = {"redis": "redis-server", "cache-node": "cache-node"}
both = "twemproxy" in proxies and "cache-proxy" in proxies
data, tests = load_runs(raw)

def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))

def verdict(ok):
    return "met" if ok else "**NOT met**"

def summary(label, rows):
    # rows: (ratio, p99ratio, test, P)
    if not rows:
        print(f"{label}: no comparable rows\n")
        return
    gm = gmean([r[0] for r in rows])
    lo = min(rows, key=lambda r: r[0])
    p99s = [r for r in rows if r[1] is not None]
    worst = max(p99s, key=lambda r: r[1]) if p99s else None
    p99_gm = gmean([r[1] for r in p99s]) if p99s else None
    print(f"{label}: geometric mean ratio (cache-proxy/twemproxy ops/s) = **{gm:.3f}** over "
          f"{len(rows)} rows (target >= 1.5: {verdict(gm >= 1.5)}); minimum ratio = "
          f"**{lo[0]:.3f}** ({lo[2]}, P={lo[3]}) (target: no row < 1.35: {verdict(lo[0] >= 1.35)})")
    if worst:
        n_worse = sum(1 for r in p99s if r[1] > 1.0)
        print(f"{label}: p99 ratio (cache-proxy/twemproxy, lower is better): worst **{worst[1]:.3f}** "
              f"({worst[2]}, P={worst[3]}), geometric mean {p99_gm:.3f}, {n_worse} of {len(p99s)} rows "
              f"worse than twemproxy (target: p99 no worse: {verdict(n_worse == 0)})")
    print()

all_rows = []
for kind in kinds:
    keys = sorted({(P, t) for (k, _p, P, t) in data if k == kind},
                  key=lambda k: (k[0], tests.index(k[1])))
    print(f"## backends: 3 x {KIND_NAME[kind]}\n")
    hdr = ["test", "P"] + [f"{p} ops/s" for p in proxies]
    if both:
        hdr.append("ratio")
    hdr += [f"{p} p99 ms" for p in proxies]
    if both:
        hdr.append("p99 ratio")
    print("| " + " | ".join(hdr) + " |")
    print("|---|" + "---:|" * (len(hdr) - 1))
    rows = []
    for P, t in keys:
        rps = {p: med(data, (kind, p, P, t), 0) for p in proxies}
        p99 = {p: med(data, (kind, p, P, t), 1) for p in proxies}
        cells = [t, str(P)] + [fmt(rps[p], ".0f") for p in proxies]
        if both:
            tw, cp = rps["twemproxy"], rps["cache-proxy"]
            ratio = cp / tw if tw and cp else None
            tp, cpp = p99["twemproxy"], p99["cache-proxy"]
            pr = cpp / tp if tp and cpp else None
            cells.append(fmt(ratio, ".2f"))
        cells += [fmt(p99[p], ".3f") for p in proxies]
        if both:
            cells.append(fmt(pr, ".2f"))
            if ratio:
                rows.append((ratio, pr, t, P))
        print("| " + " | ".join(cells) + " |")
    print()
    if both:
        summary(f"{KIND_NAME[kind]} backends", rows)
        all_rows += rows
    # share of keys per backend after the last measured call of each proxy
    for p in proxies:
        last = [l for l in keys_lines if l[0] == kind and l[1] == p]
        if last:
            l = last[-1]
            counts = l[4:]
            try:
                total = sum(int(c) for c in counts)
                share = ", ".join(f"{int(c)} ({100 * int(c) / total:.1f}%)" for c in counts) if total else " / ".join(counts)
            except ValueError:
                share = " / ".join(counts)
            print(f"- keys per backend after the last {p} call (P={l[2]}, run {l[3]}): {share}")
    if kind in other:
        print(f"- CPU used by other processes during the {KIND_NAME[kind]} runs: {other[kind]}% of the machine")
    state = os.path.join(tmp, f"proxy-state-{kind}.txt")
    if os.path.exists(state):
        print("\n```")
        for line in open(state):
            print(line.split("|", 1)[-1].rstrip("\n"))
        print("```")
    print("\nCommands:\n")
    print("```")
    for k, p, c in notes:
        if k == kind:
            print(f"{p}: {c}")
    for k, p, c in cmds:
        if k == kind:
            print(f"bench via {p}: {c}")
    print("```\n")

if both and len(kinds) > 1:
    summary("all backends", all_rows)
EOF
} | python3 - "$RAW" "$CMDS" "$KINDS" "$PROXIES" "$OTHER_PCT" "$KEYS" "$NOTES" "$TMP"

echo "Elapsed: ${ELAPSED}s"
conf=""
for kind in $KINDS; do
  if [ -z "$conf" ] && [ -f "$TMP/nutcracker-$kind.yml" ]; then conf=$TMP/nutcracker-$kind.yml; fi
done
if [ -n "$conf" ]; then
  echo
  echo "twemproxy config (ports differ per backend kind):"
  echo
  echo '```yaml'
  cat "$conf"
  echo '```'
fi
if [ -s "$WARN" ]; then echo; fi
print_warnings
