//! cache-node: a Redis-compatible RESP2/RESP3 server over the `cache-store` keyspace.
//!
//! ```text
//!   accept loop ──round robin──► worker thread i (its own single-threaded runtime)
//!                                  └─► connection task (one per client)
//!                            read ─► Decoder ─► every complete request ─► dispatch ─► ReplyBuf
//!                            write once per batch ◄────────────────────────────────────┘
//!   cron task (hz) ──► active expiry, idle-client timeout
//!   Shared: Store (sharded, sync locks) · Config · Stats · client registry · Shutdown
//!           · backing Engine (optional: read-through, write-through, write-back; see `backing`)
//! ```
//!
//! `main.rs` only parses the command line; tests and benches call [`Node::start`].

pub mod backing;
pub mod client;
pub mod cmd;
pub mod config;
mod conn;
pub mod gate;
pub mod memory;
pub mod stats;
#[doc(hidden)]
pub mod testing;
pub mod tracking;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_net::Shutdown;
use cache_store::{Store, StoreConfig};

pub use config::{Config, ConfigError};

// jemalloc for everything that links the node (binary, tests, benches): it is what INFO's
// used_memory reads, and it fragments less than the system allocator under cache churn.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use client::Clients;
use stats::Stats;

/// Everything the connection tasks share.
pub struct Shared {
    pub store: Store,
    pub config: Config,
    pub stats: Stats,
    pub clients: Clients,
    pub blocking: cmd::blocking::Blocking,
    pub watches: cmd::multi::Watches,
    pub pubsub: cmd::pubsub::PubSub,
    pub tracking: tracking::Tracking,
    pub gate: gate::Gate,
    pub memory: memory::Memory,
    pub shutdown: Shutdown,
    pub started: std::time::Instant,
    pub run_id: String,
    pub addr: SocketAddr,
    pub config_file: Option<String>,
    /// The backing store's engine, when `backing-mode` is not `none`.
    pub backing: Option<cache_backing::Engine>,
}

impl Shared {
    /// The shared state of a node serving `addr`, its store observed by WATCH, blocking
    /// commands, notifications and tracking.
    fn build(
        config: Config,
        addr: SocketAddr,
        config_file: Option<String>,
        backing: Option<cache_backing::Engine>,
    ) -> Arc<Shared> {
        let store = Store::new(StoreConfig {
            databases: config.databases(),
        });
        Arc::new_cyclic(|weak| {
            store.set_observer(Arc::new(Observer {
                shared: weak.clone(),
            }));
            Shared {
                store,
                config,
                stats: Stats::default(),
                clients: Clients::default(),
                blocking: Default::default(),
                watches: Default::default(),
                pubsub: Default::default(),
                tracking: Default::default(),
                gate: Default::default(),
                memory: Default::default(),
                shutdown: Shutdown::new(),
                started: std::time::Instant::now(),
                run_id: run_id(),
                addr,
                config_file,
                backing,
            }
        })
    }

    /// Copies the eviction parameters into the store (at start and after CONFIG SET).
    pub fn apply_eviction_config(&self) {
        let settings = &self.store.eviction;
        let get = |name: &str| self.config.get(name).unwrap_or_default();
        if let Some(policy) = cache_store::Policy::parse(&get("maxmemory-policy")) {
            settings.set_policy(policy);
        }
        let number = |name: &str| get(name).parse::<u64>().unwrap_or(0);
        settings
            .samples
            .store(number("maxmemory-samples") as usize, Relaxed);
        settings
            .lfu_log_factor
            .store(number("lfu-log-factor") as u32, Relaxed);
        settings
            .lfu_decay_time
            .store(number("lfu-decay-time") as u32, Relaxed);
    }

    /// Publishes a keyspace notification when `class` is enabled in
    /// `notify-keyspace-events` (one atomic load when notifications are off).
    pub fn notify(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        let flags = self.config.notify_flags.load(Relaxed);
        if flags != 0 {
            cmd::pubsub::notify_event(self, flags, db, class, event, key);
        }
    }
}

