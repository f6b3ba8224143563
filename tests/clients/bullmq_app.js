#!/usr/bin/env node
// BullMQ end to end against a cache-node or a cache-proxy: its queues are Lua scripts over
// lists, sorted sets, hashes and a stream of events that QueueEvents reads with XREAD BLOCK.
//
//   node tests/clients/bullmq_app.js [--node-redis] HOST:PORT [node|proxy] [DB]
//
// Through the proxy every key carries the `{bull}` hash tag in BullMQ's `prefix`, as BullMQ
// documents for Redis Cluster, so each script's keys live on one node. Prints one line per
// check and exits 1 if any failed; exits 3 with "SKIPPED" when bullmq is not installed.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");

let bullmq;
try {
  bullmq = require("bullmq");
} catch (e) {
  console.log("SKIPPED bullmq: not installed (npm ci --prefix tests/clients)");
  process.exit(3);
}
const { Queue, Worker, QueueEvents, FlowProducer } = bullmq;

// `--node-redis` runs BullMQ on node-redis (the `redis` package) speaking RESP3 instead of
// ioredis (RESP2): the same scripts, other reply shapes, and sockets closed differently.
const argv = process.argv.slice(2);
const driver = argv[0] === "--node-redis" ? (argv.shift(), "node-redis") : "ioredis";
const [hostPort, target = "node", dbArg = "0"] = argv;
if (!hostPort) {
  console.log("usage: bullmq_app.js [--node-redis] HOST:PORT [node|proxy] [DB]");
  process.exit(2);
}
const i = hostPort.lastIndexOf(":");
// Workers block on their connection, so BullMQ wants no per-request retry limit.
const connection = {
  host: hostPort.slice(0, i),
  port: Number(hostPort.slice(i + 1)),
  db: Number(dbArg),
  maxRetriesPerRequest: null,
  connectTimeout: 5000,
};
const prefix = target === "proxy" ? "{bull}" : "bull";

/// What BullMQ's `connection` option gets: ioredis options, or a node-redis client of its own.
function conn() {
  if (driver !== "node-redis") return connection;
  const { createClient } = require("redis");
  return createClient({
    socket: { host: connection.host, port: connection.port },
    database: connection.db,
    RESP: 3,
  });
}
const CHECK_TIMEOUT_MS = 20000;

/// A queue, its events and the workers a check starts, all closed at the end of the check.
class Fixture {
  constructor() {
    this.name = "q" + crypto.randomBytes(4).toString("hex");
    this.queue = new Queue(this.name, { connection: conn(), prefix });
    this.events = new QueueEvents(this.name, { connection: conn(), prefix });
    this.workers = [];
  }

  worker(processor, opts = {}) {
    const w = new Worker(this.name, processor, { connection: conn(), prefix, ...opts });
    w.on("error", (e) => console.log(`worker error: ${e.message}`));
    this.workers.push(w);
    return w;
  }

  async ready() {
    await this.queue.waitUntilReady();
    await this.events.waitUntilReady();
  }

  async close() {
    await Promise.all(this.workers.map((w) => w.close()));
    await this.events.close();
    await this.queue.obliterate({ force: true }).catch(() => {});
    await this.queue.close();
  }
}

/// Resolves once `count` `event` notifications (of QueueEvents) have arrived.
function collect(events, event, count) {
  const seen = [];
  return {
    seen,
    done: new Promise((resolve) => {
      events.on(event, (args) => {
        seen.push(args);
        if (seen.length === count) resolve(seen);
      });
    }),
  };
}

