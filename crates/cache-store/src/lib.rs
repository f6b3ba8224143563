//! The keyspace: sharded tables of keys with TTLs, independent of sockets and of time.
//!
//! ```text
//!            key ──CRC16──► slot (0..16384) ──mod N──► shard
//!  Store ─┬─ Mutex<Shard 0> ─┬─ Db 0: Table (Vec of entries + hash index) + BTreeSet<(expires_at, Key)>
//!         │                  ├─ Db 1 ...            (all 16 databases of the shard's slots)
//!         ├─ Mutex<Shard 1>
//!         └─ ...
//! ```
//!
//! A shard owns whole cluster slots, so "every key of slot S" lives in one shard: that is the
//! per-slot key index the proxy's invalidation uses (`keys_in_slot`, `drop_slot`), kept for the
//! price of a 4-byte counter per slot. A shard holds every database, so MOVE and COPY between
//! databases take one lock. Locks are `std::sync::Mutex`, held for one command and never across
//! an `.await`; multi-key commands lock their shards in ascending order.
//!
//! Each table is a dense vector of entries with an index of positions (u32 slots, see
//! [`table`]), so that a random entry is one index away
//! (RANDOMKEY, eviction sampling) and SCAN can walk positions downwards: `swap_remove` only moves
//! the last entry into a hole, so a cursor that walks from the top never misses a key that was
//! present for the whole scan. Keys with a TTL are also in a `BTreeSet` ordered by expiry, so
//! active expiry removes exactly the expired keys instead of sampling for them.
//!
//! Time is passed in (`now_ms`), never read here, so tests control it.

pub mod changes;
pub mod evict;
mod index;
pub mod key;
pub mod snapshot;
pub mod stream;
pub mod table;
pub mod tinylfu;
pub mod value;
pub mod zset;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

pub use cache_routing::{hash_tag, key_slot, SLOTS};
pub use changes::{ChangeLog, KeyChange, Keyspace};
pub use evict::Policy;
pub use stream::{Stream, StreamId};
pub use value::{Entry, HashValue, Key, ListValue, SetValue, Value};
pub use zset::ZSet;

/// Bytes of table and bookkeeping per entry beyond its key and value, for estimates.
pub const ENTRY_OVERHEAD: usize = 96;

/// Shards per store. A power of two that divides the slot count.
pub const SHARDS: usize = 64;
const SLOTS_PER_SHARD: usize = SLOTS / SHARDS;

use table::Table;

/// One database's part of one shard.
#[derive(Debug, Default)]
pub struct Db {
    map: Table,
    expires: BTreeSet<(u64, Key)>,
    /// Keys per slot of this shard (index `slot / SHARDS`); empty until the first insert.
    slot_counts: Vec<u32>,
    /// Open while a snapshot has not written this part yet (see [`snapshot`]).
    cow: Option<Box<snapshot::Preserved>>,
}

impl Db {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn volatile_len(&self) -> usize {
        self.expires.len()
    }

    fn count_slot(&mut self, key: &[u8], delta: i32) {
        if self.slot_counts.is_empty() {
            self.slot_counts = vec![0; SLOTS_PER_SHARD];
        }
        let i = key_slot(key) as usize / SHARDS;
        self.slot_counts[i] = self.slot_counts[i].wrapping_add_signed(delta);
    }

    fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        self.preserve(key);
        let expires_at = entry.expires_at;
        let old = self.map.insert(key, entry);
        if old.is_none() {
            self.count_slot(key, 1);
        }
        let old_expiry = old.as_ref().map_or(0, |e| e.expires_at);
        if old_expiry != expires_at {
            if old_expiry != 0 {
                self.expires.remove(&(old_expiry, Key::from(key)));
            }
            if expires_at != 0 {
                self.expires.insert((expires_at, key.into()));
            }
        }
        old
    }

    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let i = self.map.get_index_of(key)?;
        self.remove_index(i).map(|(_, e)| e)
    }

    fn remove_index(&mut self, index: usize) -> Option<(Key, Entry)> {
        self.preserve_index(index);
        self.note_move(index);
        let (key, entry) = self.map.swap_remove_index(index)?;
        self.count_slot(&key, -1);
        if entry.expires_at != 0 {
            self.expires.remove(&(entry.expires_at, key.clone()));
        }
        Some((key, entry))
    }

    fn set_expiry(&mut self, key: &[u8], expires_at: u64) -> bool {
        self.preserve(key);
        let Some(entry) = self.map.get_mut(key) else {
            return false;
        };
        let old = std::mem::replace(&mut entry.expires_at, expires_at);
        if old != expires_at {
            if old != 0 {
                self.expires.remove(&(old, Key::from(key)));
            }
            if expires_at != 0 {
                self.expires.insert((expires_at, key.into()));
            }
        }
        true
    }

    fn clear(&mut self) {
        let old = std::mem::take(self);
        self.cow = old.preserve_moved();
    }
}

/// Told about key changes, after the shard locks are released: WATCH, blocked clients and
/// client tracking hang off this. (A backing store reads what a command changed from the
/// command's own [`ChangeLog`] instead: see [`changes`].)
pub trait KeyObserver: Send + Sync {
    /// `key` in `db` was written or deleted.
    fn modified(&self, db: usize, key: &[u8]);
    /// `key` in `db` was removed because its TTL passed.
    fn expired(&self, db: usize, key: &[u8]);
    /// A whole database (or all, for None) was flushed.
    fn flushed(&self, db: Option<usize>);
    /// Databases `a` and `b` were swapped: each one's keys changed as a whole.
    fn swapped(&self, a: usize, b: usize) {
        self.flushed(Some(a));
        self.flushed(Some(b));
    }
    /// `key` in `db` was evicted to free memory: gone from memory, not deleted (a backing
    /// store keeps it). Others see it as a change.
    fn evicted(&self, db: usize, key: &[u8]) {
        self.modified(db, key);
    }
}

/// One lock's worth of the keyspace.
pub struct Shard {
    dbs: Box<[Db]>,
    rng: fastrand::Rng,
    /// Keys removed because their TTL passed (lazily or actively).
    pub expired_keys: u64,
    /// Keys of this shard someone observes (WATCH, a blocked client); while non-zero, every
    /// change is recorded in `touched` for the observer.
    observed: usize,
    /// Report every expiry (keyspace notifications of class `x` are on).
    report_expiries: bool,
    /// A [`Locked`] with an armed [`ChangeLog`] holds this shard: every change is noted.
    logging: bool,
    touched: Vec<Touched>,
    /// TinyLFU's frequency sketch for this shard's keys (empty unless that policy is on).
    sketch: tinylfu::Sketch,
}

