//! TinyLFU's frequency state: a count-min sketch per shard, and a small counter per key.
//!
//! ```text
//!  every lookup (hit or miss) ─► Sketch::increment ─► 2 rows × W 4-bit counters (W bytes)
//!  a hit also bumps the key's own counter (Entry::freq: count and epoch, in padding)
//!  every 10 × W increments: halve all sketch counters, epoch += 1
//!      └─► a key's counter halves once per epoch it missed, read lazily (`decayed`)
//! ```
//!
//! The sketch answers "how often was this key asked for" for keys not in the cache (what
//! admission asks about a newcomer); resident keys carry their own count, exact instead of
//! inflated by sketch collisions, which is what victim selection compares. A new key's count
//! starts at the sketch's estimate, so both measure the same thing, and both age together.
//!
//! Memory: W is a power of two kept between a quarter of the shard's keys and all of them,
//! so the sketch costs at most one byte per resident key (two 4-bit counters). It is resized
//! with hysteresis (to the largest power of two at most the key count when the count drops
//! below W or reaches 4 W), and a resize keeps what was counted: halving W folds counter
//! pairs together (saturating sum), growing W copies each counter to its new positions, both
//! of which keep every estimate at or above the true count as count-min requires.

/// Fewest counters per row (256 bytes per shard), so tiny shards still tell keys apart.
const MIN_WIDTH: usize = 256;
const ROWS: usize = 2;
const SEEDS: [u64; ROWS + 1] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
];
/// Increments between two halvings, per counter of a row (Caffeine's sample size).
const PERIOD_PER_COUNTER: usize = 10;

/// A count-min sketch of 4-bit counters in two rows, halved every `10 × width` increments.
#[derive(Debug, Default, Clone)]
pub struct Sketch {
    /// Each row: `width / 16` words of sixteen 4-bit counters.
    rows: [Vec<u64>; ROWS],
    /// Counters per row (a power of two), 0 until first used.
    width: usize,
    additions: usize,
    /// Halvings so far (wrapping): a key's counter records the epoch it was last set in.
    epoch: u8,
}

