//! Database-driven invalidation for the whole cluster: with `change-feed-url` the proxy
//! LISTENs on PostgreSQL (the triggers `cache-node install-change-feed` installs) and tells
//! the node that owns each changed key to forget it (`CACHE FORGET`), which also tells that
//! node's trackers — and through the proxy's own feeds, every tracking client of the proxy.
//!
//! ```text
//!  UPDATE users … ─► NOTIFY ─► proxy follower ─► batch per owning node ─► CACHE FORGET k…
//!  feed lost / TRUNCATE ─► every node: CACHE INVALIDATE *   (events may have been missed)
//! ```
//!
//! Writes made by ferrocache nodes (write-through/write-back carry their origin) are skipped:
//! they went through the owning node, which already holds that state. Only database 0 is
//! served by the proxy, so only its keys are followed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_feed::{FeedError, Follower};
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::reply;

/// A change to act on: a key of database 0, or everything.
type Change = Option<Bytes>;

#[derive(Default)]
pub struct FeedStats {
    pub connected: AtomicBool,
    /// Full invalidations queued but not applied yet (a new feed connection starts with one):
    /// the feed counts as up only once the nodes forgot what may have changed meanwhile.
    pub resyncing: AtomicU64,
    pub invalidated: AtomicU64,
    pub full_invalidations: AtomicU64,
}

struct ProxyFollower {
    url: String,
    timeout: Duration,
    changes: mpsc::UnboundedSender<Change>,
    stats: Arc<FeedStats>,
}

impl Follower for ProxyFollower {
    fn url(&self) -> &str {
        &self.url
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn known_writer(&self, origin: &str) -> bool {
        !origin.is_empty()
    }
    fn changed(&self, target: Option<(u32, &[u8])>) {
        match target {
            Some((0, key)) => {
                let _ = self.changes.send(Some(Bytes::copy_from_slice(key)));
            }
            Some(_) => {}
            None => {
                self.stats.resyncing.fetch_add(1, Relaxed);
                if self.changes.send(None).is_err() {
                    self.stats.resyncing.fetch_sub(1, Relaxed);
                }
            }
        }
    }
    fn set_connected(&self, up: bool) {
        self.stats.connected.store(up, Relaxed);
    }
    fn failed(&self, e: &FeedError) {
        tracing::warn!(error = %e, "change feed failed");
    }
    fn stopping(&self) -> bool {
        false
    }
    fn stopped(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::pending())
    }
}

/// Starts following `url` for the cluster.
pub fn start(cluster: Arc<Cluster>, url: String) {
    let (changes, queue) = mpsc::unbounded_channel();
    let follower = ProxyFollower {
        url,
        timeout: cluster.timeout().unwrap_or(Duration::from_secs(5)),
        changes,
        stats: cluster.feed.clone(),
    };
    tokio::spawn(async move { cache_feed::follow(&follower).await });
    tokio::spawn(forward(cluster, queue));
}

/// Sends the changes, batched per owning node, as they come.
async fn forward(cluster: Arc<Cluster>, mut queue: mpsc::UnboundedReceiver<Change>) {
    while let Some(first) = queue.recv().await {
        let mut keys = Vec::new();
        let mut full = 0;
        for change in std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok())) {
            match change {
                Some(key) => keys.push(key),
                None => full += 1,
            }
        }
        let everything = full > 0;
        // A row's old and new versions both report the key: once is enough.
        keys.sort_unstable();
        keys.dedup();
        let routing = cluster.routing();
        if everything {
            cluster.feed.full_invalidations.fetch_add(1, Relaxed);
            if let Err(e) = cluster.invalidate(&routing, b"*").await {
                tracing::warn!(error = %e, "full invalidation after a feed gap failed");
            }
            cluster.feed.resyncing.fetch_sub(full, Relaxed);
            continue;
        }
        let mut per_node: Vec<Vec<Bytes>> = vec![Vec::new(); routing.nodes.len()];
        for key in keys {
            if let Ok(node) = routing.route(&key) {
                per_node[node].push(key);
            }
        }
        for (i, keys) in per_node.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let node = &routing.nodes[i];
            let verb: &[&[u8]] = if node.plain_redis.load(Relaxed) {
                &[b"UNLINK"]
            } else {
                &[b"CACHE", b"FORGET"]
            };
            let mut args: Vec<Bytes> = verb.iter().map(|v| Bytes::copy_from_slice(v)).collect();
            let count = keys.len() as u64;
            args.extend(keys);
            match cluster.node_command(&node.addr, &args).await {
                Ok(r) if !reply::is_error(&r) => {
                    cluster.feed.invalidated.fetch_add(count, Relaxed);
                }
                Ok(r) => {
                    tracing::warn!(node = %node.addr, error = %reply::error_text(&r), "invalidation refused")
                }
                Err(e) => {
                    // The node cannot be told now: it must not serve these keys when it
                    // answers again, so it drops everything before it is readmitted.
                    tracing::warn!(node = %node.addr, error = %e, "invalidation not delivered");
                    node.mark_all_dirty();
                }
            }
        }
    }
}
