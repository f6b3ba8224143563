#!/usr/bin/env python3
"""redis-py's Lock against a cache-node: its release, extend and reacquire run Lua scripts
(EVALSHA, falling back to EVAL on NOSCRIPT), as Celery, RQ and many applications use them.

    python3 tests/clients/redis_py_lock.py HOST:PORT [node|proxy]

Runs under RESP2 and RESP3. Prints one line per check and exits 1 if any failed; exit 3
with "SKIPPED" when the `redis` module is missing.
"""

import sys
import threading
import time
import uuid

try:
    import redis
    from redis.exceptions import LockError, LockNotOwnedError
    from checks import run_checks
except ImportError:
    print("SKIPPED redis-py lock: python module 'redis' is not installed")
    sys.exit(3)


def check_acquire_release(r, name):
    lock = r.lock(name, timeout=10)
    assert lock.acquire(blocking=False) is True
    assert lock.owned() is True
    assert lock.locked() is True
    token = r.get(name)
    assert token is not None
    lock.release()
    assert r.get(name) is None
    assert lock.locked() is False


def check_contention(r, name):
    first = r.lock(name, timeout=10)
    # Acquired in another thread, released here: the token must not be thread-local.
    second = r.lock(name, timeout=10, thread_local=False)
    assert first.acquire(blocking=False) is True
    assert second.acquire(blocking=False) is False
    # A waiting acquirer gets the lock once the holder releases it.
    got = []

    def wait_for_it():
        got.append(second.acquire(blocking=True, blocking_timeout=5))

    t = threading.Thread(target=wait_for_it)
    t.start()
    time.sleep(0.2)
    first.release()
    t.join(6)
    assert got == [True], got
    second.release()


def check_extend(r, name):
    lock = r.lock(name, timeout=2)
    assert lock.acquire(blocking=False) is True
    assert lock.extend(10) is True
    assert 10_000 < r.pttl(name) <= 12_000, r.pttl(name)
    assert lock.extend(5, replace_ttl=True) is True
    assert 4_000 < r.pttl(name) <= 5_000, r.pttl(name)
    assert lock.reacquire() is True
    assert 1_000 < r.pttl(name) <= 2_000, r.pttl(name)
    lock.release()


def check_not_owned(r, name):
    lock = r.lock(name, timeout=10)
    assert lock.acquire(blocking=False) is True
    # Someone else takes the key over: our release and extend must refuse.
    r.set(name, "someone-else")
    try:
        lock.release()
        raise AssertionError("release of a lock we do not own succeeded")
    except LockNotOwnedError:
        pass
    try:
        lock.extend(10)
        raise AssertionError("extend of a lock we do not own succeeded")
    except LockError:
        pass
    r.delete(name)


def check_timeout(r, name):
    # The holder's timeout frees the lock without a release; a waiter with a short
    # blocking_timeout gives up, one with a longer one gets it, and the old holder's release
    # then refuses (the token is no longer its own).
    holder = r.lock(name, timeout=0.3)
    assert holder.acquire(blocking=False) is True
    impatient = r.lock(name, timeout=10, blocking_timeout=0.05)
    started = time.monotonic()
    assert impatient.acquire() is False
    assert time.monotonic() - started < 0.3
    patient = r.lock(name, timeout=10, sleep=0.02)
    assert patient.acquire(blocking=True, blocking_timeout=5) is True
    assert patient.owned() is True and holder.owned() is False
    try:
        holder.release()
        raise AssertionError("release after the lock timed out succeeded")
    except LockNotOwnedError:
        pass
    assert patient.locked() is True
    patient.release()
    # A context manager releases on exit, and raises when it cannot acquire in time.
    with r.lock(name, timeout=10, blocking_timeout=1):
        assert r.exists(name) == 1
        try:
            with r.lock(name, timeout=10, blocking_timeout=0.05):
                raise AssertionError("a second context acquired a held lock")
        except LockError:
            pass
    assert r.exists(name) == 0


def check_script_cache(r, name):
    # After SCRIPT FLUSH the client's EVALSHA gets NOSCRIPT and falls back to EVAL.
    lock = r.lock(name, timeout=10)
    assert lock.acquire(blocking=False) is True
    r.script_flush()
    lock.release()
    assert r.get(name) is None


CHECKS = [check_acquire_release, check_contention, check_extend, check_not_owned,
          check_timeout, check_script_cache]


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    run_checks(
        CHECKS,
        lambda protocol: redis.Redis(host=host, port=int(port), protocol=protocol),
        lambda: f"lua:lock:{uuid.uuid4().hex}",
    )


if __name__ == "__main__":
    main()
