//! Twemproxy's `distribution: ketama`, point for point, so that a twemproxy fleet can switch
//! to the proxy with every key still on the node that holds it.
//!
//! Each live server gets `floor(share × 40 × live servers) × 4` points (160 at equal weights):
//! the md5 of `"<name>-<i>"` gives four 32-bit points. A key goes to the first point at or
//! after its hash, wrapping to the first point. Dead servers are simply left out of the
//! rebuild, as twemproxy does on ejection.

use std::io::Write;

use crate::{ConfigError, NodeSpec};

/// Points per server at equal weights, and points per md5 digest (twemproxy's constants).
const POINTS_PER_SERVER: f32 = 160.0;
const POINTS_PER_HASH: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    value: u32,
    node: u32,
}

/// The sorted ring of points.
#[derive(Debug, Clone)]
pub(crate) struct Continuum {
    points: Vec<Point>,
}

impl Continuum {
    /// The continuum twemproxy's `ketama_update` builds for the nodes with `eligible(i)`.
    pub(crate) fn build(nodes: &[NodeSpec], eligible: impl Fn(usize) -> bool) -> Continuum {
        let live: Vec<usize> = (0..nodes.len()).filter(|&i| eligible(i)).collect();
        let total_weight = live
            .iter()
            .fold(0u32, |sum, &i| sum.wrapping_add(nodes[i].weight));
        let mut points = Vec::with_capacity(live.len() * POINTS_PER_SERVER as usize);
        let mut host = Vec::with_capacity(96);
        for &i in &live {
            let node = &nodes[i];
            for index in 0..points_for(node.weight, total_weight, live.len()) / POINTS_PER_HASH {
                host.clear();
                write!(host, "{}-{index}", node.name).expect("writing to a Vec cannot fail");
                let digest = md5::compute(&host).0;
                for quarter in digest.chunks_exact(4) {
                    let value =
                        u32::from_le_bytes([quarter[0], quarter[1], quarter[2], quarter[3]]);
                    points.push(Point {
                        value,
                        node: i as u32,
                    });
                }
            }
        }
        // Equal values (about 1 in 10^4 fleets) go to the server that comes first in
        // twemproxy's own server array, which it sorts by name (shorter first, then bytewise),
        // since glibc's qsort is a stable merge sort: dispatch finds the first of equal points.
        let mut by_name = live.clone();
        by_name.sort_by(|&a, &b| {
            let (a, b) = (nodes[a].name.as_bytes(), nodes[b].name.as_bytes());
            a.len().cmp(&b.len()).then(a.cmp(b))
        });
        let mut rank = vec![0u32; nodes.len()];
        for (r, &i) in by_name.iter().enumerate() {
            rank[i] = r as u32;
        }
        points.sort_by_key(|p| (p.value, rank[p.node as usize]));
        Continuum { points }
    }

    /// The node of the first point at or after `hash`, wrapping; `None` for an empty ring.
    #[inline]
    pub(crate) fn dispatch(&self, hash: u32) -> Option<usize> {
        let i = self.points.partition_point(|p| p.value < hash);
        let p = self.points.get(i).or_else(|| self.points.first())?;
        Some(p.node as usize)
    }

    /// Fraction of the 2^32 hash space each of `nodes` nodes owns.
    pub(crate) fn shares(&self, nodes: usize) -> Vec<f64> {
        let mut owned = vec![0u64; nodes];
        let Some(last) = self.points.last() else {
            return vec![0.0; nodes];
        };
        let mut prev = u64::from(last.value);
        for (i, p) in self.points.iter().enumerate() {
            // Point i owns (prev, value]; the first point also owns the wrap past u32::MAX.
            let end = u64::from(p.value) + if i == 0 { 1 << 32 } else { 0 };
            owned[p.node as usize] += end - prev;
            prev = u64::from(p.value);
        }
        owned
            .iter()
            .map(|&o| o as f64 / (1u64 << 32) as f64)
            .collect()
    }
}

/// Twemproxy's points for one server, computed in `float` exactly as it does: the rounding of
/// `pct * 160 / 4 * n` decides whether a weighted server gets 4 points more or fewer.
fn points_for(weight: u32, total_weight: u32, live: usize) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let quarters = pct * POINTS_PER_SERVER / 4.0 * live as f32;
    // The C code adds a double 1e-10 and casts back to float, which only matters near 0.
    let quarters = (f64::from(quarters) + 0.000_000_000_1) as f32;
    (quarters.floor() * 4.0) as u32
}

/// Twemproxy's `hash_tag:`, two characters such as `"{}"`: only what lies between the first
/// opening character and the next closing one is hashed, when that is not empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashTag {
    open: u8,
    close: u8,
}

impl HashTag {
    /// `{}`, the common choice and Redis Cluster's.
    pub const BRACES: HashTag = HashTag {
        open: b'{',
        close: b'}',
    };

    /// # Errors
    /// [`ConfigError::BadHashTag`] unless `tag` is exactly two bytes (twemproxy's rule).
    pub fn parse(tag: &str) -> Result<HashTag, ConfigError> {
        match *tag.as_bytes() {
            [open, close] => Ok(HashTag { open, close }),
            _ => Err(ConfigError::BadHashTag(tag.to_owned())),
        }
    }

