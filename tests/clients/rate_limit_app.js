#!/usr/bin/env node
// express-rate-limit with rate-limit-redis against a cache-node or a cache-proxy: an Express
// app on a free port whose hits are counted by the store's Lua scripts (SCRIPT LOAD, then
// EVALSHA, reloading on NOSCRIPT), and the store used directly.
//
//   node tests/clients/rate_limit_app.js HOST:PORT [node|proxy] [DB]
//
// Prints one line per check and exits 1 if any failed; exits 3 with "SKIPPED" when a package
// is not installed.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");

let Redis, express, rateLimit, RedisStore;
try {
  Redis = require("ioredis");
  express = require("express");
  ({ rateLimit } = require("express-rate-limit"));
  ({ RedisStore } = require("rate-limit-redis"));
} catch (e) {
  console.log(`SKIPPED rate-limit-redis: not installed (npm ci --prefix tests/clients): ${e.message}`);
  process.exit(3);
}

const [hostPort, target = "node", dbArg = "0"] = process.argv.slice(2);
if (!hostPort) {
  console.log("usage: rate_limit_app.js HOST:PORT [node|proxy] [DB]");
  process.exit(2);
}
const i = hostPort.lastIndexOf(":");
const redis = new Redis({
  host: hostPort.slice(0, i),
  port: Number(hostPort.slice(i + 1)),
  db: Number(dbArg),
  maxRetriesPerRequest: 2,
  connectTimeout: 5000,
  commandTimeout: 10000,
});

function store(prefix) {
  return new RedisStore({
    sendCommand: (command, ...args) => redis.call(command, ...args),
    prefix,
  });
}

/// An Express app allowing `limit` requests per `windowMs` per client, on a free port.
async function app(prefix, limit, windowMs) {
  const limiter = rateLimit({
    windowMs,
    limit,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    store: store(prefix),
  });
  const server = express()
    .use(limiter)
    .get("/", (_req, res) => res.send("hello"));
  const listening = server.listen(0, "127.0.0.1");
  await new Promise((resolve) => listening.once("listening", resolve));
  const url = `http://127.0.0.1:${listening.address().port}/`;
  return { url, close: () => new Promise((resolve) => listening.close(resolve)) };
}

const checks = {
  // Three requests pass, the fourth is refused with 429 and the headers say why.
  async limit_reached(p) {
    const { url, close } = await app(p, 3, 60_000);
    try {
      const statuses = [];
      for (let n = 0; n < 4; n++) statuses.push((await fetch(url)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const res = await fetch(url);
      assert.equal(res.status, 429);
      assert.match(res.headers.get("ratelimit"), /limit=3, remaining=0, reset=\d+/);
      // The counter is the key the store keeps, with the window as its TTL.
      const key = p + "127.0.0.1";
      assert.equal(await redis.get(key), "5");
      const pttl = await redis.pttl(key);
      assert.ok(pttl > 50_000 && pttl <= 60_000, `pttl ${pttl}`);
    } finally {
      await close();
    }
  },

  // When the window ends the key expires and requests pass again.
  async window_resets(p) {
    const { url, close } = await app(p, 1, 300);
    try {
      assert.equal((await fetch(url)).status, 200);
      assert.equal((await fetch(url)).status, 429);
      const deadline = Date.now() + 5000;
      let status;
      while ((status = (await fetch(url)).status) === 429 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 200);
    } finally {
      await close();
    }
  },

  // The store on its own: increment, get, decrement, resetKey, and NOSCRIPT recovery.
  async store_directly(p) {
    const s = store(p);
    s.init({ windowMs: 10_000 });
    const first = await s.increment("client");
    assert.equal(first.totalHits, 1);
    assert.ok(first.resetTime.getTime() > Date.now() + 9_000, String(first.resetTime));
    assert.equal((await s.increment("client")).totalHits, 2);
    assert.equal((await s.get("client")).totalHits, 2);
    await s.decrement("client");
    assert.equal((await s.get("client")).totalHits, 1);
    assert.equal(await redis.script("FLUSH"), "OK");
    assert.equal((await s.increment("client")).totalHits, 2);
    assert.equal((await s.get("client")).totalHits, 2);
    await s.resetKey("client");
    assert.equal(await redis.exists(p + "client"), 0);
    assert.equal((await s.increment("client")).totalHits, 1);
  },
};

async function main() {
  let failed = 0;
  for (const [name, check] of Object.entries(checks)) {
    const p = `rl:${crypto.randomBytes(4).toString("hex")}:`;
    try {
      await check(p);
      console.log(`ok   ${name}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name}: ${e.stack || e}`);
    }
  }
  redis.disconnect();
  const total = Object.keys(checks).length;
  console.log(`${total - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
