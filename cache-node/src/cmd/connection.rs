//! Connection commands: PING, ECHO, QUIT, RESET, SELECT, AUTH, HELLO, CLIENT.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use cache_protocol::Protocol;

use super::{int_arg, is, CmdError, CmdResult, Ctx};

pub fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.conn.subscribed() && !ctx.out.resp3() {
        // In RESP2 subscribed mode PING answers in the shape of a message.
        if args.len() > 2 {
            return Err(CmdError::Msg(
                "ERR wrong number of arguments for 'ping' command",
            ));
        }
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
        return Ok(());
    }
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => {
            return Err(CmdError::Msg(
                "ERR wrong number of arguments for 'ping' command",
            ))
        }
    }
    Ok(())
}

pub fn echo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

pub fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.out.ok();
    ctx.conn.close = true;
    Ok(())
}

pub fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.conn.multi = None;
    ctx.conn.multi_failed = false;
    super::multi::unwatch_all(ctx);
    if ctx.conn.subs.is_some() {
        let mut sink = cache_protocol::ReplyBuf::new();
        std::mem::swap(ctx.out, &mut sink);
        let _ = super::pubsub::unsubscribe(ctx, &[Bytes::from_static(b"unsubscribe")], false);
        let _ = super::pubsub::unsubscribe(ctx, &[Bytes::from_static(b"punsubscribe")], true);
        std::mem::swap(ctx.out, &mut sink);
    }
    select_db(ctx, 0);
    ctx.conn.readonly = false;
    ctx.shared.tracking.disable(ctx.shared, &ctx.conn.info);
    ctx.shared.monitors.remove(ctx.conn.info.id);
    set_protocol(ctx, Protocol::Resp2);
    *ctx.conn.info.name.lock().unwrap_or_else(|e| e.into_inner()) = String::new();
    become_user(ctx, ctx.shared.acl.default_user());
    ctx.conn.authenticated = ctx.shared.acl.default_open();
    ctx.out.simple("RESET");
    Ok(())
}

fn select_db(ctx: &mut Ctx<'_>, db: usize) {
    ctx.conn.db = db;
    ctx.conn.info.db.store(db, Relaxed);
}

fn set_protocol(ctx: &mut Ctx<'_>, protocol: Protocol) {
    ctx.out.protocol = protocol;
    super::pubsub::protocol_changed(ctx);
    let n = if protocol == Protocol::Resp3 { 3 } else { 2 };
    ctx.conn.info.resp.store(n, Relaxed);
}

