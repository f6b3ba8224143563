//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, TOUCH, RENAME(NX), COPY, MOVE, KEYS, SCAN,
//! RANDOMKEY, the EXPIRE family, TTL family, PERSIST, OBJECT.

use bytes::Bytes;
use cache_protocol::glob::glob_match;
use cache_store::evict;

use super::connection::{db_index, help};
use super::{int_arg, is, CmdError, CmdResult, Ctx, Notify};

fn key_slices(args: &[Bytes]) -> impl Iterator<Item = &[u8]> {
    args.iter().map(|a| &a[..])
}

pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock_keys(key_slices(&args[1..]));
    let removed: Vec<&Bytes> = args[1..]
        .iter()
        .filter(|k| locked.remove(db, k, now).is_some())
        .collect();
    drop(locked);
    for k in &removed {
        ctx.notify(Notify::GENERIC, "del", k);
    }
    let removed = removed.len();
    ctx.out.int(removed as i64);
    Ok(())
}

pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock_keys(key_slices(&args[1..]));
    let n = args[1..]
        .iter()
        .filter(|k| locked.contains(db, k, now))
        .count();
    drop(locked);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock_keys(key_slices(&args[1..]));
    let n = args[1..]
        .iter()
        .filter(|k| locked.get(db, k, now).is_some())
        .count();
    drop(locked);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let name = ctx
        .shared
        .store
        .lock(&args[1])
        .peek(db, &args[1], now)
        .map_or("none", |e| e.value.type_name());
    ctx.out.simple(name);
    Ok(())
}

pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let (src, dst) = (&args[1][..], &args[2][..]);
    let mut locked = ctx.store().lock_keys([src, dst]);
    if !locked.contains(db, src, now) {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        drop(locked);
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if nx && locked.contains(db, dst, now) {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    }
    let entry = locked.remove(db, src, now).expect("checked above");
    locked.insert(db, dst, entry, now);
    drop(locked);
    ctx.notify(Notify::GENERIC, "rename_from", src);
    ctx.notify(Notify::GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (&args[1][..], &args[2][..]);
    let mut target_db = ctx.db();
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
            i += 1;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            target_db = db_index(ctx, &args[i + 1])?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (db, now) = (ctx.db(), ctx.now);
    if ctx.shared.cluster.enabled && target_db != db {
        return Err(CmdError::Msg(
            "ERR Copying to another database is not allowed in cluster mode",
        ));
    }
    if src == dst && db == target_db {
        return Err(CmdError::Msg(
            "ERR source and destination objects are the same",
        ));
    }
    let mut locked = ctx.store().lock_keys([src, dst]);
    let Some(entry) = locked.peek(db, src, now).cloned() else {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    };
    if !replace && locked.contains(target_db, dst, now) {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    }
    locked.insert(target_db, dst, entry, now);
    drop(locked);
    ctx.out.int(1);
    Ok(())
}

pub fn move_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.shared.cluster.enabled {
        return Err(CmdError::Msg("ERR MOVE is not allowed in cluster mode"));
    }
    let to = db_index(ctx, &args[2])?;
    if to == ctx.db() {
        return Err(CmdError::Msg(
            "ERR source and destination objects are the same",
        ));
    }
    let moved = ctx.store().move_key(&args[1], ctx.db(), to, ctx.now);
    ctx.out.int(i64::from(moved));
    Ok(())
}

pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1][..];
    let matches = |k: &[u8]| pattern == b"*" || glob_match(pattern, k, false);
    let keys = ctx.shared.store.keys(ctx.db(), matches, ctx.now);
    ctx.out.array(keys.len());
    for k in keys {
        ctx.out.bulk(&k);
    }
    Ok(())
}

pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = super::parse_cursor(&args[1])?;
    let mut pattern: Option<&[u8]> = None;
    let mut count = 10usize;
    let mut type_filter: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(&args[i], "count") && more {
            let n = int_arg(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = n as usize;
        } else if is(&args[i], "match") && more {
            pattern = Some(&args[i + 1]);
        } else if is(&args[i], "type") && more {
            type_filter = Some(&args[i + 1]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let pattern = pattern.filter(|p| *p != b"*");
    let page = ctx
        .shared
        .store
        .scan(ctx.db(), cursor, count, ctx.now, |k, e| {
            pattern.is_none_or(|p| glob_match(p, k, false))
                && type_filter
                    .is_none_or(|t| t.eq_ignore_ascii_case(e.value.type_name().as_bytes()))
        });
    ctx.out.array(2);
    ctx.out.bulk(page.cursor.to_string().as_bytes());
    ctx.out.array(page.keys.len());
    for k in page.keys {
        ctx.out.bulk(&k);
    }
    Ok(())
}

pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    match ctx.shared.store.random_key(ctx.db(), ctx.now) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: `unit_ms` is 1000 for seconds; `absolute` for the AT
/// forms.
pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes], unit_ms: i64, absolute: bool) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else {
            return Err(CmdError::Owned(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::Msg(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::Msg(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let invalid = || CmdError::Owned(format!("ERR invalid expire time in '{name}' command"));
    let when = int_arg(&args[2])?;
    let now = ctx.now as i64;
    let when_ms = when.checked_mul(unit_ms).ok_or_else(invalid)?;
    let when_ms = if absolute {
        when_ms
    } else {
        when_ms.checked_add(now).ok_or_else(invalid)?
    };
    let db = ctx.db();
    let mut locked = ctx.store().lock(&args[1]);
    let Some(entry) = locked.peek(db, &args[1], ctx.now) else {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    };
    let current = entry.expires_at;
    // No TTL counts as an infinite one for GT and LT.
    let allowed = if nx {
        current == 0
    } else if xx {
        current != 0 && (!gt || when_ms > current as i64) && (!lt || when_ms < current as i64)
    } else if gt {
        current != 0 && when_ms > current as i64
    } else if lt {
        current == 0 || when_ms < current as i64
    } else {
        true
    };
    if !allowed {
        drop(locked);
        ctx.out.int(0);
        return Ok(());
    }
    let deleted = when_ms <= now;
    if deleted {
        locked.remove(db, &args[1], ctx.now);
    } else {
        locked.set_expiry(db, &args[1], when_ms as u64);
    }
    drop(locked);
    ctx.notify(
        Notify::GENERIC,
        if deleted { "del" } else { "expire" },
        &args[1],
    );
    ctx.out.int(1);
    Ok(())
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes], millis: bool, absolute: bool) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let expires_at = ctx
        .shared
        .store
        .lock(&args[1])
        .peek(db, &args[1], now)
        .map(|e| e.expires_at);
    let reply = match expires_at {
        None => -2,
        Some(0) => -1,
        Some(at) => {
            let v = if absolute { at } else { at.saturating_sub(now) } as i64;
            if millis {
                v
            } else {
                (v + 500) / 1000
            }
        }
    };
    ctx.out.int(reply);
    Ok(())
}

pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(&args[1]);
    let had_ttl = locked
        .peek(db, &args[1], now)
        .is_some_and(|e| e.expires_at != 0);
    if had_ttl {
        locked.set_expiry(db, &args[1], 0);
    }
    drop(locked);
    if had_ttl {
        ctx.notify(Notify::GENERIC, "persist", &args[1]);
    }
    ctx.out.int(i64::from(had_ttl));
    Ok(())
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
];

pub fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        help(ctx, OBJECT_HELP);
        return Ok(());
    }
    let (db, now) = (ctx.db(), ctx.now);
    let found = ctx
        .shared
        .store
        .lock(&args[2])
        .peek(db, &args[2], now)
        .map(|e| (e.value.encoding(), e.access));
    let policy = ctx.shared.store.eviction.policy();
    let Some((encoding, access)) = found else {
        ctx.out.null();
        return Ok(());
    };
    if is(sub, "encoding") {
        ctx.out.bulk(encoding.as_bytes());
    } else if is(sub, "refcount") {
        ctx.out.int(1);
    } else if is(sub, "idletime") {
        if policy.lfu() {
            return Err(CmdError::Msg("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
        }
        ctx.out
            .int(i64::from(evict::lru_idle_ms(access, now) / 1000));
    } else if is(sub, "freq") {
        if policy.lfu() {
            let decay = ctx
                .shared
                .store
                .eviction
                .lfu_decay_time
                .load(std::sync::atomic::Ordering::Relaxed);
            ctx.out
                .int(i64::from(evict::lfu_decayed(access, now, decay)));
            return Ok(());
        }
        return Err(CmdError::Msg("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    Ok(())
}
