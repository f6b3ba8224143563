//! List commands, including the blocking ones (which park the connection in `blocking`).

use bytes::Bytes;
use cache_protocol::ReplyBuf;
use cache_store::{Entry, Keyspace, ListValue, Locked, Value};

use super::blocking::{parse_timeout, BlockOp};
use super::{int_arg, is, CmdError, CmdResult, Ctx, Notify};
use crate::Shared;

fn as_list(e: &Entry) -> Result<&ListValue, CmdError> {
    e.value.as_list().ok_or(CmdError::WrongType)
}

fn as_list_mut(e: &mut Entry) -> Result<&mut ListValue, CmdError> {
    e.value.as_list_mut().ok_or(CmdError::WrongType)
}

fn read_list<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&ListValue) -> R,
) -> Result<Option<R>, CmdError> {
    super::read_value(ctx, key, Value::as_list, f)
}

/// Checks that `key` is absent or a list.
fn check_list(locked: &mut Locked<'_>, db: usize, key: &[u8], now: u64) -> CmdResult {
    if let Some(e) = locked.peek(db, key, now) {
        as_list(e)?;
    }
    Ok(())
}

/// Pushes `values` on one end of the list at `key`, creating it unless `only_existing`.
/// Returns the new length (0 when `only_existing` and absent).
fn push_values(
    locked: &mut Locked<'_>,
    db: usize,
    key: &[u8],
    now: u64,
    values: &[&[u8]],
    left: bool,
    only_existing: bool,
) -> Result<usize, CmdError> {
    check_list(locked, db, key, now)?;
    if only_existing && locked.peek(db, key, now).is_none() {
        return Ok(0);
    }
    let list = as_list_mut(locked.get_or_insert(db, key, now, Value::new_list))?;
    for v in values {
        if left {
            list.push_front(v.to_vec());
        } else {
            list.push_back(v.to_vec());
        }
    }
    Ok(list.len())
}

/// Pops up to `count` elements from one end; None when the key is absent.
fn pop_values(
    locked: &mut Locked<'_>,
    db: usize,
    key: &[u8],
    now: u64,
    left: bool,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
    match locked.get(db, key, now) {
        None => return Ok(None),
        Some(e) => {
            as_list(e)?;
        }
    }
    let list = as_list_mut(locked.get_mut(db, key, now).expect("present"))?;
    let n = count.min(list.len());
    let popped: Vec<Vec<u8>> = (0..n)
        .filter_map(|_| {
            if left {
                list.pop_front()
            } else {
                list.pop_back()
            }
        })
        .collect();
    locked.remove_if_empty(db, key, now);
    Ok(Some(popped))
}

pub fn push(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool, only_existing: bool) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let values: Vec<&[u8]> = args[2..].iter().map(|v| &v[..]).collect();
    let mut locked = ctx.store().lock(key);
    let len = push_values(&mut locked, db, key, now, &values, left, only_existing)?;
    drop(locked);
    if len > 0 {
        ctx.notify(Notify::LIST, if left { "lpush" } else { "rpush" }, key);
    }
    ctx.out.int(len as i64);
    Ok(())
}

pub fn pop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => {
            let c = int_arg(&args[2])
                .map_err(|_| CmdError::Msg("ERR value is out of range, must be positive"))?;
            if c < 0 {
                return Err(CmdError::Msg("ERR value is out of range, must be positive"));
            }
            Some(c as usize)
        }
        // LPOP/RPOP answer extra arguments with an arity error (ZPOPMIN/SPOP: syntax error).
        _ => {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            return Err(CmdError::Owned(format!(
                "ERR wrong number of arguments for '{name}' command"
            )));
        }
    };
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let popped = pop_values(&mut locked, db, key, now, left, count.unwrap_or(1))?;
    drop(locked);
    if popped.as_ref().is_some_and(|p| !p.is_empty()) {
        ctx.notify(Notify::LIST, if left { "lpop" } else { "rpop" }, key);
    }
    match (count, popped) {
        (None, Some(p)) if !p.is_empty() => ctx.out.bulk(&p[0]),
        (None, _) => ctx.out.null(),
        (Some(_), None) => ctx.out.null_array(),
        (Some(_), Some(p)) => {
            ctx.out.array(p.len());
            for v in p {
                ctx.out.bulk(&v);
            }
        }
    }
    Ok(())
}

