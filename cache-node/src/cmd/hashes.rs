//! Hash commands.

use bytes::Bytes;
use cache_store::{Entry, HashValue, Value};

use super::{int_arg, is, long_double, scan_args, CmdError, CmdResult, Ctx, Notify};

/// Small hashes keep insertion order on delete (as Redis's listpack does), so replies match
/// Redis's order; big ones swap-remove in O(1), where Redis's order is unspecified anyway.
const ORDERED_UP_TO: usize = 128;

fn as_hash(e: &Entry) -> Result<&HashValue, CmdError> {
    e.value.as_hash().ok_or(CmdError::WrongType)
}

fn as_hash_mut(e: &mut Entry) -> Result<&mut HashValue, CmdError> {
    e.value.as_hash_mut().ok_or(CmdError::WrongType)
}

pub(crate) fn remove_field(h: &mut HashValue, field: &[u8]) -> bool {
    if h.len() <= ORDERED_UP_TO {
        h.shift_remove(field).is_some()
    } else {
        h.swap_remove(field).is_some()
    }
}

/// Runs `f` on the hash at `key`, creating it if absent (after a type check).
fn with_hash<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut HashValue) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(key);
    if let Some(e) = locked.peek(db, key, now) {
        as_hash(e)?;
    }
    let entry = locked.get_or_insert(db, key, now, Value::new_hash);
    let result = f(as_hash_mut(entry)?);
    locked.remove_if_empty(db, key, now);
    result
}

/// Runs `f` on the hash at `key` for reading; `None` when the key is absent.
fn read_hash<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&HashValue) -> R,
) -> Result<Option<R>, CmdError> {
    super::read_value(ctx, key, Value::as_hash, f)
}

pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes], legacy_ok: bool) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(CmdError::Owned(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let added = with_hash(ctx, &args[1], |h| {
        let mut added = 0;
        for pair in args[2..].chunks(2) {
            match h.get_mut(&pair[0][..]) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(&pair[1]);
                }
                None => {
                    h.insert(pair[0][..].into(), pair[1].to_vec());
                    added += 1;
                }
            }
        }
        Ok(added)
    })?;
    ctx.notify(Notify::HASH, "hset", &args[1]);
    if legacy_ok {
        ctx.out.ok();
    } else {
        ctx.out.int(added);
    }
    Ok(())
}

pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let set = with_hash(ctx, &args[1], |h| {
        if h.contains_key(&args[2][..]) {
            return Ok(false);
        }
        h.insert(args[2][..].into(), args[3].to_vec());
        Ok(true)
    })?;
    if set {
        ctx.notify(Notify::HASH, "hset", &args[1]);
    }
    ctx.out.int(i64::from(set));
    Ok(())
}

pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let value = read_hash(ctx, &args[1], |h| h.get(&args[2][..]).cloned())?.flatten();
    match value {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let fields = &args[2..];
    let values = read_hash(ctx, &args[1], |h| {
        fields
            .iter()
            .map(|f| h.get(&f[..]).cloned())
            .collect::<Vec<_>>()
    })?
    .unwrap_or_else(|| vec![None; fields.len()]);
    ctx.out.array(values.len());
    for v in values {
        match v {
            Some(v) => ctx.out.bulk(&v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let removed = match locked.get(db, key, now) {
        None => 0,
        Some(e) => {
            as_hash(e)?;
            let h = as_hash_mut(locked.get_mut(db, key, now).expect("present"))?;
            args[2..].iter().filter(|f| remove_field(h, f)).count()
        }
    };
    let deleted = locked.remove_if_empty(db, key, now);
    drop(locked);
    super::reply_removed(ctx, key, removed, deleted, Notify::HASH, "hdel");
    Ok(())
}

pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let found = read_hash(ctx, &args[1], |h| h.contains_key(&args[2][..]))?.unwrap_or(false);
    ctx.out.int(i64::from(found));
    Ok(())
}

pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = read_hash(ctx, &args[1], |h| h.len())?.unwrap_or(0);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = read_hash(ctx, &args[1], |h| {
        h.get(&args[2][..]).map_or(0, |v| v.len())
    })?
    .unwrap_or(0);
    ctx.out.int(n as i64);
    Ok(())
}

/// HKEYS, HVALS, HGETALL.
pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes], keys: bool, values: bool) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let Some(e) = locked.get(db, &args[1], now) else {
        drop(locked);
        if keys && values {
            ctx.out.map(0);
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    let h = as_hash(e)?;
    if keys && values {
        ctx.out.map(h.len());
    } else {
        ctx.out.array(h.len());
    }
    for (k, v) in h.iter() {
        if keys {
            ctx.out.bulk(k);
        }
        if values {
            ctx.out.bulk(v);
        }
    }
    Ok(())
}

pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let delta = int_arg(&args[3])?;
    let result = with_hash(ctx, &args[1], |h| {
        let current = match h.get(&args[2][..]) {
            Some(v) => cache_protocol::parse_i64(v)
                .ok_or(CmdError::Msg("ERR hash value is not an integer"))?,
            None => 0,
        };
        let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
        h.insert(args[2][..].into(), next.to_string().into_bytes());
        Ok(next)
    })?;
    ctx.notify(Notify::HASH, "hincrby", &args[1]);
    ctx.out.int(result);
    Ok(())
}

pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // In C long double, as Redis on x86-64 (see long_double.rs).
    let delta = long_double::parse(&args[3]).ok_or(CmdError::NotFloat)?;
    // Redis rejects an infinite increment before looking at the key (unlike INCRBYFLOAT).
    if long_double::is_infinite(delta) {
        return Err(CmdError::Msg("ERR value is NaN or Infinity"));
    }
    let text = with_hash(ctx, &args[1], |h| {
        let current = match h.get(&args[2][..]) {
            Some(v) => {
                long_double::parse(v).ok_or(CmdError::Msg("ERR hash value is not a float"))?
            }
            None => long_double::ZERO,
        };
        let next = long_double::add(current, delta)
            .ok_or(CmdError::Msg("ERR increment would produce NaN or Infinity"))?;
        let text = long_double::format(next);
        h.insert(args[2][..].into(), text.clone().into_bytes());
        Ok(text)
    })?;
    ctx.notify(Notify::HASH, "hincrbyfloat", &args[1]);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(super::random_count(&args[2], false)?),
        4 if is(&args[3], "withvalues") => Some(super::random_count(&args[2], true)?),
        _ => return Err(CmdError::Syntax),
    };
    // (WITHVALUES's half-range check is random_count's `paired`.)
    let with_values = args.len() == 4;
    let picked = read_hash(ctx, &args[1], |h| {
        let len = h.len();
        let indices = super::random_indices(len, count.unwrap_or(1));
        indices
            .into_iter()
            .map(|i| {
                let (k, v) = h.get_index(i).expect("in range");
                (k.to_vec(), v.clone())
            })
            .collect::<Vec<_>>()
    })?;
    let Some(picked) = picked else {
        if count.is_some() {
            ctx.out.array(0);
        } else {
            ctx.out.null();
        }
        return Ok(());
    };
    match count {
        None => ctx.out.bulk(&picked[0].0),
        Some(_) => {
            if with_values && ctx.out.resp3() {
                ctx.out.array(picked.len());
                for (k, v) in &picked {
                    ctx.out.array(2);
                    ctx.out.bulk(k);
                    ctx.out.bulk(v);
                }
            } else {
                ctx.out
                    .array(picked.len() * if with_values { 2 } else { 1 });
                for (k, v) in &picked {
                    ctx.out.bulk(k);
                    if with_values {
                        ctx.out.bulk(v);
                    }
                }
            }
        }
    }
    Ok(())
}

pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let scan = scan_args(args, 2)?;
    let page = read_hash(ctx, &args[1], |h| {
        let (next, items) = super::scan_indexmap(h.len(), scan.cursor, scan.count, |i| {
            let (k, v) = h.get_index(i).expect("in range");
            scan.matches(k).then(|| vec![k.to_vec(), v.clone()])
        });
        (next, items)
    })?;
    super::reply_scan(ctx, page.unwrap_or((0, Vec::new())));
    Ok(())
}
