#!/usr/bin/env node
// node-redlock against a cache-node or a cache-proxy: acquire (SET NX PX), extend and release
// (EVALSHA of its Lua scripts, EVAL on NOSCRIPT), contention between two clients, and a lock
// over several resources (one script over several keys: `{hash tag}`ged for the proxy).
//
//   node tests/clients/redlock_app.js HOST:PORT [node|proxy] [DB]
//
// Prints one line per check and exits 1 if any failed; exits 3 with "SKIPPED" when redlock or
// ioredis is not installed.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");

let Redis, Redlock;
try {
  Redis = require("ioredis");
  Redlock = require("redlock");
} catch (e) {
  console.log("SKIPPED redlock: not installed (npm ci --prefix tests/clients)");
  process.exit(3);
}

const [hostPort, target = "node", dbArg = "0"] = process.argv.slice(2);
if (!hostPort) {
  console.log("usage: redlock_app.js HOST:PORT [node|proxy] [DB]");
  process.exit(2);
}
const i = hostPort.lastIndexOf(":");
const options = {
  host: hostPort.slice(0, i),
  port: Number(hostPort.slice(i + 1)),
  db: Number(dbArg),
  maxRetriesPerRequest: 2,
  connectTimeout: 5000,
  commandTimeout: 10000,
};

/// A Redlock over its own connection; `retryCount: 0` makes a held lock fail at once.
function redlock(client, retryCount = 0) {
  return new Redlock([client], { retryCount, retryDelay: 50, retryJitter: 10, driftFactor: 0.01 });
}

const checks = {
  async acquire_release(r, p) {
    const lock = await redlock(r).lock(p + "res", 5000);
    assert.equal(await r.get(p + "res"), lock.value);
    const pttl = await r.pttl(p + "res");
    assert.ok(pttl > 4000 && pttl <= 5000, `pttl ${pttl}`);
    await lock.unlock();
    assert.equal(await r.exists(p + "res"), 0);
  },

  async extend(r, p) {
    const lock = await redlock(r).lock(p + "res", 1000);
    const longer = await lock.extend(8000);
    const pttl = await r.pttl(p + "res");
    assert.ok(pttl > 7000 && pttl <= 8000, `pttl after extend ${pttl}`);
    assert.equal(await r.get(p + "res"), longer.value);
    await longer.unlock();
    assert.equal(await r.exists(p + "res"), 0);
  },

  // A second client cannot take a held lock; it gets it once the holder releases, and the
  // holder's release of a lock it no longer holds leaves the new owner's lock alone.
  async contention(r, p, other) {
    const first = await redlock(r).lock(p + "res", 5000);
    await assert.rejects(redlock(other).lock(p + "res", 5000), Redlock.LockError);
    const waiting = redlock(other, 100).lock(p + "res", 5000);
    await first.unlock();
    const second = await waiting;
    assert.equal(await r.get(p + "res"), second.value);
    await assert.rejects(first.unlock(), Redlock.LockError);
    assert.equal(await r.get(p + "res"), second.value);
    await assert.rejects(first.extend(5000), Redlock.LockError);
    await second.unlock();
  },

  // An expired lock is free for the next client without anyone releasing it.
  async expiry(r, p, other) {
    await redlock(r).lock(p + "res", 150);
    const next = await redlock(other, 40).lock(p + "res", 5000);
    assert.equal(await r.get(p + "res"), next.value);
    await next.unlock();
  },

  // One lock over two resources: all or nothing.
  async several_resources(r, p, other) {
    const keys = [p + "{acct}a", p + "{acct}b"];
    const both = await redlock(r).lock(keys, 5000);
    assert.deepEqual(await r.mget(keys), [both.value, both.value]);
    await assert.rejects(redlock(other).lock([p + "{acct}b", p + "{acct}c"], 5000), Redlock.LockError);
    assert.equal(await r.exists(p + "{acct}c"), 0, "a failed lock left a key behind");
    await both.unlock();
    assert.equal(await r.exists(...keys), 0);
  },

  // The client's script cache is gone after SCRIPT FLUSH: EVALSHA fails, EVAL recovers.
  async script_flush(r, p) {
    const lock = await redlock(r).lock(p + "res", 5000);
    assert.equal(await r.script("FLUSH"), "OK");
    await lock.unlock();
    assert.equal(await r.exists(p + "res"), 0);
  },
};

async function main() {
  const r = new Redis(options);
  const other = new Redis(options);
  let failed = 0;
  for (const [name, check] of Object.entries(checks)) {
    const p = `redlock:${crypto.randomBytes(4).toString("hex")}:`;
    try {
      await check(r, p, other);
      console.log(`ok   ${name}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name}: ${e.stack || e}`);
    }
  }
  r.disconnect();
  other.disconnect();
  const total = Object.keys(checks).length;
  console.log(`${total - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
