//! The proxy as the membership authority of cache-nodes in cluster mode: every routing it
//! publishes (start, ejection, readmission, `PROXY ADD`/`REMOVE`) is first pushed to the
//! live nodes as their slot table (`CLUSTER SETTABLE`, the routing's epoch), so a cluster
//! client talking to the nodes directly finds the proxy's placement. A node that answers
//! `-MOVED` (its table is newer than the routing a request was sent by) is followed.
//!
//! ```text
//!  change ─► build_routing(epoch + 1) ─► push_table: SETTABLE to each live node ─► publish
//!  request ─► node ─► -MOVED slot host:port ─► same request to host:port (3 hops at most)
//! ```
//!
//! Pushed only when every member is a cache-node in cluster mode (CLUSTER MYID answers);
//! otherwise the proxy routes as it always has.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use cache_routing::{ClusterNode, ClusterTable, NODE_ID_LEN, SLOTS};

use crate::cluster::{Cluster, NodeState, Routing};

/// How many MOVED replies one request follows.
const MOVED_HOPS: usize = 3;

/// The node's cluster id when it is a cache-node in cluster mode (`CLUSTER MYID`).
pub(crate) async fn learn_id(cluster: &Cluster, node: &NodeState) {
    let id = match cluster.node_command(&node.addr, &["CLUSTER", "MYID"]).await {
        Ok(reply) => {
            let text = String::from_utf8_lossy(&reply).into_owned();
            let mut lines = text.split("\r\n");
            match (lines.next(), lines.next()) {
                (Some(header), Some(id)) if header.starts_with('$') && id.len() == NODE_ID_LEN => {
                    Some(id.to_string())
                }
                _ => None,
            }
        }
        Err(_) => None,
    };
    *node.cluster_id.lock().unwrap_or_else(|e| e.into_inner()) = id;
}

/// The table of `routing`: each member with the slots it serves now; `None` unless every
/// member is in cluster mode.
fn table_of(routing: &Routing) -> Option<ClusterTable> {
    let mut nodes = Vec::with_capacity(routing.nodes.len());
    for node in &routing.nodes {
        let id = node
            .cluster_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let (host, port) = node.addr.rsplit_once(':')?;
        nodes.push(ClusterNode::new(id, host, port.parse().ok()?, Vec::new()));
    }
    for slot in 0..SLOTS as u16 {
        if let Some(i) = routing.router.node_for_slot(slot) {
            match nodes[i].ranges.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => nodes[i].ranges.push((slot, slot)),
            }
        }
    }
    ClusterTable::new(routing.epoch, nodes).ok()
}

impl Cluster {
    /// Pushes `routing` as the slot table to its live members (before it is published).
    pub(crate) async fn push_table(&self, routing: &Routing) {
        let live: Vec<&NodeState> = (routing.nodes.iter().zip(&routing.live))
            .filter(|(_, live)| **live)
            .map(|(n, _)| &**n)
            .collect();
        self.push_table_to(routing, &live).await;
    }

    /// Pushes `routing` as the slot table to `targets` (a removed node gets the table that
    /// no longer lists it: it then owns nothing and redirects every key).
    pub(crate) async fn push_table_to(&self, routing: &Routing, targets: &[&NodeState]) {
        let Some(table) = table_of(routing) else {
            self.cluster_mode.store(false, Relaxed);
            return;
        };
        let mut args = vec!["CLUSTER".to_string(), "SETTABLE".to_string()];
        args.extend(table.to_args());
        let mut pushed = 0;
        for node in targets {
            match self.node_command(&node.addr, &args).await {
                Ok(reply) if reply.starts_with(b"+OK") => pushed += 1,
                Ok(reply) => {
                    tracing::warn!(node = %node.addr, reply = %String::from_utf8_lossy(&reply).trim_end(), "node refused the slot table")
                }
                Err(e) => {
                    tracing::warn!(node = %node.addr, error = %e, "could not push the slot table")
                }
            }
        }
        self.cluster_mode.store(true, Relaxed);
        tracing::info!(epoch = table.epoch, nodes = pushed, "slot table pushed");
    }

    /// Follows `-MOVED` replies: the same request to the node named, a few hops at most.
    pub(crate) async fn follow_moved(&self, mut reply: Bytes, args: &[Bytes]) -> Bytes {
        for _ in 0..MOVED_HOPS {
            let Some(addr) = moved_to(&reply) else {
                return reply;
            };
            tracing::debug!(%addr, "following MOVED");
            reply = match self.node_command(&addr, args).await {
                Ok(next) => next,
                Err(_) => return reply,
            };
        }
        reply
    }
}

/// `host:port` of a `-MOVED slot host:port` reply.
fn moved_to(reply: &[u8]) -> Option<String> {
    let line = reply.strip_prefix(b"-MOVED ")?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    line.split(' ').nth(1).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_of_a_moved_reply() {
        assert_eq!(
            moved_to(b"-MOVED 3999 127.0.0.1:6381\r\n").as_deref(),
            Some("127.0.0.1:6381")
        );
        assert_eq!(moved_to(b"-ERR no\r\n"), None);
    }

    #[test]
    fn a_routing_becomes_a_table_only_in_cluster_mode() {
        let routing = Routing::for_test(&["127.0.0.1:7000", "127.0.0.1:7001"], &[true, true]);
        assert!(table_of(&routing).is_none());
        for (i, node) in routing.nodes.iter().enumerate() {
            *node.cluster_id.lock().unwrap() = Some(i.to_string().repeat(NODE_ID_LEN));
        }
        let table = table_of(&routing).unwrap();
        assert_eq!(table.assigned(), SLOTS);
        for slot in [0, 777, 16383] {
            assert_eq!(table.owner_index(slot), routing.router.node_for_slot(slot));
        }
        assert_eq!(table.nodes[1].port, 7001);
    }
}
