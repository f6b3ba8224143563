//! String and bitmap commands.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use cache_store::{Entry, Value};

use super::{int_arg, is, long_double, CmdError, CmdResult, Ctx, Notify};

fn as_str(entry: &Entry) -> Result<&[u8], CmdError> {
    entry.value.as_bytes().ok_or(CmdError::WrongType)
}

fn as_str_mut(entry: &mut Entry) -> Result<&mut Vec<u8>, CmdError> {
    entry.value.bytes_mut().ok_or(CmdError::WrongType)
}

/// The largest string a write may produce (`proto-max-bulk-len`).
fn check_size(ctx: &Ctx<'_>, len: u64) -> CmdResult {
    if len > ctx.shared.config.proto_max_bulk_len.load(Relaxed) {
        return Err(CmdError::Msg(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    Ok(())
}

pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    match locked.get(db, &args[1], now) {
        Some(e) => {
            let s = as_str(e)?;
            ctx.out.bulk(s);
            drop(locked);
            ctx.hit(true);
        }
        None => {
            drop(locked);
            ctx.out.null();
            ctx.hit(false);
        }
    }
    Ok(())
}

/// When a SET-like command makes the key expire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Drop any TTL.
    None,
    /// Keep the current TTL (KEEPTTL).
    Keep,
    /// Absolute Unix milliseconds.
    At(u64),
}

/// Turns an EX/PX/EXAT/PXAT argument into absolute milliseconds, with Redis's checks.
fn expiry_arg(
    ctx: &Ctx<'_>,
    arg: &[u8],
    unit_ms: i64,
    absolute: bool,
    cmd: &str,
) -> Result<u64, CmdError> {
    let v = int_arg(arg)?;
    let invalid = || CmdError::Owned(format!("ERR invalid expire time in '{cmd}' command"));
    if v <= 0 {
        return Err(invalid());
    }
    let ms = v.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(ctx.now as i64).ok_or_else(invalid)?
    };
    Ok(at as u64)
}

/// Parses `EX s | PX ms | EXAT t | PXAT tms` at `args[i]`, if that is what it is.
fn parse_expiry_option(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    i: usize,
    cmd: &str,
) -> Result<Option<u64>, CmdError> {
    let opt = &args[i];
    let (unit, absolute) = if is(opt, "ex") {
        (1000, false)
    } else if is(opt, "px") {
        (1, false)
    } else if is(opt, "exat") {
        (1000, true)
    } else if is(opt, "pxat") {
        (1, true)
    } else {
        return Ok(None);
    };
    let Some(value) = args.get(i + 1) else {
        return Err(CmdError::Syntax);
    };
    expiry_arg(ctx, value, unit, absolute, cmd).map(Some)
}

/// Stores a string, applying `expiry`; an already-passed absolute time deletes the key.
fn store_string(
    ctx: &Ctx<'_>,
    key: &[u8],
    value: &[u8],
    expiry: Expiry,
    locked: &mut cache_store::Locked<'_>,
) {
    let (db, now) = (ctx.db(), ctx.now);
    let expires_at = match expiry {
        Expiry::None => 0,
        Expiry::At(at) => at,
        Expiry::Keep => locked.peek(db, key, now).map_or(0, |e| e.expires_at),
    };
    if expires_at != 0 && expires_at <= now {
        locked.remove(db, key, now);
        return;
    }
    locked.set_string(db, key, value, expires_at, now);
}

/// The keyspace events of a string store, as Redis sends them: `set`, then `expire` when the
/// command gave a TTL. (Only MSET used to notify: SET, SETNX, SETEX and GETSET sent nothing.)
fn notify_stored(ctx: &Ctx<'_>, key: &[u8], with_expiry: bool) {
    ctx.notify(Notify::STRING, "set", key);
    if with_expiry {
        ctx.notify(Notify::GENERIC, "expire", key);
    }
}

