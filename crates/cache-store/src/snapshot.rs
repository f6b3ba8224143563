//! Snapshots as of one instant, without stopping writes and without fork: copy on write.
//!
//! ```text
//!  begin (all shard locks, microseconds): every Db gets an empty `Preserved` log
//!  a write to key K in a Db whose log is open: first log K's entry as it is (or "absent"),
//!      unless the writer already wrote K
//!  the writer, per (database, shard): walks the table from the top down, 256 entries per
//!      lock hold, writing entries whose key is not in the log (unchanged since the instant);
//!      then it closes the log and writes the logged entries, lock released
//! ```
//!
//! Walking down is what makes the walk resumable: removal moves the last entry into the
//! hole, so an entry is never moved from the part not yet walked into the part walked (no
//! miss); one moved the other way would be walked twice, so the move marks it written. A
//! hashbrown resize changes no position (the positions are the table's own vector).
//!
//! The cost: a key's first change during a snapshot clones its old value under the shard
//! lock (only if the writer has not passed it yet), the log holds those clones until its
//! part is written, and each lock hold serializes at most 256 entries (a single huge value
//! is serialized under the lock it sits in). SWAPDB during a snapshot first copies the two
//! databases' unwritten entries; FLUSHDB moves them into the log (no copy). Keys that expire
//! or are evicted mid-snapshot are logged like any change, so they are written as they were;
//! keys already expired at the instant are left out.

use hashbrown::HashMap;

use crate::{Db, Entry, Key, Store, SHARDS};

/// Entries per lock hold of the writer.
const CHUNK: usize = 256;

/// What the log knows of a key.
#[derive(Debug)]
enum Saved {
    /// Absent at the instant (created since).
    Absent,
    /// Its entry at the instant.
    Was(Entry),
    /// Already written by the walk (and moved below its cursor since).
    Written,
}

/// The state at the instant of the keys a Db changed since, and how far the walk got.
#[derive(Debug)]
pub(crate) struct Preserved {
    entries: HashMap<Key, Saved>,
    /// Table positions at or above this have been written.
    cursor: usize,
    /// The log holds the whole rest of the database as of the instant (after a flush or
    /// swap): the table is not walked.
    complete: bool,
}

impl Default for Preserved {
    fn default() -> Self {
        Preserved {
            entries: HashMap::new(),
            cursor: usize::MAX,
            complete: false,
        }
    }
}

impl Db {
    /// Logs `key`'s current state before a change, once per snapshot.
    pub(crate) fn preserve(&mut self, key: &[u8]) {
        let Some(p) = self.cow.as_deref_mut() else {
            return;
        };
        if p.complete || p.entries.contains_key(key) {
            return;
        }
        let saved = match self.map.get_index_of(key) {
            Some(i) if i >= p.cursor => return,
            Some(i) => Saved::Was(self.map.entry_ref(i).clone()),
            None => Saved::Absent,
        };
        p.entries.insert(Key::new(key), saved);
    }

    pub(crate) fn preserve_index(&mut self, i: usize) {
        let Some(p) = self.cow.as_deref_mut() else {
            return;
        };
        if p.complete || i >= p.cursor {
            return;
        }
        if let Some((k, e)) = self.map.get_index(i) {
            if !p.entries.contains_key(&k[..]) {
                p.entries.insert(k.clone(), Saved::Was(e.clone()));
            }
        }
    }

    /// Before the entry at `hole` is removed: the last entry moves into the hole, and if
    /// that takes it from the walked part to the unwalked one it must not be written again.
    pub(crate) fn note_move(&mut self, hole: usize) {
        let Some(p) = self.cow.as_deref_mut() else {
            return;
        };
        let Some(last) = self.map.len().checked_sub(1) else {
            return;
        };
        if p.complete || hole == last || hole >= p.cursor || last < p.cursor {
            return;
        }
        if let Some((k, _)) = self.map.get_index(last) {
            p.entries.entry(k.clone()).or_insert(Saved::Written);
        }
    }

