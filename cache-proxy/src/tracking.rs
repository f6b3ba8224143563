//! Client-side caching through the proxy: `CLIENT TRACKING` for RESP3 clients.
//!
//! ```text
//!  node ──(one BCAST tracking connection per worker and node)──► feed ──► Tracking::invalidate
//!                                                                           │ default mode: readers of the key
//!  client GET k ──► record_read(client, k)                                  │ BCAST: matching prefixes
//!  client SET k ──► noted as the writer of k (for NOLOOP)                   └► push `>2 invalidate [k]`
//! ```
//!
//! The nodes report every change (writes through any proxy or directly, expiry, eviction,
//! database changes from the backing store's feed); the proxy keeps its own table of which of
//! its clients read which key, so one feed connection per node serves every client. Pushes
//! reach a client only between its batches, after the replies it is waiting for, so a
//! reply can never arrive after the invalidation that makes it stale. When a feed breaks, or
//! the ring changes (slots dropped or moved), every tracking client is told to flush.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::UnboundedSender;

use crate::backend::{encode_command, Dedicated};
use crate::client::Worker;
use crate::cluster::NodeState;
use crate::error::ProxyError;
use crate::reply;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Keys the client reads are tracked.
    Default,
    /// Only reads right after `CLIENT CACHING YES`.
    OptIn,
    /// Every read except right after `CLIENT CACHING NO`.
    OptOut,
    /// Every change of a key with one of the prefixes (all keys without prefixes).
    Bcast,
}

/// Most bytes of pushes (invalidations, pub/sub messages) waiting for one client, as Redis's
/// pubsub output limit: beyond it nothing more is queued and the client is disconnected.
pub const PUSH_LIMIT: usize = 32 << 20;

/// The sending side of a client's push queue, bounded by [`PUSH_LIMIT`] bytes.
#[derive(Clone)]
pub struct PushSender {
    tx: UnboundedSender<Bytes>,
    pending: Rc<Cell<usize>>,
}

/// The client's side: what it drains, and how much is waiting.
pub struct PushQueue {
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    pub sender: PushSender,
}

impl PushQueue {
    pub fn new() -> PushQueue {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        PushQueue {
            rx,
            sender: PushSender {
                tx,
                pending: Rc::new(Cell::new(0)),
            },
        }
    }

    /// Everything queued now, in one buffer; None when the client fell too far behind.
    pub fn drain(&mut self, first: Bytes) -> Option<BytesMut> {
        let mut out = BytesMut::from(&first[..]);
        while let Ok(more) = self.rx.try_recv() {
            out.put_slice(&more);
        }
        let pending = &self.sender.pending;
        if pending.get() > PUSH_LIMIT {
            return None;
        }
        pending.set(pending.get().saturating_sub(out.len()));
        Some(out)
    }
}

impl Default for PushQueue {
    fn default() -> Self {
        PushQueue::new()
    }
}

impl PushSender {
    /// Queues `frame`; false when the client is gone or over its limit.
    pub fn send(&self, frame: Bytes) -> bool {
        let pending = self.pending.get();
        if pending > PUSH_LIMIT {
            return false;
        }
        // Over the limit once: the client is disconnected when it next drains.
        self.pending.set(pending + frame.len());
        self.tx.send(frame).is_ok()
    }
}

pub struct Tracked {
    pub push: PushSender,
    pub mode: Mode,
    pub noloop: bool,
    pub prefixes: Vec<Bytes>,
}

/// One worker's tracking state.
pub struct Tracking {
    readers: RefCell<HashMap<Bytes, Vec<u64>>>,
    clients: RefCell<HashMap<u64, Tracked>>,
    /// The last NOLOOP client that wrote each key, until the node's invalidation arrives.
    writers: RefCell<HashMap<Bytes, u64>>,
    /// Node ids whose feed task runs.
    feeds: RefCell<HashSet<u64>>,
    /// Feeds that have confirmed `CLIENT TRACKING ON BCAST`.
    ready: RefCell<HashSet<u64>>,
    max_keys: usize,
    pub invalidations: Cell<u64>,
    /// The routing epoch the feeds were last started for (new nodes need one).
    pub feeds_epoch: Cell<u64>,
}

const WRITERS_LIMIT: usize = 100_000;

impl Tracking {
    pub fn new(max_keys: usize) -> Tracking {
        Tracking {
            readers: RefCell::new(HashMap::new()),
            clients: RefCell::new(HashMap::new()),
            writers: RefCell::new(HashMap::new()),
            feeds: RefCell::new(HashSet::new()),
            ready: RefCell::new(HashSet::new()),
            max_keys: max_keys.max(1),
            invalidations: Cell::new(0),
            feeds_epoch: Cell::new(0),
        }
    }

    pub fn active(&self) -> bool {
        !self.clients.borrow().is_empty()
    }

    pub fn enable(&self, id: u64, tracked: Tracked) {
        self.clients.borrow_mut().insert(id, tracked);
    }