/// SET and GETEX options, parsed as Redis's `parseExtendedStringArgumentsOrReply`: an option
/// may repeat (the last expire time wins: `SET k v EX 10 EX 20` sets 20 s) but not meet a
/// conflicting one (`EX 10 PX 10`, `NX XX`, `KEEPTTL EX 1`, `PERSIST EX 1`). The expire time
/// itself is checked later, by the caller (GETEX only once the key is known to be a string).
#[derive(Default)]
struct StringOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// Index of the last EX/PX/EXAT/PXAT word (its value follows it).
    expire_at: Option<usize>,
}

fn string_opts(args: &[Bytes], start: usize, set: bool) -> Result<StringOpts, CmdError> {
    const EXPIRES: [&str; 4] = ["ex", "px", "exat", "pxat"];
    let mut o = StringOpts::default();
    // Which of EXPIRES was given, if any.
    let mut kind: Option<usize> = None;
    let mut i = start;
    while i < args.len() {
        let a = &args[i];
        let expire = EXPIRES.iter().position(|w| is(a, w));
        if set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if set && is(a, "get") {
            o.get = true;
        } else if set && is(a, "keepttl") && kind.is_none() {
            o.keepttl = true;
        } else if !set && is(a, "persist") && kind.is_none() {
            o.persist = true;
        } else if let Some(k) = expire.filter(|&k| {
            !o.keepttl && !o.persist && kind.is_none_or(|g| g == k) && i + 1 < args.len()
        }) {
            kind = Some(k);
            o.expire_at = Some(i);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let StringOpts {
        nx,
        xx,
        get,
        keepttl: keep,
        expire_at,
        ..
    } = string_opts(args, 3, true)?;
    let expiry = match expire_at {
        Some(i) => parse_expiry_option(ctx, args, i, "set")?,
        None => None,
    };
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    if !(nx || xx || get || keep) {
        // Plain SET (the common case): no need to look at the old value first.
        let e = expiry.map_or(Expiry::None, Expiry::At);
        store_string(ctx, key, &args[2], e, &mut locked);
        drop(locked);
        notify_stored(ctx, key, expiry.is_some());
        ctx.out.ok();
        return Ok(());
    }
    let old = locked.get(db, key, now);
    let exists = old.is_some();
    let old_value = match (get, old) {
        (true, Some(e)) => Some(as_str(e)?.to_vec()),
        _ => None,
    };
    let write = !(nx && exists || xx && !exists);
    if write {
        let e = match expiry {
            Some(at) => Expiry::At(at),
            None if keep => Expiry::Keep,
            None => Expiry::None,
        };
        store_string(ctx, key, &args[2], e, &mut locked);
    }
    drop(locked);
    if write {
        notify_stored(ctx, key, expiry.is_some());
    }
    if get {
        match old_value {
            Some(v) => ctx.out.bulk(&v),
            None => ctx.out.null(),
        }
    } else if write {
        ctx.out.ok();
    } else {
        ctx.out.null();
    }
    Ok(())
}

pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let created = !locked.contains(db, &args[1], now);
    if created {
        store_string(ctx, &args[1], &args[2], Expiry::None, &mut locked);
    }
    drop(locked);
    if created {
        notify_stored(ctx, &args[1], false);
    }
    ctx.out.int(i64::from(created));
    Ok(())
}

pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes], unit_ms: i64) -> CmdResult {
    let name = if unit_ms == 1 { "psetex" } else { "setex" };
    let at = expiry_arg(ctx, &args[2], unit_ms, false, name)?;
    let mut locked = ctx.store().lock(&args[1]);
    store_string(ctx, &args[1], &args[3], Expiry::At(at), &mut locked);
    drop(locked);
    notify_stored(ctx, &args[1], true);
    ctx.out.ok();
    Ok(())
}

