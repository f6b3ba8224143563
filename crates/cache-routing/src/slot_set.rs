//! A set of cluster slots, one bit each.

use std::fmt;

use crate::SLOTS;

const WORDS: usize = SLOTS / 64;

/// A fixed set of cluster slots (2 KiB): "slots written while node N was away", "slots that
/// moved at this epoch". [`ranges`](SlotSet::ranges) turns it into the few contiguous runs
/// that a drop command carries.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet {
    words: Box<[u64; WORDS]>,
    len: usize,
}

impl SlotSet {
    /// An empty set.
    pub fn new() -> SlotSet {
        SlotSet {
            words: Box::new([0; WORDS]),
            len: 0,
        }
    }

    /// Every slot.
    pub fn full() -> SlotSet {
        SlotSet {
            words: Box::new([u64::MAX; WORDS]),
            len: SLOTS,
        }
    }

    /// Adds `slot`; true if it was not there.
    ///
    /// # Panics
    /// If `slot >= SLOTS`.
    pub fn insert(&mut self, slot: u16) -> bool {
        let (w, bit) = locate(slot);
        let added = self.words[w] & bit == 0;
        self.words[w] |= bit;
        self.len += usize::from(added);
        added
    }

    /// Removes `slot`; true if it was there.
    ///
    /// # Panics
    /// If `slot >= SLOTS`.
    pub fn remove(&mut self, slot: u16) -> bool {
        let (w, bit) = locate(slot);
        let had = self.words[w] & bit != 0;
        self.words[w] &= !bit;
        self.len -= usize::from(had);
        had
    }

    /// Whether `slot` is in the set (false for slots out of range).
    pub fn contains(&self, slot: u16) -> bool {
        (slot as usize) < SLOTS && self.words[slot as usize / 64] & (1 << (slot % 64)) != 0
    }

    /// Number of slots in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        *self.words = [0; WORDS];
        self.len = 0;
    }

    /// Adds every slot of `other`.
    pub fn union_with(&mut self, other: &SlotSet) {
        let mut len = 0;
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a |= b;
            len += a.count_ones() as usize;
        }
        self.len = len;
    }

    /// The slots in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { set: self, next: 0 }
    }

    /// Maximal runs of consecutive slots, as inclusive `(first, last)` pairs in ascending order.
    pub fn ranges(&self) -> Ranges<'_> {
        Ranges { set: self, next: 0 }
    }

    /// The first slot in the set at or after `from`.
    fn next_set(&self, from: usize) -> Option<usize> {
        self.next_matching(from, false)
    }

    /// The first slot not in the set at or after `from`, or `SLOTS`.
    fn next_clear(&self, from: usize) -> usize {
        self.next_matching(from, true).unwrap_or(SLOTS)
    }

    /// Word-at-a-time scan for the next 1 bit (or the next 0 bit when `invert`).
    fn next_matching(&self, from: usize, invert: bool) -> Option<usize> {
        if from >= SLOTS {
            return None;
        }
        let mut w = from / 64;
        let flip = if invert { u64::MAX } else { 0 };
        let mut bits = (self.words[w] ^ flip) & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
            w += 1;
            if w == WORDS {
                return None;
            }
            bits = self.words[w] ^ flip;
        }
    }
}

fn locate(slot: u16) -> (usize, u64) {
    assert!((slot as usize) < SLOTS, "slot {slot} out of range");
    (slot as usize / 64, 1 << (slot % 64))
}

impl Default for SlotSet {
    fn default() -> SlotSet {
        SlotSet::new()
    }
}

impl fmt::Debug for SlotSet {
    /// Ranges rather than 16384 bits: `{0-99, 512}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (a, b)) in self.ranges().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            if a == b {
                write!(f, "{sep}{a}")?;
            } else {
                write!(f, "{sep}{a}-{b}")?;
            }
        }
        f.write_str("}")
    }
}

impl Extend<u16> for SlotSet {
    fn extend<I: IntoIterator<Item = u16>>(&mut self, iter: I) {
        for slot in iter {
            self.insert(slot);
        }
    }
}