/// What happened to a key, for the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Modified,
    Expired,
    Evicted,
}

/// A change recorded for the observer.
type Touched = (usize, Key, Change);

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").finish_non_exhaustive()
    }
}

impl Shard {
    fn new(databases: usize, seed: u64) -> Self {
        Shard {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            rng: fastrand::Rng::with_seed(seed),
            expired_keys: 0,
            observed: 0,
            report_expiries: false,
            logging: false,
            touched: Vec::new(),
            sketch: tinylfu::Sketch::default(),
        }
    }

    /// Counts a lookup of `key` in the TinyLFU sketch (hits and misses alike).
    fn count_access(&mut self, key: &[u8]) {
        let hash = sketch_hash(key);
        let len: usize = self.dbs.iter().map(Db::len).sum();
        self.sketch.fit(len);
        self.sketch.increment(hash);
    }

    fn touch(&mut self, db: usize, key: &[u8]) {
        if self.observed > 0 || self.logging {
            self.touched.push((db, key.into(), Change::Modified));
        }
    }

    fn touch_expired(&mut self, db: usize, key: &[u8]) {
        if self.observed > 0 || self.report_expiries {
            self.touched.push((db, key.into(), Change::Expired));
        }
    }

    fn touch_evicted(&mut self, db: usize, key: &[u8]) {
        if self.observed > 0 {
            self.touched.push((db, key.into(), Change::Evicted));
        }
    }

    fn random(&mut self) -> u64 {
        self.rng.u64(..)
    }

    pub fn db(&self, db: usize) -> &Db {
        &self.dbs[db]
    }

    /// Looks a key up, deleting it first if its TTL has passed.
    fn lookup(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<usize> {
        let d = &mut self.dbs[db];
        let i = d.map.get_index_of(key)?;
        if d.map.entry_ref(i).is_expired(now_ms) {
            d.remove_index(i);
            self.expired_keys += 1;
            self.touch_expired(db, key);
            return None;
        }
        Some(i)
    }

    /// Removes up to `budget` expired keys; returns how many went.
    fn expire_some(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut removed = 0;
        for (db, d) in self.dbs.iter_mut().enumerate() {
            while removed < budget {
                let Some((at, key)) = d.expires.first() else {
                    break;
                };
                if *at > now_ms {
                    break;
                }
                let key = key.clone();
                d.remove(&key);
                if self.observed > 0 || self.report_expiries {
                    self.touched.push((db, key, Change::Expired));
                }
                removed += 1;
            }
        }
        self.expired_keys += removed as u64;
        removed
    }
}

/// Which shards a command holds.
enum Guards<'a> {
    One(usize, MutexGuard<'a, Shard>),
    Many(Vec<(usize, MutexGuard<'a, Shard>)>),
}

/// The shards one command locked, and the operations it may do on their keys.
///
/// Every key passed in must belong to a locked shard (else a panic: a bug in the caller's key
/// list, never in client input).
pub struct Locked<'a> {
    guards: Guards<'a>,
    store: &'a Store,
    /// Where this command's changes go, when its log is armed (see [`changes`]).
    log: Option<&'a ChangeLog>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let mut touched = Vec::new();
        match &mut self.guards {
            Guards::One(_, g) => {
                g.logging = false;
                touched.append(&mut g.touched);
            }
            Guards::Many(list) => {
                for (_, g) in list.iter_mut() {
                    g.logging = false;
                    touched.append(&mut g.touched);
                }
            }
        }
        if touched.is_empty() {
            return;
        }
        if let Some(log) = self.log {
            for (db, key, change) in &touched {
                if *change == Change::Modified {
                    log.push(KeyChange::Key(*db, key.clone()));
                }
            }
        }

        // Release the shard locks before calling out: the observer may lock shards itself.
        self.guards = Guards::Many(Vec::new());
        self.store.report(touched);
    }
}

impl<'a> Locked<'a> {
    /// Notes this lock's changes in `log` while it is armed.
    fn logging(mut self, log: &'a ChangeLog) -> Self {
        if log.armed() {
            match &mut self.guards {
                Guards::One(_, g) => g.logging = true,
                Guards::Many(list) => list.iter_mut().for_each(|(_, g)| g.logging = true),
            }
            self.log = Some(log);
        }
        self
    }

    /// Moves `key` from database `from` to `to`. False if the key is absent or exists in `to`.
    pub fn move_key(&mut self, key: &[u8], from: usize, to: usize, now_ms: u64) -> bool {
        let shard = self.shard(key);
        if shard.lookup(to, key, now_ms).is_some() {
            return false;
        }
        let Some(i) = shard.lookup(from, key, now_ms) else {
            return false;
        };
        let (_, entry) = shard.dbs[from].remove_index(i).expect("index just found");
        shard.dbs[to].insert(key, entry);
        shard.touch(from, key);
        shard.touch(to, key);
        true
    }

    fn shard(&mut self, key: &[u8]) -> &mut Shard {
        match &mut self.guards {
            Guards::One(i, g) => {
                // The single-shard lock was taken for this key; hashing it again per access
                // would double the CRC16 work on the hot path.
                debug_assert_eq!(*i, shard_of(key), "key's shard not locked");
                g
            }
            Guards::Many(list) => {
                let want = shard_of(key);
                let pos = list
                    .binary_search_by_key(&want, |(i, _)| *i)
                    .expect("key's shard not locked");
                &mut list[pos].1
            }
        }
    }

    /// The live entry of `key`, if any; an expired one is deleted and not returned.
    /// Counts as an access (OBJECT IDLETIME).
    pub fn get(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let settings = &self.store.eviction;
        let policy = settings.policy();
        let shard = self.shard(key);
        if policy.tinylfu() {
            shard.count_access(key);
        }
        let i = shard.lookup(db, key, now_ms)?;
        let random = if policy.lfu() { shard.random() } else { 0 };
        let epoch = shard.sketch.epoch();
        let entry = shard.dbs[db].map.entry_at(i);
        entry.access = touched_access(settings, policy, entry.access, now_ms, random);
        if policy.tinylfu() {
            entry.freq = tinylfu::touched(entry.freq, epoch);
        }
        Some(entry)
    }

