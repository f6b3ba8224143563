#!/usr/bin/env bash
# benches/stream_memory.sh - bytes per stream entry (1M entries of one 32-byte field) of
# redis-server and a release cache-node, from INFO used_memory before and after.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
V=0123456789abcdef0123456789abcdef
for srv in redis node; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  d=$(mktemp -d)
  if [ $srv = redis ]; then redis-server --port $port --save "" --appendonly no --dir $d --daemonize no >/dev/null 2>&1 &
  else (cd $d && exec "$ROOT/target/release/cache-node" --port $port) >/dev/null 2>&1 & fi
  pid=$!; sleep 0.5
  before=$(redis-cli -p $port info memory | grep '^used_memory:' | cut -d: -f2 | tr -d '\r')
  redis-benchmark -p $port -n 1000000 -c 10 -P 64 XADD bench:m '*' f $V >/dev/null 2>&1
  sleep 1.2
  after=$(redis-cli -p $port info memory | grep '^used_memory:' | cut -d: -f2 | tr -d '\r')
  len=$(redis-cli -p $port xlen bench:m)
  echo "$srv: entries=$len used_memory delta=$((after-before)) bytes/entry=$(( (after-before)/len ))"
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
done
