//! The engine: one thread with a tokio runtime that owns the store and runs the single-flight
//! loads, the write-through writer (group commit) and the write-back flusher; plus the order
//! lock under which the node runs its write commands.
//!
//! ```text
//!  node: Engine::write(|| run command, new states) ── order lock ──┬─ write-through: job ─► writer task
//!                                                                  │   (all jobs queued meanwhile = one transaction)
//!                                                                  └─ write-back: journal.append + pending[key] = state
//!  flusher task: every write-back-delay ms (or write-back-batch keys): take ≤ batch keys ─► one transaction
//!                failure: merge back under newer states, retry with backoff
//!  syncer thread: appendfsync everysec → fsync each second; always → fsync on request (group)
//!  Engine::load: one task per (db, key) however many clients miss it; installs the row under
//!                the order lock unless a write touched the key meanwhile
//! ```
//!
//! Why one order lock: a key's states must reach the queue in the order the node executed
//! them, and a loaded row must never be installed over a change made while it was loading.
//! Running the write command itself under the lock gives both for the price of serializing
//! writes (microseconds each) while a backing store is on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use indexmap::IndexMap;
use tokio::sync::{oneshot, watch, Notify};

use crate::journal::Journal;
use crate::{AnyStore, Backing, BackingError, Mapping, Row, Write};

/// How writes reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    WriteThrough,
    WriteBack,
}

/// When the journal is fsynced (Redis's `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    EverySec,
}

/// Everything the engine is started with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub mode: Mode,
    pub url: String,
    pub table: String,
    /// Where the journal lives (write-back).
    pub dir: PathBuf,
    pub write_back_delay: Duration,
    pub write_back_batch: usize,
    pub fsync: Fsync,
    /// Per database operation; also PostgreSQL's statement and lock timeouts.
    pub timeout: Duration,
    /// How long an absent key is remembered as absent (0 = not at all).
    pub negative_ttl: Duration,
    pub mappings: Vec<Mapping>,
    pub change_feed: bool,
    /// How long start-up waits for the replayed journal to reach the database.
    pub replay_wait: Duration,
    /// This node's tag on its database sessions, so the change feed can skip its own writes
    /// (letters and digits only; empty = no tag).
    pub origin: String,
}

/// The node side of the engine: puts loaded rows into the keyspace, drops invalidated keys.
/// Called with the order lock held, never from inside a node write.
pub trait Installer: Send + Sync + 'static {
    /// Puts `row` under `key` if the key is absent from memory.
    fn install(&self, db: u32, key: &[u8], row: &Row);
    /// Drops `key` of `db` from memory; `None` drops every key (all databases).
    fn invalidate(&self, target: Option<(u32, &[u8])>);
}

type KeyId = (u32, Box<[u8]>);

/// How a load ended: whether the database (or the write-back queue) had the key.
pub type LoadResult = Result<bool, BackingError>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One load in flight.
struct LoadSlot {
    done: watch::Sender<Option<LoadResult>>,
    /// A write or an invalidation touched the key while loading: do not install.
    dirty: AtomicBool,
}

struct Queued {
    write: Write,
    seq: u64,
    since: Instant,
}

/// The write-back queue: flushes first, then the last state of each key written after them.
#[derive(Default)]
struct Queue {
    flushes: Vec<(u64, Write, Instant)>,
    keys: IndexMap<KeyId, Queued>,
    /// Approximate heap bytes the queued states hold.
    bytes: u64,
}

