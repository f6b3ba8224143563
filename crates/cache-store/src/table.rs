//! The keyspace table: a dense `Vec` of entries plus an index of positions ([`Index`]).
//!
//! Like `indexmap`, a random entry is one index away (sampling, RANDOMKEY) and removal swaps
//! the last entry into the hole (which makes the downward SCAN cursor exact). Unlike it, the
//! entries vector grows to fill the allocator's next size class instead of matching the
//! index's power-of-two capacity, the index is four bytes a slot at 52-80% load, and no hash
//! is stored per entry (it is recomputed from the key when the index grows): about
//! 60 bytes less per key at a million keys, where memory per key is what a cache is judged by.

use std::hash::BuildHasher;

use crate::index::Index;
use crate::value::{Entry, Key};

#[derive(Default)]
pub struct Table {
    index: Index,
    entries: Vec<(Key, Entry)>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("len", &self.len()).finish()
    }
}

impl Table {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn get_index_of(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hash(key);
        let entries = &self.entries;
        self.index
            .find(hash, |i| *entries[i].0 == *key)
            .map(|slot| self.index.position_at(slot))
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.get_index_of(key).map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let i = self.get_index_of(key)?;
        Some(&mut self.entries[i].1)
    }

    pub fn get_key_value(&self, key: &[u8]) -> Option<(&Key, &Entry)> {
        self.get_index_of(key).map(|i| {
            let (k, e) = &self.entries[i];
            (k, e)
        })
    }

    pub fn get_index(&self, i: usize) -> Option<(&Key, &Entry)> {
        self.entries.get(i).map(|(k, e)| (k, e))
    }

    pub fn entry_at(&mut self, i: usize) -> &mut Entry {
        &mut self.entries[i].1
    }

    pub fn entry_ref(&self, i: usize) -> &Entry {
        &self.entries[i].1
    }

    /// Inserts or replaces; returns the replaced entry. One hash and one probe either way.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let hash = self.hash(key);
        let entries = &mut self.entries;
        if let Some(slot) = self.index.find(hash, |i| *entries[i].0 == *key) {
            let i = self.index.position_at(slot);
            return Some(std::mem::replace(&mut entries[i].1, entry));
        }
        assert!(entries.len() < crate::index::MAX_ENTRIES, "table full");
        if entries.len() == entries.capacity() {
            // Grow to fill the allocator's next size class: the default doubling would leave
            // up to half the vector unused, and a fixed step (an eighth, as before) rounded
            // up to a class left the rounding unused too, about 9 bytes a key in all.
            let grown = grown_capacity(entries.capacity(), std::mem::size_of::<(Key, Entry)>());
            entries.reserve_exact(grown - entries.len());
        }
        let position = entries.len();
        entries.push((key.into(), entry));
        if self.index.has_room() {
            self.index.insert(hash, position);
        } else {
            self.rebuild_index();
        }
        None
    }

    /// Removes the entry at `i`, moving the last entry into its place.
    pub fn swap_remove_index(&mut self, i: usize) -> Option<(Key, Entry)> {
        if i >= self.entries.len() {
            return None;
        }
        let hash = self.hash(&self.entries[i].0);
        if let Some(slot) = self.index.find(hash, |p| p == i) {
            self.index.remove(slot);
        }
        let last = self.entries.len() - 1;
        if i != last {
            let last_hash = self.hash(&self.entries[last].0);
            if let Some(slot) = self.index.find(last_hash, |p| p == last) {
                self.index.set_position(slot, i);
            }
        }
        let removed = self.entries.swap_remove(i);
        // Give memory back once a table is a third below its capacity: shards at maxmemory
        // drift in size, and one that once held many more keys must not keep their room.
        let len = self.entries.len();
        if self.entries.capacity() > 64 && len < self.entries.capacity() * 2 / 3 {
            self.entries.shrink_to(len + len / 8);
        }
        if self.index.oversized(self.entries.len()) {
            self.rebuild_index();
        }
        Some(removed)
    }

    /// Rebuilds the index for every entry, at the size they need (65% full, no tombstones):
    /// when it has no room for one more, or is far too large for what is left.
    ///
    /// One sequential pass over the entries, hashes recomputed from the keys. Under eviction
    /// churn (one insert, one removal, the count flat) the tombstones fill the room left in
    /// about a fifth of the count's inserts: a few rehashed keys per insert, where hashbrown
    /// doubled its table again and again until it sat under half full.
    fn rebuild_index(&mut self) {
        let mut index = Index::with_live(self.entries.len());
        for (i, (k, _)) in self.entries.iter().enumerate() {
            index.insert(self.hasher.hash_one(&**k), i);
        }
        self.index = index;
    }

    pub fn swap_remove(&mut self, key: &[u8]) -> Option<Entry> {
        let i = self.get_index_of(key)?;
        self.swap_remove_index(i).map(|(_, e)| e)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries.iter().map(|(k, e)| (k, e))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Every entry, by value (the table is consumed).
    pub fn into_entries(self) -> impl Iterator<Item = (Key, Entry)> {
        self.entries.into_iter()
    }
}