pub fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = read_list(ctx, &args[1], |l| l.len())?.unwrap_or(0);
    ctx.out.int(n as i64);
    Ok(())
}

/// Redis's index normalisation for LRANGE/LTRIM: returns the inclusive range, or None.
fn normalize_range(start: i64, end: i64, len: i64) -> Option<(usize, usize)> {
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

pub fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let Some(e) = locked.get(db, &args[1], now) else {
        drop(locked);
        ctx.out.array(0);
        return Ok(());
    };
    let list = as_list(e)?;
    match normalize_range(start, end, list.len() as i64) {
        None => ctx.out.array(0),
        Some((a, b)) => {
            ctx.out.array(b - a + 1);
            for v in list.range(a..=b) {
                ctx.out.bulk(v);
            }
        }
    }
    Ok(())
}

fn list_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

pub fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis 7.0 looks the key up before parsing the index: `LINDEX nosuch x` is a nil reply
    // and `LINDEX string x` WRONGTYPE, not "not an integer".
    let value = read_list(ctx, &args[1], |l| {
        int_arg(&args[2]).map(|index| list_index(index, l.len()).map(|i| l[i].clone()))
    })?
    .transpose()?
    .flatten();
    match value {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    match locked.get(db, key, now) {
        None => return Err(CmdError::NoSuchKey),
        Some(e) => {
            as_list(e)?;
        }
    }
    // As Redis 7.0: "no such key" and WRONGTYPE come before a bad index.
    let index = int_arg(&args[2])?;
    let list = as_list_mut(locked.get_mut(db, key, now).expect("present"))?;
    let i = list_index(index, list.len()).ok_or(CmdError::Msg("ERR index out of range"))?;
    list[i] = args[3].to_vec();
    drop(locked);
    ctx.notify(Notify::LIST, "lset", key);
    ctx.out.ok();
    Ok(())
}

pub fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = int_arg(&args[2])?;
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let target = &args[3][..];
    let mut locked = ctx.store().lock(key);
    match locked.get(db, key, now) {
        None => {
            drop(locked);
            ctx.out.int(0);
            return Ok(());
        }
        Some(e) => {
            as_list(e)?;
        }
    }
    let list = as_list_mut(locked.get_mut(db, key, now).expect("present"))?;
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    // One pass (two from the tail): removing elements one by one from the middle was
    // quadratic (14.5 s for LREM on a 600k-element list).
    let matches = |e: &[u8]| e == target;
    let skip = if count >= 0 {
        0
    } else {
        // From the tail: keep the first (all - limit) matches, remove the rest.
        let all = list.iter().filter(|e| matches(e)).count();
        all.saturating_sub(limit)
    };
    let (mut seen, mut removed) = (0usize, 0usize);
    list.retain(|e| {
        if !matches(e) || removed >= limit {
            return true;
        }
        seen += 1;
        if seen <= skip {
            return true;
        }
        removed += 1;
        false
    });
    let deleted = locked.remove_if_empty(db, key, now);
    drop(locked);
    super::reply_removed(ctx, key, removed, deleted, Notify::LIST, "lrem");
    Ok(())
}

pub fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    match locked.get(db, key, now) {
        None => {
            drop(locked);
            ctx.out.ok();
            return Ok(());
        }
        Some(e) => {
            as_list(e)?;
        }
    }
    let list = as_list_mut(locked.get_mut(db, key, now).expect("present"))?;
    match normalize_range(start, end, list.len() as i64) {
        None => list.clear(),
        Some((a, b)) => {
            list.truncate(b + 1);
            list.drain(..a);
        }
    }
    let deleted = locked.remove_if_empty(db, key, now);
    drop(locked);
    ctx.notify(Notify::LIST, "ltrim", key);
    if deleted {
        ctx.notify(Notify::GENERIC, "del", key);
    }
    ctx.out.ok();
    Ok(())
}

