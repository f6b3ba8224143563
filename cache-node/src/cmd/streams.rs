//! Stream commands: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID, and the reads XREAD
//! and XREADGROUP (blocking ones park in `blocking`, as the list pops do). Consumer-group
//! administration is in `stream_groups`, XINFO in `stream_info`.
//!
//! ```text
//!  XREAD/XREADGROUP ─► parse ─► resolve each key (type, group, `$`) ─► serve what is there
//!        └─ nothing and BLOCK ─► Waiter(keys, BlockOp::XRead{ids, group}) ─► XADD makes the
//!           key ready ─► serve_blocked() answers every waiter that now has entries
//! ```

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use cache_protocol::{parse_i64, ReplyBuf};
use cache_store::stream::{EntryView, Group, Nack, Trim, INVALID_ENTRIES_READ};
use cache_store::{Entry, Keyspace, Stream, StreamId, Value};

use super::blocking::BlockOp;
use super::{int_arg, is, CmdError, CmdResult, Ctx, Notify};
use crate::Shared;

pub const INVALID_ID: CmdError =
    CmdError::Msg("ERR Invalid stream ID specified as stream command argument");

/// The largest total of field and value bytes one entry may have (Redis's listpack limit).
const MAX_ENTRY_BYTES: usize = 1 << 30;

/// Entries a blocked XREAD without COUNT gets at most.
const BLOCKED_DEFAULT_COUNT: usize = 1000;

pub fn as_stream(e: &Entry) -> Result<&Stream, CmdError> {
    e.value.as_stream().map(|s| &**s).ok_or(CmdError::WrongType)
}

pub fn as_stream_mut(e: &mut Entry) -> Result<&mut Stream, CmdError> {
    e.value
        .as_stream_mut()
        .map(|s| &mut **s)
        .ok_or(CmdError::WrongType)
}

/// C's `strtoull` where Redis's `string2ull` falls back to it: blanks, a sign, digits, all
/// of the text.
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let negative = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// Redis's `streamGenericParseIDOrReply`. Returns the ID and whether the sequence was given
/// (false only for `ms-*` when `allow_auto_seq`).
fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 127 {
        return Err(INVALID_ID);
    }
    // The C code works on a NUL-terminated copy: an embedded NUL ends the text.
    let arg = arg.split(|&b| b == 0).next().unwrap_or(arg);
    if strict && (arg == b"-" || arg == b"+") {
        return Err(INVALID_ID);
    }
    if arg == b"-" {
        return Ok((StreamId::MIN, true));
    }
    if arg == b"+" {
        return Ok((StreamId::MAX, true));
    }
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = string2ull(ms).ok_or(INVALID_ID)?;
    match seq {
        Some(b"*") if allow_auto_seq => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((StreamId::new(ms, string2ull(seq).ok_or(INVALID_ID)?), true)),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// A strict ID (no `-` or `+`), a missing sequence meaning 0.
pub fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id_full(arg, 0, true, false).map(|(id, _)| id)
}

/// An ID where `-` and `+` are allowed.
pub fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    parse_id_full(arg, missing_seq, false, false).map(|(id, _)| id)
}

/// A range bound: `(id` is exclusive (and then strict); returns the inclusive bound.
pub fn parse_bound(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id_full(&arg[1..], missing_seq, true, false)?.0;
        return if start {
            id.next()
                .ok_or(CmdError::Msg("ERR invalid start ID for the interval"))
        } else {
            id.prev()
                .ok_or(CmdError::Msg("ERR invalid end ID for the interval"))
        };
    }
    parse_id(arg, missing_seq)
}

/// An ID as text, without allocating.
pub struct IdText {
    buf: [u8; 41],
    len: usize,
}

impl IdText {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub fn id_text(id: StreamId) -> IdText {
    let mut t = IdText {
        buf: [0; 41],
        len: 0,
    };
    let put = |mut v: u64, t: &mut IdText| {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            t.buf[t.len] = digits[i];
            t.len += 1;
        }
    };
    put(id.ms, &mut t);
    t.buf[t.len] = b'-';
    t.len += 1;
    put(id.seq, &mut t);
    t
}

