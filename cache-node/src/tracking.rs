//! Client-side caching (CLIENT TRACKING): which clients read which keys, and the invalidation
//! messages a change sends them, with Redis 7's semantics.
//!
//! ```text
//!  read-only command of a default-mode tracking client
//!      └─ remember(key → client id), before the command reads (no write can slip between)
//!  write · expiry · eviction ─► store KeyObserver ─► key_changed(key)
//!      ├─ default mode: take the key's ids out of the table (one shot) ─► each of them
//!      └─ BCAST: every client with a prefix of the key
//!  FLUSHDB · FLUSHALL · SWAPDB ─► flushed(): a null invalidation to every tracking client
//!  table over tracking-table-max-keys ─► forget random keys, invalidating them as if written
//!  each message ─► the client's Outbox (RESP3 push) or its REDIRECT target's (RESP3 push, or a
//!                  `__redis__:invalidate` message to a RESP2 subscriber)
//! ```
//!
//! Like Redis, the table is one namespace for all databases: a write to `k` in db 1
//! invalidates readers of `k` in db 0 too (a spurious invalidation, never a missed one).
//!
//! Cost when nobody tracks: [`Tracking::active`], one relaxed load per command. While someone
//! tracks, the store reports every change ([`cache_store::Store::observe_all`]).

use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use bytes::{Bytes, BytesMut};
use cache_protocol::command::flags::READONLY;
use cache_protocol::glob::glob_match;
use cache_protocol::{Cmd, CommandSpec, Protocol, ReplyBuf};
use cache_store::Key;
use hashbrown::{DefaultHashBuilder, HashMap};
use indexmap::IndexMap;

use crate::client::ClientInfo;
use crate::cmd::pubsub::Outbox;
use crate::cmd::Ctx;
use crate::Shared;

/// Bits of [`ClientInfo::tracking`].
pub mod flags {
    pub const ON: u32 = 1 << 0;
    pub const BCAST: u32 = 1 << 1;
    pub const OPTIN: u32 = 1 << 2;
    pub const OPTOUT: u32 = 1 << 3;
    pub const NOLOOP: u32 = 1 << 4;
    /// CLIENT CACHING YES (under OPTIN) or NO (under OPTOUT) was given for the next command.
    pub const CACHING: u32 = 1 << 5;
    /// An invalidation could not be delivered: the REDIRECT target is gone.
    pub const BROKEN_REDIRECT: u32 = 1 << 6;
    /// EXEC ran with CACHING set: the queued commands used it; clear it before the next one.
    pub const CACHING_SPENT: u32 = 1 << 7;
}

/// The channel RESP2 redirect targets subscribe to.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// Parts of the key table, each under its own lock, so that writes to different keys do not
/// serialize on one mutex while clients track.
const TABLE_SHARDS: usize = 16;

/// Keys forgotten per command at most when the table is over its limit (Redis's effort).
const TRIM_EFFORT: usize = 100;

type KeyTable = IndexMap<Key, Vec<u64>, DefaultHashBuilder>;

thread_local! {
    /// The client whose command runs on this thread (0 = none, e.g. the cron): NOLOOP clients
    /// are not told about their own changes.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// Invalidations made by the commands of the current batch, per target queue: sent
    /// together when the batch ends ([`flush_pending`]), one queue operation (and at most one
    /// wake-up of the target's task) per target and batch instead of one per key.
    static PENDING: RefCell<Vec<(Arc<Outbox>, BytesMut)>> = const { RefCell::new(Vec::new()) };
    /// BCAST invalidations of the current batch, per target, message kind and prefix: one
    /// message carries a prefix's keys, as Redis broadcasts them (an MSET's keys, a MULTI's).
    /// (target, RESP3, BCAST prefix or empty, keys).
    #[allow(clippy::type_complexity)]
    static PENDING_KEYS: RefCell<Vec<(Arc<Outbox>, bool, Bytes, Vec<Bytes>)>> = const { RefCell::new(Vec::new()) };
}

