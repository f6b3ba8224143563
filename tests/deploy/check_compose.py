#!/usr/bin/env python3
"""Checks docker-compose.yml, the configs it mounts and the Dockerfile, without a Docker engine.

    python3 tests/deploy/check_compose.py [REPO_ROOT]

Structure: three or more cache-node services, one cache-proxy, PostgreSQL; every service has
a health check; the proxy waits for every node to be healthy and the nodes for PostgreSQL;
each `--config` names a file mounted from config/ that exists and parses as TOML; the ports
the configs listen on are the ones the health checks probe and the proxy publishes; the
proxy's node list is exactly the node services. Prints one `config BINARY PATH` line per
mounted config (cache-proxy/tests/deployment.rs starts the binaries with them).
Exit 1 with every problem listed, 3 with "SKIPPED" when PyYAML is missing.
"""

import os
import re
import sys
import tomllib

try:
    import yaml
except ImportError:
    print("SKIPPED compose check: python module 'yaml' is missing (pip install PyYAML)")
    sys.exit(3)

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../..")
problems = []


def problem(text):
    problems.append(text)


with open(os.path.join(root, "docker-compose.yml")) as f:
    compose = yaml.safe_load(f)
services = compose.get("services") or {}

binaries = {}  # service -> cache-node / cache-proxy
configs = {}  # service -> (host path, parsed TOML)
for name, svc in services.items():
    command = svc.get("command") or []
    if isinstance(command, str):
        command = command.split()
    if command and command[0] in ("cache-node", "cache-proxy"):
        binaries[name] = command[0]
        if not svc.get("build") and not svc.get("image", "").startswith("ferrocache"):
            problem(f"{name}: neither built here nor the ferrocache image")
        if "--config" not in command:
            problem(f"{name}: runs {command[0]} without --config")
            continue
        inside = command[command.index("--config") + 1]
        mounts = [v.split(":") for v in svc.get("volumes") or [] if isinstance(v, str)]
        host = next((m[0] for m in mounts if len(m) >= 2 and m[1] == inside), None)
        if host is None:
            problem(f"{name}: --config {inside} is not a mounted file")
            continue
        path = os.path.normpath(os.path.join(root, host))
        if not host.startswith("./config/") or not os.path.isfile(path):
            problem(f"{name}: mounts {host}, which is not a file under config/")
            continue
        try:
            with open(path, "rb") as f:
                configs[name] = (path, tomllib.load(f))
        except tomllib.TOMLDecodeError as e:
            problem(f"{name}: {host} is not valid TOML: {e}")

nodes = sorted((n for n, b in binaries.items() if b == "cache-node"), key=lambda n: (len(n), n))
proxies = [n for n, b in binaries.items() if b == "cache-proxy"]
postgres = [n for n, s in services.items() if str(s.get("image", "")).startswith("postgres:")]
if len(nodes) < 3:
    problem(f"expected at least three cache-node services, found {nodes}")
if len(proxies) != 1:
    problem(f"expected one cache-proxy service, found {proxies}")
if len(postgres) != 1:
    problem(f"expected one PostgreSQL service, found {postgres}")
elif not re.match(r"postgres:15(\b|[.-])", services[postgres[0]]["image"]):
    problem(f"PostgreSQL should be version 15: {services[postgres[0]]['image']}")

for name, svc in services.items():
    test = (svc.get("healthcheck") or {}).get("test")
    if not test:
        problem(f"{name}: no health check")


def waits_for(svc, other):
    deps = svc.get("depends_on") or {}
    return isinstance(deps, dict) and (deps.get(other) or {}).get("condition") == "service_healthy"


def health_port(svc):
    test = (svc.get("healthcheck") or {}).get("test") or []
    if isinstance(test, list) and len(test) >= 3 and test[1] == "ferrocache-health":
        return int(test[2])
    return None


for n in nodes:
    for pg in postgres:
        if not waits_for(services[n], pg):
            problem(f"{n}: does not wait for {pg} to be healthy")
    conf = configs.get(n, (None, {}))[1]
    port = int(conf.get("port", 6379))
    if health_port(services[n]) != port:
        problem(f"{n}: health check probes {health_port(services[n])}, the config listens on {port}")
    if conf.get("bind") not in ("0.0.0.0", "::", "* -::*"):
        problem(f"{n}: binds {conf.get('bind', '127.0.0.1 (default)')}, unreachable from the proxy")
    if services[n].get("ports"):
        problem(f"{n}: publishes a port; clients should go through the proxy")

for p in proxies:
    svc = services[p]
    for n in nodes:
        if not waits_for(svc, n):
            problem(f"{p}: does not wait for {n} to be healthy")
    conf = configs.get(p, (None, {}))[1]
    port = int(conf.get("port", 7000))
    if health_port(svc) != port:
        problem(f"{p}: health check probes {health_port(svc)}, the config listens on {port}")
    published = [str(x).rsplit(":", 1)[-1] for x in svc.get("ports") or []]
    if str(port) not in published:
        problem(f"{p}: listens on {port} but publishes {published}")
    listed = conf.get("node", [])
    listed = [listed] if isinstance(listed, str) else listed
    # HOST:PORT[:WEIGHT] -> HOST:PORT
    listed_names = [":".join(x.split(":")[:2]) for x in listed]
    expected = [f"{n}:{int(configs.get(n, (None, {}))[1].get('port', 6379))}" for n in nodes]
    if sorted(listed_names) != sorted(expected):
        problem(f"{p}: node list {listed_names} does not match the node services {expected}")

# The Dockerfile: multi-stage, non-root, ports, health check, the script it copies.
dockerfile_path = os.path.join(root, "Dockerfile")
dockerfile = open(dockerfile_path).read() if os.path.isfile(dockerfile_path) else ""
lines = [l.strip() for l in dockerfile.splitlines() if l.strip() and not l.strip().startswith("#")]
froms = [l for l in lines if l.upper().startswith("FROM ")]
if len(froms) < 2 or " AS " not in froms[0].upper():
    problem(f"Dockerfile: expected a named build stage and a runtime stage, got {froms}")
users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
if not users or users[-1] in ("root", "0"):
    problem(f"Dockerfile: the runtime stage should end as a non-root USER, got {users}")
exposed = {w for l in lines if l.upper().startswith("EXPOSE ") for w in l.split()[1:]}
if not {"6379", "7000"} <= exposed:
    problem(f"Dockerfile: EXPOSE {sorted(exposed)}, expected 6379 and 7000")
if not any(l.upper().startswith("HEALTHCHECK ") for l in lines):
    problem("Dockerfile: no HEALTHCHECK")
for l in lines:
    if l.upper().startswith("COPY ") and "--from" not in l:
        for src in l.split()[1:-1]:
            if not os.path.exists(os.path.join(root, src)):
                problem(f"Dockerfile: COPY source {src} does not exist")

for name, (path, _) in sorted(configs.items()):
    print(f"config {binaries[name]} {os.path.relpath(path, root)} {name}")
if problems:
    print("\n".join("PROBLEM " + p for p in problems))
    sys.exit(1)
print(f"ok: {len(nodes)} nodes {nodes}, proxy {proxies}, postgres {postgres}, {len(configs)} configs")