pub fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let old = match locked.get(db, &args[1], now) {
        Some(e) => Some(as_str(e)?.to_vec()),
        None => None,
    };
    store_string(ctx, &args[1], &args[2], Expiry::None, &mut locked);
    drop(locked);
    notify_stored(ctx, &args[1], false);
    match old {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    if let Some(e) = locked.get(db, &args[1], now) {
        as_str(e)?;
    }
    match locked.remove(db, &args[1], now) {
        Some(Entry { value, .. }) if value.as_bytes().is_some() => {
            drop(locked);
            ctx.notify(Notify::GENERIC, "del", &args[1]);
            ctx.out.bulk(value.as_bytes().unwrap_or_default());
        }
        // Checked to be a string above.
        Some(_) | None => {
            drop(locked);
            ctx.out.null();
        }
    }
    Ok(())
}

pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Options are checked for syntax first, but (as Redis's getexCommand) the expire time is
    // only validated after the key is found to be a string: `GETEX nosuch EX abc` is nil and
    // `GETEX list EX abc` WRONGTYPE.
    let opts = string_opts(args, 2, false)?;
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let Some(e) = locked.get(db, key, now) else {
        drop(locked);
        ctx.out.null();
        return Ok(());
    };
    let value = as_str(e)?.to_vec();
    let expiry = match opts.expire_at {
        Some(i) => Some(Expiry::At(
            parse_expiry_option(ctx, args, i, "getex")?.expect("an expiry option"),
        )),
        None if opts.persist => Some(Expiry::None),
        None => None,
    };
    match expiry {
        Some(Expiry::At(at)) if at <= now => {
            locked.remove(db, key, now);
        }
        Some(Expiry::At(at)) => {
            locked.set_expiry(db, key, at);
        }
        Some(Expiry::None) => {
            locked.set_expiry(db, key, 0);
        }
        _ => {}
    }
    drop(locked);
    ctx.out.bulk(&value);
    Ok(())
}

pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let keys = &args[1..];
    let mut locked = ctx.store().lock_keys(keys.iter().map(|k| &k[..]));
    ctx.out.array(keys.len());
    let mut hits = 0;
    for k in keys {
        match locked.get(db, k, now).and_then(|e| e.value.as_bytes()) {
            Some(s) => {
                ctx.out.bulk(s);
                hits += 1;
            }
            // MGET answers nil for a key of another type, not WRONGTYPE.
            None => ctx.out.null(),
        }
    }
    drop(locked);
    let stripe = ctx.shared.stats.local();
    stripe.keyspace_hits.fetch_add(hits, Relaxed);
    stripe
        .keyspace_misses
        .fetch_add(keys.len() as u64 - hits, Relaxed);
    Ok(())
}

pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> CmdResult {
    if args.len().is_multiple_of(2) {
        let name = if nx { "msetnx" } else { "mset" };
        return Err(CmdError::Owned(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    }
    let (db, now) = (ctx.db(), ctx.now);
    let pairs = &args[1..];
    let mut locked = ctx
        .shared
        .store
        .lock_keys(pairs.chunks(2).map(|p| &p[0][..]));
    if nx && pairs.chunks(2).any(|p| locked.contains(db, &p[0], now)) {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    }
    for p in pairs.chunks(2) {
        locked.insert(db, &p[0], Entry::new(Value::string(&p[1][..])), now);
    }
    drop(locked);
    for p in pairs.chunks(2) {
        ctx.notify(Notify::STRING, "set", &p[0]);
    }
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

pub fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: Result<i64, CmdError>) -> CmdResult {
    let delta = delta?;
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(key);
    let result = match locked.get_mut(db, key, now) {
        Some(e) => {
            let s = as_str(e)?;
            let current = if s.len() <= 20 {
                cache_protocol::parse_i64(s)
            } else {
                None
            }
            .ok_or(CmdError::NotInteger)?;
            let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
            // A counter stays a compact string: replaced, not grown in place.
            let mut digits = [0u8; 20];
            let text = cache_protocol::reply::format_i64(next, &mut digits);
            match &mut e.value {
                // Same number of digits: rewrite in place, no allocation.
                Value::Str(s) if s.len() == text.len() => s.copy_from_slice(text),
                other => *other = Value::string(text),
            }
            next
        }
        None => {
            locked.insert(
                db,
                key,
                Entry::new(Value::string(delta.to_string().into_bytes())),
                now,
            );
            delta
        }
    };
    drop(locked);
    ctx.notify(Notify::STRING, "incrby", key);
    ctx.out.int(result);
    Ok(())
}

pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    // Redis checks the key's type, then its value, and only then parses the increment:
    // `INCRBYFLOAT list x` is WRONGTYPE, not "not a valid float".
    // In C long double, as Redis on x86-64 (see long_double.rs).
    let current = match locked.get(db, key, now) {
        Some(e) => long_double::parse(as_str(e)?).ok_or(CmdError::NotFloat)?,
        None => long_double::ZERO,
    };
    let delta = long_double::parse(&args[2]).ok_or(CmdError::NotFloat)?;
    let next = long_double::add(current, delta)
        .ok_or(CmdError::Msg("ERR increment would produce NaN or Infinity"))?;
    let text = long_double::format(next);
    match locked.get_mut(db, key, now) {
        Some(e) => {
            as_str(e)?;
            e.value = Value::string(text.as_bytes());
        }
        None => {
            locked.insert(
                db,
                key,
                Entry::new(Value::string(text.clone().into_bytes())),
                now,
            );
        }
    }
    drop(locked);
    ctx.notify(Notify::STRING, "incrbyfloat", key);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let max = ctx.shared.config.proto_max_bulk_len.load(Relaxed);
    let mut locked = ctx.store().lock(key);
    let len = match locked.get_mut(db, key, now) {
        Some(e) => {
            let s = as_str_mut(e)?;
            if (s.len() + args[2].len()) as u64 > max {
                return Err(CmdError::Msg(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            s.extend_from_slice(&args[2]);
            s.len()
        }
        None => {
            locked.insert(db, key, Entry::new(Value::string(&args[2][..])), now);
            args[2].len()
        }
    };
    drop(locked);
    ctx.notify(Notify::STRING, "append", key);
    ctx.out.int(len as i64);
    Ok(())
}

pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let len = match locked.get(db, &args[1], now) {
        Some(e) => as_str(e)?.len(),
        None => 0,
    };
    drop(locked);
    ctx.out.int(len as i64);
    Ok(())
}

pub fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut start = int_arg(&args[2])?;
    let mut end = int_arg(&args[3])?;
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let Some(e) = locked.get(db, &args[1], now) else {
        drop(locked);
        ctx.out.bulk(b"");
        return Ok(());
    };
    let s = as_str(e)?;
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        drop(locked);
        ctx.out.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        drop(locked);
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[start as usize..=end as usize]);
    }
    Ok(())
}

pub fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = int_arg(&args[2])?;
    if offset < 0 {
        return Err(CmdError::Msg("ERR offset is out of range"));
    }
    let value = &args[3];
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let exists = match locked.get(db, key, now) {
        Some(e) => {
            as_str(e)?;
            true
        }
        None => false,
    };
    if value.is_empty() {
        let len = match locked.get(db, key, now) {
            Some(e) => as_str(e)?.len(),
            None => 0,
        };
        drop(locked);
        ctx.out.int(len as i64);
        return Ok(());
    }
    check_size(ctx, offset as u64 + value.len() as u64)?;
    let offset = offset as usize;
    if !exists {
        locked.insert(db, key, Entry::new(Value::raw_string()), now);
    }
    let s = as_str_mut(locked.get_mut(db, key, now).expect("present"))?;
    if s.len() < offset + value.len() {
        s.resize(offset + value.len(), 0);
    }
    s[offset..offset + value.len()].copy_from_slice(value);
    let len = s.len();
    drop(locked);
    ctx.out.int(len as i64);
    Ok(())
}

