//! REPLICAOF / SLAVEOF and ROLE (the replication itself is `crate::replica`).

use bytes::Bytes;

use super::{CmdError, CmdResult, Ctx};
use crate::replica::{self, Master};

/// `REPLICAOF host port` follows a master; `REPLICAOF NO ONE` promotes (the data stays).
pub fn replicaof(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let shared = ctx.shared;
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        if shared.replica.active() {
            replica::set_master(shared, None);
        }
        ctx.out.ok();
        return Ok(());
    }
    if ctx.conn.from_master {
        return Err(CmdError::Msg(
            "ERR Command is not valid when client is a replica.",
        ));
    }
    let port = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (0..=65535).contains(p))
        .ok_or(CmdError::Msg("ERR Invalid master port"))?;
    if let Some(e) = replica::refused(shared) {
        return Err(CmdError::Msg(e));
    }
    let master = Master {
        host: String::from_utf8_lossy(&args[1]).into_owned(),
        port: port as u16,
    };
    if replica::set_master(shared, Some(master)) {
        ctx.out.ok();
    } else {
        ctx.out.simple("OK Already connected to specified master");
    }
    Ok(())
}

pub fn role(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    replica::role(ctx.shared, ctx.out);
    Ok(())
}