    /// The part of `key` that is hashed.
    #[inline]
    pub fn extract<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        if let Some(open) = key.iter().position(|&b| b == self.open) {
            let inner = &key[open + 1..];
            if let Some(len) = inner.iter().position(|&b| b == self.close) {
                if len > 0 {
                    return &inner[..len];
                }
            }
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equal(n: usize) -> Vec<NodeSpec> {
        (0..n)
            .map(|i| NodeSpec::new(format!("10.0.0.{i}:6379"), 1))
            .collect()
    }

    #[test]
    fn points_per_server_match_twemproxy() {
        assert_eq!(points_for(1, 3, 3), 160);
        assert_eq!(points_for(1, 1, 1), 160);
        // Weights 1,2,3: 1/6*40*3 = 20 → 80 points; 2/6 → 160; 3/6 → 240.
        assert_eq!([1, 2, 3].map(|w| points_for(w, 6, 3)), [80, 160, 240]);
        // Weights 1,1,1,2 (total 5, 4 live): 32 quarters → 128; 64 → 256.
        assert_eq!(points_for(1, 5, 4), 128);
        assert_eq!(points_for(2, 5, 4), 256);
        // 1/3 of 40 × 2 = 26.67 quarters: floor, not round.
        assert_eq!(points_for(1, 3, 2), 104);
    }

    #[test]
    fn ring_has_160_points_per_equal_server_sorted() {
        let c = Continuum::build(&equal(3), |_| true);
        assert_eq!(c.points.len(), 480);
        assert!(c.points.windows(2).all(|w| w[0].value <= w[1].value));
        for node in 0..3 {
            assert_eq!(c.points.iter().filter(|p| p.node == node).count(), 160);
        }
    }

    #[test]
    fn equal_points_go_to_the_server_first_in_name_order() {
        // md5 gives "tie-a" and "tie-072659" the same point 2806004113. Twemproxy sorts its
        // servers by name, shorter first, so "tie-a" owns it wherever it is listed.
        let tie = 2_806_004_113;
        for names in [["tie-072659", "tie-a"], ["tie-a", "tie-072659"]] {
            let nodes = names.map(|n| NodeSpec::new(n, 1));
            let c = Continuum::build(&nodes, |_| true);
            let owners: Vec<u32> = c
                .points
                .iter()
                .filter(|p| p.value == tie)
                .map(|p| p.node)
                .collect();
            assert_eq!(owners.len(), 2, "both servers have the point");
            let tie_a = names.iter().position(|&n| n == "tie-a");
            assert_eq!(c.dispatch(tie), tie_a);
            assert_eq!(c.dispatch(tie - 1), tie_a);
        }
    }

    #[test]
    fn dispatch_takes_the_next_point_and_wraps() {
        let c = Continuum {
            points: vec![
                Point { value: 10, node: 0 },
                Point { value: 20, node: 1 },
                Point { value: 30, node: 2 },
            ],
        };
        assert_eq!(c.dispatch(0), Some(0));
        assert_eq!(
            c.dispatch(10),
            Some(0),
            "a hash equal to a point belongs to it"
        );
        assert_eq!(c.dispatch(11), Some(1));
        assert_eq!(c.dispatch(30), Some(2));
        assert_eq!(
            c.dispatch(31),
            Some(0),
            "past the last point wraps to the first"
        );
        assert_eq!(c.dispatch(u32::MAX), Some(0));
        assert_eq!(Continuum { points: vec![] }.dispatch(5), None);
        assert_eq!(
            c.shares(3),
            [
                (10.0 + (1u64 << 32) as f64 - 30.0) / (1u64 << 32) as f64,
                10.0 / (1u64 << 32) as f64,
                10.0 / (1u64 << 32) as f64,
            ]
        );
    }

    #[test]
    fn ejecting_at_equal_weights_moves_only_the_dead_servers_keys() {
        // At equal weights every survivor keeps its 160 points, so its keys stay.
        let nodes = equal(4);
        let all = Continuum::build(&nodes, |_| true);
        let without_2 = Continuum::build(&nodes, |i| i != 2);
        for h in (0..u32::MAX).step_by(65_537) {
            let before = all.dispatch(h).unwrap();
            let after = without_2.dispatch(h).unwrap();
            assert_ne!(after, 2);
            if before != 2 {
                assert_eq!(before, after, "hash {h}");
            }
        }
    }

    #[test]
    fn hash_tag_extraction() {
        let t = HashTag::BRACES;
        assert_eq!(t.extract(b"{user1000}.following"), b"user1000");
        assert_eq!(
            t.extract(b"foo{}{bar}"),
            b"foo{}{bar}",
            "empty tag: whole key"
        );
        assert_eq!(t.extract(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(t.extract(b"no-tag"), b"no-tag");
        assert_eq!(t.extract(b"open{only"), b"open{only");
        let colons = HashTag::parse("::").unwrap();
        assert_eq!(colons.extract(b"a:b:c"), b"b");
        assert_eq!(
            HashTag::parse("{"),
            Err(ConfigError::BadHashTag("{".into()))
        );
        assert!(HashTag::parse("{}}").is_err());
    }
}