    /// The live entry of `key` for changing in place; the change is reported to the observer.
    pub fn get_mut(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let settings = &self.store.eviction;
        let policy = settings.policy();
        let shard = self.shard(key);
        let i = shard.lookup(db, key, now_ms)?;
        shard.dbs[db].preserve_index(i);
        shard.touch(db, key);
        let random = if policy.lfu() { shard.random() } else { 0 };
        let entry = shard.dbs[db].map.entry_at(i);
        entry.access = touched_access(settings, policy, entry.access, now_ms, random);
        Some(entry)
    }

    /// The live entry of `key`, created with `make` if absent; reported as changed.
    pub fn get_or_insert(
        &mut self,
        db: usize,
        key: &[u8],
        now_ms: u64,
        make: impl FnOnce() -> Value,
    ) -> &mut Entry {
        if self.peek(db, key, now_ms).is_none() {
            self.insert(db, key, Entry::new(make()), now_ms);
        }
        self.get_mut(db, key, now_ms).expect("just inserted")
    }

    /// Deletes `key` if it holds an empty collection (Redis never keeps empty ones).
    /// Returns whether it was deleted.
    pub fn remove_if_empty(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        if self
            .peek(db, key, now_ms)
            .is_some_and(|e| e.value.is_empty_collection())
        {
            self.remove(db, key, now_ms);
            return true;
        }
        false
    }

    /// Sets the LRU/LFU word of a live key (RESTORE's IDLETIME and FREQ); whether it is there.
    /// `idle_secs` applies under an LRU policy and `freq` under an LFU one, as in Redis.
    pub fn set_access(
        &mut self,
        db: usize,
        key: &[u8],
        now_ms: u64,
        idle_secs: Option<u64>,
        freq: Option<u8>,
    ) -> bool {
        let lfu = self.store.eviction.policy().lfu();
        let shard = self.shard(key);
        let Some(i) = shard.lookup(db, key, now_ms) else {
            return false;
        };
        let entry = shard.dbs[db].map.entry_at(i);
        match (lfu, idle_secs, freq) {
            (false, Some(idle), _) => {
                entry.access = evict::lru_clock(now_ms.saturating_sub(idle.saturating_mul(1000)));
            }
            (true, _, Some(f)) => entry.access = evict::lfu_with_counter(now_ms, f),
            _ => {}
        }
        true
    }

    /// Like [`get`](Self::get) without counting as an access (TYPE, TTL, OBJECT).
    pub fn peek(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let shard = self.shard(key);
        let i = shard.lookup(db, key, now_ms)?;
        Some(shard.dbs[db].map.entry_ref(i))
    }

    pub fn contains(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        self.peek(db, key, now_ms).is_some()
    }

    /// Stores a string value with an absolute expiry (0 = none). A live string of the same
    /// length is overwritten in place: a cache rewriting values of one size (counters,
    /// fixed-size records) then allocates and frees nothing, which leaves the allocator no
    /// garbage to purge.
    pub fn set_string(
        &mut self,
        db: usize,
        key: &[u8],
        value: &[u8],
        expires_at: u64,
        now_ms: u64,
    ) {
        let policy = self.store.eviction.policy();
        let shard = self.shard(key);
        if let Some(i) = shard.dbs[db].map.get_index_of(key) {
            shard.dbs[db].preserve_index(i);
            let entry = shard.dbs[db].map.entry_at(i);
            if !entry.is_expired(now_ms) {
                if let Value::Str(s) = &mut entry.value {
                    if s.len() == value.len() {
                        s.copy_from_slice(value);
                        entry.access = if policy.lfu() {
                            evict::lfu_new(now_ms)
                        } else {
                            evict::lru_clock(now_ms)
                        };
                        let old_expiry = entry.expires_at;
                        if old_expiry != expires_at {
                            shard.dbs[db].set_expiry(key, expires_at);
                        }
                        shard.touch(db, key);
                        return;
                    }
                }
            }
        }
        self.insert(
            db,
            key,
            Entry::with_expiry(Value::string(value), expires_at),
            now_ms,
        );
    }

    /// Stores `entry` under `key`, replacing any value (and its TTL with the entry's).
    /// Returns the replaced entry, which may have been expired.
    pub fn insert(
        &mut self,
        db: usize,
        key: &[u8],
        mut entry: Entry,
        now_ms: u64,
    ) -> Option<Entry> {
        let policy = self.store.eviction.policy();
        entry.access = if policy.lfu() {
            evict::lfu_new(now_ms)
        } else {
            evict::lru_clock(now_ms)
        };
        let shard = self.shard(key);
        if policy.tinylfu() {
            // A new key's count starts where the sketch has it (the misses that led to it).
            let seen = shard.sketch.frequency(sketch_hash(key));
            entry.freq = tinylfu::stamp(seen, shard.sketch.epoch());
        }
        // A plain store (SET, MSET, RENAME's destination...) is a change like any other:
        // without this report a client WATCHing the key never saw another client's SET.
        shard.touch(db, key);
        shard.dbs[db].insert(key, entry)
    }

