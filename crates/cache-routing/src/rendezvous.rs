//! Weighted rendezvous (highest random weight) hashing of slots onto nodes.
//!
//! Every node scores every slot with `weight / -ln(u)`, `u` in (0, 1) from a fixed hash of
//! (node name, slot); the highest score owns the slot. That score is an exponential race, so a
//! node wins a share of slots proportional to its weight, and since a node's score does not
//! depend on the other nodes, a membership change moves only the slots it must: those of a node
//! that leaves, or those a new node wins.

use std::f64::consts::{LN_2, SQRT_2};

use crate::{NodeSpec, SLOTS};

/// Table entry of a slot that no node can take.
pub(crate) const NO_NODE: u16 = u16::MAX;

/// The slot → node table for the nodes with `eligible(i)`.
///
/// # Panics
/// If there are `u16::MAX` nodes or more.
pub(crate) fn slot_table(nodes: &[NodeSpec], eligible: impl Fn(usize) -> bool) -> Box<[u16]> {
    assert!(
        nodes.len() < usize::from(NO_NODE),
        "at most {} nodes",
        NO_NODE - 1
    );
    let racers: Vec<(u16, u64, f64)> = (0..nodes.len())
        .filter(|&i| eligible(i))
        .map(|i| {
            (
                i as u16,
                name_seed(&nodes[i].name),
                f64::from(nodes[i].weight),
            )
        })
        .collect();
    (0..SLOTS as u16)
        .map(|slot| {
            let mix = splitmix64(u64::from(slot));
            let mut best = (NO_NODE, 0.0);
            for &(node, seed, weight) in &racers {
                let score = weight / neg_ln(unit(splitmix64(seed ^ mix)));
                // Strictly greater: on a tie (only for duplicate names) the first node wins.
                if score > best.1 {
                    best = (node, score);
                }
            }
            best.0
        })
        .collect()
}

/// A node's name as a 64-bit seed: FNV-1a, then a full-avalanche mix so that names differing
/// in one character ("10.0.0.1", "10.0.0.2") give unrelated seeds.
fn name_seed(name: &str) -> u64 {
    let fnv = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    splitmix64(fnv)
}

