//! MEMORY USAGE | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP, Redis 7.0's shapes over the
//! node's own figures: jemalloc's allocated and resident bytes, the process RSS, and the
//! store's per-value estimate (`Value::approx_bytes`, sampled for big collections as Redis
//! samples). The byte counts are estimates of this node, not Redis's numbers.

use bytes::Bytes;

use super::connection::help;
use super::server::{memory_stats, rss_bytes};
use super::{int_arg, is, CmdError, CmdResult, Ctx};

/// What a key costs besides its value: the table slot and entry header, as Redis counts its
/// `dictEntry` and `robj`.
const KEY_OVERHEAD: usize = 48;

const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

pub fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "usage") {
        usage(ctx, args)
    } else if is(sub, "stats") {
        stats(ctx);
        Ok(())
    } else if is(sub, "doctor") {
        let (used, _) = memory_stats();
        let text: &[u8] = if used < 5 << 20 {
            b"Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting."
        } else {
            b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."
        };
        ctx.out.verbatim("txt", text);
        Ok(())
    } else if is(sub, "malloc-stats") {
        let (allocated, resident) = memory_stats();
        let text = format!(
            "___ Begin jemalloc statistics ___\nAllocated: {allocated}, resident: {resident}, rss: {}\n--- End jemalloc statistics ---\n",
            rss_bytes()
        );
        ctx.out.verbatim("txt", text.as_bytes());
        Ok(())
    } else if is(sub, "purge") {
        // jemalloc returns dirty pages on its own decay schedule; there is nothing to force.
        ctx.out.ok();
        Ok(())
    } else {
        help(ctx, HELP);
        Ok(())
    }
}

fn usage(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut j = 3;
    while j < args.len() {
        if is(&args[j], "samples") && j + 1 < args.len() {
            if int_arg(&args[j + 1])? < 0 {
                return Err(CmdError::Syntax);
            }
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[2][..];
    let size = {
        let mut locked = ctx.store().lock(key);
        locked
            .peek(db, key, now)
            .map(|e| e.value.approx_bytes() + key.len() + KEY_OVERHEAD)
    };
    match size {
        Some(n) => ctx.out.int(n as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

fn stats(ctx: &mut Ctx<'_>) {
    let (allocated, resident) = memory_stats();
    ctx.shared.memory.record(allocated);
    let peak = ctx.shared.memory.peak().max(allocated);
    let rss = rss_bytes().max(1);
    let dbs: Vec<(usize, usize, usize)> = ctx
        .shared
        .store
        .keyspace_counts()
        .into_iter()
        .enumerate()
        .filter(|(_, (keys, _))| *keys > 0)
        .map(|(i, (keys, volatile))| (i, keys, volatile))
        .collect();
    let keys: usize = dbs.iter().map(|d| d.1).sum();
    let overhead: u64 = dbs
        .iter()
        .map(|d| ((d.1 + d.2) * KEY_OVERHEAD) as u64)
        .sum();
    let dataset = allocated.saturating_sub(overhead);
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    ctx.out.map(27 + dbs.len());
    let int = |ctx: &mut Ctx<'_>, name: &str, v: u64| {
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(v as i64);
    };
    int(ctx, "peak.allocated", peak);
    int(ctx, "total.allocated", allocated);
    int(ctx, "startup.allocated", 0);
    int(ctx, "replication.backlog", 0);
    int(ctx, "clients.slaves", 0);
    int(ctx, "clients.normal", 0);
    int(ctx, "cluster.links", 0);
    int(ctx, "aof.buffer", 0);
    int(ctx, "lua.caches", 0);
    int(ctx, "functions.caches", 0);
    for (i, keys, volatile) in &dbs {
        ctx.out.bulk(format!("db.{i}").as_bytes());
        ctx.out.map(2);
        int(ctx, "overhead.hashtable.main", (keys * KEY_OVERHEAD) as u64);
        int(
            ctx,
            "overhead.hashtable.expires",
            (volatile * KEY_OVERHEAD) as u64,
        );
    }
    int(ctx, "overhead.total", overhead);
    int(ctx, "keys.count", keys as u64);
    int(
        ctx,
        "keys.bytes-per-key",
        if keys == 0 {
            0
        } else {
            allocated / keys as u64
        },
    );
    int(ctx, "dataset.bytes", dataset);
    let double = |ctx: &mut Ctx<'_>, name: &str, v: f64| {
        ctx.out.bulk(name.as_bytes());
        ctx.out.double(v);
    };
    double(ctx, "dataset.percentage", pct(dataset, allocated));
    double(ctx, "peak.percentage", pct(allocated, peak));
    int(ctx, "allocator.allocated", allocated);
    int(ctx, "allocator.active", resident);
    int(ctx, "allocator.resident", resident);
    double(
        ctx,
        "allocator-fragmentation.ratio",
        ratio(resident, allocated),
    );
    int(
        ctx,
        "allocator-fragmentation.bytes",
        resident.saturating_sub(allocated),
    );
    double(ctx, "allocator.rss-ratio", ratio(rss, resident));
    int(ctx, "allocator.rss-bytes", rss.saturating_sub(resident));
    double(ctx, "rss-overhead.ratio", ratio(rss, resident));
    int(ctx, "rss-overhead.bytes", rss.saturating_sub(resident));
    double(ctx, "fragmentation", ratio(rss, allocated));
    int(ctx, "fragmentation.bytes", rss.saturating_sub(allocated));
}
