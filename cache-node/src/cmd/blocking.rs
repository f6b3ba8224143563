//! Blocking list and sorted-set pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP.
//!
//! ```text
//!  BLPOP k ─► keys empty ─► Waiter queued on each key (FIFO), keys observed in the store
//!  LPUSH k ─► store reports "k modified" ─► k marked ready
//!          ─► after that command, serve_ready(): first waiter of k pops, reply handed over
//!  waiter's connection wakes (or times out: null reply) and goes on with its input
//! ```
//!
//! Serving happens in the pushing client's context right after its command, as Redis does,
//! so a blocked client is served before any later command can take the element.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use cache_protocol::{Protocol, ReplyBuf};
use hashbrown::HashMap;

use cache_store::Keyspace;

use super::{parse_float, CmdError, CmdResult, Ctx};
use crate::Shared;

/// What a blocked client does when one of its keys has data.
#[derive(Debug, Clone)]
pub enum BlockOp {
    ListPop {
        left: bool,
    },
    ListMove {
        dst: Bytes,
        from_left: bool,
        to_left: bool,
    },
    ListMPop {
        left: bool,
        count: usize,
    },
    ZPop {
        max: bool,
    },
    ZMPop {
        max: bool,
        count: usize,
    },
    /// XREAD / XREADGROUP.
    XRead(Box<super::streams::BlockedRead>),
}

impl BlockOp {
    fn pops_zset(&self) -> bool {
        matches!(self, BlockOp::ZPop { .. } | BlockOp::ZMPop { .. })
    }

    fn reads_stream(&self) -> bool {
        matches!(self, BlockOp::XRead(_))
    }
}

