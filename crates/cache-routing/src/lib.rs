//! Which node holds a key: the proxy's routing and the cluster-mode slot table, with no I/O
//! (cache-protocol only for the cluster replies' encoder).
//!
//! ```text
//!                        ┌─ Rendezvous: key ─CRC16({tag})─► slot ─► table[slot] ──► node
//!  key ─► Router ────────┤              (table: weighted rendezvous per slot, per epoch)
//!   (one per epoch)      └─ Ketama:     key ─{tag}─► KeyHash ─► md5 point ring ──► node
//!                                       (twemproxy's placement, bit for bit)
//!
//!  membership change ─► Router::build(.., live, epoch + 1) ─► moved_slots(old) ─► SlotSet
//! ```
//!
//! Slots are Redis Cluster's, so a key's slot is the same here, on the nodes (which index
//! their keys per slot) and in any cluster-aware client. The slot → node table is computed, not
//! stored: any proxy with the same node list builds the same table, and a change of membership
//! moves only the slots it must. Ketama exists so that a fleet behind twemproxy can switch over
//! with its cache warm.
//!
//! ```
//! use cache_routing::{Distribution, NodeSpec, Router, TwemproxyServer};
//!
//! let nodes = [NodeSpec::new("10.0.0.1:6379", 1), NodeSpec::new("10.0.0.2:6379", 2)];
//! let router = Router::build(&Distribution::Rendezvous, &nodes, &[true, true], 1);
//! let node = router.node_for_key(b"user:{42}:cart").unwrap();
//! assert_eq!(router.node_for_key(b"user:{42}:seen"), Some(node)); // same hash tag, same node
//!
//! // A node is ejected: epoch 2, and the slots to drop on it before it comes back.
//! let ejected = Router::build(&Distribution::Rendezvous, &nodes, &[true, false], 2);
//! assert_eq!(ejected.node_for_key(b"anything"), Some(0));
//! let moved = ejected.moved_slots(&router);
//! assert!(moved.iter().all(|slot| router.node_for_slot(slot) == Some(1)));
//!
//! // A twemproxy pool, placed as nutcracker places it.
//! let pool: Vec<NodeSpec> = ["10.0.0.1:6379:1 a", "10.0.0.2:6379:1 b"]
//!     .iter()
//!     .map(|s| TwemproxyServer::parse(s).map(|s| s.node))
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! let ketama = Distribution::parse("ketama").unwrap();
//! let router = Router::build(&ketama, &pool, &[true, true], 1);
//! assert!(router.node_for_key(b"user:42").is_some());
//! ```

pub mod cluster_reply;
mod cluster_table;
mod ketama;
mod key_hash;
mod node;
mod rendezvous;
mod router;
mod slot;
mod slot_set;

pub use cluster_table::{random_node_id, ClusterNode, ClusterTable, TableError, NODE_ID_LEN};
pub use ketama::HashTag;
pub use key_hash::KeyHash;
pub use node::{NodeSpec, TwemproxyServer};
pub use router::{Distribution, Router};
pub use slot::{hash_tag, key_slot, SLOTS};
pub use slot_set::{Iter as SlotIter, Ranges as SlotRanges, SlotSet};

/// A routing setting that cannot be used; the message names the setting and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown distribution '{0}' (expected rendezvous or ketama)")]
    UnknownDistribution(String),
    #[error("unknown hash '{0}' (expected one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins)")]
    UnknownHash(String),
    #[error("hash tag '{0}' is not two characters")]
    BadHashTag(String),
    #[error("server '{0}' is not \"host:port:weight [name]\" or \"/socket/path:weight [name]\" with a weight above 0")]
    BadServer(String),
}