const checks = {
  // 50 jobs, a worker with concurrency 5; every `completed` event arrives with its result.
  async fifty_jobs_completed_events(f) {
    await f.ready();
    const completed = collect(f.events, "completed", 50);
    const jobs = await f.queue.addBulk(
      Array.from({ length: 50 }, (_, n) => ({ name: "square", data: { n } })),
    );
    assert.equal(jobs.length, 50);
    f.worker(async (job) => job.data.n * job.data.n, { concurrency: 5 });
    const seen = await completed.done;
    const results = new Map(seen.map((e) => [e.jobId, Number(e.returnvalue)]));
    for (const [n, job] of jobs.entries()) assert.equal(results.get(job.id), n * n, job.id);
    const counts = await f.queue.getJobCounts("completed", "waiting", "active", "failed");
    assert.deepEqual(counts, { completed: 50, waiting: 0, active: 0, failed: 0 });
    const done = await f.queue.getJob(jobs[7].id);
    assert.equal(done.returnvalue, 49);
    assert.equal(await done.getState(), "completed");
  },

  // A delayed job waits in the delayed set, then runs no earlier than its delay.
  async delayed_job(f) {
    await f.ready();
    f.worker(async () => "late");
    const job = await f.queue.add("later", {}, { delay: 400 });
    assert.equal(await job.getState(), "delayed");
    assert.equal(await job.waitUntilFinished(f.events, CHECK_TIMEOUT_MS), "late");
    const done = await f.queue.getJob(job.id);
    assert.ok(done.processedOn - done.timestamp >= 400, `ran after ${done.processedOn - done.timestamp} ms`);
  },

  // A job failing twice is retried with backoff and succeeds on its third attempt; one that
  // always fails ends in the failed set with its reason and its attempts.
  async failed_job_retried(f) {
    await f.ready();
    f.worker(async (job) => {
      if (job.name === "doomed") throw new Error("always broken");
      if (job.attemptsMade < 2) throw new Error(`flaky ${job.attemptsMade}`);
      return `ok after ${job.attemptsMade}`;
    });
    const failed = collect(f.events, "failed", 1);
    const opts = { attempts: 3, backoff: { type: "fixed", delay: 100 } };
    const flaky = await f.queue.add("flaky", {}, opts);
    const doomed = await f.queue.add("doomed", {}, opts);
    assert.equal(await flaky.waitUntilFinished(f.events, CHECK_TIMEOUT_MS), "ok after 2");
    await assert.rejects(doomed.waitUntilFinished(f.events, CHECK_TIMEOUT_MS), /always broken/);
    const flakyDone = await f.queue.getJob(flaky.id);
    assert.equal(flakyDone.attemptsMade, 3);
    const doomedDone = await f.queue.getJob(doomed.id);
    assert.equal(await doomedDone.getState(), "failed");
    assert.equal(doomedDone.failedReason, "always broken");
    assert.equal(doomedDone.attemptsMade, 3);
    assert.deepEqual((await f.queue.getFailed()).map((j) => j.id), [doomed.id]);
    // Attempts that will be retried are not `failed` events (as on Redis): only the last.
    const [event] = await failed.done;
    assert.deepEqual([event.jobId, event.failedReason], [doomed.id, "always broken"]);
  },

  // Jobs added before any worker runs come out by priority (1 first), then in FIFO order.
  async priority_order(f) {
    await f.ready();
    const order = [];
    await f.queue.add("p", { tag: "low" }, { priority: 10 });
    await f.queue.add("p", { tag: "high" }, { priority: 1 });
    await f.queue.add("p", { tag: "mid-a" }, { priority: 5 });
    await f.queue.add("p", { tag: "mid-b" }, { priority: 5 });
    await f.queue.add("p", { tag: "none" });
    assert.equal(await f.queue.getPrioritizedCount(), 4);
    const completed = collect(f.events, "completed", 5);
    f.worker(async (job) => order.push(job.data.tag), { concurrency: 1 });
    await completed.done;
    assert.deepEqual(order, ["none", "high", "mid-a", "mid-b", "low"]);
  },

  // A job scheduler repeating every 150 ms produces jobs until it is removed.
  async repeatable_job(f) {
    await f.ready();
    const completed = collect(f.events, "completed", 3);
    f.worker(async (job) => job.name);
    await f.queue.upsertJobScheduler("tick", { every: 150 }, { name: "tick-job" });
    assert.equal((await f.queue.getJobSchedulers()).length, 1);
    const seen = await completed.done;
    assert.ok(seen.every((e) => e.returnvalue === "tick-job"), JSON.stringify(seen));
    assert.equal(await f.queue.removeJobScheduler("tick"), true);
    assert.equal((await f.queue.getJobSchedulers()).length, 0);
  },

  // A flow: the parent runs only after its three children, and sees their results.
  async flow_parent_after_children(f) {
    await f.ready();
    const flows = new FlowProducer({ connection: conn(), prefix });
    try {
      f.worker(async (job) => {
        if (job.name === "child") return job.data.n * 2;
        const children = await job.getChildrenValues();
        return Object.values(children).reduce((a, b) => a + b, 0);
      });
      const tree = await flows.add({
        name: "parent",
        queueName: f.name,
        children: [1, 2, 3].map((n) => ({ name: "child", queueName: f.name, data: { n } })),
      });
      assert.equal(await tree.job.getState(), "waiting-children");
      assert.equal(await tree.job.waitUntilFinished(f.events, CHECK_TIMEOUT_MS), 12);
      const deps = await tree.job.getDependenciesCount();
      assert.deepEqual([deps.processed, deps.unprocessed], [3, 0]);
    } finally {
      await flows.close();
    }
  },

  // Progress updates and job logs reach QueueEvents and the job's record.
  async progress_and_logs(f) {
    await f.ready();
    const progress = collect(f.events, "progress", 2);
    f.worker(async (job) => {
      await job.updateProgress(50);
      await job.log("half way");
      await job.updateProgress({ step: "done" });
      return "logged";
    });
    const job = await f.queue.add("p", {});
    assert.equal(await job.waitUntilFinished(f.events, CHECK_TIMEOUT_MS), "logged");
    const seen = await progress.done;
    assert.deepEqual(seen.map((e) => e.data), [50, { step: "done" }]);
    const { logs, count } = await f.queue.getJobLogs(job.id);
    assert.deepEqual([logs, count], [["half way"], 1]);
    assert.deepEqual((await f.queue.getJob(job.id)).progress, { step: "done" });
  },

  // A rate-limited worker takes at most 2 jobs per 500 ms window.
  async rate_limited_worker(f) {
    await f.ready();
    const completed = collect(f.events, "completed", 6);
    const started = Date.now();
    f.worker(async () => Date.now(), { limiter: { max: 2, duration: 500 } });
    await f.queue.addBulk(Array.from({ length: 6 }, () => ({ name: "r", data: {} })));
    await completed.done;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1000, `6 jobs at 2 per 500 ms took only ${elapsed} ms`);
  },

  // A job whose worker vanished mid-job (its lock expired) is found stalled and run again.
  async stalled_job_recovered(f) {
    await f.ready();
    const job = await f.queue.add("s", {});
    // Take the job the way a worker does, then never renew its lock.
    const taker = new Worker(f.name, null, { connection: conn(), prefix, lockDuration: 300 });
    const token = "crashed-worker";
    const taken = await taker.getNextJob(token);
    assert.equal(taken.id, job.id);
    await taker.close();
    const stalled = collect(f.events, "stalled", 1);
    f.worker(async () => "recovered", { stalledInterval: 300, lockDuration: 300 });
    assert.equal((await stalled.done)[0].jobId, job.id);
    assert.equal(await job.waitUntilFinished(f.events, CHECK_TIMEOUT_MS), "recovered");
  },

  // The queue lists its workers (CLIENT SETNAME / CLIENT LIST), cleans and retries jobs.
  async workers_clean_retry(f) {
    await f.ready();
    const w = f.worker(async (job) => {
      if (job.data.fail) throw new Error("nope");
      return "fine";
    });
    await w.waitUntilReady();
    if (target === "proxy") {
      // The proxy has no client registry of the nodes' to list (cache-proxy answers so).
      await assert.rejects(f.queue.getWorkers(), /CLIENT LIST is not supported by the proxy/);
    } else {
      const found = [];
      for (let n = 0; n < 100 && found.length === 0; n++) {
        found.push(...(await f.queue.getWorkers()));
        if (found.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(found.length >= 1, "getWorkers found no worker");
      assert.equal(await f.queue.getWorkersCount(), found.length);
    }
    const failedEvents = collect(f.events, "failed", 2);
    const completed = collect(f.events, "completed", 3);
    await f.queue.addBulk([
      { name: "ok", data: {} },
      { name: "bad", data: { fail: true } },
      { name: "bad", data: { fail: true } },
    ]);
    await failedEvents.done;
    assert.equal(await f.queue.getFailedCount(), 2);
    // Retried without the failing flag's effect: they fail again, so flip the data first.
    for (const j of await f.queue.getFailed()) await j.updateData({ fail: false });
    await f.queue.retryJobs({ state: "failed" });
    await completed.done;
    assert.equal(await f.queue.getCompletedCount(), 3);
    const removed = await f.queue.clean(0, 10, "completed");
    assert.equal(removed.length, 3);
    assert.equal(await f.queue.getCompletedCount(), 0);
  },

  // Jobs with one deduplication id: the second add is ignored while the first is pending.
  async deduplicated_jobs(f) {
    await f.ready();
    const first = await f.queue.add("d", { v: 1 }, { deduplication: { id: "same" } });
    const second = await f.queue.add("d", { v: 2 }, { deduplication: { id: "same" } });
    assert.equal(second.id, first.id);
    assert.equal(await f.queue.getWaitingCount(), 1);
    assert.equal(await f.queue.getDeduplicationJobId("same"), first.id);
  },

  // Pausing the queue stops workers from taking jobs; resuming lets them through.
  async pause_resume(f) {
    await f.ready();
    await f.queue.pause();
    assert.equal(await f.queue.isPaused(), true);
    f.worker(async () => "resumed");
    const job = await f.queue.add("held", {});
    assert.equal(await job.getState(), "waiting");
    await f.queue.resume();
    assert.equal(await job.waitUntilFinished(f.events, CHECK_TIMEOUT_MS), "resumed");
  },
};

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function main() {
  let failed = 0;
  for (const [name, check] of Object.entries(checks)) {
    const f = new Fixture();
    const started = Date.now();
    try {
      await withTimeout(check(f), CHECK_TIMEOUT_MS, name);
      console.log(`ok   ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name}: ${e.stack || e}`);
    }
    await withTimeout(f.close(), 10000, `${name} close`).catch((e) => {
      failed += 1;
      console.log(`FAIL ${name} close: ${e.message}`);
    });
  }
  const total = Object.keys(checks).length;
  console.log(`${total - Math.min(failed, total)} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
