#!/usr/bin/env node
// Typical application code through ioredis, against a cache-node or a cache-proxy.
//
//   node tests/clients/ioredis_app.js HOST:PORT [node|proxy] [DB]
//
// Prints one line per check (values are read back and compared) and exits 1 if any failed;
// exits 3 with "SKIPPED" when ioredis is not installed (`npm ci --prefix tests/clients`).
// Multi-key commands keep their keys in one {hash tag} so the proxy can run them.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");

let Redis;
try {
  Redis = require("ioredis");
} catch (e) {
  console.log("SKIPPED ioredis: not installed (npm ci --prefix tests/clients)");
  process.exit(3);
}

// Checks failing because of a known server-side bug: they run and print their result, but
// do not fail the script. Key: "target name". Empty is the goal.
const KNOWN_FAILURES = {};

const [hostPort, target = "node", dbArg = "0"] = process.argv.slice(2);
if (!hostPort) {
  console.log("usage: ioredis_app.js HOST:PORT [node|proxy] [DB]");
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// PUBLISH expecting one subscriber: a confirmed subscription is in force (node or proxy).
async function publish(r, channel, message) {
  return r.publish(channel, message);
}

const checks = {
  async strings(r, p) {
    assert.equal(await r.set(p + "s", "v1"), "OK");
    assert.equal(await r.get(p + "s"), "v1");
    assert.equal(await r.set(p + "s", "v2", "NX"), null);
    assert.equal(await r.incrby(p + "n", 42), 42);
    assert.equal(await r.mset(p + "{t}a", "1", p + "{t}b", "2"), "OK");
    assert.deepEqual(await r.mget(p + "{t}a", p + "{t}b", p + "{t}c"), ["1", "2", null]);
    const keys = Array.from({ length: 20 }, (_, k) => `${p}spread${k}`);
    assert.equal(await r.mset(...keys.flatMap((k) => [k, k])), "OK");
    assert.deepEqual(await r.mget(...keys), keys);
    assert.equal(await r.del(...keys), 20);
    const buf = crypto.randomBytes(1024 * 1024);
    assert.equal(await r.set(p + "big", buf), "OK");
    assert.ok(buf.equals(await r.getBuffer(p + "big")));
  },

  async expiry(r, p) {
    assert.equal(await r.set(p + "e", "x", "EX", 100), "OK");
    const ttl = await r.ttl(p + "e");
    assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await r.set(p + "short", "x", "PX", 100), "OK");
    await sleep(300);
    assert.equal(await r.get(p + "short"), null);
    assert.equal(await r.persist(p + "e"), 1);
    assert.equal(await r.ttl(p + "e"), -1);
  },

  async hashes(r, p) {
    const h = p + "user:1";
    assert.equal(await r.hset(h, { name: "ada", lang: "rust", visits: "1" }), 3);
    assert.deepEqual(await r.hgetall(h), { name: "ada", lang: "rust", visits: "1" });
    assert.equal(await r.hincrby(h, "visits", 4), 5);
    assert.deepEqual(await r.hmget(h, "name", "none"), ["ada", null]);
    assert.deepEqual(await r.hgetall(p + "missing"), {});
  },

  async "lists-sets-zsets"(r, p) {
    assert.equal(await r.rpush(p + "l", "a", "b", "c"), 3);
    assert.deepEqual(await r.lrange(p + "l", 0, -1), ["a", "b", "c"]);
    assert.equal(await r.lpop(p + "l"), "a");
    assert.equal(await r.sadd(p + "{s}1", "x", "y"), 2);
    assert.equal(await r.sadd(p + "{s}2", "y", "z"), 2);
    assert.deepEqual(await r.sinter(p + "{s}1", p + "{s}2"), ["y"]);
    assert.equal(await r.zadd(p + "z", 1, "a", 2, "b", 3, "c"), 3);
    assert.deepEqual(await r.zrange(p + "z", 0, -1, "WITHSCORES"), ["a", "1", "b", "2", "c", "3"]);
    assert.deepEqual(await r.zrevrangebyscore(p + "z", "+inf", 2), ["c", "b"]);
  },

  async pipeline(r, p) {
    const pipe = r.pipeline();
    for (let k = 0; k < 100; k++) pipe.set(`${p}pipe${k}`, String(k));
    for (let k = 0; k < 100; k++) pipe.get(`${p}pipe${k}`);
    pipe.hset(p + "ph", "f", "v").hgetall(p + "ph").lpush(p + "ps", "x").get(p + "ps");
    const out = await pipe.exec();
    for (let k = 0; k < 100; k++) assert.deepEqual(out[k], [null, "OK"]);
    for (let k = 0; k < 100; k++) assert.deepEqual(out[100 + k], [null, String(k)]);
    assert.deepEqual(out[200], [null, 1]);
    assert.deepEqual(out[201], [null, { f: "v" }]);
    assert.deepEqual(out[202], [null, 1]);
    assert.ok(out[203][0] instanceof Error && /^WRONGTYPE/.test(out[203][0].message), String(out[203][0]));
  },

  async multi(r, p) {
    const t = p + "{tx}";
    const out = await r.multi().set(t + "a", "1").incr(t + "a").rpush(t + "l", "x").exec();
    assert.deepEqual(out, [[null, "OK"], [null, 2], [null, 1]]);
    // WATCH, a concurrent write from another connection, EXEC aborts (null).
    const other = new Redis(options);
    try {
      await r.watch(t + "a");
      await other.set(t + "a", "changed");
      const aborted = await r.multi().set(t + "a", "mine").exec();
      assert.equal(aborted, null);
      assert.equal(await r.get(t + "a"), "changed");
      // Without interference it commits.
      await r.watch(t + "a");
      const ok = await r.multi().set(t + "a", "mine").exec();
      assert.deepEqual(ok, [[null, "OK"]]);
      assert.equal(await r.get(t + "a"), "mine");
    } finally {
      other.disconnect();
    }
  },

  async pubsub(r, p) {
    const sub = new Redis(options);
    try {
      const received = [];
      let wake;
      sub.on("message", (channel, message) => {
        received.push(["message", channel, message]);
        if (wake) wake();
      });
      sub.on("pmessage", (pattern, channel, message) => {
        received.push(["pmessage", pattern, channel, message]);
        if (wake) wake();
      });
      assert.equal(await sub.subscribe(p + "news"), 1);
      assert.equal(await sub.psubscribe(p + "pat.*"), 2);
      assert.equal(await publish(r, p + "news", "hello"), 1);
      assert.equal(await publish(r, p + "pat.x", "world"), 1);
      const deadline = Date.now() + 5000;
      while (received.length < 2 && Date.now() < deadline) {
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
      assert.deepEqual(received, [
        ["message", p + "news", "hello"],
        ["pmessage", p + "pat.*", p + "pat.x", "world"],
      ]);
      await sub.unsubscribe(p + "news");
      await sub.punsubscribe();
      assert.equal(await sub.ping(), "PONG");
    } finally {
      sub.disconnect();
    }
  },

  async "subscribe-then-publish"(r, p) {
    // Strict: once SUBSCRIBE has been confirmed, a PUBLISH from another client reaches it.
    for (let k = 0; k < 30; k++) {
      const sub = new Redis(options);
      try {
        await sub.subscribe(`${p}race${k}`);
        const n = await r.publish(`${p}race${k}`, "m");
        assert.equal(n, 1, `SUBSCRIBE ${p}race${k} confirmed, then PUBLISH reached ${n} (expected 1)`);
      } finally {
        sub.disconnect();
      }
    }
  },

  async "scan-stream"(r, p) {
    const pipe = r.pipeline();
    for (let k = 0; k < 300; k++) pipe.set(`${p}scan:${k}`, "1");
    await pipe.exec();
    const found = new Set();
    const stream = r.scanStream({ match: p + "scan:*", count: 50 });
    for await (const batch of stream) for (const key of batch) found.add(key);
    assert.equal(found.size, 300);
  },

  async "concurrent-clients"(r, p) {
    // Many connections at once, each with its own pipeline of increments.
    const clients = Array.from({ length: 8 }, () => new Redis(options));
    try {
      await Promise.all(
        clients.map(async (c) => {
          const pipe = c.pipeline();
          for (let k = 0; k < 50; k++) pipe.incr(p + "counter");
          await pipe.exec();
        }),
      );
      assert.equal(await r.get(p + "counter"), "400");
    } finally {
      clients.forEach((c) => c.disconnect());
    }
  },
};

async function main() {
  const r = new Redis(options);
  r.on("error", () => {});
  console.log(`ioredis ${require("ioredis/package.json").version} against ${target} ${hostPort}`);
  let failed = 0;
  for (const [name, check] of Object.entries(checks)) {
    const prefix = `js:${crypto.randomBytes(4).toString("hex")}:`;
    const known = KNOWN_FAILURES[`${target} ${name}`];
    try {
      await check(r, prefix);
      console.log(`ok ${name}` + (known ? " (a known failure that did not show this time)" : ""));
    } catch (e) {
      if (known) {
        console.log(`KNOWN-FAILURE ${name}: ${e.message.split("\n")[0]} -- ${known}`);
      } else {
        failed += 1;
        console.log(`FAIL ${name}: ${e.stack}`);
      }
    }
  }
  r.disconnect();
  console.log(`${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack}`);
  process.exit(1);
});
