# syntax=docker/dockerfile:1
# ferrocache: one image with both binaries.
#   docker build -t ferrocache .
#   docker run -p 6379:6379 ferrocache                                   # a cache-node
#   docker run -p 7000:7000 ferrocache cache-proxy --bind 0.0.0.0 --node HOST:PORT ...
# docker-compose.yml runs three nodes, a proxy and PostgreSQL from it.

FROM rust:1-slim-bookworm AS build
# jemalloc (tikv-jemalloc-sys) builds with make and a C compiler; the slim image has gcc only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target directories are cache mounts, so a rebuild after a source change
# recompiles only the workspace crates; the binaries are copied out of the cached target.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cache-node -p cache-proxy \
    && mkdir -p /out \
    && cp target/release/cache-node target/release/cache-proxy /out/ \
    && strip --strip-debug /out/cache-node /out/cache-proxy

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin ferrocache \
    && mkdir -p /data /etc/ferrocache \
    && chown ferrocache:ferrocache /data
COPY --from=build /out/cache-node /out/cache-proxy /usr/local/bin/
COPY deploy/healthcheck.sh /usr/local/bin/ferrocache-health
COPY config/ /etc/ferrocache/
USER ferrocache
WORKDIR /data
# 6379: cache-node; 7000: cache-proxy.
EXPOSE 6379 7000
ENV FERROCACHE_PORT=6379
# A cache-proxy container sets FERROCACHE_PORT=7000 (or overrides the check, as compose does).
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["ferrocache-health"]
# Inside a container the node must listen beyond loopback; set requirepass when the port is
# reachable from outside a private network.
CMD ["cache-node", "--config", "/etc/ferrocache/node.toml", "--bind", "0.0.0.0", "--port", "6379"]
