#!/usr/bin/env python3
"""Cache-aside hit-ratio driver: Zipf(alpha) GETs, SET on miss, over RESP.

    benches/zipf_hit_ratio.py --host 127.0.0.1 --port 7021 --keys 1000000 \
        --requests 2000000 --alpha 0.99 --seed 1
    benches/zipf_hit_ratio.py --port 7021 --keys 500000 --requests 400000 \
        --value-size 2000 --scan-every 40000 --scan-length 15000   # with scan pollution

Standard library only (talks RESP2 over a plain socket), so it runs against
Redis, a proxy or any RESP-compatible server. The server's eviction policy and
memory limit are configured outside this script.

Workload: key ranks 1..K have probability ~ 1/rank^alpha; ranks are mapped to
key ids by a seeded random permutation, so popular keys are spread over the id
space (and over any hash ring). Keys are "<prefix><id>", values are
--value-size bytes.

Pipelining: requests are sent in batches of --batch GETs. Every miss is
followed by one SET of that key (cache-aside). If a key misses and appears
again later in the same batch, those later occurrences are what a sequential
client would have seen as hits right after its SET; the driver counts them by
sending one extra GET per such occurrence after the SET (so the server also
sees the access, which matters for LFU counters) and uses that GET's result.
Batching therefore only reorders accesses inside a window of --batch requests.

Time scale: unthrottled, the driver runs tens of thousands of requests per
second, so the cache turns over in well under a second. Redis's LRU clock has
a 1-second resolution (and its LFU decay works in minutes), so in such a run
allkeys-lru in Redis cannot tell recent from old keys and behaves much like
allkeys-random. --rate R caps the counted requests per second to run the same
sequence on a longer time scale.

Scan pollution (--scan-every N --scan-length L, both > 0): after every N
counted requests, the driver performs one sequential scan of L keys that were
never requested before ("<scan-prefix><scan#>:<i>", a fresh prefix per scan
and per run), cache-aside like the hot requests: pipelined GETs (all miss),
then a SET of each missed key. Scan accesses are NOT part of --requests and
NOT counted in "hit_ratio" / "hit_ratio_after_warmup", which therefore are
the hit ratio of the Zipf (hot-set) requests only; the scan traffic is
reported separately ("scan_*" fields, and "hit_ratio_incl_scans" over all
GETs). At the end the driver counts how many scan keys are still resident
(SCAN MATCH, bounded), which shows how much of the cache the scans occupy.
With scans the server should be flushed (or fresh) so that DBSIZE means the
resident keys of this run.

Output: progress lines and a final summary; the last line is a JSON object.
The "ideal_topk" figure is the hit ratio of the optimal policy for this
independent-reference workload when the cache holds K keys (the K most
probable keys stay resident), using K = DBSIZE at the end, if the server
answers DBSIZE.
"""
import argparse
import bisect
import itertools
import json
import os
import random
import socket
import sys
import time


class RespError(Exception):
    pass


