//! Redis 7.0's cluster replies from a [`ClusterTable`]: CLUSTER SLOTS, SHARDS, NODES and INFO,
//! for cache-node in cluster mode and for cache-proxy (which lists itself as the one node
//! owning every slot). Every node is a primary with no replica; there is no cluster bus.

use std::fmt::Write;

use cache_protocol::ReplyBuf;

use crate::{ClusterNode, ClusterTable};

/// `cluster-preferred-endpoint-type`: what MOVED and CLUSTER SLOTS name a node by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Ip,
    Hostname,
    Unknown,
}

impl Endpoint {
    /// The parameter's value (`ip`, `hostname`, `unknown-endpoint`); `ip` otherwise.
    pub fn parse(value: &str) -> Endpoint {
        match value {
            "hostname" => Endpoint::Hostname,
            "unknown-endpoint" => Endpoint::Unknown,
            _ => Endpoint::Ip,
        }
    }

    /// Redis's `getPreferredEndpoint`.
    pub fn of(self, node: &ClusterNode) -> &str {
        match self {
            Endpoint::Ip => &node.ip,
            Endpoint::Hostname if node.hostname.is_empty() => "?",
            Endpoint::Hostname => &node.hostname,
            Endpoint::Unknown => "",
        }
    }
}

/// One node as CLUSTER SLOTS lists it (Redis's `addNodeToNodeReply`).
fn slot_node(out: &mut ReplyBuf, node: &ClusterNode, endpoint: Endpoint) {
    out.array(4);
    match endpoint {
        Endpoint::Unknown => out.null(),
        _ => out.bulk(endpoint.of(node).as_bytes()),
    }
    out.int(i64::from(node.port));
    out.bulk(node.id.as_bytes());
    let ip = endpoint != Endpoint::Ip;
    let hostname = endpoint != Endpoint::Hostname && !node.hostname.is_empty();
    out.map(usize::from(ip) + usize::from(hostname));
    if ip {
        out.bulk(b"ip");
        out.bulk(node.ip.as_bytes());
    }
    if hostname {
        out.bulk(b"hostname");
        out.bulk(node.hostname.as_bytes());
    }
}

/// CLUSTER SLOTS.
pub fn slots(out: &mut ReplyBuf, table: &ClusterTable, endpoint: Endpoint) {
    let runs = table.runs();
    out.array(runs.len());
    for (start, end, owner) in runs {
        out.array(3);
        out.int(i64::from(start));
        out.int(i64::from(end));
        slot_node(out, &table.nodes[owner], endpoint);
    }
}

/// Redis's `clusterReplyShards`: every node is a primary with no replica.
pub fn shards(out: &mut ReplyBuf, table: &ClusterTable, endpoint: Endpoint) {
    out.array(table.nodes.len());
    for node in &table.nodes {
        out.map(2);
        out.bulk(b"slots");
        out.array(node.ranges.len() * 2);
        for &(a, b) in &node.ranges {
            out.int(i64::from(a));
            out.int(i64::from(b));
        }
        out.bulk(b"nodes");
        out.array(1);
        let hostname = !node.hostname.is_empty();
        out.map(7 + usize::from(hostname));
        out.bulk(b"id");
        out.bulk(node.id.as_bytes());
        out.bulk(b"port");
        out.int(i64::from(node.port));
        out.bulk(b"ip");
        out.bulk(node.ip.as_bytes());
        out.bulk(b"endpoint");
        out.bulk(endpoint.of(node).as_bytes());
        if hostname {
            out.bulk(b"hostname");
            out.bulk(node.hostname.as_bytes());
        }
        out.bulk(b"role");
        out.bulk(b"master");
        out.bulk(b"replication-offset");
        out.int(0);
        out.bulk(b"health");
        out.bulk(b"online");
    }
}

/// Redis's `clusterGenNodesDescription`: one line per node, `me` flagged `myself`. There
/// is no bus, so the bus port is 0, and a peer's last pong is `pong_ms` (when the table
/// arrived).
pub fn nodes(table: &ClusterTable, me: Option<usize>, pong_ms: u64) -> String {
    let mut text = String::new();
    for (i, node) in table.nodes.iter().enumerate() {
        let myself = me == Some(i);
        let _ = write!(text, "{} {}:{}@0", node.id, node.ip, node.port);
        if !node.hostname.is_empty() {
            let _ = write!(text, ",{}", node.hostname);
        }
        let (flags, pong) = if myself {
            ("myself,master", 0)
        } else {
            ("master", pong_ms)
        };
        let _ = write!(text, " {flags} - 0 {pong} {} connected", table.epoch);
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

/// Redis's CLUSTER INFO (`ok`: the cluster state); no bus, so no message was sent or
/// received.
pub fn info(table: &ClusterTable, ok: bool) -> String {
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
