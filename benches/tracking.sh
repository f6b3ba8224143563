#!/usr/bin/env bash
# benches/tracking.sh - what client tracking costs: GET/SET throughput with tracking off and
# with one BCAST listener (every write then sends an invalidation), in the same run, and the
# invalidation delay (write on one connection -> push on another).
#
# Usage: benches/tracking.sh [--node-bin PATH] [--proxy-bin PATH] [--requests N] [--runs R]
#                            [--writes W] [--reference HOST:PORT]
#   --node-bin    release cache-node [<repo>/target/release/cache-node; nothing is built]
#   --proxy-bin   also measure through a cache-proxy over three nodes, in the same run
#                 [<repo>/target/release/cache-proxy if it exists]
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
proxy_bin="$repo/target/release/cache-proxy"
while [ $# -gt 0 ]; do
    case "$1" in
        --node-bin) node_bin=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --writes) writes=$2; shift 2 ;;
        --reference) reference=$2; shift 2 ;;
        --proxy-bin) proxy_bin=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
pids=()
listener_pid=""
cleanup() {
    [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
wait_ping() {
    for _ in $(seq 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2; exit 1
}
port=$(free_port)
"$node_bin" --bind 127.0.0.1 --port "$port" --loglevel warning >"$tmp/node.log" 2>&1 &
pids+=($!)
wait_ping "$port"
proxy_port=""
if [ -x "$proxy_bin" ]; then
    node_args=()
    for i in 1 2 3; do
        p=$(free_port)
        "$node_bin" --bind 127.0.0.1 --port "$p" --loglevel warning >"$tmp/pnode$i.log" 2>&1 &
        pids+=($!)
        wait_ping "$p"
        node_args+=(--node "127.0.0.1:$p")
    done
    proxy_port=$(free_port)
    "$proxy_bin" --bind 127.0.0.1 --port "$proxy_port" "${node_args[@]}" --loglevel warning >"$tmp/proxy.log" 2>&1 &
    pids+=($!)
    wait_ping "$proxy_port"
fi

# A RESP3 BCAST listener that reads and counts pushes until killed.
start_listener() {
    rm -f "$tmp/ready"
    python3 - "$1" "$tmp/pushes" "$tmp/ready" <<'EOF' &
import socket, sys, signal
port, out, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*4\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\nON\r\n$5\r\nBCAST\r\n")
got = b""
while not got.endswith(b"+OK\r\n"):  # the HELLO map, then TRACKING's +OK
    got += s.recv(4096)
open(ready, "w").write("1")
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
        [ -s "$tmp/ready" ] && return
        sleep 0.05
    done
    echo "listener did not start" >&2; exit 1
}
stop_listener() {
    kill "$listener_pid"; wait "$listener_pid" 2>/dev/null || true; listener_pid=""
}

bench() {
    redis-benchmark -h 127.0.0.1 -p "$1" -t get,set -n "$requests" -c 50 -P 16 -r 100000 --csv \
        | tr -d '"' | awk -F, '$1=="SET"||$1=="GET"{print $1, $2}'
}

measure() {  # port label
    # Warm-up, unmeasured.
    redis-benchmark -h 127.0.0.1 -p "$1" -t get,set -n $((requests / 4)) -c 50 -P 16 -r 100000 -q >/dev/null
    : >"$tmp/off"; : >"$tmp/on"
    for run in $(seq "$runs"); do
        bench "$1" >>"$tmp/off"
        start_listener "$1"
        bench "$1" >>"$tmp/on"
        stop_listener
        echo "$2 run $run: pushes received by the listener: $(cat "$tmp/pushes")" >&2
    done
    echo "$2:"
    echo
    echo "| test | tracking off ops/s | BCAST listener ops/s | ratio |"
    echo "|---|---|---|---|"
    for t in SET GET; do
        off=$(awk -v t=$t '$1==t{print $2}' "$tmp/off" | median)
        on=$(awk -v t=$t '$1==t{print $2}' "$tmp/on" | median)
        echo "| $t | $off | $on | $(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.3f", a/b}') |"
    done
    echo
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
measure "$port" "cache-node"
[ -n "$proxy_port" ] && measure "$proxy_port" "cache-proxy over three cache-nodes"
echo "Invalidation delay (write -> push), $writes writes:"
echo "cache-node: $(python3 "$here/tracking_latency.py" 127.0.0.1:$port --writes "$writes" --mode default)"
echo "cache-node: $(python3 "$here/tracking_latency.py" 127.0.0.1:$port --writes "$writes" --mode bcast)"
if [ -n "$proxy_port" ]; then
    echo "cache-proxy: $(python3 "$here/tracking_latency.py" 127.0.0.1:$proxy_port --writes "$writes" --mode default)"
    echo "cache-proxy: $(python3 "$here/tracking_latency.py" 127.0.0.1:$proxy_port --writes "$writes" --mode bcast)"
fi
if [ -n "$reference" ]; then
    echo "redis ($reference): $(python3 "$here/tracking_latency.py" "$reference" --writes "$writes" --mode default --db 13)"
fi
echo
echo "throughput: redis-benchmark -h 127.0.0.1 -p PORT -t get,set -n $requests -c 50 -P 16 -r 100000 --csv (median of $runs)"
