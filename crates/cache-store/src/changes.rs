//! What a command changed, said by the store itself.
//!
//! ```text
//!  conn ─► ChangeLog::record(|| run the command) ─► Vec<KeyChange> ─► backing store writes
//!              │
//!              └─ the command writes through Keyspace { store, log }:
//!                 Locked (armed shards note every change) ─drop─► log ← KeyChange::Key
//!                 flush / swap_db                               ─► log ← KeyChange::Flushed
//! ```
//!
//! A command reaches the keyspace through a [`Keyspace`], which carries its connection's
//! [`ChangeLog`]. While the log is armed (a write command is running under the backing store's
//! order), every shard the command locks notes each key it changes, and the lock hands the
//! list to the log when it is released. Nothing global or thread-local is involved: the
//! changes a command made are exactly those that went through its own `Keyspace`.
//!
//! Expiries and evictions are not in the log: no command made them, and a backing store keeps
//! the row of an evicted key (it is forgotten from memory, not deleted). Watchers, blocked
//! clients and client tracking still hear about every change through the store's observer
//! ([`crate::KeyObserver`]), synchronously as each lock is released: they must also hear of
//! expiries, evictions and loads, and a WATCH told only after the command finished would let
//! another client's EXEC pass in between.

use std::cell::{Cell, RefCell};

use crate::{Key, Locked, Store};

/// One change a command made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// The key of database `.0` was written or deleted (its state now is what it is).
    Key(usize, Key),
    /// One database, or every database (`None`), was emptied.
    Flushed(Option<usize>),
}

/// Where one connection's commands note what they change. Unarmed (the default), nothing is
/// noted and a lock costs one `Cell` read more.
#[derive(Debug, Default)]
pub struct ChangeLog {
    armed: Cell<bool>,
    changes: RefCell<Vec<KeyChange>>,
}

impl ChangeLog {
    /// Runs `f` with the log armed and returns what it changed, in order.
    pub fn record<R>(&self, f: impl FnOnce() -> R) -> (R, Vec<KeyChange>) {
        debug_assert!(!self.armed.get(), "ChangeLog::record nested");
        self.changes.borrow_mut().clear();
        self.armed.set(true);
        // Disarmed even if `f` unwinds, so a caught panic leaves no armed log behind.
        struct Disarm<'a>(&'a Cell<bool>);
        impl Drop for Disarm<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let disarm = Disarm(&self.armed);
        let r = f();
        drop(disarm);
        (r, std::mem::take(&mut *self.changes.borrow_mut()))
    }

    pub fn armed(&self) -> bool {
        self.armed.get()
    }

    pub(crate) fn push(&self, change: KeyChange) {
        if self.armed.get() {
            self.changes.borrow_mut().push(change);
        }
    }
}

/// The keyspace as one command sees it: the store, and the log its changes go to.
#[derive(Clone, Copy)]
pub struct Keyspace<'a> {
    pub store: &'a Store,
    pub log: &'a ChangeLog,
}

impl<'a> Keyspace<'a> {
    pub fn new(store: &'a Store, log: &'a ChangeLog) -> Self {
        Keyspace { store, log }
    }

    /// [`Store::lock`], its changes noted.
    pub fn lock(self, key: &[u8]) -> Locked<'a> {
        self.store.lock(key).logging(self.log)
    }

    /// [`Store::lock_keys`], its changes noted.
    pub fn lock_keys<'k>(self, keys: impl IntoIterator<Item = &'k [u8]>) -> Locked<'a> {
        self.store.lock_keys(keys).logging(self.log)
    }

    /// [`Store::lock_all`], its changes noted.
    pub fn lock_all(self) -> Locked<'a> {
        self.store.lock_all().logging(self.log)
    }

    /// [`Store::flush`], noted.
    pub fn flush(self, db: Option<usize>) {
        self.store.flush(db);
        self.log.push(KeyChange::Flushed(db));
    }

    /// [`Store::swap_db`], noted as both databases replaced.
    pub fn swap_db(self, a: usize, b: usize) {
        self.store.swap_db(a, b);
        self.log.push(KeyChange::Flushed(Some(a)));
        self.log.push(KeyChange::Flushed(Some(b)));
    }

    /// [`Locked::move_key`] on the key's shard, noted.
    pub fn move_key(self, key: &[u8], from: usize, to: usize, now_ms: u64) -> bool {
        self.lock(key).move_key(key, from, to, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Policy, StoreConfig, Value};

    fn s(v: &str) -> Entry {
        Entry::new(Value::string(v.as_bytes()))
    }

    #[test]
    fn a_command_is_told_its_own_writes_and_nothing_else() {
        let store = Store::new(StoreConfig::default());
        let log = ChangeLog::default();
        let ks = Keyspace::new(&store, &log);
        store.lock(b"before").insert(0, b"before", s("v"), 0);
        store
            .lock(b"t")
            .insert(0, b"t", Entry::with_expiry(Value::string(&b"v"[..]), 5), 0);
        let ((), changes) = log.record(|| {
            ks.lock(b"a").insert(0, b"a", s("v"), 0);
            ks.lock_keys([&b"before"[..], &b"c"[..]])
                .remove(0, b"before", 0);
            // A read, an expiry met on the way and another connection's write: none is ours.
            ks.lock(b"t").get(0, b"t", 10);
            store.lock(b"other").insert(0, b"other", s("v"), 0);
            store.expire_cycle(10, 100);
            assert!(ks.move_key(b"a", 0, 3, 10));
            ks.flush(Some(2));
        });
        assert_eq!(
            changes,
            vec![
                KeyChange::Key(0, b"a".as_slice().into()),
                KeyChange::Key(0, b"before".as_slice().into()),
                KeyChange::Key(0, b"a".as_slice().into()),
                KeyChange::Key(3, b"a".as_slice().into()),
                KeyChange::Flushed(Some(2)),
            ]
        );
        // Unarmed, the same keyspace notes nothing.
        ks.lock(b"z").insert(0, b"z", s("v"), 0);
        let ((), after) = log.record(|| ());
        assert!(after.is_empty());
    }

    #[test]
    fn evictions_are_not_changes() {
        let store = Store::new(StoreConfig::default());
        let log = ChangeLog::default();
        let ks = Keyspace::new(&store, &log);
        store.lock(b"k").insert(0, b"k", s("v"), 0);
        store.eviction.set_policy(Policy::AllKeysLru);
        let (victim, changes) = log.record(|| {
            let v = store.evict_one(0);
            ks.lock(b"k").evict(0, b"k", 0);
            v
        });
        assert!(victim.is_some());
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn a_panicking_command_leaves_the_log_unarmed() {
        let log = ChangeLog::default();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            log.record(|| panic!("boom"));
        }));
        assert!(caught.is_err());
        assert!(!log.armed());
    }
}
