//! Set commands.

use bytes::Bytes;
use cache_store::{Entry, SetValue, Value};

use super::{int_arg, is, scan_args, CmdError, CmdResult, Ctx, Notify};

fn as_set(e: &Entry) -> Result<&SetValue, CmdError> {
    e.value.as_set().ok_or(CmdError::WrongType)
}

fn as_set_mut(e: &mut Entry) -> Result<&mut SetValue, CmdError> {
    e.value.as_set_mut().ok_or(CmdError::WrongType)
}

fn read_set<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&SetValue) -> R,
) -> Result<Option<R>, CmdError> {
    super::read_value(ctx, key, Value::as_set, f)
}

pub fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    if let Some(e) = locked.peek(db, key, now) {
        as_set(e)?;
    }
    let set = as_set_mut(locked.get_or_insert(db, key, now, Value::new_set))?;
    let added = args[2..]
        .iter()
        .filter(|m| set.insert(m[..].into()))
        .count();
    drop(locked);
    if added > 0 {
        ctx.notify(Notify::SET, "sadd", key);
    }
    ctx.out.int(added as i64);
    Ok(())
}

pub fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let removed = match locked.get(db, key, now) {
        None => 0,
        Some(e) => {
            as_set(e)?;
            let set = as_set_mut(locked.get_mut(db, key, now).expect("present"))?;
            args[2..].iter().filter(|m| set.swap_remove(&m[..])).count()
        }
    };
    let deleted = locked.remove_if_empty(db, key, now);
    drop(locked);
    super::reply_removed(ctx, key, removed, deleted, Notify::SET, "srem");
    Ok(())
}

pub fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let members = read_set(ctx, &args[1], |s| {
        s.iter().map(|m| m.to_vec()).collect::<Vec<_>>()
    })?
    .unwrap_or_default();
    ctx.out.set(members.len());
    for m in members {
        ctx.out.bulk(&m);
    }
    Ok(())
}

pub fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let found = read_set(ctx, &args[1], |s| s.contains(&args[2][..]))?.unwrap_or(false);
    ctx.out.int(i64::from(found));
    Ok(())
}

pub fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let found = read_set(ctx, &args[1], |s| {
        args[2..]
            .iter()
            .map(|m| s.contains(&m[..]))
            .collect::<Vec<_>>()
    })?
    .unwrap_or_else(|| vec![false; args.len() - 2]);
    ctx.out.array(found.len());
    for f in found {
        ctx.out.int(i64::from(f));
    }
    Ok(())
}

pub fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = read_set(ctx, &args[1], |s| s.len())?.unwrap_or(0);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
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
        _ => return Err(CmdError::Syntax),
    };
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let popped = match locked.get(db, key, now) {
        None => None,
        Some(e) => {
            as_set(e)?;
            let set = as_set_mut(locked.get_mut(db, key, now).expect("present"))?;
            let n = count.unwrap_or(1).min(set.len());
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let i = super::random_below(set.len());
                out.push(set.swap_remove_index(i).expect("in range").to_vec());
            }
            Some(out)
        }
    };
    let deleted = locked.remove_if_empty(db, key, now);
    drop(locked);
    if popped.as_ref().is_some_and(|p| !p.is_empty()) {
        ctx.notify(Notify::SET, "spop", key);
    }
    if deleted {
        ctx.notify(Notify::GENERIC, "del", key);
    }
    match (count, popped) {
        (None, None) => ctx.out.null(),
        (None, Some(p)) => match p.first() {
            Some(m) => ctx.out.bulk(m),
            None => ctx.out.null(),
        },
        (Some(_), p) => {
            let p = p.unwrap_or_default();
            ctx.out.set(p.len());
            for m in p {
                ctx.out.bulk(&m);
            }
        }
    }
    Ok(())
}

pub fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(super::random_count(&args[2], false)?),
        _ => return Err(CmdError::Syntax),
    };
    let picked = read_set(ctx, &args[1], |s| {
        super::random_indices(s.len(), count.unwrap_or(1))
            .into_iter()
            .map(|i| s.get_index(i).expect("in range").to_vec())
            .collect::<Vec<_>>()
    })?;
    match (count, picked) {
        (None, None) => ctx.out.null(),
        (None, Some(p)) => ctx.out.bulk(&p[0]),
        (Some(_), p) => {
            let p = p.unwrap_or_default();
            ctx.out.array(p.len());
            for m in p {
                ctx.out.bulk(&m);
            }
        }
    }
    Ok(())
}

