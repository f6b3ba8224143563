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

mod backing;
mod client;
mod cluster;
mod cmd;
mod config;
mod conn;
mod gate;
mod memory;
mod metrics;
mod persist;
mod replica;
mod scripting;
mod stats;
#[doc(hidden)]
pub mod testing;
mod tracking;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_net::tls::TlsListener;
use cache_net::Shutdown;
use cache_store::{Store, StoreConfig};

pub use config::{CommandLine, Config, ConfigError};

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
    /// ACL users (`user` lines, `requirepass`, ACL SETUSER).
    pub acl: cache_acl::Acl,
    pub stats: Stats,
    pub clients: Clients,
    /// maxclients and protected mode at accept time; connection totals for INFO.
    pub admission: std::sync::Arc<cache_net::admission::Admission>,
    pub blocking: cmd::blocking::Blocking,
    pub watches: cmd::multi::Watches,
    pub pubsub: cmd::pubsub::PubSub,
    pub monitors: cmd::monitor::Monitors,
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
    pub slowlog: cmd::slowlog::SlowLog,
    pub latency: cmd::latency::Latency,
    /// EVAL's script cache and FUNCTION's libraries.
    pub scripts: scripting::Scripts,
    /// Snapshots: SAVE, BGSAVE, save points, LASTSAVE, INFO persistence.
    pub persist: persist::Persistence,
    /// Cluster mode: the slot table and this node's id.
    pub cluster: cluster::ClusterState,
    /// Following a Redis master (REPLICAOF).
    pub replica: replica::Replica,
}

impl Shared {
    /// The shared state of a node serving `addr`, its store observed by WATCH, blocking
    /// commands, notifications and tracking.
    fn build(
        config: Config,
        acl: cache_acl::Acl,
        addr: SocketAddr,
        config_file: Option<String>,
        backing: Option<cache_backing::Engine>,
    ) -> Arc<Shared> {
        let store = Store::new(StoreConfig {
            databases: config.databases(),
        });
        let metrics = !config.get("metrics-addr").unwrap_or_default().is_empty();
        // LATENCY HISTOGRAM reads the same per-command histograms the metrics endpoint exports.
        let histograms = metrics || config.get("latency-tracking").as_deref() == Some("yes");
        let cluster =
            cluster::ClusterState::new(config.get("cluster-enabled").as_deref() == Some("yes"));
        let shared = Arc::new_cyclic(|weak| {
            store.set_observer(Arc::new(Observer {
                shared: weak.clone(),
            }));
            Shared {
                store,
                config,
                acl,
                stats: Stats::new(histograms),
                clients: Clients::default(),
                admission: cache_net::admission::Admission::new(),
                blocking: Default::default(),
                watches: Default::default(),
                pubsub: Default::default(),
                monitors: Default::default(),
                tracking: Default::default(),
                gate: Default::default(),
                memory: Default::default(),
                shutdown: Shutdown::new(),
                started: std::time::Instant::now(),
                run_id: run_id(),
                addr,
                config_file,
                backing,
                slowlog: Default::default(),
                latency: Default::default(),
                scripts: Default::default(),
                persist: Default::default(),
                cluster,
                replica: Default::default(),
            }
        });
        shared.persist.init(Arc::downgrade(&shared));
        shared
            .replica
            .set_node(Arc::downgrade(&shared), &shared.run_id);
        shared.apply_eviction_config();
        shared
            .store
            .report_expiries(shared.config.notify_flags.load(Relaxed) & cmd::Notify::EXPIRED != 0);
        shared
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
        // WATCH: FLUSHDB/FLUSHALL touched the watched keys that existed before flushing
        // (`Watches::flushing`), as Redis does; a watched absent key stays untouched.
        if let Some(shared) = self.shared.upgrade() {
            shared.blocking.flushed(db);
            shared.tracking.flushed(&shared);
        }
    }

