# shellcheck shell=bash
# benches/lib.sh - helpers shared by the benchmark scripts in benches/. Sourced, never run:
#
#   PROG=name.sh                          # the prefix of the script's messages
#   source "$(dirname "$0")/lib.sh"
#
# It only defines functions. Globals they read, set by the script: PROG; ROOT (the repo);
# HOST (where the servers listen); TMP (set by init_tmp); PORT, CLI_TMO (cli, info_field);
# NCPU (can_pin); NODE_BIN (default_node_bin, private_node_copy); TMO, RAW, CMDS and
# optionally BENCH_ERR_SKIP (run_bench); RUNS, PIPES (bench_rounds); WARN (warn,
# print_warnings); OTHER_PCT (noise_end); RAW_OUT (write_raw). Globals they set: TMP,
# BENCH_PID (bg_wait), OPTS_GIVEN (parse_options), NODE_RUN/NODE_DESC (private_node_copy),
# NOISE_* (noise_begin). Callbacks the script defines: stop_all (stops everything it
# started; cleanup calls it) and, with bench_rounds, bench_one.

# ---- command line ---------------------------------------------------------------------
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "$PROG: $*" >&2; exit 1; }
need_arg() { [ $# -ge 2 ] || die "option $1 needs an argument (see --help)"; }

# parse_options SPEC... -- ARG...: set the script's variables from its command line.
# A SPEC is NAMES=VAR (the option takes a value: VAR=value) or NAMES=VAR=VALUE (a flag:
# VAR=VALUE); NAMES is one name or several joined by '|' (--requests|-n). Each VAR that an
# option set is listed in OPTS_GIVEN (" VAR VAR "). -h/--help prints the usage and exits 0;
# anything else is an error (exit 2).
parse_options() {
  local specs=() spec names target matched
  while [ "$1" != -- ]; do specs+=("$1"); shift; done
  shift
  OPTS_GIVEN=" "
  while [ $# -gt 0 ]; do
    case "$1" in -h|--help) usage; exit 0 ;; esac
    matched=0
    for spec in "${specs[@]}"; do
      names=${spec%%=*}; target=${spec#*=}
      [[ "|$names|" == *"|$1|"* && $1 != *"|"* ]] || continue
      if [[ $target == *=* ]]; then
        printf -v "${target%%=*}" '%s' "${target#*=}"; shift
      else
        need_arg "$@"; printf -v "$target" '%s' "$2"; shift 2
      fi
      OPTS_GIVEN="$OPTS_GIVEN${target%%=*} "
      matched=1; break
    done
    [ "$matched" = 1 ] || { echo "$PROG: unknown argument: $1" >&2; usage >&2; exit 2; }
  done
}

need_tools() {  # tool...: die unless each is in PATH
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
  done
}

check_pipelines() {  # "P..": die unless a non-empty list of positive integers
  local p
  for p in $1; do [[ $p =~ ^[1-9][0-9]*$ ]] || die "bad pipeline depth: $p"; done
  [ -n "${1// /}" ] || die "--pipelines is empty"
}

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

can_pin() {  # status 0 if taskset is there and there are >= 2 CPUs; 1: no taskset; 2: < 2 CPUs
  command -v taskset >/dev/null 2>&1 || return 1
  [ "$NCPU" -ge 2 ] || return 2
}

# ---- binaries --------------------------------------------------------------------------
abs_path() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

need_binary() {  # crate path [hint]: unless path is an executable, say how to build it
  # (cargo build --release -p crate, in the repo) and the hint, then exit 1
  [ ! -x "$2" ] || return 0
  echo "$PROG: $1 binary not found (or not executable): $2" >&2
  echo "  build it with:  (cd $ROOT && cargo build --release -p $1)" >&2
  [ $# -lt 3 ] || echo "  $3" >&2
  exit 1
}

default_node_bin() {  # unless NODE_BIN is set: <repo>/target/release/cache-node, or if that
  # is not executable /work/target-main/release/cache-node (with a warning when that one is newer)
  local fallback=/work/target-main/release/cache-node
  [ -z "$NODE_BIN" ] || return 0
  NODE_BIN=$ROOT/target/release/cache-node
  [ -x "$NODE_BIN" ] || NODE_BIN=$fallback
  if [ "$NODE_BIN" != "$fallback" ] && [ -x "$fallback" ] && [ "$fallback" -nt "$NODE_BIN" ]; then
    echo "$PROG: warning: $fallback is newer than $NODE_BIN; pass --node-bin to use it" >&2
  fi
}

# The scripts run private copies of the binaries (in $TMP, removed by cleanup), so that a
# rebuild during the run cannot mix two builds.
bin_desc() { echo "$1 (built $(date -u -r "$1" '+%Y-%m-%d %H:%M:%S UTC'), sha256 $(sha256sum "$1" | cut -c1-12))"; }
private_copy() {  # binary name run-var desc-var: copy the binary to $TMP/name; run-var=the
  # copy, desc-var=bin_desc of the binary
  printf -v "$4" '%s' "$(bin_desc "$1")"
  cp "$1" "$TMP/$2" || die "cannot copy $1"
  printf -v "$3" '%s' "$TMP/$2"
}
# shellcheck disable=SC2034  # NODE_RUN and NODE_DESC are for the caller
private_node_copy() {  # NODE_RUN, NODE_DESC: private_copy of $NODE_BIN ("" and "-" if that
  # is not an executable)
  NODE_RUN=""
  NODE_DESC="-"
  if [ -x "${NODE_BIN:-}" ]; then private_copy "$NODE_BIN" cache-node NODE_RUN NODE_DESC; fi
}

# ---- process management ---------------------------------------------------------------
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

init_tmp() {  # name: TMP=a new temp dir ${TMPDIR:-/tmp}/name.XXXXXX; from now on cleanup
  # runs when the script exits (also on Ctrl-C and TERM)
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

cleanup() {  # the EXIT trap: stop_all (the script's), then remove $TMP, unless the run
  # failed: then only the private binary copies go and the logs stay
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  rm -f "$TMP/cache-proxy" "$TMP/cache-node"  # the private copies of the binaries
  if [ "$rc" -eq 0 ]; then
    rm -rf "$TMP"
  else
    echo "$PROG: exit status $rc; logs kept in $TMP" >&2
  fi
  exit "$rc"
}

bg_wait() {  # out err cmd...: run cmd in the background (stdin /dev/null, stdout to out, stderr
  # to err) and wait for it, returning its status, so that INT/TERM are handled immediately;
  # meanwhile BENCH_PID is its pid, for stop_all. (Only cmd is redirected: a redirection of
  # the call would also catch the messages of cleanup if a signal came during the wait.)
  local out=$1 err=$2 rc=0
  shift 2
  "$@" </dev/null >"$out" 2>"$err" &
  BENCH_PID=$!
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  return "$rc"
}

# ---- servers ---------------------------------------------------------------------------
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

# wait_ready name port pid log [label]: PING until PONG, at most 10 s; if pid exits first or
# no PONG comes, die after the log's last lines. With a label (the scripts that run one
# server at a time) the lines come without a header and "label exited during startup".
wait_ready() {
  local name=$1 port=$2 pid=$3 log=$4 i
  for ((i = 0; i < 100; i++)); do
    if ! is_running "$pid"; then
      if [ $# -ge 5 ]; then tail -n 20 "$log" >&2; die "$5 exited during startup"; fi
      log_tail "$name" "$log"; die "$name exited during startup (port $port)"
    fi
    if [ "$(timeout 2 redis-cli -h "$HOST" -p "$port" ping 2>/dev/null)" = PONG ]; then
      return 0
    fi
    sleep 0.1
  done
  if [ $# -ge 5 ]; then tail -n 20 "$log" >&2; else log_tail "$name" "$log"; fi
  die "$name did not answer PING on port $port within 10 s"
}

check_alive() {  # pid name log message: unless pid still runs, die with the message after
  # the last lines of the log
  is_running "$1" && return 0
  log_tail "$2" "$3"
  die "$4"
}

# shellcheck disable=SC2153  # PORT: the port of the script's current server
cli() { timeout "$CLI_TMO" redis-cli -h "$HOST" -p "$PORT" "$@" 2>/dev/null | tr -d '\r'; }
info_field() { cli INFO "$1" | awk -F: -v f="$2" '$1 == f { print $2 }'; }  # section field

# ---- redis-benchmark runs ----------------------------------------------------------------
warn() { echo "warning: $*" >&2; echo "$*" >>"$WARN"; }

bench_errors() {  # file: redis-benchmark's stderr, without the lines matching
  # $BENCH_ERR_SKIP if that is set
  if [ -n "${BENCH_ERR_SKIP:-}" ]; then grep -v -- "$BENCH_ERR_SKIP" "$1" || true; else cat "$1"; fi
}

# run_bench group server P run cmd...: one measured `timeout $TMO cmd...` (cmd: a
# redis-benchmark --csv command line, with its taskset prefix if any). On run 1 the command
# line goes to $CMDS as "group|server|timeout ...". A timeout or an error exit becomes a
# warning; the CSV rows are appended to $RAW, each after "group","server","P","run",.
run_bench() {
  local group=$1 server=$2 P=$3 run=$4 rc=0 out=$TMP/out.csv err=$TMP/err.txt
  shift 4
  [ "$run" = 1 ] && echo "$group|$server|timeout $TMO $*" >>"$CMDS"
  bg_wait "$out" "$err" timeout "$TMO" "$@" || rc=$?
  if [ "$rc" -eq 124 ]; then
    warn "$group $server P=$P run $run: redis-benchmark timed out after ${TMO}s"
  elif [ "$rc" -ne 0 ]; then
    warn "$group $server P=$P run $run: redis-benchmark exited with status $rc: $(bench_errors "$err" | head -c 300 | tr '\n' ' ')"
  fi
  grep '^"' "$out" | grep -v '^"test"' |
    sed "s/^/\"$group\",\"$server\",\"$P\",\"$run\",/" >>"$RAW" || true
}

bench_rounds() {  # group "server...": for runs 1..$RUNS, each pipeline depth in $PIPES and each
  # server in turn (in reverse order on even runs): bench_one group server P run (the script's)
  local group=$1 run P server order
  for ((run = 1; run <= RUNS; run++)); do
    order=$2
    if ((run % 2 == 0)); then order=$(echo "$2" | awk '{for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "")}'); fi
    for P in $PIPES; do
      for server in $order; do
        echo "[$(date +%T)] $group run $run/$RUNS P=$P $server" >&2
        bench_one "$group" "$server" "$P" "$run"
      done
    done
  done
}

# noise check: CPU used by processes other than this script, its children and the given
# server pids, as % of the whole machine (a cargo build next to the benchmark would show
# up here)
cpu_sample() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $2+$3+$4+$7+$8}' /proc/stat; }
own_ticks() {  # pid... -> utime+stime of those + cutime+cstime of this shell (reaped children)
  local sum=0 p v
  for p in "$@"; do
    if [ -z "$p" ] || [ ! -r "/proc/$p/stat" ]; then continue; fi
    v=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
    sum=$((sum + v))
  done
  v=$(sed 's/^.*) //' "/proc/$$/stat" | awk '{print $14 + $15}')
  echo $((sum + v))
}
noise_begin() {  # pid...: start a noise measurement
  read -r NOISE_T0 NOISE_B0 <<<"$(cpu_sample)"
  NOISE_K0=$(own_ticks "$@")
}
noise_end() {  # label pid...: "label percent" since noise_begin goes to $OTHER_PCT; > 10% warns
  local label=$1 t1 b1 k1 other
  shift
  read -r t1 b1 <<<"$(cpu_sample)"
  k1=$(own_ticks "$@")
  other=$(awk -v dt=$((t1 - NOISE_T0)) -v db=$((b1 - NOISE_B0)) -v dk=$((k1 - NOISE_K0)) \
    'BEGIN { f = db - dk; if (f < 0) f = 0; printf "%.1f", (dt > 0 ? 100 * f / dt : 0) }')
  echo "$label $other" >>"$OTHER_PCT"
  if awk -v o="$other" 'BEGIN { exit !(o > 10) }'; then
    warn "$label: other processes used ${other}% of the machine's CPU during the runs; results are probably skewed (loadavg now: $(cut -d' ' -f1-3 /proc/loadavg))"
  fi
}

# ---- report ----------------------------------------------------------------------------
redis_server_version() { redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'; }
cpu_model_name() { sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1 || true; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'; }
utc_now() { date -u '+%Y-%m-%d %H:%M:%S UTC'; }

write_raw() {  # col1 col2: if RAW_OUT is set, $RAW goes there under a CSV header whose
  # first two columns are col1 and col2
  [ -z "$RAW_OUT" ] || {
    echo "\"$1\",\"$2\""',"pipeline","run","test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"'
    cat "$RAW"
  } >"$RAW_OUT"
}

print_warnings() {  # the warnings in $WARN, if any, as a markdown section
  if [ -s "$WARN" ]; then
    echo "## warnings"
    echo
    sed 's/^/- /' "$WARN"
  fi
}

# python source that the report scripts start with: load_runs(raw) reads run_bench's rows
# into ({(group, server, P, test): ([ops/s...], [p99 ms...])}, [tests, in first-seen
# order]); med(data, key, i) is the median of list i (0: ops/s, 1: p99) or None; fmt(x,
# spec) formats a number, "n/a" for None.
bench_report_py() {
  cat <<'EOF'
import csv, statistics


def load_runs(raw):
    data, tests = {}, []
    for r in csv.reader(open(raw)):
        if len(r) < 11:
            continue
        group, server, P, test = r[0], r[1], int(r[2]), r[4]
        try:
            rps, p99 = float(r[5]), float(r[10])
        except ValueError:
            continue
        if test not in tests:
            tests.append(test)
        d = data.setdefault((group, server, P, test), ([], []))
        d[0].append(rps); d[1].append(p99)
    return data, tests


def med(data, key, i):
    v = data.get(key)
    return statistics.median(v[i]) if v and v[i] else None


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)
EOF
}

warnings_py() {  # python source: print_warnings(warns) prints them, if any, as a markdown section
  cat <<'EOF'
def print_warnings(warns):
    if warns:
        print("## warnings\n")
        for w in warns:
            print(f"- {w}")
        print()
EOF
}