/// Parses a blocking timeout in seconds (fractions allowed); None means forever.
///
/// As Redis: the value is rounded up to whole milliseconds, and one whose milliseconds do not
/// fit an i64 (`inf`, `1e16`) is reported as negative, which is what Redis's conversion makes
/// of it (this used to say "not a float" for `inf` and block for ages on `1e16`).
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs =
        parse_float(arg).ok_or(CmdError::Msg("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    if ms < 0.0 || ms >= i64::MAX as f64 {
        return Err(CmdError::Msg("ERR timeout is negative"));
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

#[derive(Debug)]
enum State {
    Waiting,
    Done(Vec<u8>),
    TimedOut,
}

/// One blocked client.
pub struct Waiter {
    id: u64,
    /// The blocked connection's CLIENT ID (for CLIENT UNBLOCK).
    client: u64,
    db: usize,
    keys: Vec<Bytes>,
    op: BlockOp,
    protocol: Protocol,
    state: Mutex<State>,
    /// Cleared by the first unregistration; makes a second one a no-op.
    registered: AtomicBool,
    pub wake: tokio::sync::Notify,
}

type KeyId = (usize, Box<[u8]>);

/// The registry of blocked clients.
#[derive(Default)]
pub struct Blocking {
    next_id: AtomicU64,
    waiters: Mutex<HashMap<KeyId, VecDeque<Arc<Waiter>>>>,
    ready: Mutex<Vec<KeyId>>,
    has_ready: AtomicBool,
    /// Blocked clients by CLIENT ID.
    by_client: Mutex<HashMap<u64, Arc<Waiter>>>,
    pub blocked_clients: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Blocking {
    /// Called by the store observer: a key changed.
    pub fn key_modified(&self, db: usize, key: &[u8]) {
        let waiters = lock(&self.waiters);
        if waiters.is_empty() {
            return;
        }
        let id: KeyId = (db, key.into());
        if waiters.contains_key(&id) {
            drop(waiters);
            lock(&self.ready).push(id);
            self.has_ready.store(true, Relaxed);
        }
    }

    /// A database (None: all) was flushed: its blocked keys are ready, so that XREADGROUP
    /// waiters learn their stream is gone, as Redis tells them.
    pub fn flushed(&self, db: Option<usize>) {
        let waiters = lock(&self.waiters);
        let keys: Vec<KeyId> = waiters
            .keys()
            .filter(|(d, _)| db.is_none_or(|want| want == *d))
            .cloned()
            .collect();
        drop(waiters);
        if !keys.is_empty() {
            lock(&self.ready).extend(keys);
            self.has_ready.store(true, Relaxed);
        }
    }

    fn register(&self, shared: &Shared, waiter: &Arc<Waiter>) {
        let mut waiters = lock(&self.waiters);
        for k in &waiter.keys {
            shared.store.observe(k, 1);
            waiters
                .entry((waiter.db, k[..].into()))
                .or_default()
                .push_back(waiter.clone());
        }
        lock(&self.by_client).insert(waiter.client, waiter.clone());
        self.blocked_clients.fetch_add(1, Relaxed);
    }

    /// CLIENT UNBLOCK: wakes the client `client` if it is blocked, as if it timed out, or
    /// with Redis's `-UNBLOCKED` error. Whether it was blocked.
    pub fn unblock(&self, shared: &Shared, client: u64, with_error: bool) -> bool {
        let Some(waiter) = lock(&self.by_client).get(&client).cloned() else {
            return false;
        };
        let mut state = lock(&waiter.state);
        if !matches!(*state, State::Waiting) {
            return false;
        }
        *state = if with_error {
            State::Done(b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec())
        } else {
            State::TimedOut
        };
        drop(state);
        self.unregister(shared, &waiter);
        waiter.wake.notify_one();
        true
    }

    fn unregister(&self, shared: &Shared, waiter: &Waiter) {
        if !waiter.registered.swap(false, Relaxed) {
            return;
        }
        let mut waiters = lock(&self.waiters);
        for k in &waiter.keys {
            let id: KeyId = (waiter.db, k[..].into());
            if let Some(q) = waiters.get_mut(&id) {
                q.retain(|w| w.id != waiter.id);
                if q.is_empty() {
                    waiters.remove(&id);
                }
            }
        }
        drop(waiters);
        {
            let mut by_client = lock(&self.by_client);
            if by_client
                .get(&waiter.client)
                .is_some_and(|w| w.id == waiter.id)
            {
                by_client.remove(&waiter.client);
            }
        }
        for k in &waiter.keys {
            shared.store.observe(k, -1);
        }
        self.blocked_clients.fetch_sub(1, Relaxed);
    }
}

fn serve_op(
    shared: &Shared,
    store: Keyspace<'_>,
    db: usize,
    now: u64,
    key: &[u8],
    op: &BlockOp,
    out: &mut ReplyBuf,
) -> Result<bool, CmdError> {
    super::lists::serve(shared, store, db, now, key, op, out)
}

/// Runs `op` on the first of `keys` that has data, writing its reply; false if none had.
/// LMPOP and ZMPOP are exactly this; the blocking forms try it before they block.
pub fn serve_first(ctx: &mut Ctx<'_>, keys: &[Bytes], op: &BlockOp) -> Result<bool, CmdError> {
    for k in keys {
        if serve_op(ctx.shared, ctx.store(), ctx.db(), ctx.now, k, op, ctx.out)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Tries each key now; if none has data, parks the connection (or, inside EXEC, replies
/// with a null as Redis does).
pub fn block_or_serve(
    ctx: &mut Ctx<'_>,
    keys: Vec<Bytes>,
    timeout: Option<Duration>,
    op: BlockOp,
) -> CmdResult {
    if serve_first(ctx, &keys, &op)? {
        return Ok(());
    }
    if ctx.conn.in_exec {
        // BLMOVE/BRPOPLPUSH answer a null bulk here (Redis's addReplyNull), the pops a null
        // array; their timeouts are null arrays alike.
        if matches!(op, BlockOp::ListMove { .. }) {
            ctx.out.null();
        } else {
            ctx.out.null_array();
        }
        return Ok(());
    }
    park(ctx, keys, timeout, op);
    Ok(())
}

/// Parks the connection on `keys` until one of them can serve `op` or `timeout` passes.
pub fn park(ctx: &mut Ctx<'_>, keys: Vec<Bytes>, timeout: Option<Duration>, op: BlockOp) {
    let db = ctx.db();
    let blocking = &ctx.shared.blocking;
    let waiter = Arc::new(Waiter {
        id: blocking.next_id.fetch_add(1, Relaxed),
        client: ctx.conn.info.id,
        db,
        keys,
        op,
        protocol: ctx.out.protocol,
        state: Mutex::new(State::Waiting),
        registered: AtomicBool::new(true),
        wake: tokio::sync::Notify::new(),
    });
    blocking.register(ctx.shared, &waiter);
    // A push between the attempt above and the registration reported nothing to us: look
    // once more, now that any later push will.
    for k in waiter.keys.clone() {
        blocking.key_modified(db, &k);
    }
    ctx.conn.blocked = Some((waiter, timeout));
}

/// Serves blocked clients whose keys received data. Runs after every command while anything
/// is ready; cheap (one atomic load) otherwise.
pub fn serve_ready(shared: &Shared, store: Keyspace<'_>, now: u64) {
    let blocking = &shared.blocking;
    // A plain load first: a read-modify-write here on every command would bounce this
    // cache line between cores.
    if !blocking.has_ready.load(Relaxed) || !blocking.has_ready.swap(false, Relaxed) {
        return;
    }
    loop {
        let ready = std::mem::take(&mut *lock(&blocking.ready));
        if ready.is_empty() {
            return;
        }
        for (db, key) in ready {
            loop {
                // As Redis, a key is served only to waiters of its type (list pops from a list,
                // zset pops from a sorted set): one that became a string (SET) or another type
                // leaves them blocked instead of answering them WRONGTYPE.
                // Streams serve every reader that has news, not just the first; a key that is
                // no stream any more answers XREADGROUP waiters with an error.
                serve_stream_readers(shared, store, db, &key, now);
                let is_zset = match store.lock(&key).peek(db, &key, now) {
                    Some(e) if e.value.as_list().is_some() => false,
                    Some(e) if e.value.as_zset().is_some() => true,
                    Some(_) => break,
                    None => break,
                };
                let front = lock(&blocking.waiters)
                    .get(&(db, key.clone()))
                    .and_then(|q| {
                        q.iter()
                            .find(|w| !w.op.reads_stream() && w.op.pops_zset() == is_zset)
                            .cloned()
                    });
                let Some(waiter) = front else {
                    break;
                };
                let Some(state) = still_waiting(shared, &waiter) else {
                    continue;
                };
                let mut out = waiter.reply_buf();
                let result = serve_op(shared, store, waiter.db, now, &key, &waiter.op, &mut out);
                if !hand_over(shared, &waiter, state, out, result) {
                    break;
                }
            }
        }
        // Serving a BLMOVE pushes to its destination, which may make more keys ready.
        blocking.has_ready.store(false, Relaxed);
    }
}

/// Serves, in arrival order, the XREAD/XREADGROUP waiters of `key` that it can answer now.
fn serve_stream_readers(shared: &Shared, store: Keyspace<'_>, db: usize, key: &[u8], now: u64) {
    let blocking = &shared.blocking;
    let readers: Vec<Arc<Waiter>> = match lock(&blocking.waiters).get(&(db, key.into())) {
        Some(q) => q.iter().filter(|w| w.op.reads_stream()).cloned().collect(),
        None => return,
    };
    for waiter in readers {
        let BlockOp::XRead(read) = &waiter.op else {
            continue;
        };
        let Some(state) = still_waiting(shared, &waiter) else {
            continue;
        };
        let mut out = waiter.reply_buf();
        let result = super::streams::serve_blocked(
            shared,
            store,
            waiter.db,
            now,
            key,
            &waiter.keys,
            read,
            &mut out,
        );
        hand_over(shared, &waiter, state, out, result);
    }
}

impl Waiter {
    fn reply_buf(&self) -> ReplyBuf {
        ReplyBuf {
            buf: bytes::BytesMut::new(),
            protocol: self.protocol,
        }
    }
}

/// The waiter's state, locked, if it is still waiting; one that timed out while we looked
/// is unregistered here.
fn still_waiting<'w>(shared: &Shared, waiter: &'w Waiter) -> Option<MutexGuard<'w, State>> {
    let state = lock(&waiter.state);
    if matches!(*state, State::Waiting) {
        return Some(state);
    }
    drop(state);
    shared.blocking.unregister(shared, waiter);
    None
}

/// Gives a waiter what serving it produced (an error reply counts); false when there was
/// nothing for it, and it stays blocked.
fn hand_over(
    shared: &Shared,
    waiter: &Waiter,
    mut state: MutexGuard<'_, State>,
    mut out: ReplyBuf,
    result: Result<bool, CmdError>,
) -> bool {
    match result {
        Ok(false) => return false,
        Ok(true) => {}
        Err(e) => out.error(&e.to_string()),
    }
    *state = State::Done(out.buf.to_vec());
    drop(state);
    shared.blocking.unregister(shared, waiter);
    waiter.wake.notify_one();
    true
}

/// The outcome of waiting, for the connection loop.
pub enum Outcome {
    Reply(Vec<u8>),
    TimedOut,
}

/// Checks a waiter after a wake-up or at its deadline. `deadline_passed` turns a still
/// waiting client into a timed-out one.
pub fn finish(shared: &Shared, waiter: &Waiter, deadline_passed: bool) -> Option<Outcome> {
    let mut state = lock(&waiter.state);
    match std::mem::replace(&mut *state, State::TimedOut) {
        State::Done(bytes) => Some(Outcome::Reply(bytes)),
        State::Waiting if !deadline_passed => {
            *state = State::Waiting;
            None
        }
        State::Waiting | State::TimedOut => {
            drop(state);
            shared.blocking.unregister(shared, waiter);
            Some(Outcome::TimedOut)
        }
    }
}

/// The client went away while blocked.
pub fn abandon(shared: &Shared, waiter: &Waiter) {
    let mut state = lock(&waiter.state);
    if matches!(*state, State::Waiting) {
        *state = State::TimedOut;
        drop(state);
        shared.blocking.unregister(shared, waiter);
    }
}