    fn swapped(&self, a: usize, b: usize) {
        if let Some(shared) = self.shared.upgrade() {
            shared.watches.flushed(Some(a));
            shared.watches.flushed(Some(b));
        }
        self.flushed(Some(a));
        self.flushed(Some(b));
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

/// The users a node starts with: `requirepass` as the default user's password, then each
/// `user` line (so a `user default ...` line wins).
///
/// # Errors
/// A `user` line ACL SETUSER would refuse (the message names the rule, never a password).
pub fn acl_from_config(config: &Config) -> Result<cache_acl::Acl, cache_acl::AclError> {
    let acl = cache_acl::Acl::default();
    let requirepass = config.get("requirepass").unwrap_or_default();
    if !requirepass.is_empty() {
        acl.set_default_password(&requirepass);
    }
    for line in config.users() {
        acl.set_user_line(&line)?;
    }
    Ok(acl)
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
    /// The TLS listener's address, when `tls-port` is set.
    pub tls_addr: Option<SocketAddr>,
    /// Where `GET /metrics` is served, when `metrics-addr` is set.
    pub metrics_addr: Option<SocketAddr>,
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
        let tls = match tls_acceptor(&config).map_err(std::io::Error::other)? {
            None => None,
            Some((acceptor, port)) => {
                Some(TlsListener::bind(&format!("{host}:{port}"), acceptor).await?)
            }
        };
        let tls_addr = tls.as_ref().map(|t| t.addr);
        let acl = acl_from_config(&config)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
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
        let shared = Shared::build(config, acl, addr, config_file, engine);
        if let Some(engine) = &shared.backing {
            engine.set_installer(Arc::new(backing::Install {
                shared: Arc::downgrade(&shared),
            }));
            // Every acknowledged write of the last run reaches the database before we serve.
            let engine = engine.clone();
            let _ = tokio::task::spawn_blocking(move || engine.wait_replayed()).await;
        }
        let metrics_addr = match shared
            .config
            .get("metrics-addr")
            .unwrap_or_default()
            .as_str()
        {
            "" => None,
            wanted => {
                let render = metrics::render_fn(&shared);
                let bound =
                    cache_net::metrics::start(wanted, shared.shutdown.clone(), render).await?;
                // Port 0 means "any": CONFIG GET metrics-addr shows the real one.
                let _ = shared
                    .config
                    .set_initial("metrics-addr", &bound.to_string());
                Some(bound)
            }
        };
        {
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || persist::load_at_start(&shared))
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?;
        }
        shared
            .replica
            .set_runtime(tokio::runtime::Handle::current());
        replica::start_from_config(&shared).map_err(std::io::Error::other)?;
        let workers = start_workers(&shared)?;
        tracing::info!(%addr, workers = workers.len(), "ready to accept connections");
        let task = tokio::spawn(run(listener, tls, shared.clone(), workers));
        Ok(Handle {
            addr,
            tls_addr,
            metrics_addr,
            shared,
            task,
        })
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
    random_id(0)
}

/// 40 hex characters as Redis's run and replication ids; unique enough from time, pid and
/// `salt`.
pub(crate) fn random_id(salt: u64) -> String {
    let seed = now_ms() ^ (u64::from(std::process::id()) << 32) ^ salt;
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

/// The TLS acceptor and port, when `tls-port` is set.
fn tls_acceptor(
    config: &Config,
) -> Result<Option<(cache_net::tls::TlsAcceptor, u16)>, cache_net::tls::TlsError> {
    let port: u16 = config
        .get("tls-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if port == 0 {
        return Ok(None);
    }
    let get = |name: &str| config.get(name).unwrap_or_default();
    let files = cache_net::tls::TlsFiles {
        cert_file: get("tls-cert-file"),
        key_file: get("tls-key-file"),
        ca_cert_file: get("tls-ca-cert-file"),
    };
    let auth = cache_net::tls::ClientAuth::parse(&get("tls-auth-clients"))
        .unwrap_or(cache_net::tls::ClientAuth::Yes);
    Ok(Some((cache_net::tls::acceptor(&files, auth)?, port)))
}

/// An accepted socket on its way to a worker: with the TLS acceptor if it came in on the
/// TLS port.
type Accepted = (
    std::net::TcpStream,
    SocketAddr,
    u64,
    Option<cache_net::tls::TlsAcceptor>,
);

type Workers = cache_net::Workers<Accepted>;

fn start_workers(shared: &Arc<Shared>) -> std::io::Result<Workers> {
    let configured: usize = shared
        .config
        .get("threads")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let workers = cache_net::worker_count(configured);
    let asked = Duration::from_micros(
        shared
            .config
            .get("busy-poll-us")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
    );
    let busy_poll = cache_net::busy_poll::window_for(asked, workers);
    if busy_poll != asked {
        tracing::info!(
            workers,
            "busy-poll-us is ignored: the workers take every CPU of the machine"
        );
    }
    let shared = shared.clone();
    Workers::start(workers, "cache-node", move |mut rx| {
        let shared = shared.clone();
        cache_net::worker_runtime().block_on(async move {
            cache_net::busy_poll::start(busy_poll);
            while let Some((stream, peer, id, tls)) = rx.recv().await {
                match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => conn::spawn(stream, peer, id, tls, shared.clone()),
                    Err(e) => tracing::warn!(error = %e, "cannot adopt connection"),
                }
            }
            // Let connections that were told to stop finish their batch.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
    })
}

async fn run(
    listener: tokio::net::TcpListener,
    tls: Option<TlsListener>,
    shared: Arc<Shared>,
    mut workers: Workers,
) {
    let cron = tokio::spawn(cron(shared.clone()));
    loop {
        let (accepted, acceptor) = tokio::select! {
            accepted = cache_net::tls::accept(&listener, tls.as_ref()) => accepted,
            _ = shared.shutdown.wait() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Ok(stream) = stream.into_std() {
                    workers.hand_off((stream, peer, shared.clients.next_id(), acceptor));
                }
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    drop(tls);
    shared.clients.kill_all();
    workers.stop().await;
    let _ = cron.await;
    {
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || persist::save_on_shutdown(&shared)).await;
    }
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
        shared.tracking.limit(&shared);
        shared.memory.record(cmd::server::memory_stats().0);
        let totals = [
            shared.stats.commands_processed(),
            stats::sum(&shared.stats, |s| &s.net_input_bytes),
            stats::sum(&shared.stats, |s| &s.net_output_bytes),
        ];
        shared
            .stats
            .instantaneous
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(std::time::Instant::now(), totals);
        if removed > 0 {
            tracing::trace!(removed, "active expiry");
        }
        if last_idle_check.elapsed() >= Duration::from_secs(1) {
            last_idle_check = std::time::Instant::now();
            let timeout = shared.config.timeout_secs.load(Relaxed);
            if timeout > 0 {
                shared.clients.kill_idle(Duration::from_secs(timeout));
            }
            persist::cron(&shared);
        }
    }
}
