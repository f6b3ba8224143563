//! CLUSTER KEYSLOT / COUNTKEYSINSLOT / GETKEYSINSLOT (Redis's per-slot key index, answered
//! for the current database, in cluster mode or not), the cluster-mode subcommands
//! (`cluster_view`) and CLUSTER DROPSLOTS, ferrocache's own: cache-proxy drops the
//! slots that moved or were written elsewhere before a node takes their traffic. Also
//! CACHE INVALIDATE, the explicit invalidation by pattern (deploys, schema changes).

use bytes::Bytes;
use cache_protocol::glob::glob_match;
use cache_store::SLOTS;

use super::cluster_view;
pub use super::cluster_view::connection_mode;
use super::connection::help;
use super::{int_arg, is, CmdError, CmdResult, Ctx};

const CLUSTER_HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "INFO",
    "    Return information about the cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "SETTABLE <epoch> [<node-id> <ip> <port> <hostname|-> <start-end,...|->] ...",
    "    Install the cluster's slot table (cluster mode); an older epoch is refused.",
    "DROPSLOTS [<start-slot> <end-slot> ...]",
    "    Remove from memory every key of the slot ranges (inclusive); return how many.",
    "HELP",
    "    Print this help.",
];

fn slot_arg(arg: &[u8]) -> Result<u16, CmdError> {
    match int_arg(arg) {
        Ok(n) if (0..SLOTS as i64).contains(&n) => Ok(n as u16),
        _ => Err(CmdError::Msg("ERR Invalid or out of range slot")),
    }
}

pub fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        help(ctx, CLUSTER_HELP);
    } else if cluster_view::subcommand(ctx, sub, args)? {
    } else if is(sub, "keyslot") {
        ctx.out.int(i64::from(cache_store::key_slot(&args[2])));
    } else if is(sub, "countkeysinslot") {
        let slot = slot_arg(&args[2])?;
        let n = ctx.shared.store.count_keys_in_slot(ctx.db(), slot);
        ctx.out.int(n as i64);
    } else if is(sub, "getkeysinslot") {
        let slot = slot_arg(&args[2])?;
        let count = match int_arg(&args[3]) {
            Ok(n) if n >= 0 => n as usize,
            _ => return Err(CmdError::Msg("ERR Invalid number of keys")),
        };
        let keys = ctx
            .shared
            .store
            .keys_in_slot(ctx.db(), slot, count, ctx.now);
        ctx.out.array(keys.len());
        for key in keys {
            ctx.out.bulk(&key);
        }
    } else if is(sub, "dropslots") {
        if !args.len().is_multiple_of(2) {
            return Err(CmdError::Msg(
                "ERR DROPSLOTS takes pairs of start and end slots",
            ));
        }
        let mut wanted = vec![false; SLOTS];
        for pair in args[2..].chunks(2) {
            let (start, end) = (slot_arg(&pair[0])?, slot_arg(&pair[1])?);
            if start > end {
                return Err(CmdError::Msg(
                    "ERR start slot number is greater than end slot number",
                ));
            }
            wanted[start as usize..=end as usize].fill(true);
        }
        let removed = if args.len() > 2 {
            ctx.shared.store.drop_slots(|s| wanted[s as usize])
        } else {
            0
        };
        tracing::info!(removed, ranges = (args.len() - 2) / 2, "dropped slots");
        ctx.out.int(removed as i64);
    }
    Ok(())
}

const CACHE_HELP: &[&str] = &[
    "CACHE <subcommand> [<arg> ...]. Subcommands are:",
    "INVALIDATE <pattern>",
    "    Forget every key of the current database matching the glob pattern (memory only: a",
    "    backing store keeps its rows, and the next read loads them); return how many.",
    "FORGET <key> [<key> ...]",
    "    Forget those keys (memory only) and tell their trackers; return how many were held.",
    "HELP",
    "    Print this help.",
];

pub fn cache(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if is(&args[1], "help") {
        help(ctx, CACHE_HELP);
    } else if is(&args[1], "invalidate") {
        let pattern = &args[2][..];
        let removed = ctx
            .shared
            .store
            .drop_matching(ctx.db(), |k| glob_match(pattern, k, false));
        ctx.shared
            .tracking
            .invalidate_matching(ctx.shared, &args[2]);
        tracing::info!(
            removed = removed.len(),
            pattern = %String::from_utf8_lossy(&args[2]),
            "explicit invalidation"
        );
        ctx.out.int(removed.len() as i64);
    } else if is(&args[1], "forget") {
        let (db, now) = (ctx.db(), ctx.now);
        let keys: Vec<&[u8]> = args[2..].iter().map(|k| &k[..]).collect();
        let held = keys
            .iter()
            .filter(|k| ctx.store().lock(k).contains(db, k, now))
            .count();
        if let Some(engine) = &ctx.shared.backing {
            // A load racing this change must not install the old row.
            for key in &keys {
                engine.forget(db as u32, key);
            }
        }
        ctx.shared.invalidate_keys(db, &keys);
        ctx.out.int(held as i64);
    }
    Ok(())
}
