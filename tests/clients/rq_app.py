#!/usr/bin/env python3
"""python-rq against a cache-node or a cache-proxy: jobs enqueued here, run by a real `rq
worker --burst` process (it drains the queue, then exits), results, a failure in the failed
registry, a retried job and a dependent job read back.

    python3 tests/clients/rq_app.py HOST:PORT [node|proxy] [DB]

The job functions live in this file (the worker imports them as `rq_app.*` from
tests/clients). Prints one line per check and exits 1 if any failed; exit 3 with "SKIPPED"
when `rq` is missing.
"""

import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

try:
    import redis
    from rq import Queue, Retry
    from rq.job import Job, JobStatus
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry
except ImportError as e:
    print(f"SKIPPED python-rq: {e}")
    sys.exit(3)

WORKER_TIMEOUT_S = 60


# --- jobs (run inside the worker process) ---------------------------------------------------

def add(a, b):
    return a + b


def slow(seconds):
    import time

    time.sleep(seconds)
    return "woke"


def broken(message):
    raise ValueError(message)


def flaky(counter_key):
    """Fails on its first attempt: the attempt count lives in the server, as the worker
    forks a fresh process per job."""
    from rq import get_current_job

    attempts = get_current_job().connection.incr(counter_key)
    if attempts < 2:
        raise RuntimeError(f"attempt {attempts}")
    return f"ok on attempt {attempts}"


def total(job_ids):
    from rq import get_current_job

    con = get_current_job().connection
    return sum(Job.fetch(i, connection=con).return_value() for i in job_ids)


# --- the application ------------------------------------------------------------------------

def run_worker(url, queue, *extra):
    """One burst worker: processes everything queued, then exits 0."""
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", url,
         "--path", here, "--name", f"w-{uuid.uuid4().hex[:8]}", *extra, queue],
        capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False,
    )
    assert done.returncode == 0, f"rq worker exited {done.returncode}:\n{done.stderr}"
    return done.stderr


def main():
    host_port = sys.argv[1]
    db = sys.argv[3] if len(sys.argv) > 3 else "0"
    url = f"redis://{host_port}/{db}"
    r = redis.Redis.from_url(url)
    name = f"rq{uuid.uuid4().hex[:8]}"
    q = Queue(name, connection=r)
    counter = f"rqapp:{name}:attempts"

    sums = [q.enqueue("rq_app.add", n, n * 10, result_ttl=600) for n in range(10)]
    failing = q.enqueue("rq_app.broken", "no good", result_ttl=600)
    retried = q.enqueue("rq_app.flaky", counter, retry=Retry(max=2), result_ttl=600)
    dependent = q.enqueue("rq_app.total", [j.id for j in sums], depends_on=sums,
                          result_ttl=600)
    assert q.count == 12, q.count
    assert dependent.get_status() == JobStatus.DEFERRED, dependent.get_status()

    log = run_worker(url, name)
    failed = 0

    def check(what, ok, detail=""):
        nonlocal failed
        if ok:
            print(f"ok   {what}")
        else:
            failed += 1
            print(f"FAIL {what}: {detail}")

    results = [Job.fetch(j.id, connection=r).return_value() for j in sums]
    check("results", results == [n * 11 for n in range(10)], results)
    check("finished registry", set(FinishedJobRegistry(queue=q).get_job_ids())
          >= {j.id for j in sums}, FinishedJobRegistry(queue=q).get_job_ids())
    failing = Job.fetch(failing.id, connection=r)
    check("failure status", failing.get_status() == JobStatus.FAILED, failing.get_status())
    check("failed registry", FailedJobRegistry(queue=q).get_job_ids() == [failing.id],
          FailedJobRegistry(queue=q).get_job_ids())
    exc = failing.latest_result().exc_string if failing.latest_result() else ""
    check("failure traceback", "ValueError: no good" in exc, exc)
    retried = Job.fetch(retried.id, connection=r)
    check("retried job", retried.return_value() == "ok on attempt 2"
          and r.get(counter) == b"2", (retried.get_status(), r.get(counter), log[-2000:]))
    dependent = Job.fetch(dependent.id, connection=r)
    check("dependent job", dependent.return_value() == sum(n * 11 for n in range(10)),
          (dependent.get_status(), dependent.return_value()))
    check("queue drained", q.count == 0, q.count)

    # Requeue the failed job: it leaves the failed registry and fails again on the next run.
    FailedJobRegistry(queue=q).requeue(failing.id)
    check("requeued", q.count == 1 and FailedJobRegistry(queue=q).count == 0,
          (q.count, FailedJobRegistry(queue=q).count))
    run_worker(url, name)
    check("failed again", FailedJobRegistry(queue=q).get_job_ids() == [failing.id],
          FailedJobRegistry(queue=q).get_job_ids())

    # A job over its timeout is stopped and fails with JobTimeoutException.
    late = q.enqueue("rq_app.slow", 5, job_timeout=1, result_ttl=600)
    run_worker(url, name)
    late = Job.fetch(late.id, connection=r)
    exc = late.latest_result().exc_string if late.latest_result() else ""
    check("job timeout", late.get_status() == JobStatus.FAILED and "JobTimeoutException" in exc,
          (late.get_status(), exc[-300:]))

    # A job scheduled for later waits in the scheduled registry; once due, a worker with the
    # scheduler moves it to the queue and runs it.
    scheduled = q.enqueue_in(timedelta(milliseconds=500), "rq_app.add", 2, 3, result_ttl=600)
    registry = ScheduledJobRegistry(queue=q)
    check("scheduled", registry.get_job_ids() == [scheduled.id] and q.count == 0,
          (registry.get_job_ids(), q.count))
    due = registry.get_scheduled_time(scheduled.id)
    while datetime.now(timezone.utc) < due:
        time.sleep(0.05)
    run_worker(url, name, "--with-scheduler")
    scheduled = Job.fetch(scheduled.id, connection=r)
    check("scheduled job ran", scheduled.return_value() == 5 and registry.count == 0,
          (scheduled.get_status(), registry.count))

    q.empty()
    for registry in (FinishedJobRegistry(queue=q), FailedJobRegistry(queue=q),
                     ScheduledJobRegistry(queue=q)):
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
    r.delete(counter)
    print(f"{failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
