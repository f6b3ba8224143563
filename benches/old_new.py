#!/usr/bin/env python3
"""benches/old_new.py - two builds of cache-node (or cache-proxy) side by side in one run.

    benches/old_new.py --old OLD/cache-node --new NEW/cache-node
    benches/old_new.py --proxy --old OLD/cache-proxy --new NEW/cache-proxy --nodes NEW/cache-node

Each run starts the old and the new server fresh, in alternating order (old first in odd runs,
new first in even ones), pinned to CPU 1 with redis-benchmark on CPU 0, and sends

    redis-benchmark -c 50 -d 32 -r 100000 -n N -P {1,16} -t set,get,incr,mset --csv

The table gives the median ops/s of each over the runs, new/old, and the server's CPU time per
request (utime + stime of the server process, and of the nodes behind a proxy, over the
benchmark, from /proc). At P=1 redis-benchmark saturates its own core, so the CPU column is the
one that tells the servers apart there. The last lines give the geometric mean of new/old and
the lowest row.
"""

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def wait_ping(port):
    for _ in range(100):
        ok = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ok.stdout.strip() == "PONG":
            return
        time.sleep(0.1)
    sys.exit(f"server on {port} did not answer")


def start(binary, port, extra, workdir):
    args = ["taskset", "-c", "1", binary, "--port", str(port), "--loglevel", "warning"] + extra
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ping(port)
    return proc


class Server:
    """One build under test: a node, or a proxy in front of three fresh nodes."""

    def __init__(self, binary, proxy, nodes_bin):
        self.binary, self.proxy, self.nodes_bin = binary, proxy, nodes_bin

    def __enter__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.procs = []
        extra = []
        if self.proxy:
            for i in range(3):
                port = free_port()
                d = os.path.join(self.dir.name, str(i))
                os.mkdir(d)
                self.procs.append(start(self.nodes_bin, port, ["--dir", d], d))
                extra += ["--node", f"127.0.0.1:{port}"]
        else:
            extra = ["--dir", self.dir.name]
        self.port = free_port()
        self.procs.append(start(self.binary, self.port, extra, self.dir.name))
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()
        self.dir.cleanup()

    def bench(self, test, pipeline, requests):
        pids = [p.pid for p in self.procs]
        before = cpu_seconds(pids)
        out = subprocess.run(
            ["taskset", "-c", "0", "timeout", "120", "redis-benchmark", "-p", str(self.port),
             "-c", "50", "-d", "32", "-r", "100000", "-n", str(requests), "-P", str(pipeline),
             "-t", test, "--csv"],
            capture_output=True, text=True,
        ).stdout
        cpu = cpu_seconds(pids) - before
        for line in out.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if len(cells) > 1 and cells[0].lower().startswith(test):
                return float(cells[1]), cpu / requests * 1e6
        return None, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--proxy", action="store_true", help="--old/--new are cache-proxy builds")
    ap.add_argument("--nodes", help="cache-node binary behind either proxy (with --proxy)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--tests", default="set,get,incr,mset")
    ap.add_argument("--pipelines", default="1 16")
    a = ap.parse_args()
    if a.proxy and not a.nodes:
        ap.error("--proxy needs --nodes")
    tests = a.tests.split(",")
    pipes = [int(p) for p in a.pipelines.split()]
    results = {}  # (label, test, P) -> [(ops, cpu_us)]
    for run in range(a.runs):
        order = [("old", a.old), ("new", a.new)]
        if run % 2:
            order.reverse()
        for label, binary in order:
            with Server(binary, a.proxy, a.nodes) as server:
                for test in tests:
                    for p in pipes:
                        got = server.bench(test, p, a.requests)
                        results.setdefault((label, test, p), []).append(got)
        print(f"run {run + 1} of {a.runs} done", file=sys.stderr)
    ratios = []
    print("| test | P | old ops/s | new ops/s | new/old | CPU µs/req old | new |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for test in tests:
        for p in pipes:
            med = {}
            for label in ("old", "new"):
                rows = [r for r in results[(label, test, p)] if r[0] is not None]
                med[label] = (
                    statistics.median(r[0] for r in rows) if rows else None,
                    statistics.median(r[1] for r in rows) if rows else None,
                )
            (o, oc), (n, nc) = med["old"], med["new"]
            if o and n:
                ratios.append(n / o)
                print(f"| {test.upper()} | {p} | {o:,.0f} | {n:,.0f} | {n / o:.3f} | {oc:.2f} | {nc:.2f} |")
            else:
                print(f"| {test.upper()} | {p} | n/a | n/a | n/a | | |")
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"\ngeometric mean new/old: {geo:.3f}; lowest row: {min(ratios):.3f}")


if __name__ == "__main__":
    main()
