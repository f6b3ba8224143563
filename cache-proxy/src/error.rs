//! The proxy's errors, as pingora's: what went wrong, which node (if one was involved),
//! whether the same request may be retried, and the underlying cause. `Display` is the text a
//! client gets after the `-`, in Redis's words where Redis has words for it.

use std::error::Error;
use std::fmt;

/// What went wrong, and so whose fault it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client's keys live on different nodes. `exact` uses Redis Cluster's own text
    /// (scripts and streams, whose client libraries match it); otherwise the text also says
    /// how to keep the keys together.
    CrossSlot { exact: bool },
    /// No node is up to take the request.
    NoNode,
    /// The key's node is out (ejected, or not answering) and auto-eject is off.
    NodeDown,
    /// A node connection failed (connect, write, read or a bad reply).
    NodeFailed,
    /// The proxy does not serve this command (it would act on one node of many).
    Unsupported(&'static str),
    /// The client's request is wrong in a way only the proxy sees; the full message.
    Client(String),
}

#[derive(Debug)]
pub struct ProxyError {
    pub kind: ErrorKind,
    /// The node's address, when a node was involved.
    pub node: Option<String>,
    /// Whether sending the same request again may succeed (a node failure may heal).
    pub retryable: bool,
    pub source: Option<Box<dyn Error + Send + Sync>>,
}

impl ProxyError {
    pub fn new(kind: ErrorKind) -> ProxyError {
        let retryable = matches!(
            kind,
            ErrorKind::NoNode | ErrorKind::NodeDown | ErrorKind::NodeFailed
        );
        ProxyError {
            kind,
            node: None,
            retryable,
            source: None,
        }
    }

    pub fn cross_slot(exact: bool) -> ProxyError {
        ProxyError::new(ErrorKind::CrossSlot { exact })
    }

    pub fn client(message: impl Into<String>) -> ProxyError {
        ProxyError::new(ErrorKind::Client(message.into()))
    }

    /// A node connection failed; `source` says how.
    pub fn node_failed(node: &str, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        ProxyError::new(ErrorKind::NodeFailed)
            .at(node)
            .because(source)
    }

    pub fn at(mut self, node: &str) -> ProxyError {
        self.node = Some(node.to_string());
        self
    }

    pub fn because(mut self, source: impl Into<Box<dyn Error + Send + Sync>>) -> ProxyError {
        self.source = Some(source.into());
        self
    }

    /// The whole error reply, `-...\r\n`.
    pub fn reply(&self) -> bytes::Bytes {
        crate::reply::error_bytes(&self.to_string())
    }
}

/// Redis's text for keys of different slots (clients such as redis-py match it).
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Ours for multi-key commands and transactions: Redis's code, and how to fix the request.
pub const CROSSNODE: &str = "CROSSSLOT Keys in request don't hash to the same node; put them in one {hash tag} (e.g. {user42}:a and {user42}:b) to keep them together";

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = self.node.as_deref();
        match (&self.kind, node) {
            (ErrorKind::CrossSlot { exact: true }, _) => f.write_str(CROSSSLOT),
            (ErrorKind::CrossSlot { exact: false }, _) => f.write_str(CROSSNODE),
            (ErrorKind::NoNode, _) => f.write_str("ERR no node is available"),
            (ErrorKind::NodeDown, Some(addr)) => write!(f, "ERR node {addr} is unavailable"),
            (ErrorKind::NodeDown, None) => f.write_str("ERR a node is unavailable"),
            (ErrorKind::NodeFailed, addr) => {
                match addr {
                    Some(addr) => write!(f, "ERR node {addr} failed")?,
                    None => f.write_str("ERR node failed")?,
                }
                match &self.source {
                    Some(source) => write!(f, ": {source}"),
                    None => Ok(()),
                }
            }
            (ErrorKind::Unsupported(name), _) => {
                write!(f, "ERR '{name}' is not supported by the proxy")
            }
            (ErrorKind::Client(message), _) => f.write_str(message),
        }
    }
}

impl Error for ProxyError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_redis_style() {
        assert_eq!(ProxyError::cross_slot(true).to_string(), CROSSSLOT);
        assert!(ProxyError::cross_slot(false)
            .to_string()
            .contains("{hash tag}"));
        let e = ProxyError::node_failed("127.0.0.1:7001", "connection closed");
        assert_eq!(
            e.to_string(),
            "ERR node 127.0.0.1:7001 failed: connection closed"
        );
        assert!(e.retryable);
        assert!(e.source().is_some());
        assert!(!ProxyError::cross_slot(true).retryable);
        assert_eq!(
            ProxyError::new(ErrorKind::Unsupported("swapdb")).to_string(),
            "ERR 'swapdb' is not supported by the proxy"
        );
        assert_eq!(
            &ProxyError::new(ErrorKind::NoNode).reply()[..],
            b"-ERR no node is available\r\n"
        );
    }
}