    /// Logs every entry not written or logged yet: the table is about to be swapped away.
    pub(crate) fn preserve_all(&mut self) {
        let Some(p) = self.cow.as_deref_mut() else {
            return;
        };
        if p.complete {
            return;
        }
        for (pos, (k, e)) in self.map.iter().enumerate() {
            if pos < p.cursor {
                p.entries
                    .entry(k.clone())
                    .or_insert_with(|| Saved::Was(e.clone()));
            }
        }
        p.complete = true;
    }

    /// A flushed database's log: the entries not written or logged yet move into it (no
    /// copy). None when no snapshot is open.
    pub(crate) fn preserve_moved(mut self) -> Option<Box<Preserved>> {
        let mut p = self.cow.take()?;
        if !p.complete {
            for (pos, (k, e)) in std::mem::take(&mut self.map).into_entries().enumerate() {
                if pos < p.cursor {
                    p.entries.entry(k).or_insert(Saved::Was(e));
                }
            }
            p.complete = true;
        }
        Some(p)
    }
}

/// Sizes of one database at the instant, for the file's RESIZEDB hint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbSize {
    pub keys: u64,
    pub expires: u64,
}

impl Store {
    /// Opens a snapshot at this instant. Returns the databases' sizes, or None when a
    /// snapshot is already open.
    pub fn begin_snapshot(&self) -> Option<Vec<DbSize>> {
        let mut guards: Vec<_> = (0..SHARDS).map(|i| self.lock_shard(i)).collect();
        if guards[0].dbs.iter().any(|d| d.cow.is_some()) || self.snapshot_open() {
            return None;
        }
        let mut sizes = vec![DbSize::default(); self.databases];
        for g in guards.iter_mut() {
            for (d, size) in g.dbs.iter_mut().zip(sizes.iter_mut()) {
                size.keys += d.len() as u64;
                size.expires += d.volatile_len() as u64;
                d.cow = Some(Box::default());
            }
        }
        self.snapshot_active
            .store(true, std::sync::atomic::Ordering::Release);
        Some(sizes)
    }

