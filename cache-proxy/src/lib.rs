//! cache-proxy: a RESP proxy that spreads keys over cache-nodes (or Redis servers) on a
//! consistent-hash ring.
//!
//! ```text
//!  client ──► worker thread ──► client.rs: admit ─► plan.rs (pure) ─► execute
//!                 │                 Forward/Split/FanOut ─► Backend (shared, per node) ──► node
//!                 │                 merge.rs: by response policy; scripts.rs: restore on NOSCRIPT
//!                 │                 session.rs (AUTH, HELLO, CLIENT), transaction.rs (WATCH/EXEC,
//!                 │                 blocking), pubsub.rs ─► Dedicated connections
//!                 └── Routing snapshot (epoch) ◄── cluster.rs: health, eject, readmit, ADD/REMOVE
//! ```
//!
//! Each worker is a single-threaded runtime: its clients share its node connections, so the
//! commands of many clients to one node leave in one write (the batching twemproxy lacks).

mod admin;
mod backend;
mod change_feed;
mod client;
pub mod cluster;
mod cluster_mode;
mod cluster_push;
pub mod config;
pub mod error;
mod merge;
mod plan;
mod pubsub;
mod reply;
mod scripts;
mod session;
mod tracking;
mod transaction;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use cache_net::{tls, Shutdown};
pub use cluster::Cluster;
pub use config::Config;
use tracing::Instrument;

pub struct Handle {
    pub addr: SocketAddr,
    /// The TLS listener's address, when `tls-port` is set.
    pub tls_addr: Option<SocketAddr>,
    /// Where `GET /metrics` is served, when `metrics-addr` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub cluster: Arc<Cluster>,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

pub struct Proxy;

impl Proxy {
    /// Binds, starts the workers and returns once the proxy accepts connections.
    pub async fn start(config: Config) -> std::io::Result<Handle> {
        if config.nodes.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no nodes configured (give --node HOST:PORT[:WEIGHT] at least once)",
            ));
        }
        let (listener, addr) = cache_net::bind(&format!("{}:{}", config.bind, config.port)).await?;
        let tls = if config.tls_port == 0 {
            None
        } else {
            let acceptor = tls::acceptor(&config.tls, config.tls_auth_clients)
                .map_err(std::io::Error::other)?;
            let addr = format!("{}:{}", config.bind, config.tls_port);
            Some(tls::TlsListener::bind(&addr, acceptor).await?)
        };
        let tls_addr = tls.as_ref().map(|t| t.addr);
        let node_tls = match &config.node_tls {
            None => None,
            Some(files) => Some(tls::connector(files).map_err(std::io::Error::other)?),
        };
        let cluster = Cluster::new(config, tokio::runtime::Handle::current(), node_tls);
        tokio::spawn(cluster.clone().detect_node_kinds());
        if let Some(url) = cluster.config.change_feed_url.clone() {
            change_feed::start(cluster.clone(), url);
        }
        let shutdown = Shutdown::new();
        let metrics_addr = match &cluster.config.metrics_addr {
            None => None,
            Some(wanted) => {
                let weak = Arc::downgrade(&cluster);
                let render: cache_net::metrics::Render = Arc::new(move || {
                    weak.upgrade()
                        .map(|c| admin::metrics_text(&c))
                        .unwrap_or_default()
                });
                let bound = cache_net::metrics::start(wanted, shutdown.clone(), render).await?;
                let _ = cluster.metrics_addr.set(bound);
                Some(bound)
            }
        };
        let workers = start_workers(&cluster)?;
        let _ = cluster.listen_addr.set(addr);
        tracing::info!(%addr, nodes = cluster.config.nodes.len(), "cache-proxy listening");
        let task = tokio::spawn(accept(
            listener,
            tls,
            cluster.clone(),
            workers,
            shutdown.clone(),
        ));
        Ok(Handle {
            addr,
            tls_addr,
            metrics_addr,
            cluster,
            shutdown,
            task,
        })
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    tls: Option<tls::TlsListener>,
    cluster: Arc<Cluster>,
    mut workers: Workers,
    shutdown: Shutdown,
) {
    let mut next_id: u64 = 1;
    loop {
        let (accepted, acceptor) = tokio::select! {
            accepted = tls::accept(&listener, tls.as_ref()) => accepted,
            _ = shutdown.wait() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let policy = cache_net::admission::Policy {
                    maxclients: cluster.config.maxclients as u64,
                    loopback_only: cluster.config.protected_mode && cluster.acl.default_nopass(),
                };
                let slot = match cluster.stats.admission.admit(peer.ip(), policy) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        tokio::spawn(cache_net::admission::refuse(stream, refusal));
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                if let Ok(stream) = stream.into_std() {
                    workers.hand_off((stream, next_id, acceptor, slot));
                }
                next_id += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    workers.stop().await;
}

/// An accepted socket on its way to a worker: with the TLS acceptor if it came in on the TLS
/// port.
type Workers = cache_net::Workers<(
    std::net::TcpStream,
    u64,
    Option<tls::TlsAcceptor>,
    cache_net::admission::Slot,
)>;

/// Worker threads, each a single-threaded runtime with a LocalSet: clients and node
/// connections of one worker share state through `Rc`, with no locks or atomics on the way.
fn start_workers(cluster: &Arc<Cluster>) -> std::io::Result<Workers> {
    let cluster = cluster.clone();
    Workers::start(cluster.config.threads, "cache-proxy", move |mut rx| {
        let cluster = cluster.clone();
        let local = tokio::task::LocalSet::new();
        local.block_on(&cache_net::worker_runtime(), async move {
            let worker = client::Worker::new(cluster);
            while let Some((stream, id, acceptor, slot)) = rx.recv().await {
                match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => {
                        let worker = Rc::clone(&worker);
                        // Request context for debug logs: every event of this client's task
                        // carries its id and address (a disabled span costs nothing per poll).
                        let peer = stream.peer_addr().ok();
                        let span = tracing::debug_span!("client", id, peer = ?peer);
                        let client = async move {
                            // Counts against maxclients until this task ends, however it ends.
                            let _slot = slot;
                            let Some(acceptor) = acceptor else {
                                return client::serve(worker, stream, id).await;
                            };
                            match tls::handshake(acceptor, stream).await {
                                Ok(stream) => client::serve(worker, stream, id).await,
                                Err(e) => {
                                    tracing::debug!(id, error = %e, "TLS handshake failed");
                                }
                            }
                        };
                        tokio::task::spawn_local(client.instrument(span));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot adopt connection"),
                }
            }
        });
    })
}