    /// Removes `key`; returns its entry if it was live.
    pub fn remove(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<Entry> {
        self.take(db, key, now_ms, Change::Modified)
    }

    /// Removes `key` to free memory (reported as evicted, not deleted); returns its entry if
    /// it was live.
    pub fn evict(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<Entry> {
        self.take(db, key, now_ms, Change::Evicted)
    }

    /// Takes `key` out, reporting it as `change` (or as an expiry if its TTL had passed).
    fn take(&mut self, db: usize, key: &[u8], now_ms: u64, change: Change) -> Option<Entry> {
        let shard = self.shard(key);
        let entry = shard.dbs[db].remove(key)?;
        if entry.is_expired(now_ms) {
            shard.expired_keys += 1;
            shard.touch_expired(db, key);
            return None;
        }
        match change {
            Change::Evicted => shard.touch_evicted(db, key),
            _ => shard.touch(db, key),
        }
        Some(entry)
    }

    /// Sets (or with 0 clears) the absolute expiry of an existing key. False if absent.
    pub fn set_expiry(&mut self, db: usize, key: &[u8], expires_at: u64) -> bool {
        let shard = self.shard(key);
        shard.touch(db, key);
        shard.dbs[db].set_expiry(key, expires_at)
    }
}

fn shard_of(key: &[u8]) -> usize {
    key_slot(key) as usize % SHARDS
}

/// The `access` word after an access, by policy.
fn touched_access(
    settings: &evict::Settings,
    policy: Policy,
    access: u32,
    now_ms: u64,
    random: u64,
) -> u32 {
    if policy.lfu() {
        evict::lfu_touch(
            access,
            now_ms,
            settings.lfu_log_factor.load(Relaxed),
            settings.lfu_decay_time.load(Relaxed),
            random,
        )
    } else {
        evict::lru_clock(now_ms)
    }
}

/// The hash the TinyLFU sketch counts a key under (fixed seed: sketches outlive nothing).
fn sketch_hash(key: &[u8]) -> u64 {
    // FNV-1a, then a multiply to spread the bits the sketch indexes with.
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    h ^ (h >> 29)
}

/// A per-thread generator for sampling: no lock and no shared cache line.
fn thread_random() -> u64 {
    fastrand::u64(..)
}

/// An entry freed by eviction.
#[derive(Debug)]
pub struct Evicted {
    pub db: usize,
    pub key: Key,
    /// Approximate bytes the entry held.
    pub bytes: usize,
}

/// A sampled eviction candidate: higher `score` goes first.
#[derive(Debug, Clone)]
struct Candidate {
    score: u64,
    shard: usize,
    db: usize,
    key: Key,
    frequency: u32,
}

const POOL_SIZE: usize = 16;

/// Store-wide settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub databases: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { databases: 16 }
    }
}

/// The whole keyspace.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    databases: usize,
    observer: std::sync::OnceLock<std::sync::Arc<dyn KeyObserver>>,
    /// maxmemory-policy and its knobs.
    pub eviction: evict::Settings,
    pool: Mutex<Vec<Candidate>>,
    evicted_keys: AtomicU64,
    /// A snapshot is open (see [`snapshot`]).
    snapshot_active: std::sync::atomic::AtomicBool,
}

/// What a SCAN call found, and where the next call continues (0 when done).
#[derive(Debug, Default)]
pub struct ScanPage {
    pub cursor: u64,
    pub keys: Vec<Key>,
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        Store {
            shards: (0..SHARDS)
                .map(|i| {
                    Mutex::new(Shard::new(
                        config.databases,
                        seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    ))
                })
                .collect(),
            databases: config.databases,
            observer: std::sync::OnceLock::new(),
            eviction: evict::Settings::default(),
            pool: Mutex::new(Vec::new()),
            evicted_keys: AtomicU64::new(0),
            snapshot_active: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn evicted_keys(&self) -> u64 {
        self.evicted_keys.load(Relaxed)
    }

    /// Scores a sampled entry for eviction under `policy` (higher = evict sooner).
    fn score(&self, policy: Policy, shard: &Shard, e: &Entry, now_ms: u64) -> (u64, u32) {
        match policy {
            Policy::AllKeysLfu | Policy::VolatileLfu => {
                let decay = self.eviction.lfu_decay_time.load(Relaxed);
                (
                    255 - u64::from(evict::lfu_decayed(e.access, now_ms, decay)),
                    0,
                )
            }
            Policy::VolatileTtl => (u64::MAX - e.expires_at, 0),
            // The sampled key with the highest random score: a uniformly random victim.
            Policy::AllKeysRandom | Policy::VolatileRandom => (thread_random(), 0),
            Policy::AllKeysTinyLfu | Policy::VolatileTinyLfu => {
                let f = tinylfu::decayed(e.freq, shard.sketch.epoch());
                // Least frequent first; among equals, least recently used.
                (
                    ((15 - u64::from(f.min(15))) << 32)
                        | u64::from(evict::lru_idle_ms(e.access, now_ms)),
                    f,
                )
            }
            _ => (u64::from(evict::lru_idle_ms(e.access, now_ms)), 0),
        }
    }

    /// Samples one random shard into the eviction pool, which stays sorted best-last.
    fn sample_into_pool(&self, policy: Policy, now_ms: u64, pool: &mut Vec<Candidate>) {
        let samples = self.eviction.samples.load(Relaxed).clamp(1, 64);
        let start = thread_random() as usize % SHARDS;
        let qualifies = |db: &Db| {
            if policy.volatile_only() {
                db.volatile_len() > 0
            } else {
                !db.is_empty()
            }
        };
        // Of two random shards, the one with more eligible keys: victims drawn from one random
        // shard take as many keys from a small shard as from a large one, so shard sizes drift
        // apart (a random walk) and every shard's table is sized for the largest it ever was.
        // The power of two choices keeps them level.
        let other = (thread_random() as usize) % SHARDS;
        let eligible_keys = |si: usize| -> usize {
            let shard = self.lock_shard(si);
            let count = if policy.volatile_only() {
                Db::volatile_len
            } else {
                Db::len
            };
            shard.dbs.iter().map(count).sum()
        };
        let start = if eligible_keys(other) > eligible_keys(start) {
            other
        } else {
            start
        };
        for step in 0..SHARDS {
            let si = (start + step) % SHARDS;
            let shard = self.lock_shard(si);
            let eligible = shard.dbs.iter().filter(|d| qualifies(d)).count();
            if eligible == 0 {
                continue;
            }
            for _ in 0..samples {
                let r = thread_random();
                let nth = (r % eligible as u64) as usize;
                let Some((d, db)) = shard
                    .dbs
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| qualifies(d))
                    .nth(nth)
                else {
                    continue;
                };
                let r = r >> 16;
                let (key, entry): (&Key, &Entry) =
                    if policy.volatile_only() && db.volatile_len() * 4 < db.len() {
                        // Few keys have a TTL: draw from the expiry index instead of hoping to
                        // hit one by chance.
                        let skip = (r % db.volatile_len() as u64) as usize;
                        let Some((_, k)) = db.expires.iter().nth(skip.min(64)) else {
                            continue;
                        };
                        match db.map.get_key_value(k) {
                            Some(kv) => kv,
                            None => continue,
                        }
                    } else {
                        let i = (r % db.len() as u64) as usize;
                        let (k, e) = db.map.get_index(i).expect("in range");
                        if policy.volatile_only() && e.expires_at == 0 {
                            continue;
                        }
                        (k, e)
                    };
                let (score, frequency) = self.score(policy, &shard, entry, now_ms);
                if pool.len() >= POOL_SIZE && pool[0].score >= score {
                    continue;
                }
                if pool.iter().any(|c| c.db == d && c.key == *key) {
                    continue;
                }
                let at = pool.partition_point(|c| c.score <= score);
                pool.insert(
                    at,
                    Candidate {
                        score,
                        shard: si,
                        db: d,
                        key: key.clone(),
                        frequency,
                    },
                );
                if pool.len() > POOL_SIZE {
                    pool.remove(0);
                }
            }
            break;
        }
    }

