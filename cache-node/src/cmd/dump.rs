//! DUMP and RESTORE: a value in Redis's serialization format (the `cache-rdb` codec), so
//! values move between Redis and ferrocache with `redis-cli --pipe`, MIGRATE-style tools or
//! by hand.

use bytes::Bytes;
use cache_rdb::RestoreError;
use cache_store::Entry;

use super::{int_arg, is, CmdError, CmdResult, Ctx, Notify};

/// Whether values are compressed (`rdbcompression`), as Redis's DUMP does.
pub fn compression(ctx: &Ctx<'_>) -> bool {
    ctx.shared
        .config
        .get("rdbcompression")
        .is_none_or(|v| v == "yes")
}

pub fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let compress = compression(ctx);
    let (db, now) = (ctx.db(), ctx.now);
    let payload = ctx
        .shared
        .store
        .lock(&args[1])
        .peek(db, &args[1], now)
        .map(|e| cache_rdb::dump(&e.value, compress));
    match payload {
        Some(p) => ctx.out.bulk(&p),
        None => ctx.out.null(),
    }
    Ok(())
}

/// RESTORE's options, checked in Redis's order.
#[derive(Debug, Default, PartialEq)]
struct Options {
    replace: bool,
    absttl: bool,
    idle_secs: Option<u64>,
    freq: Option<u8>,
}

fn options(args: &[Bytes]) -> Result<Options, CmdError> {
    let mut o = Options::default();
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "replace") {
            o.replace = true;
        } else if is(&args[j], "absttl") {
            o.absttl = true;
        } else if is(&args[j], "idletime") && more && o.freq.is_none() {
            let idle = int_arg(&args[j + 1])?;
            if idle < 0 {
                return Err(CmdError::Msg("ERR Invalid IDLETIME value, must be >= 0"));
            }
            o.idle_secs = Some(idle as u64);
            j += 1;
        } else if is(&args[j], "freq") && more && o.idle_secs.is_none() {
            let freq = int_arg(&args[j + 1])?;
            if !(0..=255).contains(&freq) {
                return Err(CmdError::Msg(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            o.freq = Some(freq as u8);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`.
pub fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let o = options(args)?;
    let key = &args[1][..];
    let (db, now) = (ctx.db(), ctx.now);
    // Redis checks, in order: the key, the TTL, the footer, the value.
    if !o.replace && ctx.store().lock(key).contains(db, key, now) {
        return Err(CmdError::Msg("BUSYKEY Target key name already exists."));
    }
    let ttl = int_arg(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::Msg("ERR Invalid TTL value, must be >= 0"));
    }
    let value = cache_rdb::restore(&args[3]).map_err(|e| match e {
        RestoreError::VersionOrChecksum => {
            CmdError::Msg("ERR DUMP payload version or checksum are wrong")
        }
        RestoreError::BadData => CmdError::Msg("ERR Bad data format"),
    })?;
    let expires_at = match (ttl, o.absttl) {
        (0, _) => 0,
        (t, true) => t as u64,
        (t, false) => now.saturating_add(t as u64),
    };
    let mut locked = ctx.store().lock(key);
    if !o.replace && locked.contains(db, key, now) {
        // Another client created it between the check and now.
        return Err(CmdError::Msg("BUSYKEY Target key name already exists."));
    }
    if expires_at != 0 && expires_at <= now {
        // Already expired: the key ends up absent, as in Redis.
        let deleted = o.replace && locked.remove(db, key, now).is_some();
        drop(locked);
        if deleted {
            ctx.notify(Notify::GENERIC, "del", key);
        }
        ctx.out.ok();
        return Ok(());
    }
    locked.insert(db, key, Entry::with_expiry(value, expires_at), now);
    locked.set_access(db, key, now, o.idle_secs, o.freq);
    drop(locked);
    ctx.notify(Notify::GENERIC, "restore", key);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn options_as_redis_parses_them() {
        let o = options(&args(&[
            "restore", "k", "0", "p", "REPLACE", "idletime", "5",
        ]))
        .unwrap();
        assert_eq!(
            o,
            Options {
                replace: true,
                idle_secs: Some(5),
                ..Options::default()
            }
        );
        // IDLETIME and FREQ exclude each other: the second is a syntax error.
        assert_eq!(
            options(&args(&[
                "restore", "k", "0", "p", "idletime", "5", "freq", "3"
            ])),
            Err(CmdError::Syntax)
        );
        assert_eq!(
            options(&args(&["restore", "k", "0", "p", "freq", "256"])),
            Err(CmdError::Msg(
                "ERR Invalid FREQ value, must be >= 0 and <= 255"
            ))
        );
        assert_eq!(
            options(&args(&["restore", "k", "0", "p", "idletime"])),
            Err(CmdError::Syntax)
        );
    }
}