    /// Whether a snapshot is open.
    pub fn snapshot_open(&self) -> bool {
        self.snapshot_active
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Hands every key of (`shard`, `db`) as of the instant to `f`, skipping keys expired at
    /// `instant_ms`, and closes that part's log. The table is walked [`CHUNK`] entries per
    /// lock hold; logged entries are handed over after the lock is released.
    pub fn snapshot_part(
        &self,
        shard: usize,
        db: usize,
        instant_ms: u64,
        mut f: impl FnMut(&[u8], &Entry),
    ) {
        let preserved = loop {
            let mut guard = self.lock_shard(shard);
            let Db { map, cow, .. } = &mut guard.dbs[db];
            let Some(p) = cow.as_deref_mut() else {
                return;
            };
            let top = p.cursor.min(map.len());
            if p.complete || top == 0 {
                break cow.take();
            }
            let low = top.saturating_sub(CHUNK);
            for pos in (low..top).rev() {
                if let Some((k, e)) = map.get_index(pos) {
                    if !p.entries.contains_key(&k[..]) && !e.is_expired(instant_ms) {
                        f(k, e);
                    }
                }
            }
            p.cursor = low;
            drop(guard);
            // A snapshot is background work: on a machine with as many busy threads as
            // cores, let a worker that is waiting run first.
            std::thread::yield_now();
        };
        for (k, saved) in preserved.iter().flat_map(|p| p.entries.iter()) {
            if let Saved::Was(e) = saved {
                if !e.is_expired(instant_ms) {
                    f(k, e);
                }
            }
        }
    }

    /// Closes the snapshot: logs not consumed are dropped (after a failed save, too).
    pub fn end_snapshot(&self) {
        for i in 0..SHARDS {
            let mut g = self.lock_shard(i);
            for d in g.dbs.iter_mut() {
                d.cow = None;
            }
        }
        self.snapshot_active
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Entry, Store, StoreConfig, Value, SHARDS};

    fn collect(store: &Store, instant: u64) -> Vec<(usize, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for db in 0..store.databases() {
            for shard in 0..SHARDS {
                store.snapshot_part(shard, db, instant, |k, e| {
                    out.push((db, k.to_vec(), e.value.as_bytes().unwrap().to_vec()))
                });
            }
        }
        store.end_snapshot();
        out.sort();
        out
    }

    fn set(store: &Store, db: usize, k: &str, v: &str, expires_at: u64) {
        store.lock(k.as_bytes()).insert(
            db,
            k.as_bytes(),
            Entry::with_expiry(Value::string(v.as_bytes()), expires_at),
            1,
        );
    }

    #[test]
    fn sees_the_instant_whatever_happens_after() {
        let store = Store::new(StoreConfig { databases: 4 });
        for i in 0..200 {
            set(&store, 0, &format!("k{i}"), "old", 0);
        }
        set(&store, 1, "d1", "x", 0);
        set(&store, 2, "d2", "y", 0);
        set(&store, 0, "soon", "gone", 50);
        let sizes = store.begin_snapshot().unwrap();
        assert_eq!(sizes[0].keys, 201);
        assert!(store.begin_snapshot().is_none());
        for i in 0..100 {
            set(&store, 0, &format!("k{i}"), "new", 0);
        }
        for i in 100..150 {
            store
                .lock(format!("k{i}").as_bytes())
                .remove(0, format!("k{i}").as_bytes(), 1);
        }
        set(&store, 0, "created", "later", 0);
        store.lock(b"k199").get_mut(0, b"k199", 1).unwrap().value = Value::string(&b"mutated"[..]);
        store.swap_db(1, 2);
        store.flush(Some(3));
        // Expired by the time it is written, live at the instant (10).
        store.expire_cycle(1000, 1000);
        let got = collect(&store, 10);
        assert_eq!(got.len(), 203);
        assert!(got
            .iter()
            .all(|(db, k, v)| *db != 0 || v == b"old" || (k == b"soon" && v == b"gone")));
        assert!(got.contains(&(1, b"d1".to_vec(), b"x".to_vec())));
        assert!(got.contains(&(2, b"d2".to_vec(), b"y".to_vec())));
        // After the snapshot, the store is as written to.
        assert!(!store.snapshot_open());
        assert_eq!(store.dbsize(1), 1);
        assert!(store.lock(b"d2").contains(1, b"d2", 1));
    }

    #[test]
    fn concurrent_changes_never_show_through_the_chunked_walk() {
        let store = Store::new(StoreConfig { databases: 1 });
        // About 940 keys per shard: every part takes several lock holds.
        const N: usize = 60_000;
        for i in 0..N {
            set(&store, 0, &format!("k{i}"), &format!("v{i}"), 0);
        }
        store.begin_snapshot().unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let ops = std::sync::atomic::AtomicU64::new(0);
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = format!("k{}", x % N as u64);
                    match x % 4 {
                        0 => {
                            store.lock(k.as_bytes()).remove(0, k.as_bytes(), 1);
                        }
                        1 => set(&store, 0, &k, "changed", 0),
                        2 => set(&store, 0, &format!("new{x}"), "new", 0),
                        _ => {
                            if let Some(e) = store.lock(k.as_bytes()).get_mut(0, k.as_bytes(), 1) {
                                e.value = Value::string(&b"in place"[..]);
                            }
                        }
                    }
                }
            });
            while ops.load(std::sync::atomic::Ordering::Relaxed) < 1000 {
                std::thread::yield_now();
            }
            let before = ops.load(std::sync::atomic::Ordering::Relaxed);
            let got = collect(&store, 10);
            let during = ops.load(std::sync::atomic::Ordering::Relaxed) - before;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(
                during > 100,
                "the writes did not overlap the walk ({during})"
            );
            got
        });
        let mut expected: Vec<_> = (0..N)
            .map(|i| {
                (
                    0,
                    format!("k{i}").into_bytes(),
                    format!("v{i}").into_bytes(),
                )
            })
            .collect();
        expected.sort();
        assert_eq!(got.len(), N, "duplicates or misses");
        assert_eq!(got, expected);
    }
}
