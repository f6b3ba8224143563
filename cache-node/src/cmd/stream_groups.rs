//! Consumer groups: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.

use bytes::Bytes;
use cache_store::stream::{Group, INVALID_ENTRIES_READ};
use cache_store::{Locked, Stream, StreamId, Value};

use super::streams::{
    as_stream, as_stream_mut, nack_idle, parse_bound, parse_id, parse_strict_id, reply_entry,
    reply_id, touch_consumer,
};
use super::{int_arg, is, CmdError, CmdResult, Ctx, Notify};

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// Redis's `addReplySubcommandSyntaxError`.
pub fn subcommand_syntax(args: &[Bytes]) -> CmdError {
    let name: String = String::from_utf8_lossy(&args[1])
        .chars()
        .take(128)
        .collect();
    CmdError::Owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{name}'. Try {} HELP.",
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    ))
}

fn no_group_for_key(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::Owned(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Owned(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// XCLAIM's and XAUTOCLAIM's first check: the key is a stream with this group.
fn check_group(
    locked: &mut Locked<'_>,
    db: usize,
    key: &[u8],
    group: &[u8],
    now: u64,
) -> CmdResult {
    match locked.peek(db, key, now) {
        Some(e) if as_stream(e)?.groups.contains_key(group) => Ok(()),
        _ => Err(no_key_or_group(key, group)),
    }
}

/// The stream and its group taken out of it, to change both; the caller puts it back.
fn take_group<'l>(
    locked: &'l mut Locked<'_>,
    db: usize,
    key: &[u8],
    group: &[u8],
    now: u64,
) -> Result<(&'l mut Stream, Group), CmdError> {
    let Some(e) = locked.get_mut(db, key, now) else {
        return Err(no_key_or_group(key, group));
    };
    let s = as_stream_mut(e)?;
    match s.groups.remove(group) {
        Some(g) => Ok((s, g)),
        None => Err(no_key_or_group(key, group)),
    }
}

pub fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        if args.len() != 2 {
            return Err(subcommand_syntax(args));
        }
        super::connection::help(ctx, XGROUP_HELP);
        return Ok(());
    }
    let create = is(sub, "create");
    let setid = is(sub, "setid");
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let mut i = 5;
    while i < args.len() {
        if create && is(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && is(&args[i], "entriesread") && i + 1 < args.len() {
            entries_read = int_arg(&args[i + 1])?;
            if entries_read < 0 && entries_read != INVALID_ENTRIES_READ {
                return Err(CmdError::Msg(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            i += 2;
        } else {
            return Err(subcommand_syntax(args));
        }
    }
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[2][..];
    let group = &args[3][..];
    let mut locked = ctx.store().lock(key);
    let exists = match locked.peek(db, key, now) {
        Some(e) => {
            let s = as_stream(e)?;
            Some(s.groups.contains_key(group))
        }
        None => None,
    };
    if !mkstream {
        match exists {
            None => return Err(CmdError::Msg("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")),
            Some(false) if setid || is(sub, "createconsumer") || is(sub, "delconsumer") => {
                return Err(no_group_for_key(group, key));
            }
            _ => {}
        }
    }
    let mut event = None;
    if create && args.len() <= 8 {
        let id = if &args[4][..] == b"$" {
            None
        } else {
            Some(parse_strict_id(&args[4])?)
        };
        let s = as_stream_mut(
            locked.get_or_insert(db, key, now, || Value::from_stream(Box::default())),
        )?;
        let id = id.unwrap_or(s.last_id);
        if s.groups.contains_key(group) {
            return Err(CmdError::Msg(
                "BUSYGROUP Consumer Group name already exists",
            ));
        }
        s.groups.insert(group.into(), Group::new(id, entries_read));
        ctx.out.ok();
        event = Some("xgroup-create");
    } else if setid && (args.len() == 5 || args.len() == 7) {
        let Some(e) = locked.get_mut(db, key, now) else {
            return Err(no_group_for_key(group, key));
        };
        let s = as_stream_mut(e)?;
        let id = if &args[4][..] == b"$" {
            s.last_id
        } else {
            parse_id(&args[4], 0)?
        };
        let Some(g) = s.groups.get_mut(group) else {
            return Err(no_group_for_key(group, key));
        };
        g.last_id = id;
        g.entries_read = entries_read;
        ctx.out.ok();
        event = Some("xgroup-setid");
    } else if is(sub, "destroy") && args.len() == 4 {
        if exists == Some(true) {
            if let Some(e) = locked.get_mut(db, key, now) {
                as_stream_mut(e)?.groups.remove(group);
            }
            ctx.out.int(1);
            event = Some("xgroup-destroy");
        } else {
            ctx.out.int(0);
        }
    } else if is(sub, "createconsumer") && args.len() == 5 {
        let Some(e) = locked.get_mut(db, key, now) else {
            return Err(no_group_for_key(group, key));
        };
        let Some(g) = as_stream_mut(e)?.groups.get_mut(group) else {
            return Err(no_group_for_key(group, key));
        };
        let created = !g.consumers.contains_key(&args[4][..]) && touch_consumer(g, &args[4], now);
        ctx.out.int(i64::from(created));
        if created {
            event = Some("xgroup-createconsumer");
        }
    } else if is(sub, "delconsumer") && args.len() == 5 {
        let Some(e) = locked.get_mut(db, key, now) else {
            return Err(no_group_for_key(group, key));
        };
        let Some(g) = as_stream_mut(e)?.groups.get_mut(group) else {
            return Err(no_group_for_key(group, key));
        };
        match g.delete_consumer(&args[4]) {
            Some(pending) => {
                ctx.out.int(pending as i64);
                event = Some("xgroup-delconsumer");
            }
            None => ctx.out.int(0),
        }
    } else {
        return Err(subcommand_syntax(args));
    }
    drop(locked);
    if let Some(event) = event {
        ctx.notify(Notify::STREAM, event, key);
    }
    Ok(())
}

pub fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now, key) = (ctx.db(), ctx.now, &args[1][..]);
    let mut locked = ctx.store().lock(key);
    let has_group = match locked.peek(db, key, now) {
        Some(e) => as_stream(e)?.groups.contains_key(&args[2][..]),
        None => false,
    };
    if !has_group {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    }
    let ids = args[3..]
        .iter()
        .map(|a| parse_strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut acked = 0;
    if let Some(e) = locked.get_mut(db, key, now) {
        if let Some(g) = as_stream_mut(e)?.groups.get_mut(&args[2][..]) {
            acked = ids.into_iter().filter(|id| g.ack(*id)).count();
        }
    }
    drop(locked);
    ctx.out.int(acked as i64);
    Ok(())
}

pub fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let argc = args.len();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    let mut consumer: Option<&[u8]> = None;
    let mut minidle = 0;
    if argc >= 6 {
        let mut at = 3;
        if is(&args[3], "idle") {
            minidle = int_arg(&args[4])?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = int_arg(&args[at + 2])?.max(0) as usize;
        let start = parse_bound(&args[at], 0, true)?;
        let end = parse_bound(&args[at + 1], u64::MAX, false)?;
        if at + 3 < argc {
            consumer = Some(&args[at + 3][..]);
        }
        range = Some((start, end, count));
    }
    let (db, now, key) = (ctx.db(), ctx.now, &args[1][..]);
    let mut locked = ctx.store().lock(key);
    let Some(e) = locked.get(db, key, now) else {
        return Err(no_key_or_group(key, &args[2]));
    };
    let s = as_stream(e)?;
    let Some(g) = s.groups.get(&args[2][..]) else {
        return Err(no_key_or_group(key, &args[2]));
    };
    let out = &mut *ctx.out;
    if justinfo {
        out.array(4);
        out.int(g.pel.len() as i64);
        match (g.pel.first_key_value(), g.pel.last_key_value()) {
            (Some((first, _)), Some((last, _))) => {
                reply_id(out, *first);
                reply_id(out, *last);
                let owners: Vec<(&Box<[u8]>, usize)> = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .map(|(n, c)| (n, c.pel.len()))
                    .collect();
                out.array(owners.len());
                for (name, n) in owners {
                    out.array(2);
                    out.bulk(name);
                    out.bulk(n.to_string().as_bytes());
                }
            }
            _ => {
                out.null();
                out.null();
                out.null_array();
            }
        }
        return Ok(());
    }
    let Some((start, end, count)) = range else {
        return Err(CmdError::Syntax);
    };
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) => c
                .pel
                .range(start..)
                .take_while(|id| **id <= end)
                .copied()
                .collect(),
            None => Vec::new(),
        },
        None => g
            .pel
            .range(start..)
            .take_while(|(id, _)| **id <= end)
            .map(|(id, _)| *id)
            .collect(),
    };
    let mut rows = Vec::new();
    for id in ids {
        if rows.len() >= count {
            break;
        }
        let Some(nack) = g.pel.get(&id) else { continue };
        if minidle != 0 && nack_idle(nack, now) < minidle {
            continue;
        }
        rows.push((id, nack));
    }
    out.array(rows.len());
    for (id, nack) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&nack.consumer);
        out.int(nack_idle(nack, now));
        out.int(nack.delivery_count as i64);
    }
    Ok(())
}

