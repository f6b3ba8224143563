#!/usr/bin/env bash
# Container health check for cache-node and cache-proxy (redis-cli is not in the image):
# sends PING on 127.0.0.1:PORT and is healthy when a RESP reply comes back within 2 s —
# +PONG, or -NOAUTH when a password is set (the server is up and speaking RESP).
#   ferrocache-health [PORT]      (default: $FERROCACHE_PORT, else 6379)
port="${1:-${FERROCACHE_PORT:-6379}}"
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'PING\r\n' >&3
reply="$(timeout 2 head -c 7 <&3)" || exit 1
[[ "$reply" == "+PONG"* || "$reply" == "-NOAUTH" ]]
