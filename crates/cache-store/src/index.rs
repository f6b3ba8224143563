//! The table's index: positions in its entries vector, found by key hash.
//!
//! ```text
//!  slot = u32: (position + 1) << 5 | 5-bit hash tag     0 = empty, 1 = deleted
//!  home = (hash × slots) >> 64 (any slot count, not only powers of two); linear probing
//! ```
//!
//! Four bytes a slot and no control bytes, sized to any count (no power-of-two rounding)
//! and to fill the allocator's size class: kept between 52% and 80% full, about 6 bytes
//! a key where hashbrown's 5-byte buckets at 44-88% load, allocated just over a size class
//! boundary (which rounds them up by a fifth), took 7 to 14. Probes walk consecutive u32s
//! (sixteen per cache line) and the tag skips 31 of 32 non-matching keys without touching
//! them. A removal leaves a tombstone unless the next slot is empty (then it and the
//! tombstones before it go); tombstones count toward the 80%, and running out of room
//! rebuilds the index from the entries, which clears them.

const EMPTY: u32 = 0;
const DELETED: u32 = 1;
const TAG_BITS: u32 = 5;
const TAG_MASK: u32 = (1 << TAG_BITS) - 1;
/// Most entries one table indexes (positions take the 27 bits above the tag).
pub const MAX_ENTRIES: usize = (u32::MAX >> TAG_BITS) as usize - 1;

#[derive(Debug, Default)]
pub struct Index {
    slots: Box<[u32]>,
    /// Slots not empty: live positions and tombstones.
    used: usize,
}

fn tag(hash: u64) -> u32 {
    hash as u32 & TAG_MASK
}

fn position(slot: u32) -> usize {
    (slot >> TAG_BITS) as usize - 1
}

impl Index {
    /// An index with room for `live` positions at 52-65% load (65%, rounded up to fill the
    /// allocation), to be filled with `insert`.
    pub fn with_live(live: usize) -> Index {
        let wanted = (live * 20 / 13).max(16);
        Index {
            slots: vec![EMPTY; crate::table::size_class(wanted * 4) / 4].into_boxed_slice(),
            used: 0,
        }
    }

    /// Whether one more position fits under 80% (counting tombstones).
    pub fn has_room(&self) -> bool {
        (self.used + 1) * 5 <= self.slots.len() * 4
    }

    /// Whether the index is over four times the size `live` positions need.
    pub fn oversized(&self, live: usize) -> bool {
        self.slots.len() > 64 && live * 4 < self.slots.len()
    }

    #[cfg(test)]
    pub fn allocation_size(&self) -> usize {
        self.slots.len() * 4
    }

    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// The slot holding a position with this hash for which `eq` holds.
    pub fn find(&self, hash: u64, mut eq: impl FnMut(usize) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = tag(hash);
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if s != DELETED && s & TAG_MASK == tag && eq(position(s)) {
                return Some(i);
            }
            i = self.next(i);
        }
    }

    /// The position in slot `i` (from `find`).
    pub fn position_at(&self, i: usize) -> usize {
        position(self.slots[i])
    }

    /// Adds a position not present yet; the caller checked `has_room`.
    pub fn insert(&mut self, hash: u64, pos: usize) {
        debug_assert!(self.has_room() && pos < MAX_ENTRIES);
        let mut i = self.home(hash);
        while self.slots[i] > DELETED {
            i = self.next(i);
        }
        if self.slots[i] == EMPTY {
            self.used += 1;
        }
        self.slots[i] = ((pos as u32 + 1) << TAG_BITS) | tag(hash);
    }

    /// Points slot `i` (from `find`) at another position of the same key.
    pub fn set_position(&mut self, i: usize, pos: usize) {
        self.slots[i] = ((pos as u32 + 1) << TAG_BITS) | (self.slots[i] & TAG_MASK);
    }

    /// Empties slot `i` (from `find`).
    pub fn remove(&mut self, i: usize) {
        if self.slots[self.next(i)] != EMPTY {
            // Later keys of this probe run may have passed here: leave a tombstone.
            self.slots[i] = DELETED;
            return;
        }
        // The run ends here: this slot and the tombstones just before it can be empty.
        let mut i = i;
        loop {
            self.slots[i] = EMPTY;
            self.used -= 1;
            i = if i == 0 { self.slots.len() - 1 } else { i - 1 };
            if self.slots[i] != DELETED {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tinylfu::tests::mix;
    use std::collections::HashMap;

    #[test]
    fn finds_what_was_inserted_through_removals_and_rebuilds() {
        // Model: key -> position; the index maps hash(key) to a position whose key matches.
        let mut index = Index::default();
        let mut keys: Vec<u64> = Vec::new(); // position -> key
        let mut model: HashMap<u64, usize> = HashMap::new();
        for step in 0..200_000u64 {
            let k = mix(step) % 5000;
            let found = index.find(mix(k), |p| keys[p] == k);
            assert_eq!(found.map(|i| index.position_at(i)), model.get(&k).copied());
            match found {
                None => {
                    if !index.has_room() {
                        let mut fresh = Index::with_live(keys.len() + 1);
                        for (p, &key) in keys.iter().enumerate() {
                            fresh.insert(mix(key), p);
                        }
                        index = fresh;
                    }
                    index.insert(mix(k), keys.len());
                    model.insert(k, keys.len());
                    keys.push(k);
                }
                Some(i) if step % 3 != 0 => {
                    // Remove as the table does: the last position moves into the hole.
                    let p = index.position_at(i);
                    index.remove(i);
                    let last = keys.len() - 1;
                    if p != last {
                        let j = index.find(mix(keys[last]), |q| q == last).unwrap();
                        index.set_position(j, p);
                        model.insert(keys[last], p);
                    }
                    keys.swap_remove(p);
                    model.remove(&k);
                }
                Some(_) => {}
            }
            assert!(index.used < index.slots.len(), "no empty slot left");
        }
        for (&k, &p) in &model {
            let i = index.find(mix(k), |q| keys[q] == k).unwrap();
            assert_eq!(index.position_at(i), p);
        }
    }

    #[test]
    fn sized_between_65_and_80_percent() {
        for live in [0usize, 1, 100, 3125, 15_625, 100_000] {
            let index = Index::with_live(live);
            let load = live as f64 / index.slots.len() as f64;
            assert!(load <= 0.66, "{live}: load {load}");
            assert!(live < 1000 || load >= 0.5, "{live}: load {load}");
        }
    }
}