/// Writes an entry of a claim reply: the ID alone or the whole entry.
fn reply_claimed(out: &mut cache_protocol::ReplyBuf, s: &Stream, id: StreamId, justid: bool) {
    if justid {
        reply_id(out, id);
    } else {
        s.for_range(id, id, false, |id, e| {
            reply_entry(out, id, &e);
            false
        });
    }
}

pub fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now, key) = (ctx.db(), ctx.now, &args[1][..]);
    let group_name = &args[2][..];
    let mut locked = ctx.store().lock(key);
    check_group(&mut locked, db, key, group_name, now)?;
    let minidle = int_arg(&args[4])
        .map_err(|_| CmdError::Msg("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < args.len() {
        match parse_strict_id(&args[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut last_id = StreamId::MIN;
    let now_i = now as i64;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        let number = |arg: &[u8], what: &'static str| int_arg(arg).map_err(|_| CmdError::Msg(what));
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            deliverytime = now_i - number(&args[j], "ERR Invalid IDLE option argument for XCLAIM")?;
        } else if is(opt, "time") && more > 0 {
            j += 1;
            deliverytime = number(&args[j], "ERR Invalid TIME option argument for XCLAIM")?;
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            retrycount = number(
                &args[j],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?;
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            last_id = parse_strict_id(&args[j])?;
        } else {
            return Err(CmdError::Owned(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
        j += 1;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now_i {
        deliverytime = now_i;
    }
    let consumer = &args[3][..];
    let (s, mut g) = take_group(&mut locked, db, key, group_name, now)?;
    if last_id > g.last_id {
        g.last_id = last_id;
    }
    let mut claimed = Vec::new();
    let mut created = false;
    let mut looked_up = false;
    for id in ids {
        let pending = g.pel.contains_key(&id);
        if !s.contains(id) {
            if pending {
                g.ack(id);
            }
            continue;
        }
        if !pending && !force {
            continue;
        }
        if pending && minidle != 0 {
            if let Some(n) = g.pel.get(&id) {
                if nack_idle(n, now) < minidle {
                    continue;
                }
            }
        }
        if !looked_up {
            created = touch_consumer(&mut g, consumer, now);
            looked_up = true;
        }
        let nack = g.assign(id, consumer, deliverytime as u64);
        if retrycount >= 0 {
            nack.delivery_count = retrycount as u64;
        } else if !justid {
            nack.delivery_count += 1;
        }
        claimed.push(id);
    }
    s.groups.insert(group_name.into(), g);
    let out = &mut *ctx.out;
    out.array(claimed.len());
    for id in claimed {
        reply_claimed(out, s, id, justid);
    }
    drop(locked);
    if created {
        ctx.notify(Notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    const ATTEMPTS_FACTOR: i64 = 10;
    let minidle = int_arg(&args[4])
        .map_err(|_| CmdError::Msg("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = parse_bound(&args[5], 0, true)?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            count = int_arg(&args[j + 1])
                .ok()
                .filter(|c| (1..=max).contains(c))
                .ok_or(CmdError::Msg("ERR COUNT must be > 0"))?;
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (db, now, key) = (ctx.db(), ctx.now, &args[1][..]);
    let group_name = &args[2][..];
    let mut locked = ctx.store().lock(key);
    check_group(&mut locked, db, key, group_name, now)?;
    let (s, mut g) = take_group(&mut locked, db, key, group_name, now)?;
    let consumer = &args[3][..];
    let mut attempts = count.saturating_mul(ATTEMPTS_FACTOR);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut created = false;
    let mut looked_up = false;
    let mut cursor = start;
    let mut next = None;
    while let Some((&id, nack)) = g.pel.range(cursor..).next() {
        if attempts == 0 || count == 0 {
            next = Some(id);
            break;
        }
        attempts -= 1;
        let idle = nack_idle(nack, now);
        cursor = id.next().unwrap_or(StreamId::MAX);
        if !s.contains(id) {
            g.ack(id);
            deleted.push(id);
            count -= 1;
        } else if minidle == 0 || idle >= minidle {
            if !looked_up {
                created = touch_consumer(&mut g, consumer, now);
                looked_up = true;
            }
            let nack = g.assign(id, consumer, now);
            if !justid {
                nack.delivery_count += 1;
            }
            claimed.push(id);
            count -= 1;
        }
        if id == StreamId::MAX {
            break;
        }
    }
    s.groups.insert(group_name.into(), g);
    let out = &mut *ctx.out;
    out.array(3);
    reply_id(out, next.unwrap_or(StreamId::MIN));
    out.array(claimed.len());
    for id in claimed {
        reply_claimed(out, s, id, justid);
    }
    out.array(deleted.len());
    for id in deleted {
        reply_id(out, id);
    }
    drop(locked);
    if created {
        ctx.notify(Notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}