class Conn:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rf = self.sock.makefile("rb", buffering=1 << 20)

    def send(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        """Return bytes/int/str/None for one reply; RespError instance for errors."""
        line = self.rf.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        t = line[0]
        if t == 36:  # '$'
            n = int(line[1:-2])
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            return data[:-2]
        if t == 43:  # '+'
            return line[1:-2].decode()
        if t == 58:  # ':'
            return int(line[1:-2])
        if t == 45:  # '-'
            return RespError(line[1:-2].decode(errors="replace"))
        if t == 42:  # '*'
            n = int(line[1:-2])
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        if t == 95:  # '_' RESP3 null
            return None
        raise ConnectionError(f"unexpected reply line {line!r}")

    def command(self, *args):
        self.send(encode(*args))
        return self.read_reply()


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--keys", type=int, default=1_000_000, help="working-set size K")
    ap.add_argument("--requests", type=int, default=2_000_000)
    ap.add_argument("--alpha", type=float, default=0.99)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--value-size", type=int, default=32)
    ap.add_argument("--key-prefix", default="key:")
    ap.add_argument("--batch", type=int, default=100, help="GETs per pipeline")
    ap.add_argument("--warmup", type=int, default=None,
                    help="requests excluded from the steady-state ratio (default: requests/2)")
    ap.add_argument("--flush", action="store_true", help="send FLUSHALL before starting")
    ap.add_argument("--max-seconds", type=float, default=600.0,
                    help="stop early (and say so) after this many seconds")
    ap.add_argument("--timeout", type=float, default=10.0, help="socket timeout, seconds")
    ap.add_argument("--scan-every", type=int, default=0, metavar="N",
                    help="scan pollution: after every N counted requests run one scan (0 = off)")
    ap.add_argument("--scan-length", type=int, default=0, metavar="L",
                    help="scan pollution: keys per scan, each never requested before")
    ap.add_argument("--scan-prefix", default=None,
                    help="prefix of scan keys (default: <key-prefix>scan.<pid>.<time>.; "
                         "the scan number and ':' follow)")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="at most this many counted requests per second (0 = as fast as possible); "
                         "stretches the run in time, e.g. for Redis's 1-second LRU clock")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    warmup = a.requests // 2 if a.warmup is None else a.warmup
    if (a.scan_every > 0) != (a.scan_length > 0):
        ap.error("--scan-every and --scan-length go together (both > 0)")
    scanning = a.scan_every > 0

    rng = random.Random(a.seed)
    t0 = time.time()
    cum = list(itertools.accumulate(1.0 / (r ** a.alpha) for r in range(1, a.keys + 1)))
    total_w = cum[-1]
    perm = list(range(a.keys))
    rng.shuffle(perm)
    keys_b = [None] * a.keys  # lazily built key bytes per id
    prefix = a.key_prefix.encode()
    value = (b"v" * a.value_size)
    get_hdr = b"*2\r\n$3\r\nGET\r\n"
    set_hdr = b"*3\r\n$3\r\nSET\r\n"
    val_part = b"$%d\r\n%s\r\n" % (len(value), value)

    def kb(kid):
        k = keys_b[kid]
        if k is None:
            s = prefix + str(kid).encode()
            k = keys_b[kid] = b"$%d\r\n%s\r\n" % (len(s), s)
        return k

    if a.scan_prefix is None:
        # unique per run too, so a re-run against an unflushed server still scans new keys
        scan_prefix = f"{a.key_prefix}scan.{os.getpid()}.{time.time_ns() % 10**12}.".encode()
    else:
        scan_prefix = a.scan_prefix.encode()
    scan = {"scans": 0, "gets": 0, "hits": 0, "sets": 0, "errors": 0, "seconds": 0.0}

    def run_scan(c, scan_no):
        """One cache-aside sequential scan of a.scan_length never-seen keys."""
        ts = time.time()
        base = scan_prefix + str(scan_no).encode() + b":"
        for start in range(0, a.scan_length, a.batch):
            n = min(a.batch, a.scan_length - start)
            ks = []
            for i in range(start, start + n):
                s = base + str(i).encode()
                ks.append(b"$%d\r\n%s\r\n" % (len(s), s))
            c.send(b"".join([get_hdr + k for k in ks]))
            miss = []
            for k in ks:
                r = c.read_reply()
                scan["gets"] += 1
                if isinstance(r, RespError):
                    scan["errors"] += 1
                    miss.append(k)
                elif r is None:
                    miss.append(k)
                else:
                    scan["hits"] += 1
            if miss:
                c.send(b"".join([set_hdr + k + val_part for k in miss]))
                for _ in miss:
                    r = c.read_reply()
                    scan["sets"] += 1
                    if isinstance(r, RespError):
                        scan["errors"] += 1
        scan["scans"] += 1
        scan["seconds"] += time.time() - ts

    if not a.quiet:
        print(f"setup {time.time() - t0:.1f}s (cdf over {a.keys} keys)", file=sys.stderr)

    c = Conn(a.host, a.port, a.timeout)
    if a.flush:
        r = c.command("FLUSHALL")
        if isinstance(r, RespError):
            print(f"FLUSHALL failed: {r}", file=sys.stderr)

    hits = misses = 0
    hits_ss = misses_ss = 0
    sets = extra_gets = errors = 0
    done = 0
    windows = []  # (requests_done, window_hit_ratio)
    win_h = win_m = 0
    win_size = max(a.requests // 10, 1)
    next_win = win_size
    next_scan = a.scan_every if scanning else None
    rnd = rng.random
    bis = bisect.bisect
    hi = a.keys - 1
    t_start = time.time()
    stopped_early = False
    while done < a.requests:
        if time.time() - t_start > a.max_seconds:
            stopped_early = True
            break
        b = min(a.batch, a.requests - done)
        if scanning:
            b = min(b, next_scan - done)  # scans start exactly at multiples of N
        ids = [perm[bis(cum, rnd() * total_w, 0, hi)] for _ in range(b)]
        c.send(b"".join([get_hdr + kb(i) for i in ids]))
        replies = [c.read_reply() for _ in range(b)]
        missed = {}  # kid -> number of later occurrences in this batch
        res = []     # per position: True hit / False miss / None decided later
        for i, r in zip(ids, replies):
            if isinstance(r, RespError):
                errors += 1
                res.append(False)
                continue
            if r is None:
                if i in missed:
                    missed[i] += 1
                    res.append(None)
                else:
                    missed[i] = 0
                    res.append(False)
            else:
                res.append(True)
        later = []
        if missed:
            out = []
            for i, extra in missed.items():
                out.append(set_hdr + kb(i) + val_part)
                for _ in range(extra):
                    out.append(get_hdr + kb(i))
            c.send(b"".join(out))
            for i, extra in missed.items():
                r = c.read_reply()
                sets += 1
                if isinstance(r, RespError):
                    errors += 1
                for _ in range(extra):
                    r = c.read_reply()
                    extra_gets += 1
                    later.append(r is not None and not isinstance(r, RespError))
        li = iter(later)
        for pos, h in enumerate(res):
            if h is None:
                h = next(li)
            n = done + pos
            if h:
                hits += 1; win_h += 1
                if n >= warmup:
                    hits_ss += 1
            else:
                misses += 1; win_m += 1
                if n >= warmup:
                    misses_ss += 1
        done += b
        if a.rate > 0:
            ahead = t_start + done / a.rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
        if scanning and done >= next_scan:
            if done < a.requests:  # a scan after the last counted request would change nothing
                run_scan(c, scan["scans"])
            next_scan += a.scan_every
        if done >= next_win:
            windows.append((done, win_h / max(win_h + win_m, 1)))
            if not a.quiet:
                el = time.time() - t_start
                print(f"{done:>10} req  window hit {windows[-1][1]:.4f}  cum hit {hits / done:.4f}"
                      f"  {done / el:,.0f} req/s", file=sys.stderr)
            win_h = win_m = 0
            next_win += win_size
    elapsed = time.time() - t_start

    dbsize = None
    evicted = None
    try:
        r = c.command("DBSIZE")
        dbsize = r if isinstance(r, int) else None
        r = c.command("INFO", "stats")
        if isinstance(r, bytes):
            for line in r.decode().splitlines():
                if line.startswith("evicted_keys:"):
                    evicted = int(line.split(":")[1])
    except Exception:
        pass
    scan_resident = None
    if scanning and scan["scans"]:
        # how many scan keys are still in the cache (bounded: at most 10 s / 100k SCAN calls)
        try:
            cursor, n, calls, ts = b"0", 0, 0, time.time()
            pat = scan_prefix.replace(b"\\", b"\\\\").replace(b"*", b"\\*") \
                .replace(b"?", b"\\?").replace(b"[", b"\\[") + b"*"
            while True:
                r = c.command("SCAN", cursor, "MATCH", pat, "COUNT", "1000")
                if not isinstance(r, list) or len(r) != 2:
                    break
                cursor, n, calls = r[0], n + len(r[1]), calls + 1
                if cursor in (b"0", 0):
                    scan_resident = n
                    break
                if calls > 100_000 or time.time() - ts > 10:
                    break
        except Exception:
            pass
    ideal = cum[min(dbsize, a.keys) - 1] / total_w if dbsize else None

    summary = {
        "host": a.host, "port": a.port, "keys": a.keys, "requests": done,
        "alpha": a.alpha, "seed": a.seed, "value_size": a.value_size, "batch": a.batch,
        "warmup": warmup, "hit_ratio": round(hits / max(done, 1), 5),
        "hit_ratio_after_warmup": round(hits_ss / max(hits_ss + misses_ss, 1), 5),
        "hits": hits, "misses": misses, "sets": sets, "extra_gets": extra_gets,
        "errors": errors, "windows": [[w, round(h, 4)] for w, h in windows],
        "dbsize_end": dbsize, "evicted_keys": evicted,
        "ideal_topk_hit_ratio": round(ideal, 5) if ideal is not None else None,
        "seconds": round(elapsed, 1), "req_per_s": round(done / elapsed) if elapsed else None,
        "stopped_early": stopped_early, "rate_limit": a.rate or None,
    }
    if scanning:
        all_gets = done + scan["gets"]
        summary.update({
            "scan_every": a.scan_every, "scan_length": a.scan_length,
            "scan_prefix": scan_prefix.decode(errors="replace"),
            "scans": scan["scans"], "scan_gets": scan["gets"], "scan_hits": scan["hits"],
            "scan_sets": scan["sets"], "scan_errors": scan["errors"],
            "scan_seconds": round(scan["seconds"], 1),
            "hit_ratio_incl_scans": round((hits + scan["hits"]) / max(all_gets, 1), 5),
            "scan_keys_resident_end": scan_resident,
        })
    print(f"hit ratio {summary['hit_ratio']:.4f} overall, {summary['hit_ratio_after_warmup']:.4f} "
          f"after {warmup} warm-up requests; resident keys {dbsize}; ideal top-K {summary['ideal_topk_hit_ratio']}; "
          f"{done} requests in {elapsed:.1f}s")
    if scanning:
        print(f"scans: {scan['scans']} x {a.scan_length} keys (not counted above): "
              f"{scan['gets']} GETs, {scan['hits']} hits, {scan['sets']} SETs, {scan['errors']} errors; "
              f"hit ratio incl. scans {summary['hit_ratio_incl_scans']:.4f}; "
              f"scan keys resident at end {scan_resident}")
    print(json.dumps(summary))
    return 1 if errors or scan["errors"] or stopped_early else 0


if __name__ == "__main__":
    sys.exit(main())
