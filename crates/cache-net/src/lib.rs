//! tokio plumbing shared by the node and the proxy: binding a listener, a shutdown signal
//! every task can wait on, OS signals, loading a TOML config file into `name = value` pairs,
//! and the Prometheus endpoint ([`metrics`]).
//!
//! ```text
//!  SIGINT/SIGTERM ──► Shutdown::trigger ──► accept loop stops ──► connections finish their batch
//! ```

pub mod admission;
pub mod busy_poll;
pub mod metrics;
pub mod tls;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;

/// A one-way "stop now" signal, cheap to clone and to wait on.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`trigger`](Self::trigger) has been called.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future loses nothing; call again to keep waiting.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // An error means every sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Binds a TCP listener. Port 0 asks the OS for a free port; the bound address is returned.
///
/// # Errors
/// The OS error when the address cannot be bound.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Waits for SIGINT or SIGTERM, then triggers `shutdown`.
pub async fn shutdown_on_signals(shutdown: Shutdown) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SHUTDOWN");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
        _ = shutdown.wait() => return,
    }
    shutdown.trigger();
}

/// Logs to stdout at Redis's `loglevel` (the tests read the listening address from it).
pub fn init_logging(loglevel: &str) {
    tracing_subscriber::fmt()
        .with_max_level(log_level(loglevel))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
}

/// Logs at `loglevel`, appending to `logfile` (Redis's `logfile`), or to stdout when it is
/// empty.
///
/// # Errors
/// The log file cannot be opened for appending.
pub fn init_logging_to(loglevel: &str, logfile: &str) -> std::io::Result<()> {
    if logfile.is_empty() {
        init_logging(loglevel);
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logfile)?;
    tracing_subscriber::fmt()
        .with_max_level(log_level(loglevel))
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

/// Redis's `loglevel` names as a tracing filter.
pub fn log_level(loglevel: &str) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match loglevel {
        "debug" => LevelFilter::TRACE,
        "verbose" => LevelFilter::DEBUG,
        "warning" => LevelFilter::WARN,
        "nothing" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    }
}

/// How many workers `configured` means: 0 is one per available core, which respects
/// taskset (pinned to one core means one worker).
pub fn worker_count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Thread-per-core workers: each runs its connections on its own single-threaded runtime, so
/// a request never pays for work stealing or a cross-thread wake-up. Accepted connections
/// (or anything else of type `M`) are dealt out round robin.
pub struct Workers<M> {
    senders: Vec<tokio::sync::mpsc::UnboundedSender<M>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: usize,
}

impl<M: Send + 'static> Workers<M> {
    /// Starts `count` threads (0 = one per available core, which respects taskset: pinned
    /// to one core means one worker), each running `body` on its own receiver.
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn start<F>(count: usize, name: &str, body: F) -> std::io::Result<Workers<M>>
    where
        F: Fn(tokio::sync::mpsc::UnboundedReceiver<M>) + Send + Clone + 'static,
    {
        let count = worker_count(count);
        let mut workers = Workers {
            senders: Vec::new(),
            threads: Vec::new(),
            next: 0,
        };
        for i in 0..count {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<M>();
            let body = body.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-worker-{i}"))
                .spawn(move || body(rx))?;
            workers.senders.push(tx);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    pub fn len(&self) -> usize {
        self.senders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Gives `item` to the next worker.
    pub fn hand_off(&mut self, item: M) {
        let i = self.next % self.senders.len();
        self.next = self.next.wrapping_add(1);
        let _ = self.senders[i].send(item);
    }

    /// Closes the channels and waits for the threads to finish.
    pub async fn stop(self) {
        drop(self.senders);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// A single-threaded runtime for a worker thread.
///
/// # Panics
/// When the runtime cannot be built (no file descriptors for its driver).
pub fn worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a worker runtime")
}