fn size_of(w: &Write) -> u64 {
    let n = match w {
        Write::Put { key, row, .. } => 2 * key.len() + row.value.len(),
        Write::Delete { key, .. } => 2 * key.len(),
        _ => 0,
    };
    n as u64 + 96
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.flushes.is_empty() && self.keys.is_empty()
    }

    fn len(&self) -> usize {
        self.flushes.len() + self.keys.len()
    }

    fn push(&mut self, seq: u64, write: Write, now: Instant) {
        match &write {
            Write::FlushDb(db) => {
                self.keys.retain(|(d, _), _| d != db);
                self.flushes.push((seq, write, now));
                self.recount();
            }
            Write::FlushAll => {
                self.keys.clear();
                self.flushes.push((seq, write, now));
                self.recount();
            }
            Write::Put { db, key, .. } | Write::Delete { db, key } => {
                let id = (*db, key[..].into());
                self.bytes += size_of(&write);
                match self.keys.get_mut(&id) {
                    Some(q) => {
                        self.bytes = self.bytes.saturating_sub(size_of(&q.write));
                        q.write = write;
                        q.seq = seq;
                    }
                    None => {
                        self.keys.insert(
                            id,
                            Queued {
                                write,
                                seq,
                                since: now,
                            },
                        );
                    }
                }
            }
        }
    }

    /// The queued state of a key: Some(None) when it is queued as deleted (or flushed).
    fn lookup(&self, db: u32, key: &[u8]) -> Option<Option<Row>> {
        if let Some(q) = self.keys.get(&(db, Box::<[u8]>::from(key))) {
            return Some(match &q.write {
                Write::Put { row, .. } => Some(row.clone()),
                _ => None,
            });
        }
        self.flushes
            .iter()
            .any(|(_, w, _)| matches!(w, Write::FlushAll) || *w == Write::FlushDb(db))
            .then_some(None)
    }

    /// Takes the flushes and up to `max` keys, oldest first.
    fn take(&mut self, max: usize) -> Queue {
        let n = self.keys.len().min(max.max(1));
        let rest = self.keys.split_off(n);
        let mut taken = Queue {
            flushes: std::mem::take(&mut self.flushes),
            keys: std::mem::replace(&mut self.keys, rest),
            bytes: 0,
        };
        taken.recount();
        self.bytes = self.bytes.saturating_sub(taken.bytes);
        taken
    }

    fn recount(&mut self) {
        self.bytes = self
            .flushes
            .iter()
            .map(|(_, w, _)| size_of(w))
            .chain(self.keys.values().map(|q| size_of(&q.write)))
            .sum();
    }

    /// Puts a batch that failed back in front of what was queued since.
    fn merge_back(&mut self, failed: Queue) {
        let newer = std::mem::replace(self, failed);
        let flushed = |db: u32| {
            newer
                .flushes
                .iter()
                .any(|(_, w, _)| matches!(w, Write::FlushAll) || *w == Write::FlushDb(db))
        };
        self.keys
            .retain(|id, _| !newer.keys.contains_key(id) && !flushed(id.0));
        self.flushes.extend(newer.flushes);
        for (id, q) in newer.keys {
            self.keys.insert(id, q);
        }
        self.recount();
    }

    fn writes(&self) -> Vec<Write> {
        self.flushes
            .iter()
            .map(|(_, w, _)| w.clone())
            .chain(self.keys.values().map(|q| q.write.clone()))
            .collect()
    }

    fn min_seq(&self) -> Option<u64> {
        self.flushes
            .iter()
            .map(|(s, _, _)| *s)
            .chain(self.keys.values().map(|q| q.seq))
            .min()
    }

    fn oldest(&self) -> Option<Instant> {
        self.flushes
            .iter()
            .map(|(_, _, t)| *t)
            .chain(self.keys.values().map(|q| q.since))
            .min()
    }
}

/// State guarded by the order lock.
struct Order {
    next_seq: u64,
    queue: Queue,
    /// The batch the flusher is committing (still answers loads until it is committed).
    inflight: Option<Arc<Queue>>,
}

impl Order {
    /// Publishes the queue's size for the memory check (which runs under this lock, so it
    /// reads an atomic instead).
    fn publish(&self, inner: &Inner) {
        // The batch in flight is held about twice: the copy that answers loads, and the
        // statement's parameters while the driver sends them.
        let bytes = self.queue.bytes + 2 * self.inflight.as_ref().map_or(0, |q| q.bytes);
        inner.queued_bytes.store(bytes, Relaxed);
    }
}

struct WtJob {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), BackingError>>,
}

#[derive(Default)]
struct Stats {
    loads: AtomicU64,
    load_hits: AtomicU64,
    load_misses: AtomicU64,
    load_errors: AtomicU64,
    load_joined: AtomicU64,
    negative_hits: AtomicU64,
    flushed: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    commits: AtomicU64,
    committed_writes: AtomicU64,
    committed_commands: AtomicU64,
    commit_usec: AtomicU64,
    invalidations: AtomicU64,
    feed_connected: AtomicBool,
}

/// What INFO shows.
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    pub pending: usize,
    pub oldest_pending_ms: u64,
    pub loads: u64,
    pub load_hits: u64,
    pub load_misses: u64,
    pub load_errors: u64,
    pub loads_joined: u64,
    pub negative_hits: u64,
    pub flushed: u64,
    pub failed: u64,
    pub retries: u64,
    pub commits: u64,
    pub committed_commands: u64,
    pub commit_usec: u64,
    pub journal_bytes: u64,
    pub last_error: String,
    pub invalidations: u64,
    pub feed_connected: bool,
}

