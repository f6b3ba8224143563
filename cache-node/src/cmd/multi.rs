//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queued commands were checked (name, arity) when queued; EXEC takes the transaction gate
//! exclusively, checks the watched keys, and runs the queue with no other command between.
//! A watched key is observed in the store, so any write, expiry or flush of it sets the
//! watching client's dirty flag.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hashbrown::HashMap;

use super::{CmdError, CmdResult, Ctx};

type KeyId = (usize, Box<[u8]>);

/// Which clients watch which keys.
#[derive(Default)]
pub struct Watches {
    map: Mutex<HashMap<KeyId, Vec<Arc<AtomicBool>>>>,
    count: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Watches {
    pub fn key_modified(&self, db: usize, key: &[u8]) {
        if self.count.load(Relaxed) == 0 {
            return;
        }
        if let Some(flags) = lock(&self.map).get(&(db, Box::<[u8]>::from(key))) {
            for f in flags {
                f.store(true, Relaxed);
            }
        }
    }

    /// Before FLUSHDB (`Some`) or FLUSHALL: marks the watched keys that exist now (Redis's
    /// `touchAllWatchedKeysInDb`: a watched key the flush cannot change stays clean).
    pub fn flushing(&self, store: &cache_store::Store, db: Option<usize>, now: u64) {
        if self.count.load(Relaxed) == 0 {
            return;
        }
        for ((d, key), flags) in lock(&self.map).iter() {
            if db.is_none_or(|db| db == *d) && store.lock(key).contains(*d, key, now) {
                for f in flags {
                    f.store(true, Relaxed);
                }
            }
        }
    }

    /// Every watched key of `db` (or all) changed as a whole (SWAPDB, a full invalidation).
    pub fn flushed(&self, db: Option<usize>) {
        if self.count.load(Relaxed) == 0 {
            return;
        }
        for ((d, _), flags) in lock(&self.map).iter() {
            if db.is_none_or(|db| db == *d) {
                for f in flags {
                    f.store(true, Relaxed);
                }
            }
        }
    }
}

/// Forgets every key this connection watches.
pub fn unwatch_all(ctx: &mut Ctx<'_>) {
    forget(ctx.shared, ctx.conn);
}

/// Forgets every key `conn` watches (also when the connection closes).
pub fn forget(shared: &crate::Shared, conn: &mut super::ConnState) {
    let watched = std::mem::take(&mut conn.watched);
    if watched.is_empty() {
        conn.watch_dirty.store(false, Relaxed);
        return;
    }
    let watches = &shared.watches;
    let mut map = lock(&watches.map);
    for (db, key) in &watched {
        let id: KeyId = (*db, key[..].into());
        if let Some(flags) = map.get_mut(&id) {
            flags.retain(|f| !Arc::ptr_eq(f, &conn.watch_dirty));
            if flags.is_empty() {
                map.remove(&id);
            }
        }
        watches.count.fetch_sub(1, Relaxed);
    }
    drop(map);
    for (_, key) in &watched {
        shared.store.observe(key, -1);
    }
    conn.watch_dirty.store(false, Relaxed);
}

pub fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Err(CmdError::Msg("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db();
    for key in &args[1..] {
        if ctx.conn.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        // A key already past its time is deleted now, before we observe it: as in Redis, its
        // expiry is not a change this client sees (see `run`).
        ctx.store().lock(key).peek(db, key, ctx.now);
        // Observe first: from here on every change of the key reaches the registry.
        ctx.shared.store.observe(key, 1);
        lock(&ctx.shared.watches.map)
            .entry((db, key[..].into()))
            .or_default()
            .push(ctx.conn.watch_dirty.clone());
        ctx.shared.watches.count.fetch_add(1, Relaxed);
        ctx.conn.watched.push((db, key.clone()));
    }
    ctx.out.ok();
    Ok(())
}

pub fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}

pub fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Err(CmdError::Msg("ERR MULTI calls can not be nested"));
    }
    ctx.conn.multi = Some(Vec::new());
    ctx.conn.multi_failed = false;
    ctx.out.ok();
    Ok(())
}

pub fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.take().is_none() {
        return Err(CmdError::Msg("ERR DISCARD without MULTI"));
    }
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}

/// Checks EXEC's preconditions; the connection then calls [`run`] with the gate held
/// exclusively.
pub fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let Some(queue) = ctx.conn.multi.take() else {
        return Err(CmdError::Msg("ERR EXEC without MULTI"));
    };
    if ctx.conn.multi_failed {
        unwatch_all(ctx);
        return Err(CmdError::Msg(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    ctx.conn.exec_queue = Some(queue);
    Ok(())
}

/// Runs an accepted transaction. The caller holds the gate exclusively: no other command
/// runs until this returns, so the watch check and the queue are atomic together.
pub fn run(ctx: &mut Ctx<'_>, queue: Vec<Vec<Bytes>>) {
    // Redis fails EXEC when a watched key's time has passed even if nothing deleted it yet
    // (active expiry may not have come by). Looking each one up deletes such a key, and the
    // deletion reaches the watch registry like any other expiry.
    for (db, key) in &ctx.conn.watched {
        ctx.store().lock(key).peek(*db, key, ctx.now);
    }
    if ctx.conn.watch_dirty.load(Relaxed) {
        unwatch_all(ctx);
        ctx.out.null_array();
        return;
    }
    ctx.out.array(queue.len());
    ctx.conn.in_exec = true;
    for args in &queue {
        super::dispatch(ctx, args);
    }
    ctx.conn.in_exec = false;
    unwatch_all(ctx);
}
