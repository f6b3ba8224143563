//! The one type the proxy routes with.

use std::fmt;

use crate::ketama::{Continuum, HashTag};
use crate::rendezvous::{slot_table, NO_NODE};
use crate::{key_slot, ConfigError, KeyHash, NodeSpec, SlotSet, SLOTS};

/// How keys are placed on nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distribution {
    /// Redis Cluster slots (`CRC16` of the key or its `{tag}`), each owned by the node that
    /// wins its weighted rendezvous. The default.
    #[default]
    Rendezvous,
    /// Twemproxy's ketama, to take over a twemproxy fleet without a cold cache.
    Ketama {
        hash: KeyHash,
        /// Twemproxy's `hash_tag:`; `None` hashes whole keys, as twemproxy by default.
        hash_tag: Option<HashTag>,
    },
}

impl Distribution {
    /// `"rendezvous"`, or `"ketama"` with twemproxy's defaults (`fnv1a_64`, no hash tag).
    ///
    /// # Errors
    /// [`ConfigError::UnknownDistribution`] for any other name.
    pub fn parse(name: &str) -> Result<Distribution, ConfigError> {
        match name {
            "rendezvous" => Ok(Distribution::Rendezvous),
            "ketama" => Ok(Distribution::Ketama {
                hash: KeyHash::default(),
                hash_tag: None,
            }),
            _ => Err(ConfigError::UnknownDistribution(name.to_owned())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Rendezvous => "rendezvous",
            Distribution::Ketama { .. } => "ketama",
        }
    }
}

/// Key → node placement for one membership epoch. Immutable: a membership change (a node
/// added, removed, ejected or readmitted) builds a new `Router` with the next epoch.
///
/// Node indices are positions in the `nodes` slice given to [`Router::build`]; comparing two
/// routers (see [`moved_slots`](Router::moved_slots)) assumes the same list, or one that only
/// grew at the end.
#[derive(Clone)]
pub struct Router {
    epoch: u64,
    nodes: usize,
    place: Placement,
}

#[derive(Clone)]
enum Placement {
    /// `SLOTS` entries: the node of each slot, or `NO_NODE`.
    Slots(Box<[u16]>),
    Ketama {
        continuum: Continuum,
        hash: KeyHash,
        hash_tag: Option<HashTag>,
    },
}

impl Router {
    /// Places keys on the nodes that are `live` and have a non-zero weight; the keys of the
    /// others go where they would go if those nodes did not exist (the next choice in
    /// rendezvous order, or the rebuilt ketama ring, as twemproxy after an ejection).
    ///
    /// # Panics
    /// If `live.len() != nodes.len()`, or for rendezvous with 65535 nodes or more.
    pub fn build(dist: &Distribution, nodes: &[NodeSpec], live: &[bool], epoch: u64) -> Router {
        assert_eq!(live.len(), nodes.len(), "one live flag per node");
        let eligible = |i: usize| live[i] && nodes[i].weight > 0;
        let place = match *dist {
            Distribution::Rendezvous => Placement::Slots(slot_table(nodes, eligible)),
            Distribution::Ketama { hash, hash_tag } => Placement::Ketama {
                continuum: Continuum::build(nodes, eligible),
                hash,
                hash_tag,
            },
        };
        Router {
            epoch,
            nodes: nodes.len(),
            place,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of nodes the router was built with, live or not.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// The node that holds `key`, or `None` when no node is live. Allocates nothing.
    #[inline]
    pub fn node_for_key(&self, key: &[u8]) -> Option<usize> {
        match &self.place {
            Placement::Slots(table) => node_at(table, key_slot(key)),
            Placement::Ketama {
                continuum,
                hash,
                hash_tag,
            } => {
                let key = match hash_tag {
                    Some(tag) => tag.extract(key),
                    None => key,
                };
                // Twemproxy does not hash an empty key: it dispatches hash 0.
                let h = if key.is_empty() { 0 } else { hash.hash(key) };
                continuum.dispatch(h)
            }
        }
    }

    /// The node that owns `slot` under rendezvous; `None` when no node is live, when `slot` is
    /// out of range, and always under ketama, where slots are only bookkeeping.
    #[inline]
    pub fn node_for_slot(&self, slot: u16) -> Option<usize> {
        match &self.place {
            Placement::Slots(table) if (slot as usize) < SLOTS => node_at(table, slot),
            _ => None,
        }
    }

    /// Fraction of the keyspace each node holds (of the slots, or of ketama's hash ring); all
    /// zeros when no node is live.
    pub fn shares(&self) -> Vec<f64> {
        match &self.place {
            Placement::Slots(table) => {
                let mut owned = vec![0usize; self.nodes];
                for &node in table.iter().filter(|&&n| n != NO_NODE) {
                    owned[node as usize] += 1;
                }
                owned.iter().map(|&n| n as f64 / SLOTS as f64).collect()
            }
            Placement::Ketama { continuum, .. } => continuum.shares(self.nodes),
        }
    }

    /// The slots whose node differs between `previous` and `self`: what must be dropped so
    /// that no node serves a slot it held before a change and gets back later. Under ketama
    /// keys do not follow slots, so every slot counts as moved.
    pub fn moved_slots(&self, previous: &Router) -> SlotSet {
        match (&self.place, &previous.place) {
            (Placement::Slots(now), Placement::Slots(before)) => (0..SLOTS as u16)
                .filter(|&s| now[s as usize] != before[s as usize])
                .collect(),
            _ => SlotSet::full(),
        }
    }
}

#[inline]
fn node_at(table: &[u16], slot: u16) -> Option<usize> {
    match table[slot as usize] {
        NO_NODE => None,
        node => Some(node as usize),
    }
}

impl fmt::Debug for Router {
    /// The epoch and the shares, not 16384 table entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dist = match &self.place {
            Placement::Slots(_) => "rendezvous".to_owned(),
            Placement::Ketama { hash, hash_tag, .. } => {
                format!(
                    "ketama/{}{}",
                    hash.name(),
                    if hash_tag.is_some() { "/tag" } else { "" }
                )
            }
        };
        f.debug_struct("Router")
            .field("epoch", &self.epoch)
            .field("distribution", &dist)
            .field("shares", &self.shares())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<NodeSpec> {
        (0..n)
            .map(|i| NodeSpec::new(format!("node-{i}"), 1))
            .collect()
    }

    const KETAMA: Distribution = Distribution::Ketama {
        hash: KeyHash::Fnv1a_64,
        hash_tag: Some(HashTag::BRACES),
    };

    #[test]
    fn parse_names() {
        assert_eq!(
            Distribution::parse("rendezvous"),
            Ok(Distribution::Rendezvous)
        );
        assert_eq!(
            Distribution::parse("ketama"),
            Ok(Distribution::Ketama {
                hash: KeyHash::Fnv1a_64,
                hash_tag: None
            })
        );
        assert_eq!(
            Distribution::parse("modula"),
            Err(ConfigError::UnknownDistribution("modula".into()))
        );
        assert_eq!(Distribution::default().name(), "rendezvous");
    }

    #[test]
    fn rendezvous_routes_keys_by_slot() {
        let r = Router::build(&Distribution::Rendezvous, &nodes(3), &[true; 3], 7);
        assert_eq!(r.epoch(), 7);
        assert_eq!(r.node_count(), 3);
        for key in [&b"foo"[..], b"{user1000}.a", b"", b"\xff\xfe"] {
            assert_eq!(r.node_for_key(key), r.node_for_slot(key_slot(key)));
        }
        assert_eq!(
            r.node_for_key(b"{user1000}.a"),
            r.node_for_key(b"{user1000}.b"),
            "a hash tag keeps keys together"
        );
        assert_eq!(r.node_for_slot(16384), None);
        let shares = r.shares();
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(shares.iter().all(|&s| s > 0.25 && s < 0.42), "{shares:?}");
    }

    #[test]
    fn no_live_node_routes_nothing() {
        for dist in [Distribution::Rendezvous, KETAMA] {
            let r = Router::build(&dist, &nodes(2), &[false, false], 1);
            assert_eq!(r.node_for_key(b"k"), None);
            assert_eq!(r.node_for_slot(0), None);
            assert_eq!(r.shares(), [0.0, 0.0]);
            let empty = Router::build(&dist, &[], &[], 1);
            assert_eq!(empty.node_for_key(b"k"), None);
        }
    }

    #[test]
    fn ketama_routes_keys_by_tag_and_has_no_slots() {
        let r = Router::build(&KETAMA, &nodes(5), &[true; 5], 1);
        assert_eq!(r.node_for_slot(0), None);
        assert_eq!(r.node_for_key(b"a{same}b"), r.node_for_key(b"same"));
        let shares = r.shares();
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(shares.iter().all(|&s| s > 0.1 && s < 0.3), "{shares:?}");
    }

    #[test]
    fn ketama_empty_key_takes_hash_zero() {
        let r = Router::build(&KETAMA, &nodes(3), &[true; 3], 1);
        let Placement::Ketama { continuum, .. } = &r.place else {
            unreachable!()
        };
        assert_eq!(r.node_for_key(b""), continuum.dispatch(0));
    }

    #[test]
    fn dead_node_keys_go_elsewhere_and_come_back() {
        for dist in [Distribution::Rendezvous, KETAMA] {
            let all = Router::build(&dist, &nodes(4), &[true; 4], 1);
            let ejected = Router::build(&dist, &nodes(4), &[true, false, true, true], 2);
            let back = Router::build(&dist, &nodes(4), &[true; 4], 3);
            for i in 0..2000 {
                let key = format!("key:{i}");
                let key = key.as_bytes();
                assert_ne!(ejected.node_for_key(key), Some(1));
                if all.node_for_key(key) != Some(1) {
                    assert_eq!(all.node_for_key(key), ejected.node_for_key(key));
                }
                assert_eq!(all.node_for_key(key), back.node_for_key(key));
            }
        }
    }

    #[test]
    fn moved_slots_are_the_slots_of_the_changed_node() {
        let all = Router::build(&Distribution::Rendezvous, &nodes(4), &[true; 4], 1);
        let ejected = Router::build(
            &Distribution::Rendezvous,
            &nodes(4),
            &[true, true, false, true],
            2,
        );
        let moved = ejected.moved_slots(&all);
        let owned: SlotSet = (0..SLOTS as u16)
            .filter(|&s| all.node_for_slot(s) == Some(2))
            .collect();
        assert_eq!(moved, owned);
        assert!(moved.ranges().count() > 1);
        assert!(all.moved_slots(&all).is_empty());
        let ketama = Router::build(&KETAMA, &nodes(4), &[true; 4], 3);
        assert_eq!(ketama.moved_slots(&all).len(), SLOTS);
    }

    #[test]
    fn placement_ignores_node_order() {
        // Indices follow the list, but which name gets a key does not.
        let forward = nodes(5);
        let mut reversed = forward.clone();
        reversed.reverse();
        for dist in [Distribution::Rendezvous, KETAMA] {
            let a = Router::build(&dist, &forward, &[true; 5], 1);
            let b = Router::build(&dist, &reversed, &[true; 5], 1);
            for i in 0..2000 {
                let key = format!("k{i}");
                let na = a.node_for_key(key.as_bytes()).unwrap();
                let nb = b.node_for_key(key.as_bytes()).unwrap();
                assert_eq!(forward[na].name, reversed[nb].name);
            }
        }
    }

    #[test]
    fn router_can_be_shared_across_tasks() {
        // The proxy publishes each epoch's router behind an Arc to every connection task.
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Router>();
        shareable::<SlotSet>();
    }

    #[test]
    #[should_panic(expected = "one live flag per node")]
    fn live_mask_must_match() {
        Router::build(&Distribution::Rendezvous, &nodes(3), &[true; 2], 1);
    }
}
