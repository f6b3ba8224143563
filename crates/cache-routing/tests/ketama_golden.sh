#!/usr/bin/env bash
# crates/cache-routing/tests/ketama_golden.sh - record where twemproxy (nutcracker) puts keys
# under `distribution: ketama`, and check that cache-routing's Router puts them in the same place.
#
# Usage:
#   crates/cache-routing/tests/ketama_golden.sh            # record afresh, run the Rust test on it
#   crates/cache-routing/tests/ketama_golden.sh --update   # ... and replace tests/data/ketama_golden.txt
#   crates/cache-routing/tests/ketama_golden.sh --keys N   # keys per configuration [2000]
#   crates/cache-routing/tests/ketama_golden.sh --keep     # keep the work dir (configs, logs)
#
# For each configuration (hash function, weights, server names, hash tag, an ejected server) it
# starts nutcracker in front of throwaway redis-servers on free ports in 20000-40000, writes the
# keys golden_key(0..N) through it (see tests/ketama_golden.rs, which defines the same keys), then
# asks each redis-server which keys it holds. The result is a table in the format of
# tests/data/ketama_golden.txt; the Rust test `ketama_matches_nutcracker` reads it from
# $KETAMA_GOLDEN. Everything started is killed on exit, also on failure or Ctrl-C.
#
# Needs: bash, nutcracker, redis-server, python3, cargo. No fixed ports; nothing is installed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
DATA="$HERE/data/ketama_golden.txt"
KEYS=2000
UPDATE=0
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --update) UPDATE=1 ;;
    --keep) KEEP=1 ;;
    --keys) KEYS="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

