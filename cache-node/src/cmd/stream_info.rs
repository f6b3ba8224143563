//! XINFO STREAM [FULL [COUNT n]] / GROUPS / CONSUMERS / HELP.

use bytes::Bytes;
use cache_protocol::ReplyBuf;
use cache_store::{Stream, StreamId};

use super::stream_groups::subcommand_syntax;
use super::streams::{as_stream, id_text, reply_entries_read, reply_entry, reply_id};
use super::{int_arg, is, CmdError, CmdResult, Ctx};

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn field(out: &mut ReplyBuf, name: &[u8], value: &[u8]) {
    out.bulk(name);
    out.bulk(value);
}

fn int_field(out: &mut ReplyBuf, name: &[u8], value: i64) {
    out.bulk(name);
    out.int(value);
}

/// A group's `last-delivered-id`, `entries-read` and `lag` fields.
fn reply_progress(out: &mut ReplyBuf, s: &Stream, g: &cache_store::stream::Group) {
    field(out, b"last-delivered-id", id_text(g.last_id).as_bytes());
    out.bulk(b"entries-read");
    reply_entries_read(out, g);
    out.bulk(b"lag");
    match s.lag(g) {
        Some(lag) => out.int(lag),
        None => out.null(),
    }
}

pub fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if is(&args[1], "help") {
        if args.len() != 2 {
            return Err(subcommand_syntax(args));
        }
        super::connection::help(ctx, XINFO_HELP);
        return Ok(());
    }
    if args.len() < 3 {
        return Err(subcommand_syntax(args));
    }
    let (db, now, key) = (ctx.db(), ctx.now, &args[2][..]);
    let mut locked = ctx.store().lock(key);
    let Some(e) = locked.get(db, key, now) else {
        return Err(CmdError::NoSuchKey);
    };
    let s = as_stream(e)?;
    let out = &mut *ctx.out;
    let sub = &args[1];
    if is(sub, "consumers") && args.len() == 4 {
        let Some(g) = s.groups.get(&args[3][..]) else {
            return Err(CmdError::Owned(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(&args[3]),
                String::from_utf8_lossy(key)
            )));
        };
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(3);
            field(out, b"name", name);
            int_field(out, b"pending", c.pel.len() as i64);
            int_field(out, b"idle", (now as i64 - c.seen_time as i64).max(0));
        }
    } else if is(sub, "groups") && args.len() == 3 {
        out.array(s.groups.len());
        for (name, g) in &s.groups {
            out.map(6);
            field(out, b"name", name);
            int_field(out, b"consumers", g.consumers.len() as i64);
            int_field(out, b"pending", g.pel.len() as i64);
            reply_progress(out, s, g);
        }
    } else if is(sub, "stream") {
        stream_info(out, s, &args[3..], args)?;
    } else {
        return Err(subcommand_syntax(args));
    }
    Ok(())
}

fn stream_info(out: &mut ReplyBuf, s: &Stream, opts: &[Bytes], args: &[Bytes]) -> CmdResult {
    let full = !opts.is_empty();
    let mut count: i64 = 10;
    if full {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return Err(subcommand_syntax(args));
        }
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return Err(subcommand_syntax(args));
            }
            count = int_arg(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let count = count as usize;
    out.map(if full { 9 } else { 10 });
    int_field(out, b"length", s.len() as i64);
    int_field(out, b"radix-tree-keys", s.block_count() as i64);
    int_field(out, b"radix-tree-nodes", s.radix_nodes() as i64);
    field(out, b"last-generated-id", id_text(s.last_id).as_bytes());
    field(
        out,
        b"max-deleted-entry-id",
        id_text(s.max_deleted_id).as_bytes(),
    );
    int_field(out, b"entries-added", s.entries_added as i64);
    field(
        out,
        b"recorded-first-entry-id",
        id_text(s.first_id).as_bytes(),
    );
    if !full {
        int_field(out, b"groups", s.groups.len() as i64);
        for (name, rev) in [(&b"first-entry"[..], false), (b"last-entry", true)] {
            out.bulk(name);
            let mut emitted = false;
            s.for_range(StreamId::MIN, StreamId::MAX, rev, |id, e| {
                reply_entry(out, id, &e);
                emitted = true;
                false
            });
            if !emitted {
                out.null();
            }
        }
        return Ok(());
    }
    out.bulk(b"entries");
    super::streams::reply_range(out, s, StreamId::MIN, StreamId::MAX, count, false);
    out.bulk(b"groups");
    out.array(s.groups.len());
    let limit = if count == 0 { usize::MAX } else { count };
    for (name, g) in &s.groups {
        out.map(7);
        field(out, b"name", name);
        reply_progress(out, s, g);
        int_field(out, b"pel-count", g.pel.len() as i64);
        out.bulk(b"pending");
        let n = g.pel.len().min(limit);
        out.array(n);
        for (id, nack) in g.pel.iter().take(n) {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&nack.consumer);
            out.int(nack.delivery_time as i64);
            out.int(nack.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            field(out, b"name", cname);
            int_field(out, b"seen-time", c.seen_time as i64);
            int_field(out, b"pel-count", c.pel.len() as i64);
            out.bulk(b"pending");
            let n = c.pel.len().min(limit);
            out.array(n);
            for id in c.pel.iter().take(n) {
                out.array(3);
                reply_id(out, *id);
                let nack = g.pel.get(id);
                out.int(nack.map_or(0, |n| n.delivery_time as i64));
                out.int(nack.map_or(0, |n| n.delivery_count as i64));
            }
        }
    }
    Ok(())
}