/// Parses a database index argument against the configured count.
pub fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CmdError> {
    // Redis reads a DB index as a C int first (`getIntFromObjectOrReply`).
    let db = int_arg(arg)?;
    if i32::try_from(db).is_err() {
        return Err(CmdError::Msg(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    if db < 0 || db as usize >= ctx.shared.store.databases() {
        return Err(CmdError::DbIndex);
    }
    Ok(db as usize)
}

pub fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // As Redis: in cluster mode any index but 0 is refused before its range is checked.
    let cluster = ctx.shared.cluster.enabled;
    let db = match db_index(ctx, &args[1]) {
        Err(CmdError::DbIndex) if cluster => None,
        r => Some(r?),
    };
    if cluster && db != Some(0) {
        return Err(CmdError::Msg("ERR SELECT is not allowed in cluster mode"));
    }
    let db = db.unwrap_or(0);
    select_db(ctx, db);
    ctx.out.ok();
    Ok(())
}

fn become_user(ctx: &mut Ctx<'_>, user: std::sync::Arc<cache_acl::UserCell>) {
    *ctx.conn.info.user.lock().unwrap_or_else(|e| e.into_inner()) = user.name.clone();
    ctx.conn.user = user;
}

/// Checks credentials against the ACL users; the connection runs as that user from now on.
fn check_password(ctx: &mut Ctx<'_>, user: &[u8], pass: &[u8]) -> CmdResult {
    let Some(cell) = ctx.shared.acl.authenticate(user, pass) else {
        return Err(CmdError::Msg(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ));
    };
    become_user(ctx, cell);
    ctx.conn.authenticated = true;
    Ok(())
}

pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {
            if ctx.shared.acl.default_nopass() {
                return Err(CmdError::Msg("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
            }
            check_password(ctx, b"default", &args[1])?;
        }
        3 => check_password(ctx, &args[1], &args[2])?,
        _ => return Err(CmdError::Syntax),
    }
    ctx.out.ok();
    Ok(())
}

pub fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut protocol = ctx.out.protocol;
    if args.len() >= 2 {
        let version = super::parse_i64(&args[1]).ok_or(CmdError::Msg(
            "ERR Protocol version is not an integer or out of range",
        ))?;
        protocol = match version {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(CmdError::Msg("NOPROTO unsupported protocol version")),
        };
    }
    let mut i = 2;
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "auth") && more >= 2 {
            check_password(ctx, &args[i + 1], &args[i + 2])?;
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            name = Some(valid_name(&args[i + 1])?);
            i += 2;
        } else {
            return Err(CmdError::Owned(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if !ctx.conn.authenticated {
        return Err(CmdError::Msg("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(name) = name {
        *ctx.conn.info.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }
    set_protocol(ctx, protocol);
    super::pubsub::protocol_changed(ctx);
    if protocol == Protocol::Resp3 {
        // A RESP3 connection can receive pushes (tracking invalidations for itself or as
        // another client's REDIRECT target): give it a queue now.
        super::pubsub::subscriptions(ctx);
    }
    let id = ctx.conn.info.id as i64;
    ctx.out.hello(
        b"redis",
        crate::cmd::server::REDIS_VERSION.as_bytes(),
        id,
        if ctx.shared.cluster.enabled {
            b"cluster"
        } else {
            b"standalone"
        },
    );
    Ok(())
}

fn valid_name(name: &[u8]) -> Result<String, CmdError> {
    // Redis allows printable ASCII without spaces.
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::Msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
    "    SKIPME (yes|no), USER <username>, TYPE (normal|pubsub).",
    "LIST [TYPE (normal|pubsub)] [ID <client-id> [<client-id> ...]]",
    "    Return information about client connections.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "HELP",
    "    Print this help.",
];

pub fn help(ctx: &mut Ctx<'_>, lines: &[&str]) {
    ctx.out.array(lines.len());
    for line in lines {
        ctx.out.simple(line);
    }
}

pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let info = ctx.conn.info.clone();
    if is(sub, "id") {
        ctx.out.int(info.id as i64);
    } else if is(sub, "setname") {
        let name = valid_name(&args[2])?;
        *info.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
        ctx.out.ok();
    } else if is(sub, "getname") {
        let name = info.name();
        if name.is_empty() {
            ctx.out.null();
        } else {
            ctx.out.bulk(name.as_bytes());
        }
    } else if is(sub, "info") {
        let line = info.describe(query_len(args)) + "\n";
        ctx.out.verbatim("txt", line.as_bytes());
    } else if is(sub, "list") {
        client_list(ctx, args)?;
    } else if is(sub, "kill") {
        client_kill(ctx, args)?;
    } else if is(sub, "tracking") {
        super::tracking::tracking(ctx, args)?;
    } else if is(sub, "caching") {
        super::tracking::caching(ctx, args)?;
    } else if is(sub, "unblock") {
        let id = super::int_arg(&args[2])?;
        let with_error = match args.get(3) {
            None => false,
            Some(r) if is(r, "timeout") => false,
            Some(r) if is(r, "error") => true,
            Some(_) => {
                return Err(CmdError::Msg(
                    "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                ))
            }
        };
        if args.len() > 4 {
            return Err(CmdError::Syntax);
        }
        let done = u64::try_from(id)
            .is_ok_and(|id| ctx.shared.blocking.unblock(ctx.shared, id, with_error));
        ctx.out.int(i64::from(done));
    } else if is(sub, "reply") {
        // OFF and SKIP are not answered; `dispatch` silences what follows.
        let mode = &args[2];
        ctx.conn.reply = if is(mode, "on") {
            ctx.out.ok();
            super::ReplyMode::On
        } else if is(mode, "off") {
            super::ReplyMode::Off
        } else if is(mode, "skip") {
            super::ReplyMode::SkipNext
        } else {
            return Err(CmdError::Syntax);
        };
    } else if is(sub, "getredir") {
        super::tracking::getredir(ctx, args)?;
    } else if is(sub, "trackinginfo") {
        super::tracking::trackinginfo(ctx, args)?;
    } else if is(sub, "setinfo") {
        let value = String::from_utf8_lossy(&args[3]).into_owned();
        if value.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
            return Err(CmdError::Owned(format!(
                "ERR {} cannot contain spaces, newlines or special characters.",
                String::from_utf8_lossy(&args[2]).to_ascii_uppercase()
            )));
        }
        if is(&args[2], "lib-name") {
            *info.lib_name.lock().unwrap_or_else(|e| e.into_inner()) = value;
        } else if is(&args[2], "lib-ver") {
            *info.lib_ver.lock().unwrap_or_else(|e| e.into_inner()) = value;
        } else {
            return Err(CmdError::Owned(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(&args[2])
            )));
        }
        ctx.out.ok();
    } else {
        help(ctx, CLIENT_HELP);
    }
    Ok(())
}

fn client_list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            if !(is(t, "normal") || is(t, "pubsub") || is(t, "master") || is(t, "replica")) {
                return Err(CmdError::Owned(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                )));
            }
            // Every client of ours is a normal one.
            if !is(t, "normal") {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if is(&args[i], "id") && i + 1 < args.len() {
            let mut list = Vec::new();
            for a in &args[i + 1..] {
                // Any integer is accepted, as Redis does (`CLIENT LIST ID 0` is an empty
                // list, not an error); ids start at 1, so one below that matches nobody.
                let id = super::parse_i64(a).ok_or(CmdError::Msg("ERR Invalid client ID"))?;
                list.push(u64::try_from(id).unwrap_or(0));
            }
            ids = Some(list);
            i = args.len();
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut text = String::new();
    for c in ctx.shared.clients.all() {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
            continue;
        }
        let qbuf = if c.id == ctx.conn.info.id {
            query_len(args)
        } else {
            0
        };
        text.push_str(&c.describe(qbuf));
        text.push('\n');
    }
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// The size of `args` as a RESP request: what Redis's `qbuf` shows for the client running
/// CLIENT LIST / CLIENT INFO (its own command is still in its query buffer).
fn query_len(args: &[Bytes]) -> usize {
    let digits = |n: usize| n.to_string().len();
    3 + digits(args.len())
        + args
            .iter()
            .map(|a| 5 + digits(a.len()) + a.len())
            .sum::<usize>()
}

/// CLIENT KILL's `TYPE` filter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    PubSub,
    /// `master`, `replica`/`slave`: no client of ours is one.
    Replication,
}

fn client_kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let me = ctx.conn.info.id;
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(&args[2]);
        let Some(c) = ctx
            .shared
            .clients
            .all()
            .into_iter()
            .find(|c| c.peer.to_string() == addr)
        else {
            return Err(CmdError::Msg("ERR No such client"));
        };
        if c.id == me {
            ctx.conn.close = true;
        } else {
            c.request_kill();
        }
        ctx.out.ok();
        return Ok(());
    }
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skipme = true;
    let mut user = None;
    let mut kind = None;
    for pair in args[2..].chunks(2) {
        let (opt, value) = (&pair[0], &pair[1]);
        if is(opt, "id") {
            id = Some(
                super::parse_i64(value)
                    .filter(|v| *v > 0)
                    .ok_or(CmdError::Msg("ERR client-id should be greater than 0"))?
                    as u64,
            );
        } else if is(opt, "addr") {
            addr = Some(String::from_utf8_lossy(value).into_owned());
        } else if is(opt, "laddr") {
            laddr = Some(String::from_utf8_lossy(value).into_owned());
        } else if is(opt, "skipme") {
            skipme = if is(value, "yes") {
                true
            } else if is(value, "no") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else if is(opt, "user") {
            let name = String::from_utf8_lossy(value).into_owned();
            if ctx.shared.acl.get(&name).is_none() {
                return Err(CmdError::Owned(format!("ERR No such user '{name}'")));
            }
            user = Some(name);
        } else if is(opt, "type") {
            kind = Some(if is(value, "normal") {
                ClientType::Normal
            } else if is(value, "pubsub") {
                ClientType::PubSub
            } else if is(value, "master") || is(value, "replica") || is(value, "slave") {
                ClientType::Replication
            } else {
                return Err(CmdError::Owned(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(value)
                )));
            });
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        let matches = id.is_none_or(|id| id == c.id)
            && addr.as_ref().is_none_or(|a| *a == c.peer.to_string())
            && laddr.as_ref().is_none_or(|a| *a == c.local.to_string())
            && user.as_ref().is_none_or(|u| *u == c.user())
            && kind.is_none_or(|k| {
                let subscribed = c.outbox().is_some_and(|o| o.subscribed());
                match k {
                    ClientType::Normal => !subscribed,
                    ClientType::PubSub => subscribed,
                    ClientType::Replication => false,
                }
            });
        if !matches || (skipme && c.id == me) {
            continue;
        }
        if c.id == me {
            ctx.conn.close = true;
        } else {
            c.request_kill();
        }
        killed += 1;
    }
    ctx.out.int(killed);
    Ok(())
}