impl Sketch {
    /// Bytes the counters take.
    pub fn bytes(&self) -> usize {
        self.rows.iter().map(|r| r.len() * 8).sum()
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn epoch(&self) -> u8 {
        self.epoch
    }

    /// Sizes the sketch for `keys` resident keys (see the module notes for the rule).
    pub fn fit(&mut self, keys: usize) {
        let keys = keys.max(MIN_WIDTH);
        if self.width != 0 && keys >= self.width && keys < 4 * self.width {
            return;
        }
        let width = 1usize << (usize::BITS - 1 - keys.leading_zeros());
        self.resize(width);
    }

    fn resize(&mut self, width: usize) {
        let old = std::mem::take(&mut self.rows);
        let old_width = self.width;
        for row in self.rows.iter_mut() {
            *row = vec![0; width / 16];
        }
        self.width = width;
        if old_width != 0 {
            for (r, old_row) in old.iter().enumerate() {
                let get = |i: usize| ((old_row[i / 16] >> ((i % 16) * 4)) & 0xF) as u32;
                for i in 0..width {
                    let v = if width < old_width {
                        // Every old index whose low bits are `i` folds into `i`.
                        (i..old_width).step_by(width).map(get).sum::<u32>().min(15)
                    } else {
                        get(i & (old_width - 1))
                    };
                    self.rows[r][i / 16] |= u64::from(v) << ((i % 16) * 4);
                }
            }
        }
        self.additions = self
            .additions
            .min(PERIOD_PER_COUNTER * width)
            .saturating_sub(1);
    }

    fn slot(&self, row: usize, hash: u64) -> (usize, u32) {
        let h = (hash ^ SEEDS[row]).wrapping_mul(SEEDS[row + 1]);
        let index = (h >> 20) as usize & (self.width - 1);
        (index / 16, ((index % 16) * 4) as u32)
    }

    /// Counts one lookup of the key hashed to `hash`.
    pub fn increment(&mut self, hash: u64) {
        if self.width == 0 {
            return;
        }
        for row in 0..ROWS {
            let (word, shift) = self.slot(row, hash);
            let w = &mut self.rows[row][word];
            if (*w >> shift) & 0xF < 15 {
                *w += 1 << shift;
            }
        }
        // Every lookup counts toward aging, even one that found its counters saturated:
        // otherwise a saturated sketch would stop forgetting.
        self.additions += 1;
        if self.additions >= PERIOD_PER_COUNTER * self.width {
            self.halve();
        }
    }

    /// The estimated lookups of the key hashed to `hash` (never below the true count since
    /// the last halvings, which divided it).
    pub fn frequency(&self, hash: u64) -> u32 {
        if self.width == 0 {
            return 0;
        }
        (0..ROWS)
            .map(|row| {
                let (word, shift) = self.slot(row, hash);
                ((self.rows[row][word] >> shift) & 0xF) as u32
            })
            .min()
            .unwrap_or(0)
    }

    /// Ages every counter by half, so the sketch follows a changing popularity; the epoch
    /// moves on so that every key's own counter reads as halved too.
    fn halve(&mut self) {
        for row in self.rows.iter_mut() {
            for w in row.iter_mut() {
                *w = (*w >> 1) & 0x7777_7777_7777_7777;
            }
        }
        self.additions /= 2;
        self.epoch = self.epoch.wrapping_add(1);
    }
}

/// A key's own counter: the count in the low byte, the epoch it was set in the high byte.
pub fn stamp(count: u32, epoch: u8) -> u16 {
    (u16::from(epoch) << 8) | count.min(15) as u16
}

/// A key's count as of `epoch`: halved once per epoch since it was set.
pub fn decayed(freq: u16, epoch: u8) -> u32 {
    let count = u32::from(freq & 0xFF);
    let age = epoch.wrapping_sub((freq >> 8) as u8);
    count.checked_shr(u32::from(age)).unwrap_or(0)
}

/// A key's counter after a hit at `epoch`.
pub fn touched(freq: u16, epoch: u8) -> u16 {
    stamp(decayed(freq, epoch) + 1, epoch)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A 64-bit mixer (splitmix64's finalizer) for test keys and hashes.
    pub(crate) fn mix(i: u64) -> u64 {
        let mut x = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A model of what the sketch approximates: exact counts, halved at the same moments
    /// (integer halving, as the 4-bit counters do), capped at 15.
    #[derive(Default)]
    struct Model {
        counts: HashMap<u64, u32>,
    }

    impl Model {
        fn add(&mut self, k: u64) {
            let c = self.counts.entry(k).or_default();
            *c = (*c + 1).min(15);
        }
        fn halve(&mut self) {
            for c in self.counts.values_mut() {
                *c /= 2;
            }
        }
    }

    #[test]
    fn sketch_never_underestimates_the_model_and_ages_with_it() {
        // As many distinct keys as counters per row: a cache's resident keys' worth.
        let mut s = Sketch::default();
        s.fit(1500);
        assert_eq!(s.width(), 1024);
        assert!(s.bytes() <= 1500, "{} bytes for 1500 keys", s.bytes());
        let mut m = Model::default();
        let mut epoch = s.epoch();
        let mut over = 0u64;
        let mut checked = 0u64;
        for i in 0..80_000u64 {
            // Skewed: key k of 1024 drawn with weight ~1/sqrt(k).
            let k = mix(i) % 1024;
            let k = (k * k) / 1024;
            s.increment(mix(k + 1_000_000));
            m.add(k);
            if s.epoch() != epoch {
                epoch = s.epoch();
                m.halve();
            }
            if i % 197 == 0 {
                for (&k, &c) in &m.counts {
                    let f = s.frequency(mix(k + 1_000_000));
                    assert!(f >= c, "key {k}: sketch {f} < model {c}");
                    over += u64::from(f - c);
                    checked += 1;
                }
            }
        }
        assert!(s.epoch() >= 7, "halved {} times", s.epoch());
        // Collisions inflate, but on average by little.
        let mean_over = over as f64 / checked as f64;
        assert!(mean_over < 2.0, "mean overestimate {mean_over}");
        // The hottest key reads hot, a never-seen one cold.
        assert!(s.frequency(mix(1_000_000)) >= 8);
    }

    #[test]
    fn fit_bounds_bytes_per_key_with_hysteresis_and_keeps_counts() {
        let mut s = Sketch::default();
        s.fit(10_000);
        assert_eq!(s.width(), 8192);
        for k in 0..100u64 {
            for _ in 0..5 {
                s.increment(mix(k));
            }
        }
        // Inside [W, 4 W): no resize.
        for keys in [8192, 20_000, 32_767] {
            s.fit(keys);
            assert_eq!(s.width(), 8192, "{keys} keys");
        }
        // Growing: at 4 W, resized to the largest power of two at most the count.
        s.fit(32_768);
        assert_eq!(s.width(), 32_768);
        for k in 0..100u64 {
            assert!(s.frequency(mix(k)) >= 5, "grow lost key {k}");
        }
        // Shrinking: below W, down to at most one byte per key.
        for keys in [32_767, 20_000, 5000, 300, 10] {
            s.fit(keys);
            assert!(
                s.bytes() <= keys.max(MIN_WIDTH),
                "{} bytes for {keys} keys",
                s.bytes()
            );
            for k in 0..100u64 {
                assert!(s.frequency(mix(k)) >= 5, "shrink to {keys} lost key {k}");
            }
        }
    }

    #[test]
    fn key_counters_halve_once_per_epoch() {
        let f = stamp(12, 3);
        assert_eq!(decayed(f, 3), 12);
        assert_eq!(decayed(f, 4), 6);
        assert_eq!(decayed(f, 6), 1);
        assert_eq!(decayed(f, 7), 0);
        assert_eq!(decayed(f, 3 + 100), 0);
        assert_eq!(decayed(touched(f, 4), 4), 7);
        assert_eq!(decayed(stamp(40, 0), 0), 15, "saturates at 15");
        // Wrapping epochs.
        assert_eq!(decayed(stamp(8, 255), 1), 2);
    }
}
