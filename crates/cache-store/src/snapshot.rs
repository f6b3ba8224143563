//! Snapshots as of one instant, without stopping writes and without fork: copy on write.
//!
//! ```text
//!  begin (all shard locks, microseconds): every Db gets an empty `Preserved` log
//!  a write to key K in a Db whose log is open: first log K's entry as it is (or "absent")
//!  the writer, per (database, shard): under the shard lock, every table entry whose key is
//!      not in the log (unchanged since the instant), then, lock released, the log's entries;
//!      the log is closed, so later writes there cost nothing
//! ```
//!
//! The cost: a key's first change during a snapshot clones its old value under the shard
//! lock (only if the writer has not passed its shard yet), the log holds those clones until
//! then, and each (database, shard) is walked once under its lock (1/64 of a database at a
//! time). FLUSHDB and SWAPDB during a snapshot first copy the databases they touch whole.
//! Keys that expire or are evicted mid-snapshot are logged like any change, so they are
//! written as they were; keys already expired at the instant are left out.

use hashbrown::HashMap;

use crate::{Db, Entry, Key, Store, SHARDS};

/// The state at the instant of the keys a Db changed since.
#[derive(Debug, Default)]
pub(crate) struct Preserved {
    entries: HashMap<Key, Option<Entry>>,
    /// The log holds the whole database as of the instant (after a flush or swap).
    complete: bool,
}

impl Db {
    /// Logs `key`'s current state before a change, once per snapshot.
    pub(crate) fn preserve(&mut self, key: &[u8]) {
        if let Some(p) = self.cow.as_deref_mut() {
            if !p.complete && !p.entries.contains_key(key) {
                p.entries.insert(Key::new(key), self.map.get(key).cloned());
            }
        }
    }

    pub(crate) fn preserve_index(&mut self, i: usize) {
        if let Some(p) = self.cow.as_deref_mut() {
            if let Some((k, e)) = self.map.get_index(i) {
                if !p.complete && !p.entries.contains_key(&k[..]) {
                    p.entries.insert(k.clone(), Some(e.clone()));
                }
            }
        }
    }

    /// Logs every key not logged yet: the table is about to be replaced wholesale.
    pub(crate) fn preserve_all(&mut self) {
        if let Some(p) = self.cow.as_deref_mut() {
            if !p.complete {
                for (k, e) in self.map.iter() {
                    p.entries
                        .entry(k.clone())
                        .or_insert_with(|| Some(e.clone()));
                }
                p.complete = true;
            }
        }
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
    /// `instant_ms`, and closes that part's log. Entries unchanged since the instant are
    /// visited under the shard lock, logged ones after it is released.
    pub fn snapshot_part(
        &self,
        shard: usize,
        db: usize,
        instant_ms: u64,
        mut f: impl FnMut(&[u8], &Entry),
    ) {
        let preserved = {
            let mut guard = self.lock_shard(shard);
            let d = &mut guard.dbs[db];
            let Some(p) = d.cow.take() else {
                return;
            };
            if !p.complete {
                for (k, e) in d.map.iter() {
                    if !p.entries.contains_key(&k[..]) && !e.is_expired(instant_ms) {
                        f(k, e);
                    }
                }
            }
            p
        };
        for (k, e) in preserved.entries.iter() {
            if let Some(e) = e {
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
}