pub(crate) struct Inner {
    pub(crate) cfg: EngineConfig,
    pub(crate) store: AnyStore,
    order: Mutex<Order>,
    loads: Mutex<HashMap<KeyId, Arc<LoadSlot>>>,
    loads_count: AtomicUsize,
    negative: Mutex<HashMap<KeyId, u64>>,
    negative_count: AtomicUsize,
    claims: Mutex<HashMap<KeyId, Arc<Notify>>>,
    claims_count: AtomicUsize,
    /// Bytes of the write-back queue and the batch in flight (not counted against
    /// maxmemory, as Redis does not count its AOF buffers).
    queued_bytes: AtomicU64,
    wt_jobs: Mutex<Vec<WtJob>>,
    wt_wake: Notify,
    wb_wake: Notify,
    journal: Option<Journal>,
    /// Highest journal sequence number known durable (fsynced).
    synced: watch::Sender<u64>,
    sync_request: (Mutex<u64>, Condvar),
    stats: Stats,
    last_error: Mutex<String>,
    pub(crate) installer: OnceLock<Arc<dyn Installer>>,
    stopping: AtomicBool,
    stop: Notify,
}

/// What a write must wait for before its reply.
pub enum Pending {
    /// Nothing (write-back with `appendfsync everysec`: the journal write before the reply is
    /// enough; see [`Engine::before_reply`]).
    Done,
    /// Write-through: the database's commit.
    Commit(CommitTicket),
    /// Write-back with `appendfsync always`: the fsync of this journal sequence number.
    Durable(u64),
}

/// A write-through commit to wait for. The keys it claimed stay claimed (other commands on
/// them wait) until the ticket is dropped: restore the old state first if the commit failed.
pub struct CommitTicket {
    rx: Option<oneshot::Receiver<Result<(), BackingError>>>,
    claims: Vec<KeyId>,
    inner: Arc<Inner>,
}

impl CommitTicket {
    /// Waits for the commit.
    ///
    /// # Errors
    /// The database's error; the write did not happen there.
    pub async fn wait(&mut self) -> Result<(), BackingError> {
        match self.rx.take() {
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| Err(BackingError::transient("backing engine stopped"))),
            None => Ok(()),
        }
    }
}

impl Drop for CommitTicket {
    fn drop(&mut self) {
        if self.claims.is_empty() {
            return;
        }
        let mut claims = lock(&self.inner.claims);
        for id in self.claims.drain(..) {
            if let Some(n) = claims.remove(&id) {
                self.inner.claims_count.fetch_sub(1, Relaxed);
                n.notify_waiters();
            }
        }
    }
}

/// A running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    runtime: tokio::runtime::Handle,
}