pub fn reply_id(out: &mut ReplyBuf, id: StreamId) {
    out.bulk(id_text(id).as_bytes());
}

/// One entry as Redis replies it: `[id, [field, value, ...]]`.
pub fn reply_entry(out: &mut ReplyBuf, id: StreamId, entry: &EntryView<'_>) {
    out.array(2);
    reply_id(out, id);
    out.array(entry.len() * 2);
    for (f, v) in entry.pairs() {
        out.bulk(f);
        out.bulk(v);
    }
}

/// Replies with the live entries from `start` to `end` (at most `count`, 0 = all); returns
/// their IDs.
pub fn reply_range(
    out: &mut ReplyBuf,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    count: usize,
    rev: bool,
) -> Vec<StreamId> {
    let mut found = Vec::new();
    s.for_range(start, end, rev, |id, e| {
        found.push((id, e));
        count == 0 || found.len() < count
    });
    out.array(found.len());
    for (id, e) in &found {
        reply_entry(out, *id, e);
    }
    found.into_iter().map(|(id, _)| id).collect()
}

/// Parsed trimming options of XADD and XTRIM.
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// The explicit ID and whether its sequence was given.
    id: Option<(StreamId, bool)>,
    /// Where the ID is (XADD).
    idpos: usize,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(args: &[Bytes], xadd: bool, node_max_entries: u64) -> Result<TrimArgs, CmdError> {
    const BOTH: CmdError = CmdError::Msg(
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
    );
    let mut t = TrimArgs {
        trim: None,
        approx: false,
        limit: 0,
        nomkstream: false,
        id: None,
        idpos: args.len(),
    };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if xadd && opt == b"*" {
            t.idpos = i;
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if t.trim.is_some() {
                return Err(BOTH);
            }
            t.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let value = &args[i + 1][..];
            t.trim = Some(if is(opt, "maxlen") {
                let n = int_arg(value)?;
                if n < 0 {
                    return Err(CmdError::Msg("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_strict_id(value)?)
            });
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::Msg("ERR The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            t.id = Some(parse_id_full(opt, 0, true, true)?);
            t.idpos = i;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if t.limit != 0 && t.trim.is_none() {
        return Err(CmdError::Msg(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.trim.is_none() {
        return Err(CmdError::Msg(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !t.approx {
            return Err(CmdError::Msg(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        let limit = node_max_entries.saturating_mul(100);
        t.limit = if limit == 0 {
            10_000
        } else {
            limit.min(1_000_000)
        };
    }
    Ok(t)
}

fn node_limits(shared: &Shared) -> (u64, u64) {
    let [entries, bytes] = &shared.config.stream_node_max;
    (entries.load(Relaxed), bytes.load(Relaxed))
}

pub fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let shared = ctx.shared;
    let (max_entries, max_bytes) = node_limits(shared);
    let t = parse_add_trim(args, true, max_entries)?;
    let field_pos = t.idpos + 1;
    let nfields = args.len().saturating_sub(field_pos);
    if nfields < 2 || nfields % 2 == 1 {
        return Err(CmdError::Msg(
            "ERR wrong number of arguments for 'xadd' command",
        ));
    }
    if let Some((id, true)) = t.id {
        if id.is_zero() {
            return Err(CmdError::Msg(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let (db, now, key) = (ctx.db(), ctx.now, &args[1][..]);
    let mut locked = ctx.store().lock(key);
    match locked.peek(db, key, now) {
        Some(e) => {
            as_stream(e)?;
        }
        None if t.nomkstream => {
            drop(locked);
            ctx.out.null();
            return Ok(());
        }
        None => {}
    }
    let s =
        as_stream_mut(locked.get_or_insert(db, key, now, || Value::from_stream(Box::default())))?;
    if s.last_id == StreamId::MAX {
        return Err(CmdError::Msg(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let id = match t.id {
        Some((id, true)) => id,
        Some((id, false)) => {
            if s.last_id.ms == id.ms {
                match s.last_id.next() {
                    Some(next) if next.ms == id.ms => next,
                    _ => return Err(too_small()),
                }
            } else {
                id
            }
        }
        None => {
            if now > s.last_id.ms {
                StreamId::new(now, 0)
            } else {
                s.last_id.next().unwrap_or(StreamId::MIN)
            }
        }
    };
    if id <= s.last_id {
        return Err(too_small());
    }
    let pairs: Vec<(&[u8], &[u8])> = args[field_pos..]
        .chunks_exact(2)
        .map(|p| (&p[0][..], &p[1][..]))
        .collect();
    let total: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
    if total > MAX_ENTRY_BYTES {
        return Err(CmdError::Msg("ERR Elements are too large to be stored"));
    }
    s.append(id, &pairs, max_entries, max_bytes);
    let trimmed = match t.trim {
        Some(trim) => s.trim(trim, t.approx, t.limit),
        None => 0,
    };
    drop(locked);
    reply_id(ctx.out, id);
    ctx.notify(Notify::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(Notify::STREAM, "xtrim", key);
    }
    Ok(())
}

fn too_small() -> CmdError {
    CmdError::Msg(
        "ERR The ID specified in XADD is equal or smaller than the target stream top item",
    )
}

pub fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = parse_bound(start_arg, 0, true)?;
    let end = parse_bound(end_arg, u64::MAX, false)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            count = int_arg(&args[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (db, now, key) = (ctx.db(), ctx.now, &args[1][..]);
    let mut locked = ctx.store().lock(key);
    let Some(e) = locked.get(db, key, now) else {
        drop(locked);
        ctx.hit(false);
        ctx.out.array(0);
        return Ok(());
    };
    let s = as_stream(e)?;
    if count == 0 {
        ctx.out.null_array();
    } else {
        reply_range(ctx.out, s, start, end, count.max(0) as usize, rev);
    }
    Ok(())
}

pub fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let len = super::read_value(ctx, &args[1], Value::as_stream, |s| s.len())?;
    ctx.out.int(len.unwrap_or(0) as i64);
    Ok(())
}

/// Runs `f` on the stream at `key` for changing it (after its type is checked, as Redis
/// checks the key before the arguments that follow it); None when the key is absent.
fn modify_stream<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Stream) -> Result<R, CmdError>,
) -> Result<Option<R>, CmdError> {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(key);
    if let Some(e) = locked.peek(db, key, now) {
        as_stream(e)?;
    }
    match locked.get_mut(db, key, now) {
        Some(e) => f(as_stream_mut(e)?).map(Some),
        None => Ok(None),
    }
}

/// Replies with how many entries went and notifies `event` if any did.
fn reply_removed(ctx: &mut Ctx<'_>, key: &[u8], removed: u64, event: &str) {
    if removed > 0 {
        ctx.notify(Notify::STREAM, event, key);
    }
    ctx.out.int(removed as i64);
}

pub fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let deleted = modify_stream(ctx, key, |s| {
        let ids = args[2..]
            .iter()
            .map(|a| parse_strict_id(a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(s.delete(&ids) as u64)
    })?;
    reply_removed(ctx, key, deleted.unwrap_or(0), "xdel");
    Ok(())
}

pub fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (max_entries, _) = node_limits(ctx.shared);
    let t = parse_add_trim(args, false, max_entries)?;
    let key = &args[1][..];
    let trimmed = modify_stream(ctx, key, |s| {
        Ok(t.trim.map_or(0, |trim| s.trim(trim, t.approx, t.limit)))
    })?;
    reply_removed(ctx, key, trimmed.unwrap_or(0), "xtrim");
    Ok(())
}

pub fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let id = parse_strict_id(&args[2])?;
    let mut entries_added: i64 = -1;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(&args[i], "entriesadded") && more > 0 {
            entries_added = int_arg(&args[i + 1])?;
            if entries_added < 0 {
                return Err(CmdError::Msg("ERR entries_added must be positive"));
            }
        } else if is(&args[i], "maxdeletedid") && more > 0 {
            max_deleted = parse_strict_id(&args[i + 1])?;
            if id < max_deleted {
                return Err(CmdError::Msg("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let key = &args[1][..];
    modify_stream(ctx, key, |s| {
        if !s.is_empty() {
            if id < s.last_valid_id() {
                return Err(CmdError::Msg(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added != -1 && s.len() > entries_added as u64 {
                return Err(CmdError::Msg("ERR The entries_added specified in XSETID is smaller than the target stream length"));
            }
        }
        s.last_id = id;
        if entries_added != -1 {
            s.entries_added = entries_added as u64;
        }
        if !max_deleted.is_zero() {
            s.max_deleted_id = max_deleted;
        }
        Ok(())
    })?
    .ok_or(CmdError::NoSuchKey)?;
    ctx.notify(Notify::STREAM, "xsetid", key);
    ctx.out.ok();
    Ok(())
}

/// The group part of a blocked XREADGROUP.
#[derive(Debug, Clone)]
pub struct GroupRead {
    pub group: Bytes,
    pub consumer: Bytes,
    pub noack: bool,
}

/// A blocked XREAD or XREADGROUP: the ID to read after, per key (in the waiter's key order).
#[derive(Debug, Clone)]
pub struct BlockedRead {
    pub ids: Vec<StreamId>,
    pub count: usize,
    pub group: Option<GroupRead>,
}

/// Reads for a consumer of a group: new entries after `start` (advancing the group and
/// adding to the PELs unless `noack`), or with `history` the consumer's own pending entries
/// from `start`. Writes the entries array; returns whether it created the consumer.
#[allow(clippy::too_many_arguments)]
fn read_group(
    out: &mut ReplyBuf,
    s: &mut Stream,
    group_name: &[u8],
    consumer: &[u8],
    start: StreamId,
    count: usize,
    noack: bool,
    history: bool,
    now: u64,
) -> bool {
    let Some(mut group) = s.groups.remove(group_name) else {
        out.array(0);
        return false;
    };
    let created = touch_consumer(&mut group, consumer, now);
    if history {
        let pending: Vec<StreamId> = group
            .consumers
            .get(consumer)
            .map(|c| {
                c.pel
                    .range(start..)
                    .take(if count == 0 { usize::MAX } else { count })
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        out.array(pending.len());
        for id in pending {
            let mut found = false;
            s.for_range(id, id, false, |id, e| {
                reply_entry(out, id, &e);
                found = true;
                false
            });
            if found {
                if let Some(n) = group.pel.get_mut(&id) {
                    n.delivery_time = now;
                    n.delivery_count += 1;
                }
            } else {
                out.array(2);
                reply_id(out, id);
                out.null_array();
            }
        }
    } else {
        let ids = reply_range(out, s, start, StreamId::MAX, count, false);
        for id in ids {
            s.advance_group(&mut group, id);
            if !noack {
                group.assign(id, consumer, now).delivery_count = 1;
            }
        }
    }
    s.groups.insert(group_name.into(), group);
    created
}

/// Looks a consumer up (refreshing its seen time) or creates it; whether it was created.
pub fn touch_consumer(group: &mut Group, name: &[u8], now: u64) -> bool {
    match group.consumers.get_mut(name) {
        Some(c) => {
            c.seen_time = now;
            false
        }
        None => {
            group.consumers.insert(
                name.into(),
                cache_store::stream::Consumer {
                    seen_time: now,
                    pel: Default::default(),
                },
            );
            true
        }
    }
}

/// Answers a blocked read whose key is ready: Ok(false) to stay blocked, Err for the
/// error Redis unblocks it with (the key or the group went away).
#[allow(clippy::too_many_arguments)]
pub fn serve_blocked(
    shared: &Shared,
    store: Keyspace<'_>,
    db: usize,
    now: u64,
    key: &[u8],
    keys: &[Bytes],
    read: &BlockedRead,
    out: &mut ReplyBuf,
) -> Result<bool, CmdError> {
    let Some(index) = keys.iter().position(|k| &k[..] == key) else {
        return Ok(false);
    };
    let mut locked = store.lock(key);
    // Decide on a look that changes nothing: a write here would make the key ready again
    // and serve_ready would go round for ever.
    let after = {
        let Some(s) = locked.peek(db, key, now).and_then(|e| e.value.as_stream()) else {
            return match read.group {
                Some(_) => Err(CmdError::Msg("UNBLOCKED the stream key no longer exists")),
                None => Ok(false),
            };
        };
        let after =
            match &read.group {
                Some(g) => match s.groups.get(&g.group[..]) {
                    Some(group) => group.last_id,
                    None => return Err(CmdError::Msg(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    )),
                },
                None => read.ids[index],
            };
        // Only when there is an entry to give: XADD then XDEL leaves nothing to answer.
        if s.last_valid_id() <= after {
            return Ok(false);
        }
        after
    };
    let start = after.next().unwrap_or(StreamId::MAX);
    let header = |out: &mut ReplyBuf| {
        if out.resp3() {
            out.map(1);
        } else {
            out.array(1);
            out.array(2);
        }
        out.bulk(key);
    };
    let mut created = false;
    match &read.group {
        Some(g) => {
            let Some(e) = locked.get_mut(db, key, now) else {
                return Ok(false);
            };
            let s = as_stream_mut(e)?;
            header(out);
            created = read_group(
                out,
                s,
                &g.group,
                &g.consumer,
                start,
                read.count,
                g.noack,
                false,
                now,
            );
        }
        None => {
            let Some(e) = locked.get(db, key, now) else {
                return Ok(false);
            };
            header(out);
            reply_range(out, as_stream(e)?, start, StreamId::MAX, read.count, false);
        }
    }
    let served = true;
    drop(locked);
    if created {
        shared.notify(db, Notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(served)
}

/// XREAD and XREADGROUP.
pub fn xread(ctx: &mut Ctx<'_>, args: &[Bytes], xreadgroup: bool) -> CmdResult {
    let mut timeout: Option<i64> = None;
    let mut count: i64 = 0;
    let mut streams_at = 0;
    let mut noack = false;
    let mut group: Option<(Bytes, Bytes)> = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = &args[i];
        if is(o, "block") && more > 0 {
            i += 1;
            let t = parse_i64(&args[i]).ok_or(CmdError::Msg(
                "ERR timeout is not an integer or out of range",
            ))?;
            if t < 0 {
                return Err(CmdError::Msg("ERR timeout is negative"));
            }
            timeout = Some(t);
        } else if is(o, "count") && more > 0 {
            i += 1;
            count = int_arg(&args[i])?.max(0);
        } else if is(o, "streams") && more > 0 {
            streams_at = i + 1;
            if !(args.len() - streams_at).is_multiple_of(2) {
                return Err(CmdError::Msg("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            break;
        } else if is(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::Msg(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is(o, "noack") {
            if !xreadgroup {
                return Err(CmdError::Msg(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(CmdError::Syntax);
    }
    if xreadgroup && group.is_none() {
        return Err(CmdError::Msg("ERR Missing GROUP option for XREADGROUP"));
    }
    let n = (args.len() - streams_at) / 2;
    let keys = &args[streams_at..streams_at + n];
    let id_args = &args[streams_at + n..];
    let (db, now) = (ctx.db(), ctx.now);
    // Resolve every key first: a type error or missing group answers before any data.
    let mut ids = Vec::with_capacity(n);
    for (key, id_arg) in keys.iter().zip(id_args) {
        let mut locked = ctx.store().lock(key);
        let stream = match locked.get(db, key, now) {
            Some(e) => Some(as_stream(e)?),
            None => None,
        };
        if let Some((g, _)) = &group {
            if !stream.is_some_and(|s| s.groups.contains_key(&g[..])) {
                return Err(CmdError::Owned(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                )));
            }
        }
        let id = if &id_arg[..] == b"$" {
            if xreadgroup {
                return Err(CmdError::Msg("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            stream.map_or(StreamId::MIN, |s| s.last_id)
        } else if &id_arg[..] == b">" {
            if !xreadgroup {
                return Err(CmdError::Msg("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            StreamId::MAX
        } else {
            parse_strict_id(id_arg)?
        };
        ids.push(id);
    }
    let count = count as usize;
    let mut body = ReplyBuf {
        buf: bytes::BytesMut::new(),
        protocol: ctx.out.protocol,
    };
    let mut served = 0;
    let mut created_for = Vec::new();
    for (key, gt) in keys.iter().zip(&ids) {
        let mut locked = ctx.store().lock(key);
        let Some((g, c)) = &group else {
            // XREAD: only a read.
            let Some(e) = locked.get(db, key, now) else {
                continue;
            };
            let s = as_stream(e)?;
            if s.is_empty() || s.last_valid_id() <= *gt {
                continue;
            }
            served += 1;
            if !body.resp3() {
                body.array(2);
            }
            body.bulk(key);
            let start = gt.next().unwrap_or(StreamId::MIN);
            reply_range(&mut body, s, start, StreamId::MAX, count, false);
            continue;
        };
        let Some(e) = locked.get_mut(db, key, now) else {
            continue;
        };
        let s = as_stream_mut(e)?;
        let mut gt = *gt;
        let last = s.groups.get(&g[..]).map_or(StreamId::MAX, |g| g.last_id);
        let history = gt != StreamId::MAX;
        if !history {
            if s.is_empty() || s.last_valid_id() <= last {
                continue;
            }
            gt = last;
        }
        served += 1;
        let start = gt.next().unwrap_or(StreamId::MIN);
        if !body.resp3() {
            body.array(2);
        }
        body.bulk(key);
        if read_group(&mut body, s, g, c, start, count, noack, history, now) {
            created_for.push(key.clone());
        }
    }
    for key in created_for {
        ctx.notify(Notify::STREAM, "xgroup-createconsumer", &key);
    }
    if served > 0 {
        if ctx.out.resp3() {
            ctx.out.map(served);
        } else {
            ctx.out.array(served);
        }
        ctx.out.buf.extend_from_slice(&body.buf);
        return Ok(());
    }
    let Some(ms) = timeout else {
        ctx.out.null_array();
        return Ok(());
    };
    if ctx.conn.in_exec {
        ctx.out.null_array();
        return Ok(());
    }
    let read = BlockedRead {
        ids,
        count: if count == 0 {
            BLOCKED_DEFAULT_COUNT
        } else {
            count
        },
        group: group.map(|(group, consumer)| GroupRead {
            group,
            consumer,
            noack,
        }),
    };
    let timeout = (ms > 0).then(|| std::time::Duration::from_millis(ms as u64));
    super::blocking::park(ctx, keys.to_vec(), timeout, BlockOp::XRead(Box::new(read)));
    Ok(())
}

/// The reply of XPENDING's and XINFO's pending entries, shared with `stream_groups`.
pub fn nack_idle(nack: &Nack, now: u64) -> i64 {
    (now as i64 - nack.delivery_time as i64).max(0)
}

/// `entries-read` as XINFO shows it: null when unknown.
pub fn reply_entries_read(out: &mut ReplyBuf, group: &Group) {
    if group.entries_read == INVALID_ENTRIES_READ {
        out.null();
    } else {
        out.int(group.entries_read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis() {
        assert_eq!(parse_strict_id(b"5").unwrap(), StreamId::new(5, 0));
        assert_eq!(
            parse_id(b"5", u64::MAX).unwrap(),
            StreamId::new(5, u64::MAX)
        );
        assert_eq!(parse_strict_id(b"+5-1").unwrap(), StreamId::new(5, 1));
        assert!(parse_strict_id(b"-").is_err());
        assert_eq!(parse_id(b"-", 0).unwrap(), StreamId::MIN);
        assert!(parse_strict_id(b"-1").is_err());
        assert!(parse_strict_id(b"1-x").is_err());
        assert!(parse_strict_id(b"18446744073709551616").is_err());
        assert_eq!(
            parse_id_full(b"7-*", 0, true, true).unwrap(),
            (StreamId::new(7, 0), false)
        );
        assert!(parse_strict_id(b"7-*").is_err());
        assert_eq!(parse_bound(b"(1-0", 0, true).unwrap(), StreamId::new(1, 1));
        assert!(parse_bound(b"(0-0", 0, false).is_err());
        assert_eq!(
            id_text(StreamId::MAX).as_bytes(),
            b"18446744073709551615-18446744073709551615"
        );
    }
}