/// Receives the store's key-change reports and fans them out to WATCH, blocked clients,
/// keyspace notifications of expiries and client tracking (evictions arrive as changes).
struct Observer {
    shared: std::sync::Weak<Shared>,
}

impl cache_store::KeyObserver for Observer {
    fn modified(&self, db: usize, key: &[u8]) {
        if let Some(shared) = self.shared.upgrade() {
            shared.watches.key_modified(db, key);
            shared.blocking.key_modified(db, key);
            if shared.backing.is_some() {
                backing::record_key(db, key);
            }
            shared.tracking.key_changed(&shared, key);
        }
    }

    fn evicted(&self, db: usize, key: &[u8]) {
        // Gone from memory only: the backing store keeps it, so it is no write.
        if let Some(shared) = self.shared.upgrade() {
            shared.watches.key_modified(db, key);
            shared.blocking.key_modified(db, key);
            shared.tracking.key_changed(&shared, key);
        }
    }

    fn expired(&self, db: usize, key: &[u8]) {
        if let Some(shared) = self.shared.upgrade() {
            shared.watches.key_modified(db, key);
            shared.notify(db, cmd::Notify::EXPIRED, "expired", key);
            shared.tracking.key_changed(&shared, key);
        }
    }

    fn flushed(&self, db: Option<usize>) {
        if let Some(shared) = self.shared.upgrade() {
            shared.watches.flushed(db);
            if shared.backing.is_some() {
                backing::record_flush(db);
            }
            shared.tracking.flushed(&shared);
        }
    }
}

/// A URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Unix time in milliseconds: the clock every command reads once.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running node.
pub struct Handle {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Asks the node to stop and waits until its accept loop and cron have ended.
    pub async fn shutdown(self) {
        self.shared.shutdown.trigger();
        let _ = self.task.await;
    }

    /// Waits until the node stops by itself (SHUTDOWN, a signal).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// The node as a library: configuration in, a running server out.
pub struct Node;

impl Node {
    /// Binds the configured address and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(config: Config, config_file: Option<String>) -> std::io::Result<Handle> {
        tune_allocator();
        let bind = config.get("bind").unwrap_or_else(|| "127.0.0.1".into());
        let bind = bind
            .split_whitespace()
            .next()
            .unwrap_or("127.0.0.1")
            .to_string();
        let host = if bind.contains(':') {
            format!("[{bind}]")
        } else {
            bind
        };
        let (listener, addr) = cache_net::bind(&format!("{host}:{}", config.port())).await?;
        // Port 0 means "any": report the real one in CONFIG GET port and INFO.
        let _ = config.set_initial("port", &addr.port().to_string());
        let engine = match backing::engine_config(&config) {
            Err(e) => return Err(std::io::Error::other(format!("backing-map: {e}"))),
            Ok(None) => None,
            Ok(Some(cfg)) => {
                tracing::info!(url = %redact(&cfg.url), mode = ?cfg.mode, "opening the backing store");
                // Opening connects and replays the journal: blocking work.
                let engine = tokio::task::spawn_blocking(move || cache_backing::Engine::start(cfg))
                    .await
                    .map_err(std::io::Error::other)?
                    .map_err(|e| std::io::Error::other(format!("backing store: {e}")))?;
                Some(engine)
            }
        };
        let shared = Shared::build(config, addr, config_file, engine);
        if let Some(engine) = &shared.backing {
            shared.store.set_report_all(true);
            engine.set_installer(Arc::new(backing::Install {
                shared: Arc::downgrade(&shared),
            }));
            // Every acknowledged write of the last run reaches the database before we serve.
            let engine = engine.clone();
            let _ = tokio::task::spawn_blocking(move || engine.wait_replayed()).await;
        }
        shared.apply_eviction_config();
        shared
            .store
            .report_expiries(shared.config.notify_flags.load(Relaxed) & cmd::Notify::EXPIRED != 0);
        let workers = start_workers(&shared)?;
        tracing::info!(%addr, workers = workers.len(), "ready to accept connections");
        let task = tokio::spawn(run(listener, shared.clone(), workers));
        Ok(Handle { addr, shared, task })
    }
}

