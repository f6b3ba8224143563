#!/usr/bin/env python3
"""Celery with the Redis broker and result backend against a cache-node or a cache-proxy:
tasks sent from here, run by a real `celery worker --pool solo` process, results read back,
a failing task's exception, and a task that retries itself until it succeeds.

    python3 tests/clients/celery_app.py HOST:PORT [node|proxy] [DB]

The broker keeps a queue's lists, the `unacked` hash and zset and the bindings in keys that
MULTI and Lua touch together: `global_keyprefix` puts them all under one `{hash tag}`, so the
proxy can run them (as on Redis Cluster). The worker runs until every result is in, then gets
SIGTERM (a warm shutdown). Prints one line per check and exits 1 if any failed; exit 3 with
"SKIPPED" when `celery` is missing.
"""

import os
import signal
import subprocess
import sys
import time
import uuid

try:
    import redis
    from celery import Celery, chord, group
    from celery.exceptions import TimeoutError as CeleryTimeout  # noqa: F401 - import check
    import kombu.transport.redis  # noqa: F401 - the broker's transport and its deps
except ImportError as e:
    print(f"SKIPPED celery: {e}")
    sys.exit(3)

RESULT_TIMEOUT_S = 30
VISIBILITY_TIMEOUT_S = 1

# The worker process imports this module too: the URL and the queue come from its environment.
URL = os.environ.get("CELERY_APP_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("CELERY_APP_QUEUE", "celery")
app = Celery("celery_app", broker=URL, backend=URL)
app.conf.update(
    # A message a dead worker took but never acknowledged goes back after this long.
    broker_transport_options={"global_keyprefix": "{celeryapp}:",
                              "visibility_timeout": VISIBILITY_TIMEOUT_S},
    result_backend_transport_options={"global_keyprefix": "{celeryapp}:"},
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    result_expires=600,
    worker_hijack_root_logger=False,
)


@app.task
def add(a, b):
    return a + b


@app.task
def broken(message):
    raise ValueError(message)


@app.task(acks_late=True)
def survivor(marker_key):
    """Hangs on its first delivery (the test kills that worker), returns on the next."""
    if redis.Redis.from_url(URL).incr(marker_key) == 1:
        time.sleep(60)
    return "redelivered"


@app.task
def tsum(values):
    return sum(values)


@app.task(bind=True, max_retries=3, default_retry_delay=0.1)
def flaky(self, counter_key):
    """Fails twice, retrying itself each time; the attempts are counted in the server."""
    attempts = redis.Redis.from_url(URL).incr(counter_key)
    if attempts < 3:
        raise self.retry(exc=RuntimeError(f"attempt {attempts}"))
    return f"ok on attempt {attempts}"


def start_worker(env):
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "solo",
         "--loglevel", "INFO", "-Q", env["CELERY_APP_QUEUE"],
         "-n", f"{env['CELERY_APP_QUEUE']}@%h"],
        cwd=here, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop_worker(worker):
    """Warm shutdown: (what went wrong or None, the worker's log)."""
    worker.send_signal(signal.SIGTERM)
    try:
        out, _ = worker.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        out, _ = worker.communicate()
        return "worker did not stop on SIGTERM", out
    return (None if worker.returncode == 0 else f"worker exited {worker.returncode}"), out


def main():
    host_port = sys.argv[1]
    db = sys.argv[3] if len(sys.argv) > 3 else "0"
    url = f"redis://{host_port}/{db}"
    queue = f"cq{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, CELERY_APP_URL=url, CELERY_APP_QUEUE=queue)
    app.conf.update(broker_url=url, result_backend=url, task_default_queue=queue)
    r = redis.Redis.from_url(url)
    counter = f"celeryapp:{queue}:attempts"
    failed = 0

    def check(what, ok, detail=""):
        nonlocal failed
        if ok:
            print(f"ok   {what}")
        else:
            failed += 1
            print(f"FAIL {what}: {detail}")

    # Sent before the worker starts: they wait in the broker's queue.
    sums = [add.delay(n, n * 10) for n in range(10)]
    worker = start_worker(env)
    try:
        started = time.monotonic()
        results = [s.get(timeout=RESULT_TIMEOUT_S) for s in sums]
        check(f"results ({time.monotonic() - started:.1f}s)",
              results == [n * 11 for n in range(10)], results)
        bad = broken.delay("no good")
        try:
            bad.get(timeout=RESULT_TIMEOUT_S)
            check("failure", False, "no exception")
        except ValueError as e:
            check("failure", str(e) == "no good" and bad.state == "FAILURE", (e, bad.state))
        retried = flaky.delay(counter)
        value = retried.get(timeout=RESULT_TIMEOUT_S)
        check("retried task", value == "ok on attempt 3" and r.get(counter) == b"3",
              (value, r.get(counter)))
        check("result states", all(s.state == "SUCCESS" for s in sums + [retried]),
              [s.state for s in sums + [retried]])
        # After the tasks, sent while the worker is idle on BRPOP.
        late = add.apply_async((20, 22), countdown=0.2)
        check("eta task", late.get(timeout=RESULT_TIMEOUT_S) == 42, late.state)
        together = group(add.s(n, n) for n in range(5)).apply_async()
        check("group", together.get(timeout=RESULT_TIMEOUT_S) == [0, 2, 4, 6, 8],
              together.results)
        # A chord's counter and its parts' results live in the result backend.
        joined = chord(add.s(n, 1) for n in range(5))(tsum.s())
        check("chord", joined.get(timeout=RESULT_TIMEOUT_S) == 15, joined.state)
        # Remote control: a broadcast through the pidbox fanout and a reply queue.
        replies = app.control.inspect(timeout=5, destination=[f"{queue}@{os.uname().nodename}"]).ping()
        check("inspect ping", replies and list(replies.values()) == [{"ok": "pong"}], replies)
        ranked = [add.apply_async((n, 0), priority=p) for n, p in ((1, 9), (2, 0), (3, 5))]
        check("priorities", [t.get(timeout=RESULT_TIMEOUT_S) for t in ranked] == [1, 2, 3],
              [t.state for t in ranked])
    except Exception as e:  # noqa: BLE001 - report, then show the worker's log
        failed += 1
        print(f"FAIL {type(e).__name__}: {e}")
    problem, log = stop_worker(worker)
    check("warm shutdown", problem is None, problem)

    # A worker killed mid-task (acks_late): the unacked message is restored to the queue
    # after the visibility timeout and a new worker runs it.
    marker = f"celeryapp:{queue}:deliveries"
    hung = survivor.delay(marker)
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while r.get(marker) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered = time.monotonic()
        check("first delivery", r.get(marker) == b"1", r.get(marker))
        worker.kill()
        worker.communicate()
        # kombu restores the messages older than the visibility timeout when a worker
        # starts polling (and then only every 100 s): start it once the message is that old.
        time.sleep(max(0.0, delivered + VISIBILITY_TIMEOUT_S + 0.5 - time.monotonic()))
        worker = start_worker(env)
        value = hung.get(timeout=RESULT_TIMEOUT_S)
        check("restored after a crash", value == "redelivered" and r.get(marker) == b"2",
              (value, r.get(marker)))
    except Exception as e:  # noqa: BLE001 - report, then show the worker's log
        failed += 1
        print(f"FAIL restore: {type(e).__name__}: {e}")
    problem, more = stop_worker(worker)
    log += more
    check("warm shutdown after the crash", problem is None, problem)
    r.delete(marker)
    if failed:
        print(f"--- worker log ---\n{log}")
    for s in sums:
        s.forget()
    r.delete(counter)
    print(f"{failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
