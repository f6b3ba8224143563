//! The cluster-mode subcommands of CLUSTER, formatted as Redis 7.0's: SLOTS, SHARDS, NODES,
//! INFO, MYID, LINKS; SETTABLE (ours: installs the slot table, see `crate::cluster`); and
//! ASKING / READONLY / READWRITE. The table is listed as the node presents it
//! ([`ClusterState::view`](crate::cluster::ClusterState::view): its own entry announced).

use std::fmt::Write;

use bytes::Bytes;
use cache_protocol::command::Cmd;
use cache_routing::{ClusterNode, ClusterTable};

use super::{is, CmdError, CmdResult, Ctx};
use crate::cluster::{state_ok, Endpoint, Installed};

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
    let endpoint = Endpoint::configured(shared);
    if is(sub, "slots") {
        slots(ctx, &view.table, endpoint);
    } else if is(sub, "shards") {
        shards(ctx, &view.table, endpoint);
    } else if is(sub, "nodes") {
        let text = nodes(&view);
        ctx.out.verbatim("txt", text.as_bytes());
    } else if is(sub, "info") {
        let text = info(&view, state_ok(shared, &view.table));
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

/// One node as CLUSTER SLOTS lists it (Redis's `addNodeToNodeReply`).
fn slot_node(ctx: &mut Ctx<'_>, node: &ClusterNode, endpoint: Endpoint) {
    ctx.out.array(4);
    match endpoint {
        Endpoint::Unknown => ctx.out.null(),
        _ => ctx.out.bulk(endpoint.of(node).as_bytes()),
    }
    ctx.out.int(i64::from(node.port));
    ctx.out.bulk(node.id.as_bytes());
    let ip = endpoint != Endpoint::Ip;
    let hostname = endpoint != Endpoint::Hostname && !node.hostname.is_empty();
    ctx.out.map(usize::from(ip) + usize::from(hostname));
    if ip {
        ctx.out.bulk(b"ip");
        ctx.out.bulk(node.ip.as_bytes());
    }
    if hostname {
        ctx.out.bulk(b"hostname");
        ctx.out.bulk(node.hostname.as_bytes());
    }
}

fn slots(ctx: &mut Ctx<'_>, table: &ClusterTable, endpoint: Endpoint) {
    let runs = table.runs();
    ctx.out.array(runs.len());
    for (start, end, owner) in runs {
        ctx.out.array(3);
        ctx.out.int(i64::from(start));
        ctx.out.int(i64::from(end));
        slot_node(ctx, &table.nodes[owner], endpoint);
    }
}

/// Redis's `clusterReplyShards`: every node is a primary with no replica.
fn shards(ctx: &mut Ctx<'_>, table: &ClusterTable, endpoint: Endpoint) {
    ctx.out.array(table.nodes.len());
    for node in &table.nodes {
        ctx.out.map(2);
        ctx.out.bulk(b"slots");
        ctx.out.array(node.ranges.len() * 2);
        for &(a, b) in &node.ranges {
            ctx.out.int(i64::from(a));
            ctx.out.int(i64::from(b));
        }
        ctx.out.bulk(b"nodes");
        ctx.out.array(1);
        let hostname = !node.hostname.is_empty();
        ctx.out.map(7 + usize::from(hostname));
        ctx.out.bulk(b"id");
        ctx.out.bulk(node.id.as_bytes());
        ctx.out.bulk(b"port");
        ctx.out.int(i64::from(node.port));
        ctx.out.bulk(b"ip");
        ctx.out.bulk(node.ip.as_bytes());
        ctx.out.bulk(b"endpoint");
        ctx.out.bulk(endpoint.of(node).as_bytes());
        if hostname {
            ctx.out.bulk(b"hostname");
            ctx.out.bulk(node.hostname.as_bytes());
        }
        ctx.out.bulk(b"role");
        ctx.out.bulk(b"master");
        ctx.out.bulk(b"replication-offset");
        ctx.out.int(0);
        ctx.out.bulk(b"health");
        ctx.out.bulk(b"online");
    }
}

/// Redis's `clusterGenNodesDescription`: one line per node. There is no bus, so the bus
/// port is 0, and a peer's last pong is when its table arrived.
fn nodes(view: &Installed) -> String {
    let mut text = String::new();
    for (i, node) in view.table.nodes.iter().enumerate() {
        let myself = view.me == Some(i);
        let _ = write!(text, "{} {}:{}@0", node.id, node.ip, node.port);
        if !node.hostname.is_empty() {
            let _ = write!(text, ",{}", node.hostname);
        }
        let (flags, pong) = if myself {
            ("myself,master", 0)
        } else {
            ("master", view.at_ms)
        };
        let _ = write!(text, " {flags} - 0 {pong} {} connected", view.table.epoch);
        for &(a, b) in &node.ranges {
            if a == b {
                let _ = write!(text, " {a}");
            } else {
                let _ = write!(text, " {a}-{b}");
            }
        }
        text.push('\n');
    }
    text
}

/// Redis's CLUSTER INFO; no bus, so no message was sent or received.
fn info(view: &Installed, ok: bool) -> String {
    let table = &view.table;
    let assigned = table.assigned();
    format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        if ok { "ok" } else { "fail" },
        table.nodes.len(),
        table.size(),
        table.epoch,
        table.epoch,
    )
}