    /// Evicts one key according to the current policy. None when the policy is noeviction
    /// or nothing qualifies (no key at all, or no key with a TTL for volatile policies).
    pub fn evict_one(&self, now_ms: u64) -> Option<Evicted> {
        let policy = self.eviction.policy();
        if policy == Policy::NoEviction {
            return None;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..4 {
            // TinyLFU's counts are per shard (each shard's sketch halves on its own schedule,
            // at its own width), so candidates kept from other shards are not comparable: a
            // victim from this round's shard only, which also keeps the shards level (held
            // across rounds, the pool drained shards that had just halved, and their tables
            // kept the room: 17% more bytes a key at 1M × 32 B).
            if matches!(policy, Policy::AllKeysRandom | Policy::VolatileRandom) || policy.tinylfu()
            {
                pool.clear();
            }
            self.sample_into_pool(policy, now_ms, &mut pool);
            while let Some(c) = pool.pop() {
                let mut shard = self.lock_shard(c.shard);
                let still_there = shard.dbs[c.db]
                    .map
                    .get(&c.key)
                    .is_some_and(|e| !policy.volatile_only() || e.expires_at != 0);
                if !still_there {
                    continue;
                }
                let entry = shard.dbs[c.db].remove(&c.key).expect("present");
                shard.touch_evicted(c.db, &c.key);
                let touched = std::mem::take(&mut shard.touched);
                drop(shard);
                self.report(touched);
                self.evicted_keys.fetch_add(1, Relaxed);
                let bytes = c.key.len() + entry.value.approx_bytes() + ENTRY_OVERHEAD;
                return Some(Evicted {
                    db: c.db,
                    key: c.key,
                    bytes,
                });
            }
        }
        None
    }

    /// TinyLFU admission: whether a new `key` is more frequent than the key it would push
    /// out. Always true under other policies.
    pub fn admit(&self, key: &[u8], now_ms: u64) -> bool {
        let policy = self.eviction.policy();
        if !policy.tinylfu() {
            return true;
        }
        let candidate = {
            let shard = self.lock_shard(shard_of(key));
            shard.sketch.frequency(sketch_hash(key))
        };
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        // Candidates deleted since they were sampled are no victims: drop them first.
        for attempt in 0..2 {
            while let Some(c) = pool.last() {
                let alive = self.lock_shard(c.shard).dbs[c.db]
                    .map
                    .get(&c.key)
                    .is_some_and(|e| !policy.volatile_only() || e.expires_at != 0);
                if alive {
                    break;
                }
                pool.pop();
            }
            if pool.is_empty() && attempt == 0 {
                self.sample_into_pool(policy, now_ms, &mut pool);
            }
        }
        // A key seen only once (a scan, a one-off lookup) is never worth a resident key:
        // admission needs a second sighting, and more sightings than the victim has.
        // With no victim at all (nothing evictable), admission is moot: the write goes on to
        // the usual out-of-memory handling.
        match pool.last() {
            None => true,
            Some(victim) => candidate >= 2 && candidate > victim.frequency,
        }
    }

    /// Removes a key that was just written but not admitted (TinyLFU), counting it evicted.
    pub fn reject(&self, db: usize, key: &[u8], now_ms: u64) -> bool {
        let removed = self.lock(key).evict(db, key, now_ms).is_some();
        if removed {
            self.evicted_keys.fetch_add(1, Relaxed);
        }
        removed
    }

    /// Installs the observer of key changes (once).
    pub fn set_observer(&self, observer: std::sync::Arc<dyn KeyObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Starts (`delta = 1`) or stops (`-1`) observing `key`: while any key of a shard is
    /// observed, that shard reports its changes. Taken under the shard lock, so a write is
    /// either before the observation started or reported.
    pub fn observe(&self, key: &[u8], delta: isize) {
        let mut shard = self.lock_shard(shard_of(key));
        shard.observed = shard.observed.saturating_add_signed(delta);
    }

    /// Starts (`delta = 1`) or stops (`-1`) observing every key: while on, every change,
    /// expiry and eviction in every shard is reported (client tracking needs them all). Each
    /// shard is switched under its lock, so a write is either before the switch or reported.
    pub fn observe_all(&self, delta: isize) {
        for i in 0..SHARDS {
            let mut shard = self.lock_shard(i);
            shard.observed = shard.observed.saturating_add_signed(delta);
        }
    }

    pub fn databases(&self) -> usize {
        self.databases
    }

    fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard lock leaves data consistent at the entry level (each
        // operation is a single table update), so a poisoned lock is still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the shard of one key.
    pub fn lock(&self, key: &[u8]) -> Locked<'_> {
        let i = shard_of(key);
        Locked {
            guards: Guards::One(i, self.lock_shard(i)),
            store: self,
            log: None,
        }
    }

    /// Locks the shards of all `keys`, in ascending shard order (no deadlock between
    /// commands), so the command is atomic.
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Locked<'_> {
        let mut ids: Vec<usize> = keys.into_iter().map(shard_of).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() == 1 {
            return Locked {
                guards: Guards::One(ids[0], self.lock_shard(ids[0])),
                store: self,
                log: None,
            };
        }
        Locked {
            guards: Guards::Many(ids.into_iter().map(|i| (i, self.lock_shard(i))).collect()),
            store: self,
            log: None,
        }
    }

    /// Locks every shard (FLUSHALL, SWAPDB, a whole transaction).
    pub fn lock_all(&self) -> Locked<'_> {
        Locked {
            guards: Guards::Many((0..SHARDS).map(|i| (i, self.lock_shard(i))).collect()),
            store: self,
            log: None,
        }
    }

    /// Keys in one database (expired ones not yet collected included, as Redis counts them).
    pub fn dbsize(&self, db: usize) -> usize {
        (0..SHARDS).map(|i| self.lock_shard(i).dbs[db].len()).sum()
    }

    /// (keys, keys with a TTL) per database, for INFO keyspace.
    pub fn keyspace_counts(&self) -> Vec<(usize, usize)> {
        let mut counts = vec![(0, 0); self.databases];
        for i in 0..SHARDS {
            let shard = self.lock_shard(i);
            for (db, c) in shard.dbs.iter().zip(counts.iter_mut()) {
                c.0 += db.len();
                c.1 += db.volatile_len();
            }
        }
        counts
    }

