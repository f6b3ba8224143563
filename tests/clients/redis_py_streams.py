#!/usr/bin/env python3
"""A redis-py consumer-group worker pool against a cache-node or a cache-proxy: three
consumers share a stream through XREADGROUP BLOCK, one crashes mid-batch (it reads entries
and never acknowledges them), and a survivor takes them over with XAUTOCLAIM; every entry is
processed at least once and acknowledged, and XPENDING / XINFO agree.

    python3 tests/clients/redis_py_streams.py HOST:PORT [node|proxy] [DB]

Runs under RESP2 and RESP3. Prints one line per check and exits 1 if any failed; exit 3 with
"SKIPPED" when the `redis` module is missing.
"""

import sys
import threading
import time
import uuid

try:
    import redis
except ImportError:
    print("SKIPPED redis-py streams: python module 'redis' is not installed")
    sys.exit(3)

ENTRIES = 300
BATCH = 10
DEADLINE_S = 30


def consumer(r, stream, group, name, processed, stop, crash_after=None):
    """Reads batches and acknowledges each entry after "processing" it; with `crash_after`,
    it stops after that many batches, its last batch read but never acknowledged."""
    batches = 0
    while not stop.is_set():
        got = r.xreadgroup(group, name, {stream: ">"}, count=BATCH, block=100)
        if not got:
            continue
        entries = got[0][1] if isinstance(got, list) else got[stream.encode()][0]
        batches += 1
        if crash_after is not None and batches > crash_after:
            return  # crashed holding `entries`
        for entry_id, fields in entries:
            processed.append((name, entry_id, fields[b"n"]))
            r.xack(stream, group, entry_id)


def rescue(r, stream, group, name, processed):
    """XAUTOCLAIM everything idle for 200 ms into `name`, then process and acknowledge it."""
    claimed = []
    cursor = "0-0"
    while True:
        reply = r.xautoclaim(stream, group, name, min_idle_time=200, start_id=cursor, count=50)
        cursor, entries = reply[0], reply[1]
        for entry_id, fields in entries:
            processed.append((name, entry_id, fields[b"n"]))
            r.xack(stream, group, entry_id)
            claimed.append(entry_id)
        if cursor in (b"0-0", "0-0"):
            return claimed


def run(r, protocol, check):
    stream = f"{{streams{uuid.uuid4().hex[:8]}}}:jobs"
    group = "workers"
    assert r.xgroup_create(stream, group, id="$", mkstream=True) is True
    processed = []
    stop = threading.Event()
    # The stream is filled first and the consumer that crashes reads it alone: it processes
    # one batch and crashes holding the second (racing two others, it might never get a
    # second one). Then two healthy consumers take the rest.
    workers = [threading.Thread(target=consumer, args=(r, stream, group, f"c{k}", processed,
                                                       stop)) for k in range(2)]
    crasher = threading.Thread(target=consumer, args=(r, stream, group, "c-crash", processed,
                                                      stop, 1))
    with r.pipeline(transaction=False) as pipe:
        for n in range(ENTRIES):
            pipe.xadd(stream, {"n": n})
        ids = pipe.execute()
    crasher.start()
    crasher.join(DEADLINE_S)
    check(f"resp{protocol} crash", not crasher.is_alive(), "the crashing consumer never crashed")
    for t in workers:
        t.start()

    # Wait until all but the crashed batch is acknowledged, then rescue that batch.
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        summary = r.xpending(stream, group)
        owners = {c["name"]: c["pending"] for c in summary["consumers"]}
        if set(owners) == {b"c-crash"} or summary["pending"] == 0:
            break
        time.sleep(0.02)
    stranded = r.xpending(stream, group)["pending"]
    check(f"resp{protocol} stranded batch", 0 < stranded <= BATCH, r.xpending(stream, group))
    time.sleep(0.25)  # the claim's min-idle-time: 200 ms of idleness is the condition
    claimed = rescue(r, stream, group, "c0", processed)
    check(f"resp{protocol} xautoclaim", len(claimed) == stranded, (len(claimed), stranded))
    stop.set()
    for t in workers:
        t.join(DEADLINE_S)

    numbers = sorted(int(n) for _, _, n in processed)
    check(f"resp{protocol} every entry processed", sorted(set(numbers)) == list(range(ENTRIES)),
          f"{len(set(numbers))} distinct of {ENTRIES}")
    # The crashed consumer processed none of its last batch, so nothing ran twice.
    check(f"resp{protocol} each entry once", len(numbers) == ENTRIES, len(numbers))
    summary = r.xpending(stream, group)
    check(f"resp{protocol} nothing pending", summary["pending"] == 0, summary)
    info = r.xinfo_groups(stream)[0]
    check(f"resp{protocol} xinfo groups", (info["pending"], info["lag"], info["entries-read"],
                                           info["last-delivered-id"])
          == (0, 0, ENTRIES, ids[-1]), info)
    consumers = {c["name"]: c for c in r.xinfo_consumers(stream, group)}
    check(f"resp{protocol} xinfo consumers",
          set(consumers) == {b"c0", b"c1", b"c-crash"}
          and all(c["pending"] == 0 for c in consumers.values()), consumers)
    stream_info = r.xinfo_stream(stream)
    check(f"resp{protocol} xinfo stream",
          (stream_info["length"], stream_info["groups"], stream_info["last-generated-id"],
           stream_info["entries-added"]) == (ENTRIES, 1, ids[-1], ENTRIES), stream_info)
    # Trimming the handled entries away leaves an empty stream with its group.
    check(f"resp{protocol} xtrim", r.xtrim(stream, maxlen=0) == ENTRIES and r.xlen(stream) == 0,
          r.xlen(stream))
    r.delete(stream)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    db = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    failed = 0

    def check(what, ok, detail=""):
        nonlocal failed
        if ok:
            print(f"ok   {what}")
        else:
            failed += 1
            print(f"FAIL {what}: {detail}")

    for protocol in (2, 3):
        r = redis.Redis(host=host, port=int(port), db=db, protocol=protocol)
        try:
            run(r, protocol, check)
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            print(f"FAIL resp{protocol}: {e!r}")
    print(f"{failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
