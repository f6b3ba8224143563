//! CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT TRACKINGINFO: the commands of
//! client-side caching. The table and the invalidations are in [`crate::tracking`].

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{is, CmdError, CmdResult, Ctx};
use crate::tracking::{flags, prefixes_overlap};

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP]`,
/// with Redis's checks in Redis's order.
pub fn tracking(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut redirect: u64 = 0;
    let mut options = 0u32;
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(CmdError::Msg(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = super::int_arg(&args[j])?;
            // Required to exist now, even though it may go away later (Redis's sanity check).
            let exists = u64::try_from(id)
                .ok()
                .filter(|&id| id > 0)
                .and_then(|id| ctx.shared.clients.get(id))
                .is_some();
            if !exists {
                return Err(CmdError::Msg(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
            redirect = id as u64;
        } else if is(opt, "bcast") {
            options |= flags::BCAST;
        } else if is(opt, "optin") {
            options |= flags::OPTIN;
        } else if is(opt, "optout") {
            options |= flags::OPTOUT;
        } else if is(opt, "noloop") {
            options |= flags::NOLOOP;
        } else if is(opt, "prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let info = ctx.conn.info.clone();
    let current = info.tracking.load(Relaxed);
    if is(&args[2], "on") {
        if options & flags::BCAST == 0 && !prefixes.is_empty() {
            return Err(CmdError::Msg(
                "ERR PREFIX option requires BCAST mode to be enabled",
            ));
        }
        if current & flags::ON != 0 && (current ^ options) & flags::BCAST != 0 {
            return Err(CmdError::Msg("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if options & flags::BCAST != 0 && options & (flags::OPTIN | flags::OPTOUT) != 0 {
            return Err(CmdError::Msg(
                "ERR OPTIN and OPTOUT are not compatible with BCAST",
            ));
        }
        if options & flags::OPTIN != 0 && options & flags::OPTOUT != 0 {
            return Err(CmdError::Msg(
                "ERR You can't specify both OPTIN mode and OPTOUT mode",
            ));
        }
        if (options & flags::OPTIN != 0 && current & flags::OPTOUT != 0)
            || (options & flags::OPTOUT != 0 && current & flags::OPTIN != 0)
        {
            return Err(CmdError::Msg("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if options & flags::BCAST != 0 {
            check_prefixes(ctx, &prefixes)?;
        }
        let own = super::pubsub::subscriptions(ctx).outbox.clone();
        ctx.shared
            .tracking
            .enable(ctx.shared, &info, own, redirect, options, &prefixes);
    } else if is(&args[2], "off") {
        ctx.shared.tracking.disable(ctx.shared, &info);
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.out.ok();
    Ok(())
}

/// Prefixes of one client must not overlap, neither among themselves nor with the ones it
/// already has (Redis's `checkPrefixCollisionsOrReply`).
fn check_prefixes(ctx: &Ctx<'_>, prefixes: &[Bytes]) -> CmdResult {
    let existing = ctx.shared.tracking.prefixes_of(ctx.conn.info.id);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in prefixes.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| prefixes_overlap(old, p)) {
            return Err(CmdError::Owned(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(old)
            )));
        }
        if let Some(other) = prefixes[i + 1..].iter().find(|o| prefixes_overlap(p, o)) {
            return Err(CmdError::Owned(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(other)
            )));
        }
    }
    Ok(())
}

/// `CLIENT CACHING YES|NO`: track (OPTIN) or do not track (OPTOUT) the next command's keys.
pub fn caching(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let info = &ctx.conn.info;
    let current = info.tracking.load(Relaxed);
    if current & flags::ON == 0 {
        return Err(CmdError::Msg("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    }
    if is(&args[2], "yes") {
        if current & flags::OPTIN == 0 {
            return Err(CmdError::Msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(&args[2], "no") {
        if current & flags::OPTOUT == 0 {
            return Err(CmdError::Msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    info.tracking.fetch_or(flags::CACHING, Relaxed);
    ctx.out.ok();
    Ok(())
}

/// `CLIENT GETREDIR`: the REDIRECT target, 0 when tracking without one, -1 when not tracking.
pub fn getredir(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let info = &ctx.conn.info;
    if info.tracking.load(Relaxed) & flags::ON != 0 {
        ctx.out.int(info.redirect.load(Relaxed) as i64);
    } else {
        ctx.out.int(-1);
    }
    Ok(())
}

/// `CLIENT TRACKINGINFO`: flags, redirect and prefixes, in Redis's order.
pub fn trackinginfo(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let info = ctx.conn.info.clone();
    let f = info.tracking.load(Relaxed);
    let on = f & flags::ON != 0;
    let mut names: Vec<&[u8]> = vec![if on { b"on" } else { b"off" }];
    if f & flags::BCAST != 0 {
        names.push(b"bcast");
    }
    if f & flags::OPTIN != 0 {
        names.push(b"optin");
        if f & flags::CACHING != 0 {
            names.push(b"caching-yes");
        }
    }
    if f & flags::OPTOUT != 0 {
        names.push(b"optout");
        if f & flags::CACHING != 0 {
            names.push(b"caching-no");
        }
    }
    if f & flags::NOLOOP != 0 {
        names.push(b"noloop");
    }
    if f & flags::BROKEN_REDIRECT != 0 {
        names.push(b"broken_redirect");
    }
    let prefixes = ctx.shared.tracking.prefixes_of(info.id);
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(names.len());
    for n in names {
        out.bulk(n);
    }
    out.bulk(b"redirect");
    out.int(if on {
        info.redirect.load(Relaxed) as i64
    } else {
        -1
    });
    out.bulk(b"prefixes");
    out.array(prefixes.len());
    for p in &prefixes {
        out.bulk(p);
    }
    Ok(())
}
