//! MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP.

use bytes::Bytes;

use super::{int_arg, is, CmdError, CmdResult, Ctx};

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
];

/// What a key costs beyond its name and value: the table slot, the entry header and the
/// expiry/eviction fields (what `approx_bytes` leaves out).
const ENTRY_OVERHEAD: usize = 48;

pub fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        super::connection::help(ctx, HELP);
    } else if is(sub, "usage") {
        let mut i = 3;
        while i < args.len() {
            if is(&args[i], "samples") && i + 1 < args.len() {
                if int_arg(&args[i + 1])? < 0 {
                    return Err(CmdError::Syntax);
                }
                i += 2;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        let (db, now, key) = (ctx.db(), ctx.now, &args[2]);
        let size = ctx
            .shared
            .store
            .lock(key)
            .peek(db, key, now)
            .map(|e| key.len() + e.value.approx_bytes() + ENTRY_OVERHEAD);
        match size {
            Some(n) => ctx.out.int(n as i64),
            None => ctx.out.null(),
        }
    } else if is(sub, "doctor") {
        ctx.out.verbatim("txt", b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.");
    } else if is(sub, "purge") {
        ctx.out.ok();
    } else if is(sub, "malloc-stats") {
        ctx.out
            .verbatim("txt", b"Stats not supported for the current allocator");
    } else if is(sub, "stats") {
        let (allocated, resident) = super::server::memory_stats();
        let peak = ctx.shared.memory.peak().max(allocated);
        let keys = ctx.shared.store.dbsize(ctx.db()) as i64;
        let fields: [(&str, i64); 6] = [
            ("peak.allocated", peak as i64),
            ("total.allocated", allocated as i64),
            ("keys.count", keys),
            (
                "keys.bytes-per-key",
                if keys > 0 { allocated as i64 / keys } else { 0 },
            ),
            ("dataset.bytes", allocated as i64),
            ("allocator.resident", resident as i64),
        ];
        ctx.out.map(fields.len());
        for (name, value) in fields {
            ctx.out.bulk(name.as_bytes());
            ctx.out.int(value);
        }
    } else {
        unreachable_sub(sub)?;
    }
    Ok(())
}

/// The table refuses unknown subcommands before a handler runs; this is the same reply.
fn unreachable_sub(sub: &[u8]) -> CmdResult {
    Err(CmdError::Owned(format!(
        "ERR unknown subcommand '{}'. Try MEMORY HELP.",
        String::from_utf8_lossy(sub)
    )))
}