pub fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    match locked.get(db, key, now) {
        None => {
            drop(locked);
            ctx.out.int(0);
            return Ok(());
        }
        Some(e) => {
            as_list(e)?;
        }
    }
    let list = as_list_mut(locked.get_mut(db, key, now).expect("present"))?;
    let result = match list.iter().position(|v| v[..] == args[3][..]) {
        None => -1,
        Some(i) => {
            list.insert(if after { i + 1 } else { i }, args[4].to_vec());
            list.len() as i64
        }
    };
    drop(locked);
    if result > 0 {
        ctx.notify(Notify::LIST, "linsert", key);
    }
    ctx.out.int(result);
    Ok(())
}

pub fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut i = 3;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Err(CmdError::Syntax);
        };
        if is(&args[i], "rank") {
            rank = int_arg(value)?;
            if rank == 0 || rank == i64::MIN {
                return Err(CmdError::Msg("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
        } else if is(&args[i], "count") {
            // getPositiveLongFromObjectOrReply: junk gets the "negative" message too.
            let c = int_arg(value)
                .ok()
                .filter(|c| *c >= 0)
                .ok_or(CmdError::Msg("ERR COUNT can't be negative"))?;
            count = Some(c as usize);
        } else if is(&args[i], "maxlen") {
            let m = int_arg(value)
                .ok()
                .filter(|m| *m >= 0)
                .ok_or(CmdError::Msg("ERR MAXLEN can't be negative"))?;
            maxlen = m as usize;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let target = &args[2][..];
    let found = read_list(ctx, &args[1], |l| {
        let want = match count {
            Some(0) => usize::MAX,
            Some(c) => c,
            None => 1,
        };
        let mut skip = rank.unsigned_abs() as usize - 1;
        let mut hits = Vec::new();
        let limit = if maxlen == 0 {
            l.len()
        } else {
            maxlen.min(l.len())
        };
        let indices: Box<dyn Iterator<Item = usize>> = if rank > 0 {
            Box::new(0..l.len())
        } else {
            Box::new((0..l.len()).rev())
        };
        for (compared, idx) in indices.enumerate() {
            if compared >= limit || hits.len() >= want {
                break;
            }
            if l[idx] == target {
                if skip > 0 {
                    skip -= 1;
                } else {
                    hits.push(idx as i64);
                }
            }
        }
        hits
    })?
    .unwrap_or_default();
    match count {
        None => match found.first() {
            Some(&i) => ctx.out.int(i),
            None => ctx.out.null(),
        },
        Some(_) => {
            ctx.out.array(found.len());
            for i in found {
                ctx.out.int(i);
            }
        }
    }
    Ok(())
}

fn side(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "left") {
        Ok(true)
    } else if is(arg, "right") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Pops from `src` and pushes onto `dst` atomically; the moved value, or None if `src` is
/// empty. Used by LMOVE, RPOPLPUSH and, when served, their blocking forms.
pub fn move_value(
    shared: &Shared,
    store: Keyspace<'_>,
    db: usize,
    now: u64,
    src: &[u8],
    dst: &[u8],
    (from_left, to_left): (bool, bool),
) -> Result<Option<Vec<u8>>, CmdError> {
    let mut locked = store.lock_keys([src, dst]);
    match locked.get(db, src, now) {
        None => return Ok(None),
        Some(e) => {
            as_list(e)?;
        }
    }
    check_list(&mut locked, db, dst, now)?;
    if src == dst {
        // Rotate in place: popping the last element must not delete the key (and its TTL)
        // before it is pushed back, as Redis pushes before checking for an empty source.
        let list = as_list_mut(locked.get_mut(db, src, now).expect("present"))?;
        let value = if from_left {
            list.pop_front()
        } else {
            list.pop_back()
        };
        let Some(value) = value else {
            return Ok(None);
        };
        if to_left {
            list.push_front(value.clone());
        } else {
            list.push_back(value.clone());
        }
        drop(locked);
        shared.notify(
            db,
            Notify::LIST,
            if from_left { "lpop" } else { "rpop" },
            src,
        );
        shared.notify(
            db,
            Notify::LIST,
            if to_left { "lpush" } else { "rpush" },
            dst,
        );
        return Ok(Some(value));
    }
    let Some(mut popped) = pop_values(&mut locked, db, src, now, from_left, 1)? else {
        return Ok(None);
    };
    let Some(value) = popped.pop() else {
        return Ok(None);
    };
    push_values(&mut locked, db, dst, now, &[&value], to_left, false)?;
    drop(locked);
    shared.notify(
        db,
        Notify::LIST,
        if from_left { "lpop" } else { "rpop" },
        src,
    );
    shared.notify(
        db,
        Notify::LIST,
        if to_left { "lpush" } else { "rpush" },
        dst,
    );
    Ok(Some(value))
}

pub fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes], sides: Option<(bool, bool)>) -> CmdResult {
    let sides = match sides {
        Some(s) => s,
        None => (side(&args[3])?, side(&args[4])?),
    };
    match move_value(
        ctx.shared,
        ctx.store(),
        ctx.db(),
        ctx.now,
        &args[1],
        &args[2],
        sides,
    )? {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Tries a blocking-list operation on `key` now; writes the reply and returns true if done.
pub fn serve(
    shared: &Shared,
    store: Keyspace<'_>,
    db: usize,
    now: u64,
    key: &[u8],
    op: &BlockOp,
    out: &mut ReplyBuf,
) -> Result<bool, CmdError> {
    match op {
        BlockOp::ListPop { left } => {
            let mut locked = store.lock(key);
            let popped = pop_values(&mut locked, db, key, now, *left, 1)?;
            drop(locked);
            let Some(v) = popped.and_then(|mut p| p.pop()) else {
                return Ok(false);
            };
            shared.notify(db, Notify::LIST, if *left { "lpop" } else { "rpop" }, key);
            out.array(2);
            out.bulk(key);
            out.bulk(&v);
            Ok(true)
        }
        BlockOp::ListMove {
            dst,
            from_left,
            to_left,
        } => match move_value(shared, store, db, now, key, dst, (*from_left, *to_left))? {
            Some(v) => {
                out.bulk(&v);
                Ok(true)
            }
            None => Ok(false),
        },
        BlockOp::ListMPop { left, count } => {
            let mut locked = store.lock(key);
            let popped = pop_values(&mut locked, db, key, now, *left, *count)?;
            drop(locked);
            let Some(values) = popped.filter(|p| !p.is_empty()) else {
                return Ok(false);
            };
            shared.notify(db, Notify::LIST, if *left { "lpop" } else { "rpop" }, key);
            out.array(2);
            out.bulk(key);
            out.array(values.len());
            for v in values {
                out.bulk(&v);
            }
            Ok(true)
        }
        BlockOp::ZPop { .. } | BlockOp::ZMPop { .. } => {
            super::zsets::serve(shared, store, db, now, key, op, out)
        }
        // Served by serve_ready's stream path, never as a pop.
        BlockOp::XRead(_) => Ok(false),
    }
}

pub fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, left, count) = super::mpop_args(args, 1, ("left", "right"))?;
    if !super::blocking::serve_first(ctx, &keys, &BlockOp::ListMPop { left, count })? {
        ctx.out.null_array();
    }
    Ok(())
}

/// BLPOP / BRPOP.
pub fn bpop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> CmdResult {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    let keys = args[1..args.len() - 1].to_vec();
    super::blocking::block_or_serve(ctx, keys, timeout, BlockOp::ListPop { left })
}

pub fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes], sides: Option<(bool, bool)>) -> CmdResult {
    let (from_left, to_left, timeout_arg) = match sides {
        Some((f, t)) => (f, t, &args[3]),
        None => (side(&args[3])?, side(&args[4])?, &args[5]),
    };
    let timeout = parse_timeout(timeout_arg)?;
    let op = BlockOp::ListMove {
        dst: args[2].clone(),
        from_left,
        to_left,
    };
    super::blocking::block_or_serve(ctx, vec![args[1].clone()], timeout, op)
}

pub fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timeout = parse_timeout(&args[1])?;
    let (keys, left, count) = super::mpop_args(args, 2, ("left", "right"))?;
    super::blocking::block_or_serve(ctx, keys, timeout, BlockOp::ListMPop { left, count })
}