/// Queues `frame` for `target`: at once outside a command (expiry cycle, backing store feed),
/// else at the end of the running connection's batch.
fn queue(target: &Arc<Outbox>, frame: BytesMut) {
    if CURRENT.with(Cell::get) == 0 {
        target.send(frame.freeze());
        return;
    }
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        match p.iter_mut().find(|(o, _)| Arc::ptr_eq(o, target)) {
            Some((_, buf)) => buf.extend_from_slice(&frame),
            None => p.push((target.clone(), frame)),
        }
    });
}

/// Sends the invalidations the batch just run has made. The connection calls this once per
/// batch, after its commands ran and before it writes their replies or awaits anything.
pub fn flush_pending() {
    PENDING_KEYS.with(|k| {
        for (target, resp3, _, keys) in k.borrow_mut().drain(..) {
            let mut out = ReplyBuf {
                buf: BytesMut::new(),
                protocol: target.protocol(),
            };
            write_keys_message(&mut out, resp3, &keys);
            PENDING.with(|p| {
                let mut p = p.borrow_mut();
                match p.iter_mut().find(|(o, _)| Arc::ptr_eq(o, &target)) {
                    Some((_, buf)) => buf.extend_from_slice(&out.buf),
                    None => p.push((target, out.buf)),
                }
            });
        }
    });
    PENDING.with(|p| {
        if p.borrow().is_empty() {
            return;
        }
        for (target, frames) in p.borrow_mut().drain(..) {
            target.send(frames.freeze());
        }
    });
}

/// Moves the invalidations queued for this connection itself into its reply stream, where
/// Redis puts them: after the reply of the command that changed the keys (a transaction's or
/// a script's after the whole reply), and before the reply of a command whose admission
/// evicted them. Others' invalidations keep going through their queues.
pub fn deliver_own(ctx: &mut Ctx<'_>) {
    if ctx.conn.in_exec || ctx.conn.in_script {
        return;
    }
    let Some(own) = ctx.conn.info.outbox() else {
        return;
    };
    // What reached the queue before this point (others' invalidations, evictions made
    // outside a command) comes first, as it would sit first in a Redis client's buffer.
    if let Some(subs) = ctx.conn.subs.as_mut() {
        while let Ok(frame) = subs.rx.try_recv() {
            subs.outbox.pending.fetch_sub(frame.len(), Relaxed);
            ctx.out.buf.extend_from_slice(&frame);
        }
    }
    PENDING_KEYS.with(|k| {
        let mut k = k.borrow_mut();
        let mut i = 0;
        while i < k.len() {
            if Arc::ptr_eq(&k[i].0, &own) {
                let (_, resp3, _, keys) = k.remove(i);
                write_keys_message(ctx.out, resp3, &keys);
            } else {
                i += 1;
            }
        }
    });
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if let Some(i) = p.iter().position(|(o, _)| Arc::ptr_eq(o, &own)) {
            let (_, frames) = p.swap_remove(i);
            ctx.out.buf.extend_from_slice(&frames);
        }
    });
}

/// One tracking client's settings, replaced as a whole by each CLIENT TRACKING ON.
struct Tracker {
    id: u64,
    info: Arc<ClientInfo>,
    /// The client's own queue: RESP3 pushes and `tracking-redir-broken` go there.
    own: Arc<Outbox>,
    /// REDIRECT target (0 = none).
    redirect: u64,
    bcast: bool,
    noloop: bool,
    /// BCAST prefixes, sorted ("" = every key).
    prefixes: Vec<Bytes>,
}

/// What an invalidation says.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Keys(&'a [&'a [u8]]),
    /// Everything (a flush).
    All,
}

