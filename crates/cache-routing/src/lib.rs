//! Which node holds a key: the proxy's routing, with no I/O and no other crate of ours.
//!
//! Slots are Redis Cluster's, so a key's slot is the same here, on the nodes (which index
//! their keys per slot) and in any cluster-aware client.

mod slot;

pub use slot::{hash_tag, key_slot, SLOTS};