impl FromIterator<u16> for SlotSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> SlotSet {
        let mut set = SlotSet::new();
        set.extend(iter);
        set
    }
}

impl<'a> IntoIterator for &'a SlotSet {
    type Item = u16;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the slots of a [`SlotSet`], ascending.
pub struct Iter<'a> {
    set: &'a SlotSet,
    next: usize,
}

impl Iterator for Iter<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        let slot = self.set.next_set(self.next)?;
        self.next = slot + 1;
        Some(slot as u16)
    }
}

/// Iterator over the runs of a [`SlotSet`]; see [`SlotSet::ranges`].
pub struct Ranges<'a> {
    set: &'a SlotSet,
    next: usize,
}

impl Iterator for Ranges<'_> {
    type Item = (u16, u16);
    fn next(&mut self) -> Option<(u16, u16)> {
        let start = self.set.next_set(self.next)?;
        let end = self.set.next_clear(start);
        self.next = end;
        Some((start as u16, (end - 1) as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_contains_len() {
        let mut s = SlotSet::new();
        assert!(s.is_empty());
        assert!(s.insert(5));
        assert!(!s.insert(5), "second insert reports it was there");
        assert!(s.insert(16383));
        assert!(s.contains(5) && s.contains(16383) && !s.contains(6));
        assert!(!s.contains(16384), "out of range is simply absent");
        assert_eq!(s.len(), 2);
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert_eq!(s.len(), 1);
        s.clear();
        assert!(s.is_empty() && !s.contains(16383));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn insert_out_of_range_panics() {
        SlotSet::new().insert(16384);
    }

    #[test]
    fn iter_and_ranges_across_word_boundaries() {
        let slots = [0u16, 1, 2, 63, 64, 65, 127, 1000, 16382, 16383];
        let s: SlotSet = slots.iter().copied().collect();
        assert_eq!(s.iter().collect::<Vec<_>>(), slots);
        assert_eq!(
            s.ranges().collect::<Vec<_>>(),
            [(0, 2), (63, 65), (127, 127), (1000, 1000), (16382, 16383)]
        );
        assert_eq!(format!("{s:?}"), "{0-2, 63-65, 127, 1000, 16382-16383}");
    }

    #[test]
    fn full_set_is_one_range() {
        let full = SlotSet::full();
        assert_eq!(full.len(), SLOTS);
        assert_eq!(full.ranges().collect::<Vec<_>>(), [(0, 16383)]);
        assert_eq!(full.iter().count(), SLOTS);
        assert_eq!(SlotSet::new().ranges().count(), 0);
    }

    #[test]
    fn union_counts_overlap_once() {
        let mut a: SlotSet = (0..100).collect();
        let b: SlotSet = (50..200).collect();
        a.union_with(&b);
        assert_eq!(a.len(), 200);
        assert_eq!(a.ranges().collect::<Vec<_>>(), [(0, 199)]);
    }

    #[test]
    fn ranges_match_a_naive_model() {
        // Pseudo-random sets of various densities against a run-length scan of contains().
        let mut x = 0x1234_5678_9abc_def0u64;
        for density in [1u64, 8, 32, 56, 63] {
            let mut s = SlotSet::new();
            for slot in 0..SLOTS as u16 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 64 < density {
                    s.insert(slot);
                }
            }
            let mut naive = Vec::new();
            let mut slot = 0;
            while slot < SLOTS as u16 {
                if s.contains(slot) {
                    let start = slot;
                    while slot + 1 < SLOTS as u16 && s.contains(slot + 1) {
                        slot += 1;
                    }
                    naive.push((start, slot));
                }
                slot += 1;
            }
            assert_eq!(
                s.ranges().collect::<Vec<_>>(),
                naive,
                "density {density}/64"
            );
            let covered: usize = naive.iter().map(|&(a, b)| (b - a + 1) as usize).sum();
            assert_eq!(covered, s.len());
        }
    }
}