/// The node's tracking state.
pub struct Tracking {
    /// Clients with tracking on; the hot path reads only this.
    clients_on: AtomicUsize,
    trackers: RwLock<HashMap<u64, Arc<Tracker>>>,
    bcast: RwLock<Vec<Arc<Tracker>>>,
    table: Box<[Mutex<KeyTable>]>,
    hasher: DefaultHashBuilder,
    keys: AtomicUsize,
    items: AtomicUsize,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            clients_on: AtomicUsize::new(0),
            trackers: RwLock::default(),
            bcast: RwLock::default(),
            table: (0..TABLE_SHARDS)
                .map(|_| Mutex::new(KeyTable::default()))
                .collect(),
            hasher: DefaultHashBuilder::default(),
            keys: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Whether one of two prefixes starts the other (Redis's `stringCheckPrefix`).
pub fn prefixes_overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

impl Tracking {
    /// Whether any client tracks. One relaxed load: the only cost of tracking when unused.
    #[inline]
    pub fn active(&self) -> bool {
        self.clients_on.load(Relaxed) > 0
    }

    /// INFO: `tracking_clients`.
    pub fn clients(&self) -> usize {
        self.clients_on.load(Relaxed)
    }

    /// INFO: `tracking_total_keys` (keys in the table).
    pub fn total_keys(&self) -> usize {
        self.keys.load(Relaxed)
    }

    /// INFO: `tracking_total_items` (client ids over all keys).
    pub fn total_items(&self) -> usize {
        self.items.load(Relaxed)
    }

    /// INFO: `tracking_total_prefixes` (distinct BCAST prefixes).
    pub fn total_prefixes(&self) -> usize {
        let bcast = read(&self.bcast);
        let mut all: Vec<&Bytes> = bcast.iter().flat_map(|t| t.prefixes.iter()).collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    /// The BCAST prefixes of client `id` (CLIENT TRACKINGINFO).
    pub fn prefixes_of(&self, id: u64) -> Vec<Bytes> {
        read(&self.trackers)
            .get(&id)
            .map(|t| t.prefixes.clone())
            .unwrap_or_default()
    }

    fn shard(&self, key: &[u8]) -> std::sync::MutexGuard<'_, KeyTable> {
        let i = self.hasher.hash_one(key) as usize % TABLE_SHARDS;
        lock(&self.table[i])
    }

    /// Turns tracking on (or changes its options) for a connection. `prefixes` are added to
    /// the ones it already has, as Redis does; the caller has validated the options.
    pub fn enable(
        &self,
        shared: &Shared,
        info: &Arc<ClientInfo>,
        own: Arc<Outbox>,
        redirect: u64,
        options: u32,
        prefixes: &[Bytes],
    ) {
        let id = info.id;
        let bcast = options & flags::BCAST != 0;
        let mut trackers = write(&self.trackers);
        let old = trackers.get(&id).cloned();
        let mut all = old.as_ref().map(|t| t.prefixes.clone()).unwrap_or_default();
        if bcast {
            if prefixes.is_empty() {
                all.push(Bytes::new());
            }
            all.extend(prefixes.iter().cloned());
            all.sort_unstable();
            all.dedup();
        }
        let tracker = Arc::new(Tracker {
            id,
            info: info.clone(),
            own,
            redirect,
            bcast,
            noloop: options & flags::NOLOOP != 0,
            prefixes: all,
        });
        if old.is_none() && self.clients_on.fetch_add(1, Relaxed) == 0 {
            // The first tracking client: from now on every change must reach us.
            shared.store.observe_all(1);
        }
        trackers.insert(id, tracker.clone());
        {
            let mut list = write(&self.bcast);
            list.retain(|t| t.id != id);
            if bcast {
                list.push(tracker);
            }
        }
        // CACHING survives a re-enable, as in Redis; a broken redirect does not.
        let caching = info.tracking.load(Relaxed) & flags::CACHING;
        info.redirect.store(redirect, Relaxed);
        info.tracking.store(
            flags::ON
                | caching
                | options & (flags::BCAST | flags::OPTIN | flags::OPTOUT | flags::NOLOOP),
            Relaxed,
        );
    }

    /// Turns tracking off for a connection (CLIENT TRACKING OFF, RESET, disconnect). Keys it
    /// read stay in the table until they change, as in Redis; they are skipped then.
    pub fn disable(&self, shared: &Shared, info: &ClientInfo) {
        let id = info.id;
        info.tracking.store(0, Relaxed);
        info.redirect.store(0, Relaxed);
        let mut trackers = write(&self.trackers);
        if trackers.remove(&id).is_none() {
            return;
        }
        write(&self.bcast).retain(|t| t.id != id);
        if self.clients_on.fetch_sub(1, Relaxed) == 1 {
            shared.store.observe_all(-1);
        }
    }

    /// Records that client `id` read `keys`; forgets random keys (invalidating them) when
    /// the table is over `tracking-table-max-keys`.
    pub fn remember<'k>(&self, shared: &Shared, id: u64, keys: impl Iterator<Item = &'k [u8]>) {
        for key in keys {
            let mut shard = self.shard(key);
            match shard.get_mut(key) {
                Some(ids) => {
                    if !ids.contains(&id) {
                        ids.push(id);
                        self.items.fetch_add(1, Relaxed);
                    }
                }
                None => {
                    shard.insert(key.into(), vec![id]);
                    self.keys.fetch_add(1, Relaxed);
                    self.items.fetch_add(1, Relaxed);
                }
            }
        }
        self.limit(shared);
    }

    /// Forgets keys while the table is over `tracking-table-max-keys` (after a read, and
    /// from the cron, as Redis's serverCron does: a lowered limit applies without a read).
    pub fn limit(&self, shared: &Shared) {
        let max = shared.config.tracking_table_max_keys.load(Relaxed) as usize;
        if max > 0 && self.keys.load(Relaxed) > max {
            self.trim(shared, max);
        }
    }

    /// Forgets random keys until the table is within `max` (or the effort is spent; the next
    /// read continues), telling their readers: they can no longer be told of a change.
    fn trim(&self, shared: &Shared, max: usize) {
        for _ in 0..TRIM_EFFORT {
            if self.keys.load(Relaxed) <= max {
                return;
            }
            let seed = fastrand::u64(..);
            let start = seed as usize;
            for step in 0..TABLE_SHARDS {
                let mut shard = lock(&self.table[(start + step) % TABLE_SHARDS]);
                if shard.is_empty() {
                    continue;
                }
                let at = (seed >> 8) as usize % shard.len();
                let Some((key, ids)) = shard.swap_remove_index(at) else {
                    continue;
                };
                drop(shard);
                self.forgot(&ids);
                self.notify_readers(shared, &key, &ids, 0);
                break;
            }
        }
    }

    fn forgot(&self, ids: &[u64]) {
        self.keys.fetch_sub(1, Relaxed);
        self.items.fetch_sub(ids.len(), Relaxed);
    }

    /// `key` changed (written, deleted, expired, evicted, or dropped for the backing store):
    /// tells the clients that read it, once, and the BCAST clients with a matching prefix.
    pub fn key_changed(&self, shared: &Shared, key: &[u8]) {
        if !self.active() {
            return;
        }
        let by = CURRENT.with(Cell::get);
        let ids = self.shard(key).swap_remove(key);
        if let Some(ids) = ids {
            self.forgot(&ids);
            self.notify_readers(shared, key, &ids, by);
        }
        let bcast = read(&self.bcast);
        for t in bcast.iter() {
            if t.noloop && t.id == by {
                continue;
            }
            // One message per prefix and batch, as Redis's broadcast per prefix.
            for p in t.prefixes.iter().filter(|p| key.starts_with(p)) {
                deliver(shared, t, Some(p), Payload::Keys(&[key]));
            }
        }
    }

    /// Explicit invalidation by glob pattern (CACHE INVALIDATE), after the matching keys in
    /// memory were dropped (the store reported those): tracked keys matching `pattern` that
    /// were not in memory, read as absent or evicted earlier, are invalidated too.
    pub fn invalidate_matching(&self, shared: &Shared, pattern: &[u8]) {
        if !self.active() {
            return;
        }
        let mut tracked = Vec::new();
        for shard in self.table.iter() {
            tracked.extend(
                lock(shard)
                    .keys()
                    .filter(|k| pattern == b"*" || glob_match(pattern, k, false))
                    .cloned(),
            );
        }
        for key in tracked {
            self.key_changed(shared, &key);
        }
    }

    fn notify_readers(&self, shared: &Shared, key: &[u8], ids: &[u64], by: u64) {
        let trackers = read(&self.trackers);
        for id in ids {
            let Some(t) = trackers.get(id) else {
                continue;
            };
            // Switched to BCAST since it read the key, or told not to hear its own writes.
            if t.bcast || (t.noloop && *id == by) {
                continue;
            }
            deliver(shared, t, None, Payload::Keys(&[key]));
        }
    }

    /// A database was flushed or swapped: every tracking client drops everything (a null
    /// invalidation), and the table is emptied.
    pub fn flushed(&self, shared: &Shared) {
        // Keys read by clients that since turned tracking off are still in the table (as in
        // Redis, which empties it on a flush as well).
        if !self.active() && self.keys.load(Relaxed) == 0 {
            return;
        }
        for shard in self.table.iter() {
            let mut shard = lock(shard);
            let items: usize = shard.values().map(Vec::len).sum();
            self.keys.fetch_sub(shard.len(), Relaxed);
            self.items.fetch_sub(items, Relaxed);
            shard.clear();
        }
        let trackers = read(&self.trackers);
        for t in trackers.values() {
            deliver(shared, t, None, Payload::All);
        }
    }
}

/// The start of an invalidation: a RESP3 `invalidate` push, or a RESP2 message on the
/// `__redis__:invalidate` channel of a subscribed redirect target.
fn invalidation_header(out: &mut ReplyBuf, resp3: bool) {
    if resp3 {
        out.push(2);
        out.bulk(b"invalidate");
    } else {
        out.array(3);
        out.bulk(b"message");
        out.bulk(CHANNEL);
    }
}

/// One invalidation message naming `keys`.
fn write_keys_message<K: AsRef<[u8]>>(out: &mut ReplyBuf, resp3: bool, keys: &[K]) {
    invalidation_header(out, resp3);
    out.array(keys.len());
    for key in keys {
        out.bulk(key.as_ref());
    }
}

/// Encodes and queues one invalidation for `t`, at its REDIRECT target if it has one.
fn deliver(shared: &Shared, t: &Tracker, prefix: Option<&[u8]>, payload: Payload<'_>) {
    let (target, redirected) = if t.redirect == 0 {
        (t.own.clone(), false)
    } else {
        match shared.clients.get(t.redirect) {
            None => {
                // Redis reports this on every invalidation it cannot deliver.
                t.info.tracking.fetch_or(flags::BROKEN_REDIRECT, Relaxed);
                if t.own.protocol() == Protocol::Resp3 {
                    let mut out = ReplyBuf {
                        buf: BytesMut::new(),
                        protocol: Protocol::Resp3,
                    };
                    out.push(2);
                    out.bulk(b"tracking-redir-broken");
                    out.int(t.redirect as i64);
                    queue(&t.own, out.buf);
                }
                return;
            }
            // A target that never subscribed nor spoke RESP3 has no queue: nothing can
            // reach it, as in Redis.
            Some(info) => match info.outbox() {
                Some(o) => (o, true),
                None => return,
            },
        }
    };
    let protocol = target.protocol();
    let resp3 = protocol == Protocol::Resp3;
    if !(resp3 || redirected && target.subscribed()) {
        // RESP2 without a subscribed redirect target: RESP2 has no pushes.
        return;
    }
    // A BCAST prefix's keys go out together, one message per prefix and batch (Redis's
    // broadcast in beforeSleep); a tracked key read by the client, one message per key.
    if let (Payload::Keys(keys), Some(group)) = (payload, prefix) {
        if CURRENT.with(Cell::get) != 0 {
            PENDING_KEYS.with(|k| {
                let mut k = k.borrow_mut();
                let more = keys.iter().map(|key| Bytes::copy_from_slice(key));
                match k
                    .iter_mut()
                    .find(|(o, r, g, _)| Arc::ptr_eq(o, &target) && *r == resp3 && g == group)
                {
                    Some((_, _, _, list)) => list.extend(more),
                    None => k.push((
                        target.clone(),
                        resp3,
                        Bytes::copy_from_slice(group),
                        more.collect(),
                    )),
                }
            });
            return;
        }
    }
    let mut out = ReplyBuf {
        buf: BytesMut::new(),
        protocol,
    };
    match payload {
        Payload::Keys(keys) => write_keys_message(&mut out, resp3, keys),
        Payload::All => {
            invalidation_header(&mut out, resp3);
            out.null();
        }
    }
    queue(&target, out.buf);
}

/// Called by dispatch before a command runs, while some client tracks: notes who is running
/// (for NOLOOP) and records the keys a tracking client is about to read.
pub fn before_command(ctx: &mut Ctx<'_>, cmd: Cmd, spec: &CommandSpec, args: &[Bytes]) {
    CURRENT.with(|c| c.set(ctx.conn.info.id));
    if ctx.conn.in_script {
        // A script's own reads are not tracked: the script's declared keys are, once it
        // has read something ([`after_script`]), as Redis does.
        ctx.conn.script_read |= spec.has(READONLY);
        return;
    }
    // A read-only script (EVAL_RO, FCALL_RO) is not a read itself: its declared keys are
    // tracked only once it ran a read command, like any script's.
    let read = spec.has(READONLY) && spec.group != "scripting";
    remember_reads(ctx, read, &cmd.keys(args), args);
}

/// After a script ran: if it called a read command, its declared keys are tracked.
pub fn after_script(ctx: &mut Ctx<'_>, keys: &[Bytes]) {
    if std::mem::take(&mut ctx.conn.script_read) {
        let positions: Vec<usize> = (0..keys.len()).collect();
        remember_reads(ctx, true, &positions, keys);
    }
}

/// Records for a tracking client the keys at `positions` of a read.
fn remember_reads(ctx: &mut Ctx<'_>, read: bool, positions: &[usize], args: &[Bytes]) {
    let info = &ctx.conn.info;
    let mut f = info.tracking.load(Relaxed);
    if f & flags::CACHING_SPENT != 0 && !ctx.conn.in_exec {
        info.tracking
            .fetch_and(!(flags::CACHING | flags::CACHING_SPENT), Relaxed);
        f &= !(flags::CACHING | flags::CACHING_SPENT);
    }
    if f & flags::ON == 0 || f & flags::BCAST != 0 || !read {
        return;
    }
    let caching = f & flags::CACHING != 0;
    if (f & flags::OPTIN != 0 && !caching) || (f & flags::OPTOUT != 0 && caching) {
        return;
    }
    if positions.is_empty() {
        return;
    }
    ctx.shared
        .tracking
        .remember(ctx.shared, info.id, positions.iter().map(|&i| &args[i][..]));
}

/// Called by dispatch after a command ran, while some client tracks. CLIENT CACHING applies
/// to the next command only (to all of a transaction's when given before MULTI).
pub fn after_command(ctx: &mut Ctx<'_>, cmd: Cmd) {
    CURRENT.with(|c| c.set(0));
    let info = &ctx.conn.info;
    if info.tracking.load(Relaxed) & flags::CACHING == 0
        || cmd == Cmd::Client
        || ctx.conn.in_exec
        || ctx.conn.multi.is_some()
    {
        return;
    }
    if ctx.conn.exec_queue.is_some() {
        // EXEC: its queue runs after this returns and still uses the flag.
        info.tracking.fetch_or(flags::CACHING_SPENT, Relaxed);
    } else {
        info.tracking.fetch_and(!flags::CACHING, Relaxed);
    }
}

impl Shared {
    /// Drops `keys` of database `db` from memory and tells every client tracking them: the
    /// value changed elsewhere (the backing store's change feed). Memory only, like an
    /// eviction: nothing is recorded for the backing store, whatever the caller is doing.
    /// Keys not in memory are invalidated too, since a client may have read them (or their
    /// absence) earlier.
    pub fn invalidate_keys(&self, db: usize, keys: &[&[u8]]) {
        let now = crate::now_ms();
        for key in keys {
            // An eviction is reported to the observer, which tells the readers; an absent
            // key is not, so it is invalidated here.
            if self.store.lock(key).evict(db, key, now).is_none() {
                self.tracking.key_changed(self, key);
            }
        }
    }
}