for tool in nutcracker redis-server python3 cargo; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/ketama-golden.XXXXXX)
# Python stops what it started; this is for when it could not (interrupted, crashed). Only
# the pids it recorded are killed, never processes found by name.
cleanup() {
  if [ -n "${PY_PID:-}" ]; then kill "$PY_PID" 2>/dev/null || true; fi
  if [ -f "$WORK/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$WORK/pids"
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export KEYS WORK
python3 - "$WORK/table.txt" <<'PY' &
import os, random, socket, subprocess, sys, time

KEYS = int(os.environ["KEYS"])
WORK = os.environ["WORK"]
OUT = sys.argv[1]
# First in the list the shell's cleanup kills: `python3` may be a wrapper with this as its child.
with open(f"{WORK}/pids", "a") as f:
    f.write(f"{os.getpid()}\n")
used = set()

def free_port():
    while True:
        port = random.randint(20000, 40000)
        if port in used:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        used.add(port)
        return port

def golden_key(i):
    """Keep in step with golden_key in ketama_golden.rs."""
    if i == 0:
        return b""  # twemproxy dispatches hash 0 for an empty key
    m = i % 5
    if m == 0:
        return b"key:%d" % i
    if m == 1:
        return b"obj:{%d}:%d" % (i % 97, i)
    if m == 2:  # bytes >= 0x80: twemproxy widens signed chars
        return bytes([0x80 | (i * 7 % 128)]) + b"k%d" % i + bytes([0xFF - i % 64])
    if m == 3:  # every tail length of the 4- and 12-byte block hashes
        return b"L" * (i % 41) + b":%d" % i
    return b"{}%d" % i if i % 10 == 4 else b"x{%d" % i

class Conn:
    def __init__(self, port):
        deadline = time.time() + 10
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""

    def send(self, *cmds):
        out = b""
        for args in cmds:
            out += b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return [self.reply() for _ in cmds]

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            return Exception(rest.decode(errors="replace"))
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ValueError(line)

PROCS = []

def spawn(args, log):
    """Starts a child in the foreground (no daemon), so that it can be waited for."""
    proc = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    PROCS.append(proc)
    with open(f"{WORK}/pids", "a") as f:
        f.write(f"{proc.pid}\n")
    return proc

def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

def start_redis(port):
    spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", WORK], f"{WORK}/redis-{port}.log")
    c = Conn(port)
    assert c.send(["PING"]) == [b"PONG"]
    return c

# (config name, hash, hash_tag or "-", [(weight, name or None)], index of a dead server or None)
CONFIGS = [("equal", "fnv1a_64", "-", [(1, None)] * 3, None),
           ("weights-1-2-3", "fnv1a_64", "-", [(1, None), (2, None), (3, None)], None),
           ("named-1-1-2", "fnv1a_64", "-", [(1, "alpha"), (1, "beta"), (2, "gamma")], None),
           ("hash-tag", "fnv1a_64", "{}", [(1, None)] * 3, None),
           ("named-tag-5-1-3", "fnv1a_64", "{}", [(5, "cache-a"), (1, "cache-b"), (3, "cache-c")], None),
           # "tie-a" and "tie-072659" share the ring point 2806004113 and golden keys 96, 476,
           # 643, 667, 1916 and 1953 hash just below it: twemproxy gives them to the server
           # first in its name order (shorter first), here the second in the list.
           ("tie", "fnv1a_64", "-", [(1, "tie-072659"), (1, "tie-a")], None),
           # Survivors' weights 2,1,1 of 4: 240, 120 and 120 points once the ring is rebuilt.
           ("ejected-2-1-3-1", "fnv1a_64", "-", [(2, None), (1, None), (3, None), (1, None)], 2)]
for h in ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1_32",
          "fnv1a_32", "hsieh", "murmur", "jenkins"]:
    CONFIGS.append((h, h, "-", [(1, None)] * 3, None))

def record(name, hash_name, tag, servers, dead):
    """Writes the keys through a fresh nutcracker on fresh ports. Returns (server entries,
    server index per key, None), or (None, None, what went wrong)."""
    live_ports = ports[:len(servers) - (dead is not None)]
    if dead is not None:
        live_ports.insert(dead, free_port())  # nothing listens there
    entries = [f"127.0.0.1:{p}:{w}" + (f" {n}" if n else "") for p, (w, n) in zip(live_ports, servers)]
    listen = free_port()
    conf = ["pool:", f"  listen: 127.0.0.1:{listen}", f"  hash: {hash_name}",
            "  distribution: ketama", "  redis: true", "  timeout: 2000"]
    if tag != "-":
        conf.append(f'  hash_tag: "{tag}"')
    if dead is not None:
        conf += ["  auto_eject_hosts: true", "  server_failure_limit: 1",
                 "  server_retry_timeout: 600000"]
    conf += ["  servers:"] + [f"   - {e}" for e in entries]
    path = f"{WORK}/{name}.yml"
    with open(path, "w") as f:
        f.write("\n".join(conf) + "\n")
    for c in backends.values():
        assert c.send(["FLUSHALL"]) == [b"OK"]
    # A stats port of our own: nutcracker exits if its default (22222) is taken.
    proc = spawn(["nutcracker", "-c", path, "-o", f"{WORK}/{name}.log",
                  "-s", str(free_port()), "-a", "127.0.0.1"], f"{WORK}/{name}.out")
    try:
        nc = Conn(listen)
        if dead is not None:
            # Requests for the dead server fail until nutcracker ejects it and rebuilds the
            # ring without it: probe until some failed and then a whole round succeeds. The
            # probe keys are random because fnv1a_64 sends keys that differ only in their last
            # byte ("probe:1", "probe:2", ...) to the same few points of the ring.
            failed = False
            for attempt in range(50):
                replies = nc.send(*[["GET", f"probe:{random.getrandbits(64):x}"]
                                    for _ in range(200)])
                errors = any(isinstance(r, Exception) for r in replies)
                if failed and not errors:
                    break
                failed |= errors
            else:
                return None, None, "nutcracker never ejected the dead server"
        # A SET that fails (the dead server back on the ring) fails the attempt, so every
        # recorded key was placed by the ring without the dead server.
        for start in range(0, KEYS, 500):
            replies = nc.send(*[["SET", k, "1"] for k in keys[start:start + 500]])
            bad = [r for r in replies if r != b"OK"]
            if bad:
                return None, None, (f"{len(bad)} of the SETs of keys {start}.. through "
                                    f"nutcracker failed: {bad[0]}")
    finally:
        stop(proc)
    placement = [None] * KEYS
    for p, c in backends.items():
        (held,) = c.send(["KEYS", "*"])
        for k in held:
            if k in index:
                if placement[index[k]] is not None:
                    return None, None, f"key {k!r} on two servers"
                placement[index[k]] = live_ports.index(p)
    missing = [keys[i] for i, s in enumerate(placement) if s is None]
    if missing:
        return None, None, f"{len(missing)} keys on no server, e.g. {missing[0]!r}"
    return entries, placement, None

try:
    ports = [free_port() for _ in range(3)]
    backends = {p: start_redis(p) for p in ports}
    keys = [golden_key(i) for i in range(KEYS)]
    index = {k: i for i, k in enumerate(keys)}
    assert len(index) == KEYS, "golden keys must be distinct"

    out = ["# Where twemproxy's ketama puts golden_key(0..keys) (see ketama_golden.rs), recorded from",
           "# a running nutcracker by ketama_golden.sh. placement: one digit per key, the index in",
           "# the server list. live: 1 if the server was up, 0 if nutcracker had ejected it.",
           f"# nutcracker: {subprocess.run(['nutcracker', '--version'], capture_output=True, text=True).stderr.strip().splitlines()[0]}",
           f"keys {KEYS}"]
    for name, hash_name, tag, servers, dead in CONFIGS:
        for attempt in range(3):
            entries, placement, error = record(name, hash_name, tag, servers, dead)
            if placement:
                break
            print(f"{name}: {error}; trying again", file=sys.stderr)
        else:
            sys.exit(f"{name}: {error}")
        counts = [placement.count(s) for s in range(len(servers))]
        print(f"{name:16} keys per server {counts}", file=sys.stderr)
        out += ["", f"config {name}", f"hash {hash_name}", f"hash_tag {tag}",
                "live " + "".join("0" if i == dead else "1" for i in range(len(servers)))]
        out += [f"server {e}" for e in entries]
        out.append("placement " + "".join(str(s) for s in placement))

    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
finally:
    for proc in PROCS:
        if proc.poll() is None:
            stop(proc)
PY
PY_PID=$!
wait "$PY_PID"
PY_PID=

echo "checking Router against the fresh table" >&2
KETAMA_GOLDEN="$WORK/table.txt" cargo test -q -p cache-routing --manifest-path "$ROOT/Cargo.toml" \
  --test ketama_golden

if [ "$UPDATE" = 1 ]; then
  cp "$WORK/table.txt" "$DATA"
  echo "wrote $DATA" >&2
fi