    pub fn expired_keys(&self) -> u64 {
        (0..SHARDS).map(|i| self.lock_shard(i).expired_keys).sum()
    }

    /// Empties one database, or all of them.
    pub fn flush(&self, db: Option<usize>) {
        for i in 0..SHARDS {
            let mut shard = self.lock_shard(i);
            match db {
                Some(db) => shard.dbs[db].clear(),
                None => shard.dbs.iter_mut().for_each(Db::clear),
            }
        }
        if let Some(observer) = self.observer.get() {
            observer.flushed(db);
        }
    }

    /// Swaps two databases atomically.
    pub fn swap_db(&self, a: usize, b: usize) {
        let mut all: Vec<_> = (0..SHARDS).map(|i| self.lock_shard(i)).collect();
        for shard in all.iter_mut() {
            // An open snapshot keeps each position's log: it must write what the database
            // at that number held at its instant.
            shard.dbs[a].preserve_all();
            shard.dbs[b].preserve_all();
            let (ca, cb) = (shard.dbs[a].cow.take(), shard.dbs[b].cow.take());
            shard.dbs.swap(a, b);
            shard.dbs[a].cow = ca;
            shard.dbs[b].cow = cb;
        }
        drop(all);
        if let Some(observer) = self.observer.get() {
            observer.swapped(a, b);
        }
    }

    /// Moves `key` from database `from` to `to`. False if the key is absent or exists in `to`.
    pub fn move_key(&self, key: &[u8], from: usize, to: usize, now_ms: u64) -> bool {
        self.lock(key).move_key(key, from, to, now_ms)
    }

