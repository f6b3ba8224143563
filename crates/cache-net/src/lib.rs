//! tokio plumbing shared by the node and the proxy: binding a listener, a shutdown signal
//! every task can wait on, OS signals, and loading a TOML config file into `name = value` pairs.
//!
//! ```text
//!  SIGINT/SIGTERM ──► Shutdown::trigger ──► accept loop stops ──► connections finish their batch
//! ```

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

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("config file {path}: '{name}' must be a string, number or boolean")]
    Value { path: String, name: String },
}

/// Reads a flat TOML file (`port = 7001`, `maxmemory = "100mb"`) as `(name, value)` pairs in
/// the file's order, values as text, so the same parser handles file and command line.
///
/// # Errors
/// When the file cannot be read or parsed, or a value is a table or array.
pub fn load_toml_pairs(path: &str) -> Result<Vec<(String, String)>, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_string(),
        source,
    })?;
    let table: toml::Table = text.parse().map_err(|source| ConfigFileError::Parse {
        path: path.to_string(),
        source,
    })?;
    table
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => if b { "yes" } else { "no" }.to_string(),
                _ => {
                    return Err(ConfigFileError::Value {
                        path: path.to_string(),
                        name,
                    })
                }
            };
            Ok((name, text))
        })
        .collect()
}