/// Makes jemalloc hand freed memory back within a second, from its own background thread:
/// a cache under churn otherwise keeps up to ten seconds of freed pages resident, which
/// shows as RSS well above used_memory.
fn tune_allocator() {
    use tikv_jemalloc_ctl::{background_thread, Access, AsName};
    const DECAY_MS: isize = 1000;
    let _ = background_thread::write(true);
    for name in [
        &b"arenas.dirty_decay_ms\0"[..],
        &b"arenas.muzzy_decay_ms\0"[..],
    ] {
        let _ = name.name().write(DECAY_MS);
    }
    let arenas: u32 = b"arenas.narenas\0".name().read().unwrap_or(0);
    for i in 0..arenas {
        for kind in ["dirty", "muzzy"] {
            let key = format!("arena.{i}.{kind}_decay_ms\0");
            // Arenas not yet created refuse the write; they start with the defaults above.
            let _ = key.as_bytes().name().write(DECAY_MS);
        }
    }
}

fn run_id() -> String {
    // 40 hex characters as Redis's; unique enough from time and pid.
    let seed = now_ms() ^ (u64::from(std::process::id()) << 32);
    let mut x = seed | 1;
    (0..5)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:08x}", x as u32)
        })
        .collect()
}

type Workers = cache_net::Workers<(std::net::TcpStream, SocketAddr, u64)>;

fn start_workers(shared: &Arc<Shared>) -> std::io::Result<Workers> {
    let configured: usize = shared
        .config
        .get("threads")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let shared = shared.clone();
    Workers::start(configured, "cache-node", move |mut rx| {
        let shared = shared.clone();
        cache_net::worker_runtime().block_on(async move {
            while let Some((stream, peer, id)) = rx.recv().await {
                match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => conn::spawn(stream, peer, id, shared.clone()),
                    Err(e) => tracing::warn!(error = %e, "cannot adopt connection"),
                }
            }
            // Let connections that were told to stop finish their batch.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
    })
}

async fn run(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut workers: Workers) {
    let cron = tokio::spawn(cron(shared.clone()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Ok(stream) = stream.into_std() {
                        workers.hand_off((stream, peer, shared.clients.next_id()));
                    }
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shared.shutdown.wait() => break,
        }
    }
    drop(listener);
    shared.clients.kill_all();
    workers.stop().await;
    let _ = cron.await;
    if let Some(engine) = shared.backing.clone() {
        tracing::info!("flushing the backing store before stopping");
        let _ = tokio::task::spawn_blocking(move || engine.shutdown(Duration::from_secs(30))).await;
    }
    tracing::info!("node stopped");
}

/// Background work Redis does in `serverCron`: active expiry and idle-client timeouts.
async fn cron(shared: Arc<Shared>) {
    let mut last_idle_check = std::time::Instant::now();
    loop {
        let hz = shared.config.hz.load(Relaxed).clamp(1, 500);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000 / hz)) => {}
            _ = shared.shutdown.wait() => return,
        }
        // A bounded amount per shard per tick keeps each lock hold short; a backlog drains
        // over the following ticks.
        let removed = shared.store.expire_cycle(now_ms(), 256);
        shared.memory.record(cmd::server::memory_stats().0);
        if removed > 0 {
            tracing::trace!(removed, "active expiry");
        }
        if last_idle_check.elapsed() >= Duration::from_secs(1) {
            last_idle_check = std::time::Instant::now();
            let timeout = shared.config.timeout_secs.load(Relaxed);
            if timeout > 0 {
                shared.clients.kill_idle(Duration::from_secs(timeout));
            }
        }
    }
}
