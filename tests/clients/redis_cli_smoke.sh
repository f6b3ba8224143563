#!/usr/bin/env bash
# redis-cli and redis-benchmark against a cache-node or a cache-proxy:
#
#   tests/clients/redis_cli_smoke.sh HOST:PORT [node|proxy]
#
# Plain commands, RESP3 (-3) replies as redis-cli formats them, a --pipe mass insert read
# back, and a redis-benchmark run with no error lines. Exits 3 with "SKIPPED" when the tools
# are missing, 1 on the first failed check (printing what was expected and what came back).
set -uo pipefail

addr="${1:?usage: redis_cli_smoke.sh HOST:PORT [node|proxy]}"
target="${2:-node}"
host="${addr%:*}"
port="${addr##*:}"
for tool in redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "SKIPPED redis-cli smoke: $tool is not installed"; exit 3; }
done
echo "$(redis-cli --version) against $target $addr"

cli() { redis-cli -h "$host" -p "$port" "$@" 2>&1; }
prefix="cli:$$:"

expect() { # NAME EXPECTED GOT
  if [[ "$3" == "$2" ]]; then
    echo "ok $1"
  else
    echo "FAIL $1"
    echo "  expected: $(printf '%q' "$2")"
    echo "  got:      $(printf '%q' "$3")"
    exit 1
  fi
}

expect ping "PONG" "$(cli ping)"
expect set "OK" "$(cli set "${prefix}k" "hello world")"
expect get "hello world" "$(cli get "${prefix}k")"
expect incr "11" "$(cli incrby "${prefix}n" 11)"
expect rpush-lrange $'a\nb' "$(cli rpush "${prefix}l" a b >/dev/null; cli lrange "${prefix}l" 0 -1)"
expect missing "" "$(cli get "${prefix}missing")"
expect wrongtype "WRONGTYPE Operation against a key holding the wrong kind of value" \
  "$(cli lpush "${prefix}k" x)"
# The same command read from stdin (-x: last argument).
expect stdin-arg "OK" "$(printf 'from stdin' | cli -x set "${prefix}x")"
expect stdin-get "from stdin" "$(cli get "${prefix}x")"

# RESP3: redis-cli prints maps, doubles, nulls and booleans in its own notation.
expect resp3-hello "3" "$(cli -3 --no-raw hello 3 | sed -n 's/^.*"proto" => (integer) //p')"
cli hset "${prefix}h" f v >/dev/null
expect resp3-map '1# "f" => "v"' "$(cli -3 --no-raw hgetall "${prefix}h")"
cli zadd "${prefix}z" 1.5 m >/dev/null
expect resp3-double '(double) 1.5' "$(cli -3 --no-raw zscore "${prefix}z" m)"
expect resp3-null '(nil)' "$(cli -3 --no-raw get "${prefix}missing")"
expect resp2-map $'1) "f"\n2) "v"' "$(cli -2 --no-raw hgetall "${prefix}h")"

# Mass insert: 20,000 SETs as raw RESP through --pipe, then read some back.
count=20000
gen() {
  for ((i = 0; i < count; i++)); do
    k="${prefix}pipe:$i"
    v="value-$i"
    printf '*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' "${#k}" "$k" "${#v}" "$v"
  done
}
pipe_out="$(gen | cli --pipe)"
expect pipe-summary "errors: 0, replies: $count" "$(grep -o 'errors: .*' <<<"$pipe_out")"
expect pipe-readback $'value-0\nvalue-9999\nvalue-19999' \
  "$(cli mget "${prefix}pipe:0" "${prefix}pipe:9999" "${prefix}pipe:19999")"
expect pipe-dbsize "yes" "$( (( $(cli dbsize) >= count )) && echo yes || cli dbsize)"

# redis-benchmark: every test reports a rate, no line mentions an error.
bench="$(redis-benchmark -h "$host" -p "$port" -t set,get,lpush,lpop,sadd,hset,zadd -n 2000 -q 2>&1 | tr '\r' '\n')"
echo "$bench" | grep 'requests per second' | sed 's/^/  /'
# Through the proxy redis-benchmark's opening CONFIG GET is refused (the proxy does not
# forward CONFIG), which redis-benchmark reports as a warning and then runs normally.
errors="$(echo "$bench" | grep -iE 'err|fail|refused|closed' || true)"
expect benchmark-no-errors "" "$errors"
for t in SET GET LPUSH LPOP SADD HSET ZADD; do
  if ! echo "$bench" | grep -qE "^ *$t: [0-9.]+ requests per second"; then
    expect "benchmark-$t" "a rate for $t" "$bench"
  fi
done
echo "ok benchmark"
expect benchmark-data "yes" "$( (( $(cli dbsize) > count )) && echo yes || echo no)"
echo "0 failed"
