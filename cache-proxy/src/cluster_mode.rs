//! The proxy as a Redis Cluster of one node: a cluster client (redis-py `RedisCluster`,
//! ioredis `Cluster`, `redis-cli -c`, ...) given the proxy's address asks CLUSTER SLOTS and
//! finds one primary, the proxy itself, owning all 16384 slots, so it sends everything here
//! and the proxy routes as it does for any client (Dragonfly's emulated cluster mode).
//!
//! The address listed is the client port's; when the proxy listens on every interface
//! (`0.0.0.0`) it is empty, which cluster clients read as "the address you used".

use bytes::Bytes;
use cache_routing::cluster_reply::{self, Endpoint};
use cache_routing::{key_slot, ClusterNode, ClusterTable, SLOTS};

use crate::client::Client;
use crate::cluster::Cluster;

/// The CLUSTER subcommands the proxy answers itself.
const ANSWERED: &[&str] = &[
    "slots", "shards", "nodes", "info", "myid", "links", "keyslot",
];

pub fn answers(args: &[Bytes]) -> bool {
    args.get(1).is_some_and(|a| {
        ANSWERED
            .iter()
            .any(|n| a.eq_ignore_ascii_case(n.as_bytes()))
    })
}

/// One node, the proxy, owning every slot, under the proxy's routing epoch.
fn table(cluster: &Cluster) -> ClusterTable {
    let addr = cluster.listen_addr.get();
    let ip = match addr {
        Some(a) if !a.ip().is_unspecified() => a.ip().to_string(),
        _ => String::new(),
    };
    let port = addr.map_or(0, |a| a.port());
    let me = ClusterNode::new(
        cluster.node_id.clone(),
        &ip,
        port,
        vec![(0, SLOTS as u16 - 1)],
    );
    ClusterTable::new(cluster.epoch(), vec![me]).unwrap_or_else(|_| ClusterTable::empty())
}

impl Client {
    /// CLUSTER SLOTS / SHARDS / NODES / INFO / MYID / LINKS / KEYSLOT.
    pub(crate) fn cluster_command(&mut self, args: &[Bytes]) {
        let cluster = self.worker.cluster.clone();
        let table = table(&cluster);
        let mut out = cache_protocol::ReplyBuf::new();
        if self.resp3 {
            out.protocol = cache_protocol::Protocol::Resp3;
        }
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match sub.as_str() {
            "slots" => cluster_reply::slots(&mut out, &table, Endpoint::Ip),
            "shards" => cluster_reply::shards(&mut out, &table, Endpoint::Ip),
            "nodes" => {
                let text = cluster_reply::nodes(&table, Some(0), 0);
                out.verbatim("txt", text.as_bytes());
            }
            "info" => out.verbatim("txt", cluster_reply::info(&table, true).as_bytes()),
            "myid" => out.bulk(cluster.node_id.as_bytes()),
            "keyslot" => out.int(i64::from(key_slot(&args[2]))),
            // LINKS: no cluster bus, no peer.
            _ => out.array(0),
        }
        self.ready(out.buf.freeze());
    }
}