    /// All live keys of `db` that `matches` accepts (KEYS passes its glob).
    pub fn keys(&self, db: usize, matches: impl Fn(&[u8]) -> bool, now_ms: u64) -> Vec<Key> {
        let mut out = Vec::new();
        for i in 0..SHARDS {
            let shard = self.lock_shard(i);
            for (k, e) in shard.dbs[db].map.iter() {
                if !e.is_expired(now_ms) && matches(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }

    /// Removes from memory every key of `db` that `matches` accepts; observers see
    /// evictions (forgotten, not deleted); returns the keys.
    pub fn drop_matching(&self, db: usize, matches: impl Fn(&[u8]) -> bool) -> Vec<Key> {
        let mut removed = Vec::new();
        self.forget_where(|d, _, _| d == db, matches, |k| removed.push(k.clone()));
        removed
    }

    /// Removes from memory the keys `doomed` picks, in the databases of each shard that
    /// `may_hold(db, shard, table)` allows; every removal is reported as an eviction
    /// (forgotten, not deleted: a backing store keeps the row, trackers are told) and handed
    /// to `removed`. Each shard is locked and walked once.
    fn forget_where(
        &self,
        may_hold: impl Fn(usize, usize, &Db) -> bool,
        doomed: impl Fn(&[u8]) -> bool,
        mut removed: impl FnMut(&Key),
    ) {
        for i in 0..SHARDS {
            let mut guard = self.lock_shard(i);
            // Through a plain reference, the tables and the change log borrow separately.
            let shard = &mut *guard;
            for (db, d) in shard.dbs.iter_mut().enumerate() {
                if !may_hold(db, i, d) {
                    continue;
                }
                let gone: Vec<Key> = d.map.keys().filter(|k| doomed(k)).cloned().collect();
                for k in gone {
                    d.remove(&k);
                    removed(&k);
                    if shard.observed > 0 {
                        shard.touched.push((db, k, Change::Evicted));
                    }
                }
            }
            let touched = std::mem::take(&mut guard.touched);
            drop(guard);
            self.report(touched);
        }
    }

    /// A random live key, or None when the database is empty.
    pub fn random_key(&self, db: usize, now_ms: u64) -> Option<Key> {
        let start = {
            let mut shard = self.lock_shard(0);
            shard.random() as usize
        };
        // Try a few random shards first (uniform enough for big keyspaces), then sweep all so
        // a nearly empty keyspace still finds its keys.
        for attempt in 0..SHARDS * 2 {
            let i = if attempt < SHARDS {
                (start.wrapping_add(attempt.wrapping_mul(0x9E37))) % SHARDS
            } else {
                attempt - SHARDS
            };
            let mut shard = self.lock_shard(i);
            for _ in 0..8 {
                let len = shard.dbs[db].len();
                if len == 0 {
                    break;
                }
                let j = (shard.random() % len as u64) as usize;
                if shard.dbs[db].map.entry_ref(j).is_expired(now_ms) {
                    shard.dbs[db].remove_index(j);
                    shard.expired_keys += 1;
                    continue;
                }
                return shard.dbs[db].map.get_index(j).map(|(k, _)| k.clone());
            }
        }
        None
    }

    /// One SCAN step. Visits about `count` table positions and returns the live keys among
    /// them that pass `filter`. Every key present from the first call to the last is returned
    /// at least once; keys added or removed meanwhile may or may not be.
    ///
    /// The cursor is `(remaining + 1) << 8 | shard`: the shard being walked and how many of
    /// its positions (from the bottom) are still to visit; `remaining + 1 == 0` means "from
    /// the top". Cursor 0 is the start, and 0 is returned at the end.
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut filter: impl FnMut(&[u8], &Entry) -> bool,
    ) -> ScanPage {
        let mut shard_idx = (cursor & 0xFF) as usize;
        let mut remaining = cursor >> 8;
        let mut page = ScanPage::default();
        if shard_idx >= SHARDS {
            return page;
        }
        let mut visited = 0usize;
        let count = count.max(1);
        loop {
            let shard = self.lock_shard(shard_idx);
            let table = &shard.dbs[db].map;
            let mut pos = if remaining == 0 {
                table.len()
            } else {
                ((remaining - 1) as usize).min(table.len())
            };
            while pos > 0 && visited < count {
                pos -= 1;
                visited += 1;
                let (k, e) = table.get_index(pos).expect("pos < len");
                if !e.is_expired(now_ms) && filter(k, e) {
                    page.keys.push(k.clone());
                }
            }
            drop(shard);
            if pos > 0 {
                page.cursor = ((pos as u64 + 1) << 8) | shard_idx as u64;
                return page;
            }
            shard_idx += 1;
            remaining = 0;
            if shard_idx == SHARDS {
                page.cursor = 0;
                return page;
            }
            if visited >= count {
                page.cursor = shard_idx as u64;
                return page;
            }
        }
    }

    /// Active expiry: removes up to `budget_per_shard` expired keys from each shard.
    /// Returns the number removed.
    pub fn expire_cycle(&self, now_ms: u64, budget_per_shard: usize) -> usize {
        let mut total = 0;
        for i in 0..SHARDS {
            let mut shard = self.lock_shard(i);
            total += shard.expire_some(now_ms, budget_per_shard);
            let touched = std::mem::take(&mut shard.touched);
            drop(shard);
            self.report(touched);
        }
        total
    }

    fn report(&self, touched: Vec<Touched>) {
        if touched.is_empty() {
            return;
        }
        if let Some(observer) = self.observer.get() {
            for (db, key, change) in touched {
                match change {
                    Change::Modified => observer.modified(db, &key),
                    Change::Expired => observer.expired(db, &key),
                    Change::Evicted => observer.evicted(db, &key),
                }
            }
        }
    }

    /// A copy of the live entry of `key`, without counting an access or deleting an expired
    /// entry (nothing is reported).
    pub fn snapshot(&self, db: usize, key: &[u8], now_ms: u64) -> Option<Entry> {
        let shard = self.lock_shard(shard_of(key));
        shard.dbs[db]
            .map
            .get(key)
            .filter(|e| !e.is_expired(now_ms))
            .cloned()
    }

    /// Calls `f` with the live entry of `key` (or None) under its shard lock, without counting
    /// an access or deleting an expired entry: for reading a state out without copying it.
    pub fn with_entry<R>(
        &self,
        db: usize,
        key: &[u8],
        now_ms: u64,
        f: impl FnOnce(Option<&Entry>) -> R,
    ) -> R {
        let shard = self.lock_shard(shard_of(key));
        f(shard.dbs[db].map.get(key).filter(|e| !e.is_expired(now_ms)))
    }

    /// Turns reporting of every expiry to the observer on or off.
    pub fn report_expiries(&self, on: bool) {
        for i in 0..SHARDS {
            self.lock_shard(i).report_expiries = on;
        }
    }

    /// Live keys of one slot (CLUSTER GETKEYSINSLOT; the proxy's slot invalidation).
    pub fn keys_in_slot(&self, db: usize, slot: u16, limit: usize, now_ms: u64) -> Vec<Key> {
        let shard = self.lock_shard(slot as usize % SHARDS);
        let d = &shard.dbs[db];
        if d.slot_counts
            .get(slot as usize / SHARDS)
            .copied()
            .unwrap_or(0)
            == 0
        {
            return Vec::new();
        }
        d.map
            .iter()
            .filter(|(k, e)| key_slot(k) == slot && !e.is_expired(now_ms))
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Keys (live or expired but not yet collected) in one slot.
    pub fn count_keys_in_slot(&self, db: usize, slot: u16) -> usize {
        let shard = self.lock_shard(slot as usize % SHARDS);
        shard.dbs[db]
            .slot_counts
            .get(slot as usize / SHARDS)
            .copied()
            .unwrap_or(0) as usize
    }

    /// Deletes every key of `slot` in every database; returns how many went.
    pub fn drop_slot(&self, slot: u16) -> usize {
        self.drop_slots(|s| s == slot)
    }

    /// Deletes every key whose slot is `wanted`, in every database, from memory only (the
    /// proxy's invalidation after a ring change). Like an eviction, each deletion is reported
    /// to the observer only while the shard is observed (client tracking must hear of it).
    /// Each shard is walked once, and only when it holds a wanted slot with keys.
    pub fn drop_slots(&self, wanted: impl Fn(u16) -> bool) -> usize {
        let mut removed = 0;
        self.forget_where(
            |_, shard, d| {
                d.slot_counts
                    .iter()
                    .enumerate()
                    .any(|(j, &n)| n > 0 && wanted((j * SHARDS + shard) as u16))
            },
            |k| wanted(key_slot(k)),
            |_| removed += 1,
        );
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn s(v: &str) -> Entry {
        Entry::new(Value::string(v.as_bytes()))
    }

    #[test]
    fn lazy_and_active_expiry() {
        let store = Store::new(StoreConfig::default());
        let mut l = store.lock(b"a");
        l.insert(
            0,
            b"a",
            Entry::with_expiry(Value::string(&b"1"[..]), 100),
            0,
        );
        assert!(l.get(0, b"a", 99).is_some());
        assert!(l.get(0, b"a", 100).is_none());
        drop(l);
        assert_eq!(store.expired_keys(), 1);
        for i in 0..100u32 {
            let key = format!("k{i}");
            store.lock(key.as_bytes()).insert(
                0,
                key.as_bytes(),
                Entry::with_expiry(Value::string(Vec::new()), 50 + u64::from(i % 2) * 1000),
                0,
            );
        }
        assert_eq!(store.expire_cycle(60, 1000), 50);
        assert_eq!(store.dbsize(0), 50);
        assert_eq!(store.keyspace_counts()[0], (50, 50));
    }

    #[test]
    fn scan_returns_every_stable_key_despite_churn() {
        let store = Store::new(StoreConfig::default());
        let stable: HashSet<Vec<u8>> = (0..2000).map(|i| format!("s{i}").into_bytes()).collect();
        for k in &stable {
            store.lock(k).insert(0, k, s("v"), 0);
        }
        for i in 0..1000 {
            let k = format!("t{i}");
            store.lock(k.as_bytes()).insert(0, k.as_bytes(), s("v"), 0);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let page = store.scan(0, cursor, 10, 0, |_, _| true);
            seen.extend(page.keys.into_iter().map(|k| k.to_vec()));
            // Churn: delete transient keys, add new ones.
            let del = format!("t{step}");
            store.lock(del.as_bytes()).remove(0, del.as_bytes(), 0);
            let add = format!("n{step}");
            store
                .lock(add.as_bytes())
                .insert(0, add.as_bytes(), s("v"), 0);
            step += 1;
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        assert!(stable.is_subset(&seen));
    }

    #[test]
    fn slots_index() {
        let store = Store::new(StoreConfig::default());
        for i in 0..50 {
            let k = format!("{{tag}}:{i}");
            store.lock(k.as_bytes()).insert(3, k.as_bytes(), s("v"), 0);
        }
        store.lock(b"other").insert(0, b"other", s("v"), 0);
        let slot = key_slot(b"tag");
        assert_eq!(store.count_keys_in_slot(3, slot), 50);
        assert_eq!(store.keys_in_slot(3, slot, 10, 0).len(), 10);
        assert_eq!(store.drop_slot(slot), 50);
        assert_eq!(store.count_keys_in_slot(3, slot), 0);
        assert_eq!(store.dbsize(0), 1);
    }

    #[test]
    fn observe_all_reports_writes_expiries_and_evictions() {
        use std::sync::{Arc, Mutex as StdMutex};
        #[derive(Default)]
        struct Log(StdMutex<Vec<(String, Vec<u8>)>>);
        impl KeyObserver for Log {
            fn modified(&self, _db: usize, key: &[u8]) {
                self.0
                    .lock()
                    .unwrap()
                    .push(("modified".into(), key.to_vec()));
            }
            fn expired(&self, _db: usize, key: &[u8]) {
                self.0
                    .lock()
                    .unwrap()
                    .push(("expired".into(), key.to_vec()));
            }
            fn flushed(&self, _db: Option<usize>) {}
        }
        let store = Store::new(StoreConfig::default());
        let log = Arc::new(Log::default());
        store.set_observer(log.clone());
        store.lock(b"quiet").insert(0, b"quiet", s("v"), 0);
        assert!(
            log.0.lock().unwrap().is_empty(),
            "nothing observed, nothing reported"
        );
        store.observe_all(1);
        store.lock(b"w").insert(0, b"w", s("v"), 0);
        store
            .lock(b"e")
            .insert(0, b"e", Entry::with_expiry(Value::string(&b"1"[..]), 10), 0);
        store.expire_cycle(20, 100);
        store.eviction.set_policy(Policy::AllKeysRandom);
        let evicted = store.evict_one(20).expect("a key to evict");
        let got = log.0.lock().unwrap().clone();
        assert!(got.contains(&("modified".into(), b"w".to_vec())));
        assert!(got.contains(&("expired".into(), b"e".to_vec())));
        assert!(got.contains(&("modified".into(), evicted.key.to_vec())));
        store.lock(b"{s}x").insert(0, b"{s}x", s("v"), 0);
        assert_eq!(store.drop_slot(key_slot(b"s")), 1);
        assert!(log
            .0
            .lock()
            .unwrap()
            .contains(&("modified".into(), b"{s}x".to_vec())));
        store.observe_all(-1);
        log.0.lock().unwrap().clear();
        store.lock(b"w2").insert(0, b"w2", s("v"), 0);
        assert!(log.0.lock().unwrap().is_empty());
    }

    #[test]
    fn multi_lock_and_move() {
        let store = Store::new(StoreConfig::default());
        let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("key{i}").into_bytes()).collect();
        let mut l = store.lock_keys(keys.iter().map(|k| &k[..]));
        for k in &keys {
            l.insert(0, k, s("x"), 0);
        }
        drop(l);
        assert!(store.move_key(b"key1", 0, 1, 0));
        assert!(!store.move_key(b"key1", 0, 1, 0));
        assert_eq!(store.dbsize(1), 1);
        store.swap_db(0, 1);
        assert_eq!(store.dbsize(0), 1);
        assert_eq!(store.dbsize(1), 19);
        assert!(store.random_key(1, 0).is_some());
        store.flush(None);
        assert!(store.random_key(1, 0).is_none());
    }

    #[test]
    fn observing_all_tells_writes_from_expiries_and_evictions() {
        use std::sync::{Arc, Mutex};
        #[derive(Default)]
        struct Seen(Mutex<Vec<(char, Vec<u8>)>>);
        impl KeyObserver for Seen {
            fn modified(&self, _: usize, key: &[u8]) {
                self.0.lock().unwrap().push(('m', key.to_vec()));
            }
            fn expired(&self, _: usize, key: &[u8]) {
                self.0.lock().unwrap().push(('x', key.to_vec()));
            }
            fn flushed(&self, _: Option<usize>) {
                self.0.lock().unwrap().push(('f', Vec::new()));
            }
            fn evicted(&self, _: usize, key: &[u8]) {
                self.0.lock().unwrap().push(('e', key.to_vec()));
            }
        }
        let store = Store::new(StoreConfig::default());
        let seen = Arc::new(Seen::default());
        store.set_observer(seen.clone());
        store.lock(b"quiet").insert(0, b"quiet", s("v"), 0);
        assert!(
            seen.0.lock().unwrap().is_empty(),
            "unobserved keys are not reported"
        );
        store.observe_all(1);
        store.lock(b"a").insert(0, b"a", s("v"), 0);
        store
            .lock(b"t")
            .insert(0, b"t", Entry::with_expiry(Value::string(&b"v"[..]), 5), 0);
        store.expire_cycle(10, 100);
        store.eviction.set_policy(Policy::AllKeysLru);
        let victim = store.evict_one(20).expect("something to evict");
        assert!(store.snapshot(0, &victim.key, 20).is_none());
        store.flush(None);
        let got = seen.0.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                ('m', b"a".to_vec()),
                ('m', b"t".to_vec()),
                ('x', b"t".to_vec()),
                ('e', victim.key.to_vec()),
                ('f', Vec::new()),
            ]
        );
    }

    proptest::proptest! {
        /// The store agrees with a HashMap model under inserts, removes and expiries.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((0u8..3, 0u8..16, 0u64..4), 1..200)) {
            let store = Store::new(StoreConfig::default());
            let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
            let mut now = 10;
            for (op, k, ttl) in ops {
                let key = vec![b'k', k];
                now += 1;
                match op {
                    0 => {
                        let exp = if ttl == 0 { 0 } else { now + ttl };
                        store.lock(&key).insert(0, &key, Entry::with_expiry(Value::string(Vec::new()), exp), now);
                        model.insert(key.clone(), exp);
                    }
                    1 => {
                        let got = store.lock(&key).remove(0, &key, now).is_some();
                        let want = model.remove(&key).is_some_and(|e| e == 0 || e > now);
                        proptest::prop_assert_eq!(got, want);
                    }
                    _ => {
                        let got = store.lock(&key).get(0, &key, now).is_some();
                        let want = model.get(&key).is_some_and(|&e| e == 0 || e > now);
                        proptest::prop_assert_eq!(got, want);
                    }
                }
            }
            let live = model.values().filter(|&&e| e == 0 || e > now).count();
            store.expire_cycle(now, usize::MAX);
            proptest::prop_assert_eq!(store.dbsize(0), live);
        }
    }
}