/// The capacity, in `item`-byte elements, of the next allocation after one of `capacity`:
/// the largest that fits the next jemalloc size class. Above 16 KiB jemalloc's classes are
/// four per doubling (2^k × 5/4, 6/4, 7/4, 2), so this grows by 12.5% to 25% and every byte
/// of the class is capacity; below, a step of 16 elements at least. Another allocator simply
/// gets an allocation of that size.
fn grown_capacity(capacity: usize, item: usize) -> usize {
    const LARGE: usize = 16 * 1024;
    let bytes = capacity * item;
    if bytes < LARGE {
        return capacity + (capacity / 8).max(16);
    }
    // The class the vector sits in now (the allocation was rounded up to it), then the next.
    let next = size_class(size_class(bytes) + 1);
    (next / item).max(capacity + 1)
}

/// The smallest jemalloc size class of at least `bytes` (quarter steps between powers of
/// two from 128 bytes up; smaller requests as they are).
pub(crate) fn size_class(bytes: usize) -> usize {
    if bytes <= 128 {
        return bytes;
    }
    let spacing = 1usize << (usize::BITS - 1 - (bytes - 1).leading_zeros() - 2);
    bytes.div_ceil(spacing) * spacing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_map() {
        let mut t = Table::default();
        let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut x: u64 = 7;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("k{}", x % 3000).into_bytes();
            if x.is_multiple_of(3) {
                assert_eq!(t.swap_remove(&key).is_some(), model.remove(&key).is_some());
            } else {
                let e = Entry::with_expiry(Value::string(Vec::new()), x);
                assert_eq!(
                    t.insert(&key, e).is_some(),
                    model.insert(key.clone(), x).is_some()
                );
            }
            assert_eq!(t.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(t.get(k).map(|e| e.expires_at), Some(*v));
        }
        for i in 0..t.len() {
            let (k, _) = t.get_index(i).unwrap();
            assert_eq!(t.get_index_of(k), Some(i));
        }
    }

    #[test]
    fn growth_fills_allocator_size_classes() {
        let item = std::mem::size_of::<(Key, Entry)>();
        assert_eq!(grown_capacity(0, item), 16);
        assert_eq!(grown_capacity(160, item), 180);
        let mut c = grown_capacity(16_384 / item + 1, item);
        while c < 1_000_000 {
            let next = grown_capacity(c, item);
            let bytes = next * item;
            // Within one element of a class boundary (a multiple of a quarter power of two).
            assert!(size_class(bytes) - bytes < item, "{c} -> {next}");
            assert!(next * 8 >= c * 9 && next * 4 <= c * 5 + 4, "{c} -> {next}");
            c = next;
        }
    }

    #[test]
    fn churn_at_a_flat_count_keeps_the_index_small() {
        // Eviction's pattern: the key count stays flat while keys come and go. With
        // hashbrown, tombstones doubled the index until it was under half full.
        let mut t = Table::default();
        let n = 20_000u64;
        for i in 0..n {
            t.insert(
                format!("key:{i}").as_bytes(),
                Entry::new(Value::string(Vec::new())),
            );
        }
        // At most what a fresh index for this count takes.
        let needed = Index::with_live(n as usize).allocation_size();
        for i in n..n * 20 {
            t.insert(
                format!("key:{i}").as_bytes(),
                Entry::new(Value::string(Vec::new())),
            );
            let victim = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize % t.len();
            t.swap_remove_index(victim);
            assert_eq!(t.len(), n as usize);
        }
        assert!(
            t.index.allocation_size() <= needed,
            "index grew to {} bytes at a flat key count ({needed} needed)",
            t.index.allocation_size()
        );
        for i in 0..t.len() {
            let (k, _) = t.get_index(i).unwrap();
            assert_eq!(t.get_index_of(k), Some(i));
        }
    }
}