impl Engine {
    /// Opens the store, replays the journal (write-back) and starts the engine's thread and
    /// tasks. Call [`set_installer`](Self::set_installer) before serving.
    ///
    /// # Errors
    /// When the store cannot be opened or the journal read.
    pub fn start(cfg: EngineConfig) -> Result<Engine, BackingError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BackingError::refused(format!("backing runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("ferrocache-backing".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let (tx, rx) = oneshot::channel::<()>();
                    let _ = ready_tx.send(tx);
                    // Runs until the engine is dropped or stopped.
                    let _ = rx.await;
                });
            })
            .map_err(|e| BackingError::refused(format!("backing thread: {e}")))?;
        let keep_alive = ready_rx
            .recv()
            .map_err(|_| BackingError::refused("backing thread died"))?;
        let store = handle.block_on(AnyStore::open(
            &cfg.url,
            &cfg.table,
            cfg.mappings.clone(),
            cfg.timeout,
            true,
            &cfg.origin,
        ));
        let store = match store {
            Ok(s) => s,
            Err(e) => {
                drop(keep_alive);
                return Err(e);
            }
        };
        let (journal, replayed) = if cfg.mode == Mode::WriteBack {
            let (j, replay) = Journal::open(&cfg.dir).map_err(|e| {
                BackingError::refused(format!("journal in {}: {e}", cfg.dir.display()))
            })?;
            for (path, stop) in &replay.stops {
                tracing::warn!(path = %path.display(), ?stop, "journal segment ends early; the rest is ignored");
            }
            (Some(j), replay.records)
        } else {
            (None, Vec::new())
        };
        let now = Instant::now();
        let mut queue = Queue::default();
        let mut last_seq = 0;
        let replayed_count = replayed.len();
        for (seq, w) in replayed {
            last_seq = last_seq.max(seq);
            queue.push(seq, w, now);
        }
        if replayed_count > 0 {
            tracing::info!(
                records = replayed_count,
                keys = queue.len(),
                "journal replayed; flushing it to the database"
            );
        }
        let (synced, _) = watch::channel(last_seq);
        let inner = Arc::new(Inner {
            cfg,
            store,
            order: Mutex::new(Order {
                next_seq: last_seq + 1,
                queue,
                inflight: None,
            }),
            loads: Mutex::default(),
            loads_count: AtomicUsize::new(0),
            negative: Mutex::default(),
            negative_count: AtomicUsize::new(0),
            claims: Mutex::default(),
            claims_count: AtomicUsize::new(0),
            queued_bytes: AtomicU64::new(0),
            wt_jobs: Mutex::default(),
            wt_wake: Notify::new(),
            wb_wake: Notify::new(),
            journal,
            synced,
            sync_request: (Mutex::new(0), Condvar::new()),
            stats: Stats::default(),
            last_error: Mutex::default(),
            installer: OnceLock::new(),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
        });
        // The runtime thread lives as long as some task holds the sender.
        let keeper = inner.clone();
        handle.spawn(async move {
            keeper.stop.notified().await;
            drop(keep_alive);
        });
        match inner.cfg.mode {
            Mode::WriteThrough => {
                handle.spawn(writer(inner.clone()));
            }
            Mode::WriteBack => {
                handle.spawn(flusher(inner.clone()));
                let syncer_inner = inner.clone();
                std::thread::Builder::new()
                    .name("ferrocache-journal".into())
                    .spawn(move || syncer(syncer_inner))
                    .map_err(|e| BackingError::refused(format!("journal thread: {e}")))?;
            }
        }
        lock(&inner.order).publish(&inner);
        handle.spawn(purger(inner.clone()));
        if inner.cfg.change_feed {
            handle.spawn(crate::feed::listen(inner.clone()));
        }
        Ok(Engine {
            inner,
            runtime: handle,
        })
    }

    /// Bytes held by the write-back queue, which maxmemory does not count (like Redis's AOF
    /// buffers): evicting every key would not shrink it.
    pub fn queued_bytes(&self) -> u64 {
        self.inner.queued_bytes.load(Relaxed)
    }

    /// Sets the node's installer (once).
    pub fn set_installer(&self, installer: Arc<dyn Installer>) {
        let _ = self.inner.installer.set(installer);
    }

    pub fn mode(&self) -> Mode {
        self.inner.cfg.mode
    }

    pub fn store_name(&self) -> &'static str {
        self.inner.store.name()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// Waits until the replayed journal is in the database, at most `replay_wait`; says
    /// whether it got there.
    pub fn wait_replayed(&self) -> bool {
        let deadline = Instant::now() + self.inner.cfg.replay_wait;
        loop {
            let pending = {
                let order = lock(&self.inner.order);
                order.queue.len() + order.inflight.as_ref().map_or(0, |q| q.len())
            };
            if pending == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pending,
                    "journal not yet in the database; serving anyway, the flusher keeps retrying"
                );
                return false;
            }
            self.inner.wb_wake.notify_one();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `f` (a write command and the new states it produced) under the order lock and
    /// queues its writes in that order.
    pub fn write<R>(&self, f: impl FnOnce() -> (R, Vec<Write>)) -> (R, Pending) {
        let inner = &self.inner;
        let mut order = lock(&inner.order);
        let (r, writes) = f();
        if writes.is_empty() {
            return (r, Pending::Done);
        }
        self.touched(&writes);
        let pending = match inner.cfg.mode {
            Mode::WriteThrough => {
                let mut claimed = Vec::new();
                {
                    let mut claims = lock(&inner.claims);
                    for w in &writes {
                        if let Some((db, key)) = w.key() {
                            let id: KeyId = (db, key.into());
                            if !claims.contains_key(&id) {
                                claims.insert(id.clone(), Arc::new(Notify::new()));
                                inner.claims_count.fetch_add(1, Relaxed);
                                claimed.push(id);
                            }
                        }
                    }
                }
                let (tx, rx) = oneshot::channel();
                lock(&inner.wt_jobs).push(WtJob { writes, done: tx });
                inner.wt_wake.notify_one();
                Pending::Commit(CommitTicket {
                    rx: Some(rx),
                    claims: claimed,
                    inner: inner.clone(),
                })
            }
            Mode::WriteBack => {
                let journal = inner.journal.as_ref().expect("write-back has a journal");
                let now = Instant::now();
                let mut seq = 0;
                for w in writes {
                    seq = order.next_seq;
                    order.next_seq += 1;
                    journal.append(seq, &w);
                    order.queue.push(seq, w, now);
                }
                if order.queue.keys.len() >= inner.cfg.write_back_batch {
                    inner.wb_wake.notify_one();
                }
                order.publish(inner);
                match inner.cfg.fsync {
                    Fsync::Always => Pending::Durable(seq),
                    Fsync::EverySec => Pending::Done,
                }
            }
        };
        drop(order);
        (r, pending)
    }

    /// Marks loads of the written keys dirty and forgets their negative entries.
    fn touched(&self, writes: &[Write]) {
        let inner = &self.inner;
        let loads = inner.loads_count.load(Relaxed) > 0;
        let negatives = inner.negative_count.load(Relaxed) > 0;
        if !loads && !negatives {
            return;
        }
        for w in writes {
            match w.key() {
                Some((db, key)) => inner.forget(db, Some(key)),
                None => inner.forget_all(),
            }
        }
    }

    /// Writes the buffered journal records to the file: call before sending replies of
    /// write-back writes (the kill -9 guarantee).
    ///
    /// # Errors
    /// When the journal cannot be written.
    pub fn before_reply(&self) -> Result<(), BackingError> {
        if let Some(j) = &self.inner.journal {
            j.write_out()
                .map_err(|e| BackingError::transient(format!("journal write failed: {e}")))?;
        }
        Ok(())
    }

    /// Waits until journal sequence number `seq` is fsynced (group commit: one fsync serves
    /// every writer waiting at that time).
    ///
    /// # Errors
    /// When the engine stopped first.
    pub async fn durable(&self, seq: u64) -> Result<(), BackingError> {
        let mut rx = self.inner.synced.subscribe();
        if *rx.borrow() >= seq {
            return Ok(());
        }
        {
            let (m, cv) = &self.inner.sync_request;
            let mut want = lock(m);
            *want = (*want).max(seq);
            cv.notify_one();
        }
        rx.wait_for(|s| *s >= seq)
            .await
            .map(|_| ())
            .map_err(|_| BackingError::transient("journal syncer stopped"))
    }

    /// If `key` is being committed by a write-through command, what to wait on before
    /// touching it.
    pub fn claimed(&self, db: u32, key: &[u8]) -> Option<Arc<Notify>> {
        if self.inner.claims_count.load(Relaxed) == 0 {
            return None;
        }
        lock(&self.inner.claims)
            .get(&(db, Box::<[u8]>::from(key)))
            .cloned()
    }

    /// Whether `key` is known absent (negative cache).
    pub fn known_absent(&self, db: u32, key: &[u8], now_ms: u64) -> bool {
        let inner = &self.inner;
        if inner.negative_count.load(Relaxed) == 0 {
            return false;
        }
        let id: KeyId = (db, key.into());
        let mut neg = lock(&inner.negative);
        match neg.get(&id) {
            Some(&until) if until > now_ms => {
                inner.stats.negative_hits.fetch_add(1, Relaxed);
                true
            }
            Some(_) => {
                neg.remove(&id);
                inner.negative_count.fetch_sub(1, Relaxed);
                false
            }
            None => false,
        }
    }

    /// Whether a load of `key` is in flight.
    pub fn loading(&self, db: u32, key: &[u8]) -> bool {
        self.inner.loads_count.load(Relaxed) > 0
            && lock(&self.inner.loads).contains_key(&(db, Box::<[u8]>::from(key)))
    }

    /// Starts (or joins) the load of `key`; the receiver turns `Some` when it is done and the
    /// row (if any) is installed: `Ok(false)` when the key exists nowhere.
    pub fn load(&self, db: u32, key: &[u8]) -> watch::Receiver<Option<LoadResult>> {
        let inner = &self.inner;
        let id: KeyId = (db, key.into());
        let mut loads = lock(&inner.loads);
        if let Some(slot) = loads.get(&id) {
            inner.stats.load_joined.fetch_add(1, Relaxed);
            return slot.done.subscribe();
        }
        let (tx, rx) = watch::channel(None);
        let slot = Arc::new(LoadSlot {
            done: tx,
            dirty: AtomicBool::new(false),
        });
        loads.insert(id.clone(), slot.clone());
        inner.loads_count.fetch_add(1, Relaxed);
        drop(loads);
        inner.stats.loads.fetch_add(1, Relaxed);
        self.runtime.spawn(load_task(inner.clone(), id, slot));
        rx
    }

    /// The database changed `key` under us (a change feed followed elsewhere, e.g. by
    /// cache-proxy): a load in flight is redone and a negative entry dropped, so the next
    /// read sees the new row. The caller drops the key from memory.
    pub fn forget(&self, db: u32, key: &[u8]) {
        self.inner.forget(db, Some(key));
    }

    /// INFO's figures.
    pub fn stats(&self) -> StatsSnapshot {
        let inner = &self.inner;
        let s = &inner.stats;
        let (pending, oldest) = {
            let order = lock(&inner.order);
            let inflight = order.inflight.as_ref();
            (
                order.queue.len() + inflight.map_or(0, |q| q.len()),
                order
                    .queue
                    .oldest()
                    .into_iter()
                    .chain(inflight.and_then(|q| q.oldest()))
                    .min(),
            )
        };
        let wt_pending = lock(&inner.wt_jobs).len();
        StatsSnapshot {
            pending: pending + wt_pending,
            oldest_pending_ms: oldest.map_or(0, |t| t.elapsed().as_millis() as u64),
            loads: s.loads.load(Relaxed),
            load_hits: s.load_hits.load(Relaxed),
            load_misses: s.load_misses.load(Relaxed),
            load_errors: s.load_errors.load(Relaxed),
            loads_joined: s.load_joined.load(Relaxed),
            negative_hits: s.negative_hits.load(Relaxed),
            flushed: s.flushed.load(Relaxed),
            failed: s.failed.load(Relaxed),
            retries: s.retries.load(Relaxed),
            commits: s.commits.load(Relaxed),
            committed_commands: s.committed_commands.load(Relaxed),
            commit_usec: s.commit_usec.load(Relaxed),
            journal_bytes: inner.journal.as_ref().map_or(0, |j| j.bytes()),
            last_error: lock(&inner.last_error).clone(),
            invalidations: s.invalidations.load(Relaxed),
            feed_connected: s.feed_connected.load(Relaxed),
        }
    }

    /// Flushes everything queued (write-back) and waits for commits in flight, retrying until
    /// `deadline`; then stops the engine's tasks. What could not be written stays in the
    /// journal for the next start.
    pub fn shutdown(&self, deadline: Duration) {
        let inner = &self.inner;
        let until = Instant::now() + deadline;
        if let Some(j) = &inner.journal {
            if let Err(e) = j.sync() {
                tracing::error!(error = %e, "journal fsync at shutdown failed");
            }
        }
        loop {
            let pending = {
                let order = lock(&inner.order);
                order.queue.len() + order.inflight.as_ref().map_or(0, |q| q.len())
            } + lock(&inner.wt_jobs).len();
            if pending == 0 {
                break;
            }
            if Instant::now() >= until {
                tracing::warn!(
                    pending,
                    "stopping with writes not yet in the database; they are in the journal"
                );
                break;
            }
            inner.wb_wake.notify_one();
            inner.wt_wake.notify_one();
            std::thread::sleep(Duration::from_millis(10));
        }
        inner.stopping.store(true, Relaxed);
        inner.stop.notify_waiters();
        let (m, cv) = &inner.sync_request;
        drop(lock(m));
        cv.notify_all();
    }
}

