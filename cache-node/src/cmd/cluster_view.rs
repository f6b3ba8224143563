//! The cluster-mode subcommands of CLUSTER, formatted as Redis 7.0's: SLOTS, SHARDS, NODES,
//! INFO, MYID, LINKS; SETTABLE (ours: installs the slot table, see `crate::cluster`); and
//! ASKING / READONLY / READWRITE. The table is listed as the node presents it
//! ([`ClusterState::view`](crate::cluster::ClusterState::view): its own entry announced).

use bytes::Bytes;
use cache_protocol::command::Cmd;
use cache_routing::cluster_reply;
use cache_routing::ClusterTable;

use super::{is, CmdError, CmdResult, Ctx};
use crate::cluster::state_ok;

const DISABLED: &str = "ERR This instance has cluster support disabled";

/// Answers the cluster-mode subcommand `sub`; `false` when it is not one.
pub fn subcommand(ctx: &mut Ctx<'_>, sub: &[u8], args: &[Bytes]) -> Result<bool, CmdError> {
    const NAMES: &[&str] = &[
        "slots", "shards", "nodes", "info", "myid", "links", "settable",
    ];
    if !NAMES.iter().any(|n| is(sub, n)) {
        return Ok(false);
    }
    let shared = ctx.shared;
    if !shared.cluster.enabled {
        return Err(CmdError::Msg(DISABLED));
    }
    if is(sub, "settable") {
        let words: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
        let table =
            ClusterTable::parse_args(&words).map_err(|e| CmdError::Owned(format!("ERR {e}")))?;
        shared
            .cluster
            .install(shared, table)
            .map_err(CmdError::Owned)?;
        ctx.out.ok();
        return Ok(true);
    }
    let view = shared.cluster.view(shared);
    let endpoint = crate::cluster::endpoint(shared);
    if is(sub, "slots") {
        cluster_reply::slots(ctx.out, &view.table, endpoint);
    } else if is(sub, "shards") {
        cluster_reply::shards(ctx.out, &view.table, endpoint);
    } else if is(sub, "nodes") {
        let text = cluster_reply::nodes(&view.table, view.me, view.at_ms);
        ctx.out.verbatim("txt", text.as_bytes());
    } else if is(sub, "info") {
        let text = cluster_reply::info(&view.table, state_ok(shared, &view.table));
        ctx.out.verbatim("txt", text.as_bytes());
    } else if is(sub, "myid") {
        ctx.out.bulk(shared.cluster.myid.as_bytes());
    } else {
        // LINKS: there is no cluster bus, so no link to a peer.
        ctx.out.array(0);
    }
    Ok(true)
}

/// ASKING, READONLY, READWRITE.
pub fn connection_mode(ctx: &mut Ctx<'_>, cmd: Cmd) -> CmdResult {
    if !ctx.shared.cluster.enabled {
        return Err(CmdError::Msg(DISABLED));
    }
    match cmd {
        Cmd::Readonly => ctx.conn.readonly = true,
        Cmd::Readwrite => ctx.conn.readonly = false,
        // ASKING matters only while a slot migrates into this node, which it never does yet.
        _ => {}
    }
    ctx.out.ok();
    Ok(())
}
