#!/usr/bin/env bash
# benches/tracking.sh - what client tracking costs: GET/SET throughput with tracking off and
# with one BCAST listener (every write then sends an invalidation), in the same run, and the
# invalidation delay (write on one connection -> push on another).
#
# Usage: benches/tracking.sh [--node-bin PATH] [--requests N] [--runs R] [--writes W]
#                            [--reference HOST:PORT]
#   --node-bin    release cache-node [<repo>/target/release/cache-node; nothing is built]
#   --requests    redis-benchmark -n [200000]
#   --runs        repetitions of each throughput case, alternating off/on; medians [3]
#   --writes      writes for the delay measurement [10000]
#   --reference   also measure the delay (default mode, db 13) on this Redis
#
# Throughput workload, per case:
#   redis-benchmark -h 127.0.0.1 -p PORT -t get,set -n N -c 50 -P 16 -r 100000 --csv
# "on" = while one extra RESP3 connection has CLIENT TRACKING ON BCAST and drains its pushes
# (redis-benchmark cannot turn tracking on for its own connections).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
node_bin="$repo/target/release/cache-node"
requests=200000
runs=3
writes=10000
reference=""
while [ $# -gt 0 ]; do
    case "$1" in
        --node-bin) node_bin=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --writes) writes=$2; shift 2 ;;
        --reference) reference=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
"$node_bin" --bind 127.0.0.1 --port "$port" --loglevel warning >"$tmp/node.log" 2>&1 &
node_pid=$!
listener_pid=""
cleanup() {
    [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null || true
    kill "$node_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done

# A RESP3 BCAST listener that reads and counts pushes until killed.
start_listener() {
    python3 - "$port" "$tmp/pushes" <<'EOF' &
import socket, sys, signal
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*4\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\nON\r\n$5\r\nBCAST\r\n")
n = 0
pattern = b">2\r\n$10\r\ninvalidate"
tail = b""
def done(*_):
    open(out, "w").write(str(n))
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    data = s.recv(1 << 20)
    if not data:
        done()
    # A push split between two reads is counted once: keep a tail shorter than the pattern.
    data = tail + data
    n += data.count(pattern)
    tail = data[-(len(pattern) - 1):]
EOF
    listener_pid=$!
    for _ in $(seq 100); do
        [ "$(redis-cli -p "$port" info clients | tr -d '\r' | sed -n 's/^tracking_clients://p')" = 1 ] && return
        sleep 0.05
    done
    echo "listener did not start" >&2; exit 1
}
stop_listener() {
    kill "$listener_pid"; wait "$listener_pid" 2>/dev/null || true; listener_pid=""
}

bench() {
    redis-benchmark -h 127.0.0.1 -p "$port" -t get,set -n "$requests" -c 50 -P 16 -r 100000 --csv \
        | tr -d '"' | awk -F, '$1=="SET"||$1=="GET"{print $1, $2}'
}

# Warm-up, unmeasured.
redis-benchmark -h 127.0.0.1 -p "$port" -t get,set -n $((requests / 4)) -c 50 -P 16 -r 100000 -q >/dev/null
: >"$tmp/off"; : >"$tmp/on"
for run in $(seq "$runs"); do
    bench >>"$tmp/off"
    start_listener
    bench >>"$tmp/on"
    stop_listener
    echo "run $run: pushes received by the listener: $(cat "$tmp/pushes")" >&2
done
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "| test | tracking off ops/s | BCAST listener ops/s | ratio |"
echo "|---|---|---|---|"
for t in SET GET; do
    off=$(awk -v t=$t '$1==t{print $2}' "$tmp/off" | median)
    on=$(awk -v t=$t '$1==t{print $2}' "$tmp/on" | median)
    echo "| $t | $off | $on | $(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.3f", a/b}') |"
done
echo
echo "Invalidation delay (write -> push), $writes writes:"
echo "cache-node: $(python3 "$here/tracking_latency.py" 127.0.0.1:$port --writes "$writes" --mode default)"
echo "cache-node: $(python3 "$here/tracking_latency.py" 127.0.0.1:$port --writes "$writes" --mode bcast)"
if [ -n "$reference" ]; then
    echo "redis ($reference): $(python3 "$here/tracking_latency.py" "$reference" --writes "$writes" --mode default --db 13)"
fi
echo
echo "throughput: redis-benchmark -h 127.0.0.1 -p PORT -t get,set -n $requests -c 50 -P 16 -r 100000 --csv (median of $runs)"