pub fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let (src, dst, member) = (&args[1][..], &args[2][..], &args[3][..]);
    let mut locked = ctx.store().lock_keys([src, dst]);
    // A missing source answers 0 before the destination's type is checked (as Redis).
    let Some(e) = locked.get(db, src, now) else {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    };
    let has = as_set(e)?.contains(member);
    let mut in_dst = false;
    if let Some(d) = locked.peek(db, dst, now) {
        in_dst = as_set(d)?.contains(member);
    }
    if !has {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    }
    let added = src != dst && !in_dst;
    if src != dst {
        as_set_mut(locked.get_mut(db, src, now).expect("present"))?.swap_remove(member);
        locked.remove_if_empty(db, src, now);
        // A destination that already holds the member is not changed (Redis signals it,
        // for WATCH and `sadd` events, only when the member was added).
        if added {
            as_set_mut(locked.get_or_insert(db, dst, now, Value::new_set))?.insert(member.into());
        }
    }
    drop(locked);
    ctx.notify(Notify::SET, "srem", src);
    if added || src == dst {
        ctx.notify(Notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Inter,
    Union,
    Diff,
}

/// Computes a set operation over `keys` (missing keys are empty sets), in the order Redis
/// builds it: members of the first set (or of each set, for union) in their order.
fn compute(
    ctx: &Ctx<'_>,
    keys: &[Bytes],
    op: SetOp,
    extra: &[&[u8]],
) -> Result<SetValue, CmdError> {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx
        .shared
        .store
        .lock_keys(keys.iter().map(|k| &k[..]).chain(extra.iter().copied()));
    let mut sets: Vec<Option<SetValue>> = Vec::with_capacity(keys.len());
    for k in keys {
        match locked.get(db, k, now) {
            Some(e) => sets.push(Some(as_set(e)?.clone())),
            None => sets.push(None),
        }
    }
    drop(locked);
    let mut result = SetValue::default();
    match op {
        SetOp::Union => {
            for s in sets.iter().flatten() {
                for m in s {
                    result.insert(m.clone());
                }
            }
        }
        SetOp::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(result);
            }
            let mut sets: Vec<&SetValue> = sets.iter().flatten().collect();
            sets.sort_by_key(|s| s.len());
            for m in sets[0] {
                if sets[1..].iter().all(|s| s.contains(m)) {
                    result.insert(m.clone());
                }
            }
        }
        SetOp::Diff => {
            let Some(first) = &sets[0] else {
                return Ok(result);
            };
            for m in first {
                if !sets[1..].iter().flatten().any(|s| s.contains(m)) {
                    result.insert(m.clone());
                }
            }
        }
    }
    Ok(result)
}

pub fn setop(ctx: &mut Ctx<'_>, args: &[Bytes], op: SetOp) -> CmdResult {
    let result = compute(ctx, &args[1..], op, &[])?;
    ctx.out.set(result.len());
    for m in &result {
        ctx.out.bulk(m);
    }
    Ok(())
}

pub fn setop_store(ctx: &mut Ctx<'_>, args: &[Bytes], op: SetOp) -> CmdResult {
    let dst = &args[1][..];
    let result = compute(ctx, &args[2..], op, &[dst])?;
    let event = match op {
        SetOp::Inter => "sinterstore",
        SetOp::Union => "sunionstore",
        SetOp::Diff => "sdiffstore",
    };
    let n = result.len();
    super::store_result(ctx, dst, n, Value::from_set(result), Notify::SET, event);
    Ok(())
}

/// Parses `numkeys key... [LIMIT n]` for SINTERCARD.
pub fn numkeys_and_limit(args: &[Bytes]) -> Result<(std::ops::Range<usize>, usize), CmdError> {
    // Redis's getRangeLongFromObjectOrReply: a non-integer gets the same message as 0.
    let numkeys =
        int_arg(&args[1]).map_err(|_| CmdError::Msg("ERR numkeys should be greater than 0"))?;
    if numkeys <= 0 {
        return Err(CmdError::Msg("ERR numkeys should be greater than 0"));
    }
    let numkeys = numkeys as usize;
    if numkeys > args.len() - 2 {
        return Err(CmdError::Msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if is(&args[i], "limit") && i + 1 < args.len() {
            let l =
                int_arg(&args[i + 1]).map_err(|_| CmdError::Msg("ERR LIMIT can't be negative"))?;
            if l < 0 {
                return Err(CmdError::Msg("ERR LIMIT can't be negative"));
            }
            limit = l as usize;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((2..2 + numkeys, limit))
}

pub fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, limit) = numkeys_and_limit(args)?;
    let result = compute(ctx, &args[keys], SetOp::Inter, &[])?;
    let n = if limit > 0 {
        result.len().min(limit)
    } else {
        result.len()
    };
    ctx.out.int(n as i64);
    Ok(())
}

pub fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let scan = scan_args(args, 2)?;
    let page = read_set(ctx, &args[1], |s| {
        super::scan_indexmap(s.len(), scan.cursor, scan.count, |i| {
            let m = s.get_index(i).expect("in range");
            scan.matches(m).then(|| vec![m.to_vec()])
        })
    })?;
    super::reply_scan(ctx, page.unwrap_or((0, Vec::new())));
    Ok(())
}