    pub fn disable(&self, id: u64) {
        self.clients.borrow_mut().remove(&id);
        if self.clients.borrow().is_empty() {
            self.readers.borrow_mut().clear();
            self.writers.borrow_mut().clear();
        }
    }

    pub fn mode(&self, id: u64) -> Option<Mode> {
        self.clients.borrow().get(&id).map(|t| t.mode)
    }

    pub fn info(&self, id: u64) -> Option<(Mode, bool, Vec<Bytes>)> {
        self.clients
            .borrow()
            .get(&id)
            .map(|t| (t.mode, t.noloop, t.prefixes.clone()))
    }

    /// `key` was read by `id`: tell it when the key changes.
    pub fn record_read(&self, id: u64, key: &Bytes) {
        let mut readers = self.readers.borrow_mut();
        if !readers.contains_key(key) && readers.len() >= self.max_keys {
            // Full: forget some key, telling its readers (as Redis does).
            if let Some(victim) = readers.keys().next().cloned() {
                let ids = readers.remove(&victim).unwrap_or_default();
                drop(readers);
                self.send(&ids, &victim);
                readers = self.readers.borrow_mut();
            }
        }
        let ids = readers.entry(key.clone()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// A NOLOOP client wrote `key`: its own invalidation for it is not sent.
    pub fn record_write(&self, id: u64, key: &Bytes) {
        let noloop = self.clients.borrow().get(&id).is_some_and(|t| t.noloop);
        if noloop {
            let mut writers = self.writers.borrow_mut();
            if writers.len() >= WRITERS_LIMIT {
                writers.clear();
            }
            writers.insert(key.clone(), id);
        }
    }

    fn send(&self, ids: &[u64], key: &Bytes) {
        let clients = self.clients.borrow();
        for id in ids {
            if let Some(t) = clients.get(id) {
                t.push.send(push_keys(std::slice::from_ref(key)));
                self.invalidations.set(self.invalidations.get() + 1);
            }
        }
    }

    /// The nodes say these keys changed.
    pub fn invalidate(&self, keys: &[Bytes]) {
        let mut per_client: HashMap<u64, Vec<Bytes>> = HashMap::new();
        {
            let mut readers = self.readers.borrow_mut();
            let mut writers = self.writers.borrow_mut();
            let clients = self.clients.borrow();
            for key in keys {
                let writer = writers.remove(key);
                if let Some(ids) = readers.remove(key) {
                    for id in ids {
                        if Some(id) != writer {
                            per_client.entry(id).or_default().push(key.clone());
                        }
                    }
                }
                for (id, t) in clients.iter() {
                    if t.mode == Mode::Bcast
                        && Some(*id) != writer
                        && (t.prefixes.is_empty() || t.prefixes.iter().any(|p| key.starts_with(p)))
                    {
                        per_client.entry(*id).or_default().push(key.clone());
                    }
                }
            }
        }
        let clients = self.clients.borrow();
        for (id, keys) in per_client {
            if let Some(t) = clients.get(&id) {
                t.push.send(push_keys(&keys));
                self.invalidations.set(self.invalidations.get() + 1);
            }
        }
    }

    /// Everything may have changed (a flush, a broken feed, a ring change): every tracking
    /// client drops its whole cache.
    pub fn flush_all(&self) {
        self.readers.borrow_mut().clear();
        self.writers.borrow_mut().clear();
        for t in self.clients.borrow().values() {
            t.push.send(push_flush());
            self.invalidations.set(self.invalidations.get() + 1);
        }
    }
}

/// `>2 invalidate [keys]` (RESP3 only: tracking through the proxy requires it).
pub fn push_keys(keys: &[Bytes]) -> Bytes {
    reply::encode(true, |o| {
        o.push(2);
        o.bulk(b"invalidate");
        o.array(keys.len());
        for key in keys {
            o.bulk(key);
        }
    })
}

/// `>2 invalidate _`: drop everything.
pub fn push_flush() -> Bytes {
    reply::encode(true, |o| {
        o.push(2);
        o.bulk(b"invalidate");
        o.null();
    })
}

/// Starts this worker's feed from every live node that has none yet, and waits (bounded) until
/// they confirm, so a read made after `CLIENT TRACKING ON` returns is covered.
pub async fn ensure_feeds(worker: &Rc<Worker>) {
    let routing = worker.routing();
    worker.tracking.feeds_epoch.set(routing.epoch);
    let mut started = Vec::new();
    for (i, node) in routing.nodes.iter().enumerate() {
        if !routing.live[i] {
            continue;
        }
        if worker.tracking.feeds.borrow_mut().insert(node.id) {
            tokio::task::spawn_local(feed(worker.clone(), node.clone()));
            started.push(node.id);
        }
    }
    for _ in 0..100 {
        if started
            .iter()
            .all(|id| worker.tracking.ready.borrow().contains(id))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One node's invalidations for this worker, for as long as a client of the worker tracks.
async fn feed(worker: Rc<Worker>, node: std::sync::Arc<NodeState>) {
    let tracking = &worker.tracking;
    let mut failures = 0u32;
    while tracking.active() && !node.removed.load(std::sync::atomic::Ordering::Relaxed) {
        match run_feed(&worker, &node).await {
            Ok(()) => break,
            Err(e) => {
                tracing::debug!(node = %node.addr, error = %e, "tracking feed lost");
                tracking.ready.borrow_mut().remove(&node.id);
                // Invalidations may have been missed meanwhile.
                tracking.flush_all();
                failures += 1;
                let backoff = Duration::from_millis(50 * u64::from(failures.min(20)));
                tokio::time::sleep(backoff).await;
            }
        }
    }
    tracking.ready.borrow_mut().remove(&node.id);
    tracking.feeds.borrow_mut().remove(&node.id);
}

async fn run_feed(worker: &Rc<Worker>, node: &std::sync::Arc<NodeState>) -> Result<(), ProxyError> {
    let mut conn = Dedicated::open(&worker.cluster, node.clone(), true).await?;
    let mut request = BytesMut::new();
    encode_command(&mut request, &["CLIENT", "TRACKING", "ON", "BCAST"]);
    conn.send(&request).await?;
    let reply = conn.next_reply().await?;
    if reply::is_error(&reply) {
        return Err(ProxyError::node_failed(
            &node.addr,
            reply::error_text(&reply),
        ));
    }
    worker.tracking.ready.borrow_mut().insert(node.id);
    loop {
        let frame = tokio::select! {
            frame = conn.next_reply() => frame?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if !worker.tracking.active() {
                    let _ = conn.stream.shutdown().await;
                    return Ok(());
                }
                continue;
            }
        };
        if frame.first() != Some(&b'>') {
            continue;
        }
        let Some(parts) = reply::elements(&frame) else {
            continue;
        };
        if parts.len() != 2 || reply::bulk(&parts[0]) != Some(b"invalidate") {
            continue;
        }
        match reply::elements(&parts[1]) {
            Some(keys) => {
                let keys: Vec<Bytes> = keys
                    .iter()
                    .filter_map(|k| reply::bulk(k).map(Bytes::copy_from_slice))
                    .collect();
                worker.tracking.invalidate(&keys);
            }
            None => worker.tracking.flush_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_told_once_and_noloop_writers_not_at_all() {
        let tracking = Tracking::new(100);
        let PushQueue {
            rx: mut a_rx,
            sender: a_tx,
        } = PushQueue::new();
        let PushQueue {
            rx: mut b_rx,
            sender: b_tx,
        } = PushQueue::new();
        tracking.enable(
            1,
            Tracked {
                push: a_tx,
                mode: Mode::Default,
                noloop: true,
                prefixes: vec![],
            },
        );
        tracking.enable(
            2,
            Tracked {
                push: b_tx,
                mode: Mode::Bcast,
                noloop: false,
                prefixes: vec![Bytes::from_static(b"user:")],
            },
        );
        let k = Bytes::from_static(b"user:1");
        tracking.record_read(1, &k);
        tracking.invalidate(std::slice::from_ref(&k));
        assert_eq!(
            a_rx.try_recv().unwrap(),
            push_keys(std::slice::from_ref(&k))
        );
        assert_eq!(
            b_rx.try_recv().unwrap(),
            push_keys(std::slice::from_ref(&k))
        );
        // One-shot: no second push until read again.
        tracking.invalidate(std::slice::from_ref(&k));
        assert!(a_rx.try_recv().is_err());
        // NOLOOP: client 1's own write is not reported to it.
        tracking.record_read(1, &k);
        tracking.record_write(1, &k);
        tracking.invalidate(std::slice::from_ref(&k));
        assert!(a_rx.try_recv().is_err());
        // Prefix filter.
        while b_rx.try_recv().is_ok() {}
        tracking.invalidate(&[Bytes::from_static(b"order:1")]);
        assert!(b_rx.try_recv().is_err());
        assert_eq!(&push_flush()[..], b">2\r\n$10\r\ninvalidate\r\n_\r\n");
    }

    #[test]
    fn a_client_that_does_not_drain_is_cut_off_at_the_limit() {
        let mut queue = PushQueue::new();
        let frame = Bytes::from(vec![b'x'; 1 << 20]);
        let mut accepted = 0;
        while queue.sender.send(frame.clone()) {
            accepted += 1;
            assert!(accepted < 100, "the limit never applies");
        }
        assert_eq!(accepted, PUSH_LIMIT / frame.len() + 1);
        let first = queue.rx.try_recv().unwrap();
        assert!(queue.drain(first).is_none(), "over the limit: disconnect");
        // Under the limit, draining gives everything back in one buffer.
        let mut small = PushQueue::new();
        assert!(small.sender.send(Bytes::from_static(b"a")));
        assert!(small.sender.send(Bytes::from_static(b"b")));
        let first = small.rx.try_recv().unwrap();
        assert_eq!(&small.drain(first).unwrap()[..], b"ab");
        assert_eq!(small.sender.pending.get(), 0);
    }
}