impl Inner {
    fn error(&self, e: &BackingError) {
        *lock(&self.last_error) = e.message.clone();
    }

    /// Marks a load of the key dirty and forgets its negative entry (or all of them).
    pub(crate) fn forget(&self, db: u32, key: Option<&[u8]>) {
        let Some(key) = key else {
            return self.forget_all();
        };
        let id: KeyId = (db, key.into());
        if self.loads_count.load(Relaxed) > 0 {
            if let Some(slot) = lock(&self.loads).get(&id) {
                slot.dirty.store(true, Relaxed);
            }
        }
        if self.negative_count.load(Relaxed) > 0 && lock(&self.negative).remove(&id).is_some() {
            self.negative_count.fetch_sub(1, Relaxed);
        }
    }

    pub(crate) fn forget_all(&self) {
        for slot in lock(&self.loads).values() {
            slot.dirty.store(true, Relaxed);
        }
        let mut neg = lock(&self.negative);
        self.negative_count.fetch_sub(neg.len(), Relaxed);
        neg.clear();
    }

    /// Drops keys from memory because the database changed under them (change feed).
    pub(crate) fn invalidate(&self, target: Option<(u32, &[u8])>) {
        let _order = lock(&self.order);
        match target {
            Some((db, key)) => self.forget(db, Some(key)),
            None => self.forget_all(),
        }
        if let Some(installer) = self.installer.get() {
            installer.invalidate(target);
        }
        self.stats.invalidations.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_feed_connected(&self, up: bool) {
        self.stats.feed_connected.store(up, Relaxed);
    }

    pub(crate) fn feed_error(&self, e: &BackingError) {
        self.error(e);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    pub(crate) async fn stopped(&self) {
        if !self.stopping() {
            self.stop.notified().await;
        }
    }
}

async fn load_task(inner: Arc<Inner>, id: KeyId, slot: Arc<LoadSlot>) {
    let (db, key) = (id.0, &id.1[..]);
    // A state still queued for the database is newer than the database's.
    let queued = {
        let order = lock(&inner.order);
        order
            .queue
            .lookup(db, key)
            .or_else(|| order.inflight.as_ref().and_then(|q| q.lookup(db, key)))
    };
    let result = match queued {
        Some(row) => Ok(row),
        None => match tokio::time::timeout(inner.cfg.timeout, inner.store.load(db, key, now_ms()))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(BackingError::transient("load timed out")),
        },
    };
    {
        let _order = lock(&inner.order);
        let dirty = slot.dirty.load(Relaxed);
        match &result {
            Ok(Some(row)) => {
                inner.stats.load_hits.fetch_add(1, Relaxed);
                let live = row.expires_at == 0 || row.expires_at > now_ms();
                if !dirty && live {
                    if let Some(installer) = inner.installer.get() {
                        installer.install(db, key, row);
                    }
                }
            }
            Ok(None) => {
                inner.stats.load_misses.fetch_add(1, Relaxed);
                let ttl = inner.cfg.negative_ttl.as_millis() as u64;
                if !dirty && ttl > 0 {
                    let mut neg = lock(&inner.negative);
                    if neg.insert(id.clone(), now_ms() + ttl).is_none() {
                        inner.negative_count.fetch_add(1, Relaxed);
                    }
                }
            }
            Err(e) => {
                inner.stats.load_errors.fetch_add(1, Relaxed);
                inner.error(e);
            }
        }
        if lock(&inner.loads).remove(&id).is_some() {
            inner.loads_count.fetch_sub(1, Relaxed);
        }
    }
    let _ = slot.done.send(Some(result.map(|row| row.is_some())));
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The write-through writer: everything queued while the previous transaction ran is the
/// next transaction (group commit); replies go out in order.
async fn writer(inner: Arc<Inner>) {
    loop {
        let jobs = std::mem::take(&mut *lock(&inner.wt_jobs));
        if jobs.is_empty() {
            if inner.stopping() {
                return;
            }
            tokio::select! {
                _ = inner.wt_wake.notified() => {}
                _ = inner.stopped() => {}
            }
            continue;
        }
        let writes: Vec<Write> = jobs.iter().flat_map(|j| j.writes.iter().cloned()).collect();
        let started = Instant::now();
        let result = inner.store.apply(&writes).await;
        let s = &inner.stats;
        s.commits.fetch_add(1, Relaxed);
        s.committed_commands.fetch_add(jobs.len() as u64, Relaxed);
        s.commit_usec
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        match &result {
            Ok(()) => {
                s.flushed.fetch_add(writes.len() as u64, Relaxed);
                s.committed_writes.fetch_add(writes.len() as u64, Relaxed);
            }
            Err(e) => {
                s.failed.fetch_add(jobs.len() as u64, Relaxed);
                inner.error(e);
                tracing::warn!(error = %e, commands = jobs.len(), "write-through commit failed");
            }
        }
        for job in jobs {
            let _ = job.done.send(result.clone());
        }
    }
}

/// The write-back flusher.
async fn flusher(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if inner.stopping() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(inner.cfg.write_back_delay) => {}
            _ = inner.wb_wake.notified() => {}
            _ = inner.stopped() => {}
        }
        loop {
            let batch = {
                let mut order = lock(&inner.order);
                if order.queue.is_empty() {
                    break;
                }
                let batch = Arc::new(order.queue.take(inner.cfg.write_back_batch));
                order.inflight = Some(batch.clone());
                batch
            };
            let writes = batch.writes();
            let started = Instant::now();
            match inner.store.apply(&writes).await {
                Ok(()) => {
                    inner.stats.flushed.fetch_add(writes.len() as u64, Relaxed);
                    inner.stats.commits.fetch_add(1, Relaxed);
                    inner
                        .stats
                        .commit_usec
                        .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
                    backoff = Duration::from_millis(50);
                    committed(&inner);
                    // Go on at once only with a full batch waiting (or when stopping). What
                    // came in during this commit waits for the next period: draining it now
                    // would turn a busy period into many small transactions, each rewriting
                    // most of the pages a full one would (random keys touch every page).
                    let waiting = lock(&inner.order).queue.keys.len();
                    if waiting < inner.cfg.write_back_batch && !inner.stopping() {
                        break;
                    }
                }
                Err(e) if e.transient => {
                    inner.stats.retries.fetch_add(1, Relaxed);
                    inner.error(&e);
                    tracing::warn!(error = %e, keys = writes.len(), retry_in_ms = backoff.as_millis() as u64, "write-back flush failed; will retry");
                    {
                        let mut order = lock(&inner.order);
                        order.inflight = None;
                        order.queue.merge_back(unwrap_batch(batch));
                        order.publish(&inner);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = inner.stopped() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if inner.stopping() {
                        // Shutdown's own loop decides how long to keep trying.
                        break;
                    }
                }
                Err(e) => {
                    // The database refuses something in the batch: apply one write at a time so
                    // one bad key does not hold back the others; the bad ones are dropped.
                    inner.error(&e);
                    tracing::warn!(error = %e, "write-back batch refused; applying its writes one by one");
                    let mut transient = None;
                    for w in &writes {
                        match inner.store.apply(std::slice::from_ref(w)).await {
                            Ok(()) => {
                                inner.stats.flushed.fetch_add(1, Relaxed);
                            }
                            Err(e) if e.transient => {
                                transient = Some(e);
                                break;
                            }
                            Err(e) => {
                                inner.stats.failed.fetch_add(1, Relaxed);
                                inner.error(&e);
                                tracing::error!(error = %e, key = ?w.key(), "write refused by the database; dropped");
                            }
                        }
                    }
                    if let Some(e) = transient {
                        // Connection trouble midway: the whole batch again later (idempotent).
                        inner.error(&e);
                        inner.stats.retries.fetch_add(1, Relaxed);
                        {
                            let mut order = lock(&inner.order);
                            order.inflight = None;
                            order.queue.merge_back(unwrap_batch(batch));
                            order.publish(&inner);
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    } else {
                        committed(&inner);
                    }
                }
            }
        }
    }
}

/// The batch back from its `Arc` (cloned if a load still looks at it).
fn unwrap_batch(batch: Arc<Queue>) -> Queue {
    Arc::try_unwrap(batch).unwrap_or_else(|b| Queue {
        bytes: b.bytes,
        flushes: b.flushes.clone(),
        keys: b
            .keys
            .iter()
            .map(|(k, q)| {
                (
                    k.clone(),
                    Queued {
                        write: q.write.clone(),
                        seq: q.seq,
                        since: q.since,
                    },
                )
            })
            .collect(),
    })
}

/// After a batch is in the database: forget it and let the journal drop what is committed.
fn committed(inner: &Inner) {
    let (min_uncommitted, all) = {
        let mut order = lock(&inner.order);
        order.inflight = None;
        order.publish(inner);
        match order.queue.min_seq() {
            Some(s) => (s, false),
            None => (order.next_seq, true),
        }
    };
    if let Some(j) = &inner.journal {
        if let Err(e) = j.rotate(min_uncommitted, all) {
            tracing::warn!(error = %e, "journal rotation failed");
        }
    }
}

/// The journal's fsync thread: once a second, or at once when a writer with `appendfsync
/// always` asks.
fn syncer(inner: Arc<Inner>) {
    let Some(journal) = &inner.journal else {
        return;
    };
    let (m, cv) = &inner.sync_request;
    loop {
        {
            let want = lock(m);
            let synced = *inner.synced.borrow();
            if *want <= synced && !inner.stopping() {
                let _ = cv
                    .wait_timeout(want, Duration::from_secs(1))
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        if inner.stopping() {
            let _ = journal.sync();
            return;
        }
        match journal.sync() {
            Ok(seq) => {
                inner.synced.send_if_modified(|s| {
                    let changed = seq > *s;
                    *s = (*s).max(seq);
                    changed
                });
            }
            Err(e) => {
                let e = BackingError::transient(format!("journal fsync failed: {e}"));
                tracing::error!(error = %e);
                inner.error(&e);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Deletes expired rows of the generic table once a minute.
async fn purger(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = inner.stopped() => return,
        }
        match inner.store.purge_expired(now_ms()).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "purging expired rows failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(db: u32, k: &str, v: u8) -> Write {
        Write::Put {
            db,
            key: k.into(),
            row: Row {
                kind: 0,
                value: vec![1, v],
                expires_at: 0,
            },
        }
    }

    #[test]
    fn queue_coalesces_and_flush_drops_older_keys() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.push(1, put(0, "a", 1), now);
        q.push(2, put(0, "a", 2), now);
        q.push(3, put(1, "b", 1), now);
        assert_eq!(q.len(), 2);
        assert_eq!(q.lookup(0, b"a").unwrap().unwrap().value, vec![1, 2]);
        q.push(4, Write::FlushDb(0), now);
        q.push(5, put(0, "c", 1), now);
        assert_eq!(q.lookup(0, b"a"), Some(None));
        assert_eq!(
            q.writes(),
            vec![Write::FlushDb(0), put(1, "b", 1), put(0, "c", 1)]
        );
        assert_eq!(q.min_seq(), Some(3));
    }

    #[test]
    fn merge_back_keeps_newer_states_and_order() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.push(1, put(0, "a", 1), now);
        q.push(2, put(0, "b", 1), now);
        let failed = q.take(10);
        assert!(q.is_empty());
        q.push(3, put(0, "a", 2), now);
        q.merge_back(failed);
        assert_eq!(q.writes(), vec![put(0, "b", 1), put(0, "a", 2)]);
        let failed = q.take(10);
        q.push(4, Write::FlushDb(0), now);
        q.merge_back(failed);
        assert_eq!(q.writes(), vec![Write::FlushDb(0)]);
    }
}