fn bit_offset(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u64, CmdError> {
    let err = CmdError::Msg("ERR bit offset is not an integer or out of range");
    let v = cache_protocol::parse_i64(arg).ok_or(err.clone())?;
    let max = ctx.shared.config.proto_max_bulk_len.load(Relaxed);
    if v < 0 || (v as u64 >> 3) >= max {
        return Err(err);
    }
    Ok(v as u64)
}

pub fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2])?;
    let on = match &args[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return Err(CmdError::Msg("ERR bit is not an integer or out of range")),
    };
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    if locked.get(db, key, now).is_none() {
        locked.insert(db, key, Entry::new(Value::raw_string()), now);
    }
    let s = as_str_mut(locked.get_mut(db, key, now).expect("present"))?;
    let byte = (offset >> 3) as usize;
    if s.len() <= byte {
        s.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (offset & 7));
    let old = s[byte] & mask != 0;
    if on {
        s[byte] |= mask;
    } else {
        s[byte] &= !mask;
    }
    drop(locked);
    ctx.out.int(i64::from(old));
    Ok(())
}

pub fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2])?;
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let bit = match locked.get(db, &args[1], now) {
        Some(e) => {
            let s = as_str(e)?;
            let byte = (offset >> 3) as usize;
            byte < s.len() && s[byte] & (1 << (7 - (offset & 7))) != 0
        }
        None => false,
    };
    drop(locked);
    ctx.out.int(i64::from(bit));
    Ok(())
}

/// Resolves a BITCOUNT/BITPOS range to inclusive bounds in bits or bytes, Redis-style.
/// Returns None for an empty range.
fn resolve_range(mut start: i64, mut end: i64, total: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start <= end).then_some((start, end))
}

fn bit_at(s: &[u8], bit: i64) -> bool {
    s[(bit >> 3) as usize] & (1 << (7 - (bit & 7))) != 0
}

fn unit_is_bit(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

pub fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let Some(e) = locked.get(db, &args[1], now) else {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    };
    let s = as_str(e)?;
    let count = match args.len() {
        2 => s.iter().map(|b| b.count_ones() as i64).sum(),
        4 | 5 => {
            let start = int_arg(&args[2])?;
            let end = int_arg(&args[3])?;
            if start < 0 && end < 0 && start > end {
                // Redis answers this before it reads the BYTE/BIT word: `BITCOUNT k -1 -3 x`
                // is 0, not a syntax error.
                0
            } else {
                let bits = args.len() == 5 && unit_is_bit(&args[4])?;
                let total = if bits {
                    s.len() as i64 * 8
                } else {
                    s.len() as i64
                };
                match resolve_range(start, end, total) {
                    None => 0,
                    Some((a, b)) if bits => (a..=b).filter(|&i| bit_at(s, i)).count() as i64,
                    Some((a, b)) => s[a as usize..=b as usize]
                        .iter()
                        .map(|b| b.count_ones() as i64)
                        .sum(),
                }
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    drop(locked);
    ctx.out.int(count);
    Ok(())
}

pub fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let bit = int_arg(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::Msg("ERR The bit argument must be 1 or 0."));
    }
    let want = bit == 1;
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let Some(e) = locked.get(db, &args[1], now) else {
        drop(locked);
        ctx.out.int(if want { -1 } else { 0 });
        return Ok(());
    };
    let s = as_str(e)?;
    let len = s.len() as i64;
    let (range, end_given, bits) = match args.len() {
        3 => (resolve_range(0, len - 1, len), false, false),
        4..=6 => {
            let start = int_arg(&args[3])?;
            let bits = args.len() == 6 && unit_is_bit(&args[5])?;
            let total = if bits { len * 8 } else { len };
            let (end, end_given) = if args.len() >= 5 {
                (int_arg(&args[4])?, true)
            } else {
                (total - 1, false)
            };
            (resolve_range(start, end, total), end_given, bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some((a, b)) = range else {
        drop(locked);
        ctx.out.int(-1);
        return Ok(());
    };
    let (first_bit, last_bit) = if bits { (a, b) } else { (a * 8, b * 8 + 7) };
    let found = (first_bit..=last_bit).find(|&i| bit_at(s, i) == want);
    drop(locked);
    let pos = match found {
        Some(p) => p,
        // Past the string the bits are 0: looking for a 0 without an explicit end finds the
        // first bit after the range.
        None if !want && !end_given => last_bit + 1,
        None => -1,
    };
    ctx.out.int(pos);
    Ok(())
}