/// SplitMix64's output function (Steele, Lea, Flood 2014): a bijection with good avalanche.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The top 52 bits of `h` as a point strictly inside (0, 1): never 0 or 1, so `ln` is finite
/// and non-zero.
fn unit(h: u64) -> f64 {
    ((h >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// `-ln(u)` for `u` in (0, 1) with only `+ - * /`, which IEEE 754 rounds the same everywhere.
/// `f64::ln` comes from the platform's libm and may differ in the last bit between machines,
/// and two proxies must build the same table from the same configuration.
fn neg_ln(u: f64) -> f64 {
    let bits = u.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    // u = m × 2^exp with m in [√½, √2), so the series variable below is at most 0.172.
    let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if m > SQRT_2 {
        m *= 0.5;
        exp += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    // ln m = 2·atanh(s) = 2(s + s³/3 + s⁵/5 + ...); 12 terms bring the error below 1e-17.
    let mut series = 0.0;
    for k in (0..12).rev() {
        series = series * s2 + 1.0 / f64::from(2 * k + 1);
    }
    -(exp as f64 * LN_2 + 2.0 * s * series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(weights: &[u32]) -> Vec<NodeSpec> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| NodeSpec::new(format!("10.0.0.{}:6379", i + 1), w))
            .collect()
    }

    fn counts(table: &[u16], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &node in table {
            c[node as usize] += 1;
        }
        c
    }

    #[test]
    fn neg_ln_agrees_with_libm() {
        let mut x = 1u64;
        for _ in 0..100_000 {
            x = splitmix64(x);
            let u = unit(x);
            let want = -u.ln();
            assert!(((neg_ln(u) - want) / want).abs() < 1e-14, "u = {u}");
        }
        for u in [unit(0), unit(u64::MAX), 0.5, SQRT_2 / 2.0, 1e-9] {
            let want = -u.ln();
            assert!(((neg_ln(u) - want) / want).abs() < 1e-14, "u = {u}");
        }
    }

    #[test]
    fn unit_stays_strictly_inside_zero_one() {
        assert!(unit(0) > 0.0);
        assert!(unit(u64::MAX) < 1.0);
        assert!(neg_ln(unit(u64::MAX)) > 0.0);
    }

    #[test]
    fn removing_a_node_moves_exactly_its_slots() {
        for n in [2, 3, 5, 10] {
            let nodes = nodes(&vec![1; n]);
            let all = slot_table(&nodes, |_| true);
            for gone in 0..n {
                let without = slot_table(&nodes, |i| i != gone);
                for (slot, (&a, &b)) in all.iter().zip(without.iter()).enumerate() {
                    if a as usize == gone {
                        assert_ne!(b as usize, gone);
                    } else {
                        assert_eq!(a, b, "slot {slot} moved off surviving node {a}");
                    }
                }
            }
        }
    }

    #[test]
    fn adding_a_node_moves_about_one_share_and_only_onto_it() {
        for n in [3, 5, 9] {
            let before = slot_table(&nodes(&vec![1; n]), |_| true);
            let after = slot_table(&nodes(&vec![1; n + 1]), |_| true);
            let mut moved = 0;
            for (&a, &b) in before.iter().zip(after.iter()) {
                if a != b {
                    assert_eq!(b as usize, n, "a slot moved between old nodes");
                    moved += 1;
                }
            }
            let expected = SLOTS as f64 / (n + 1) as f64;
            let off = (moved as f64 - expected).abs() / expected;
            assert!(
                off < 0.08,
                "{n}+1 nodes: moved {moved}, expected ~{expected:.0}"
            );
        }
    }

    #[test]
    fn shares_follow_weights() {
        for weights in [
            &[1, 1, 1][..],
            &[1, 2, 3],
            &[5, 5, 1, 1],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            &[100, 300],
        ] {
            let table = slot_table(&nodes(weights), |_| true);
            let total: u32 = weights.iter().sum();
            for (i, &c) in counts(&table, weights.len()).iter().enumerate() {
                let want = f64::from(weights[i]) / f64::from(total);
                let got = c as f64 / SLOTS as f64;
                // Four binomial standard deviations: the table is a fixed function, so this
                // either always holds or never.
                let sd = (want * (1.0 - want) / SLOTS as f64).sqrt();
                assert!(
                    (got - want).abs() < 4.0 * sd,
                    "weights {weights:?}: node {i} has {got:.4}, want {want:.4}"
                );
                if want >= 0.1 {
                    assert!((got / want - 1.0).abs() < 0.05, "{weights:?} node {i}");
                }
            }
        }
    }

    #[test]
    fn raising_a_weight_only_pulls_slots_onto_that_node() {
        let light = slot_table(&nodes(&[1, 1, 1, 1]), |_| true);
        let heavy = slot_table(&nodes(&[1, 3, 1, 1]), |_| true);
        for (&a, &b) in light.iter().zip(heavy.iter()) {
            assert!(a == b || b == 1);
        }
        // 3 of 6 weight units: about half the slots, up from a quarter.
        let share = counts(&heavy, 4)[1] as f64 / SLOTS as f64;
        assert!((share - 0.5).abs() < 0.02, "{share}");
    }

    #[test]
    fn zero_weight_and_dead_nodes_take_nothing() {
        let table = slot_table(&nodes(&[1, 0, 1]), |i| i != 2);
        assert!(table.iter().all(|&n| n == 0));
        let none = slot_table(&nodes(&[1, 1]), |_| false);
        assert!(none.iter().all(|&n| n == NO_NODE));
        assert!(slot_table(&[], |_| true).iter().all(|&n| n == NO_NODE));
    }

    #[test]
    fn table_is_pinned() {
        // Placement must not change between versions, or an upgrade reshuffles the cache.
        // These values were produced by this implementation; change them only deliberately.
        let table = slot_table(&nodes(&[1, 1, 2]), |_| true);
        let first: Vec<u16> = table[..24].to_vec();
        assert_eq!(first, PINNED_FIRST_24);
        assert_eq!(counts(&table, 3), PINNED_COUNTS);
    }

    const PINNED_FIRST_24: [u16; 24] = [
        2, 2, 0, 2, 0, 2, 0, 2, 2, 0, 2, 2, 0, 1, 0, 2, 2, 0, 1, 1, 0, 2, 2, 0,
    ];
    const PINNED_COUNTS: [usize; 3] = [4053, 4075, 8256];
}
