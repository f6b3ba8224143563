//! Configuration parameters: one table drives the command line (`--port 7001`), the TOML file
//! (`port = 7001`), `CONFIG GET` and `CONFIG SET`, so the three never disagree.
//!
//! Values read on the hot path (limits) are atomics; the rest sit behind a mutex.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use cache_store::pattern::glob_match;

/// How a parameter's text is parsed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A plain integer with bounds.
    Int { min: i64, max: i64 },
    /// A byte size with Redis's units (`100mb`, `1gb`, `512k`).
    Memory,
    /// Free text.
    Text,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// A directive given any number of times (`user`): collected in order, never shown by
    /// CONFIG GET (the lines hold passwords) and not settable by CONFIG SET.
    Lines,
}

struct Param {
    name: &'static str,
    kind: Kind,
    default: &'static str,
    /// Settable with CONFIG SET (else only at start-up).
    mutable: bool,
    /// What it does, for `--help`.
    help: &'static str,
}

const POLICIES: &[&str] = &[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "allkeys-tinylfu",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "volatile-tinylfu",
];

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];

static PARAMS: &[Param] = &[
    Param {
        name: "bind",
        kind: Kind::Text,
        default: "127.0.0.1",
        mutable: false,
        help: "address to listen on",
    },
    Param {
        name: "port",
        kind: Kind::Int { min: 0, max: 65535 },
        default: "6379",
        mutable: false,
        help: "TCP port (0 = any free port)",
    },
    Param {
        name: "tls-port",
        kind: Kind::Int { min: 0, max: 65535 },
        default: "0",
        mutable: false,
        help: "TLS port beside the plain one (0 = no TLS)",
    },
    Param {
        name: "tls-cert-file",
        kind: Kind::Text,
        default: "",
        mutable: false,
        help: "PEM certificate chain the TLS port presents",
    },
    Param {
        name: "tls-key-file",
        kind: Kind::Text,
        default: "",
        mutable: false,
        help: "PEM private key of tls-cert-file",
    },
    Param {
        name: "tls-ca-cert-file",
        kind: Kind::Text,
        default: "",
        mutable: false,
        help: "PEM CA certificates that client certificates must chain to",
    },
    Param {
        name: "tls-auth-clients",
        kind: Kind::Enum(&["yes", "no", "optional"]),
        default: "yes",
        mutable: false,
        help: "whether TLS clients must present a certificate signed by tls-ca-cert-file",
    },
    Param {
        name: "requirepass",
        kind: Kind::Text,
        default: "",
        mutable: true,
        help: "password clients must AUTH with (empty = none)",
    },
    Param {
        name: "user",
        kind: Kind::Lines,
        default: "",
        mutable: false,
        help: "an ACL user as redis.conf's `user` directive, e.g. \"alice on >secret ~cache:* +@read\"; repeat for each user (a TOML array)",
    },
    Param {
        name: "protected-mode",
        kind: Kind::Enum(&["yes", "no"]),
        default: "yes",
        mutable: true,
        help: "yes: while the default user has no password, refuse clients not on loopback",
    },
    Param {
        name: "maxclients",
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "10000",
        mutable: true,
        help: "most simultaneous client connections",
    },
    Param {
        name: "timeout",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "0",
        mutable: true,
        help: "close a client idle this many seconds (0 = never)",
    },
    Param {
        name: "databases",
        kind: Kind::Int { min: 1, max: 1024 },
        default: "16",
        mutable: false,
        help: "number of databases (SELECT 0..n-1)",
    },
    Param {
        name: "proto-max-bulk-len",
        kind: Kind::Memory,
        default: "512mb",
        mutable: true,
        help: "largest single argument a client may send",
    },
    Param {
        name: "client-query-buffer-limit",
        kind: Kind::Memory,
        default: "1gb",
        mutable: true,
        help: "largest buffered, not yet complete request of one client",
    },
    Param {
        name: "maxmemory",
        kind: Kind::Memory,
        default: "0",
        mutable: true,
        help: "memory limit for data (0 = none); units like 100mb, 2gb",
    },
    Param {
        name: "maxmemory-policy",
        kind: Kind::Enum(POLICIES),
        default: "noeviction",
        mutable: true,
        help: "what to evict at maxmemory: Redis's policies, or allkeys-tinylfu / volatile-tinylfu",
    },
    Param {
        name: "maxmemory-samples",
        kind: Kind::Int { min: 1, max: 64 },
        default: "5",
        mutable: true,
        help: "keys sampled per eviction",
    },
    Param {
        name: "lfu-log-factor",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "10",
        mutable: true,
        help: "LFU counter growth (higher = slower)",
    },
    Param {
        name: "lfu-decay-time",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "1",
        mutable: true,
        help: "minutes per LFU counter decay step",
    },
    Param {
        name: "notify-keyspace-events",
        kind: Kind::Text,
        default: "",
        mutable: true,
        help: "keyspace notification classes, e.g. KEA (empty = off)",
    },
    Param {
        name: "tracking-table-max-keys",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        default: "1000000",
        mutable: true,
        help:
            "keys CLIENT TRACKING remembers before it forgets (and invalidates) some (0 = no limit)",
    },
    Param {
        name: "hz",
        kind: Kind::Int { min: 1, max: 500 },
        default: "10",
        mutable: true,
        help: "active expiry cycles per second",
    },
    Param {
        name: "slowlog-log-slower-than",
        kind: Kind::Int {
            min: -1,
            max: i64::MAX,
        },
        default: "10000",
        mutable: true,
        help: "SLOWLOG records commands slower than this many microseconds (-1 = off, 0 = all)",
    },
    Param {
        name: "slowlog-max-len",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
        mutable: true,
        help: "entries SLOWLOG keeps (the oldest go first)",
    },
    Param {
        name: "stream-node-max-entries",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        default: "100",
        mutable: true,
        help: "entries per packed block of a stream (0 = no limit)",
    },
    Param {
        name: "stream-node-max-bytes",
        kind: Kind::Memory,
        default: "4096",
        mutable: true,
        help: "bytes per packed block of a stream (0 = no limit)",
    },
    Param {
        name: "latency-monitor-threshold",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        default: "0",
        mutable: true,
        help: "LATENCY records commands taking at least this many milliseconds (0 = off)",
    },
    Param {
        name: "metrics-addr",
        kind: Kind::Text,
        default: "",
        mutable: false,
        help: "HOST:PORT to serve Prometheus metrics on, at GET /metrics (empty = off)",
    },
    Param {
        name: "loglevel",
        kind: Kind::Enum(LOGLEVELS),
        default: "notice",
        mutable: false,
        help: "debug, verbose, notice, warning or nothing",
    },
    Param {
        name: "dir",
        kind: Kind::Text,
        default: ".",
        mutable: false,
        help: "working directory for files the node writes",
    },
    Param {
        name: "threads",
        kind: Kind::Int { min: 0, max: 256 },
        default: "0",
        mutable: false,
        help: "worker threads (0 = one per available core)",
    },
    Param {
        name: "busy-poll-us",
        kind: Kind::Int { min: 0, max: 1_000_000 },
        default: "0",
        mutable: false,
        help: "microseconds a worker keeps polling its sockets after a batch before it sleeps (0 = never), which spares each client write a wake-up: for servers with CPUs of their own; ignored when the workers take every CPU of the machine",
    },
    // The backing store (cache-backing): all fixed at start.
    Param {
        name: "backing-mode",
        kind: Kind::Enum(&["none", "write-through", "write-back"]),
        default: "none",
        mutable: false,
        help: "none (a pure cache), write-through (reply after the database commits) or write-back (reply at once, journal, flush in batches); both write modes read through on a miss",
    },
    Param {
        name: "backing-url",
        kind: Kind::Text,
        default: "",
        mutable: false,
        help: "postgres://user@host/db or sqlite:PATH (empty with a write mode = sqlite:<dir>/ferrocache.db)",
    },
    Param {
        name: "backing-table",
        kind: Kind::Text,
        default: "ferrocache_kv",
        mutable: false,
        help: "the generic table (created if missing)",
    },
    Param {
        name: "backing-map",
        kind: Kind::Text,
        default: "",
        mutable: false,
        help: "key prefixes mapped to existing tables: PREFIX=TABLE.KEY_COLUMN[,...] (db 0; hash fields = columns)",
    },
    Param {
        name: "backing-timeout",
        kind: Kind::Int {
            min: 10,
            max: 600_000,
        },
        default: "5000",
        mutable: false,
        help: "milliseconds a database operation may take (also PostgreSQL's statement and lock timeout)",
    },
    Param {
        name: "backing-negative-ttl",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "0",
        mutable: false,
        help: "milliseconds a key found absent in the database is remembered as absent (0 = off)",
    },
    Param {
        name: "backing-change-feed",
        kind: Kind::Enum(&["no", "yes"]),
        default: "no",
        mutable: false,
        help: "LISTEN for row changes (PostgreSQL; triggers from `cache-node install-change-feed`) and drop those keys",
    },
    Param {
        name: "write-back-delay",
        kind: Kind::Int {
            min: 1,
            max: 3_600_000,
        },
        default: "1000",
        mutable: false,
        help: "write-back: milliseconds between flushes of the coalesced queue",
    },
    Param {
        name: "write-back-batch",
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "8192",
        mutable: false,
        help: "write-back: keys per transaction (a full batch is flushed at once)",
    },
    Param {
        name: "appendfsync",
        kind: Kind::Enum(&["everysec", "always"]),
        default: "everysec",
        mutable: false,
        help: "write-back journal fsync: everysec, or always (the reply waits for the fsync, group-committed)",
    },
    // Facts clients read (redis-benchmark asks for both): this node keeps nothing on disk.
    Param {
        name: "save",
        kind: Kind::Enum(&[""]),
        default: "",
        mutable: false,
        help: "RDB snapshots: none (always empty)",
    },
    Param {
        name: "appendonly",
        kind: Kind::Enum(&["no"]),
        default: "no",
        mutable: false,
        help: "append-only file: none (always no)",
    },
    // `normalize`, `publish` and CONFIG SET all handled this parameter, but without an entry
    // here `find` refused it: keyspace notifications could never be turned on.
];

/// A parameter name or value the node refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown parameter '{0}'")]
    Unknown(String),
    #[error("can't set immutable config")]
    Immutable,
    #[error("{0}")]
    Invalid(String),
}

/// The node's configuration.
pub struct Config {
    values: Mutex<Vec<String>>,
    // Hot-path copies of numeric parameters.
    pub proto_max_bulk_len: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    pub maxclients: AtomicU64,
    pub timeout_secs: AtomicU64,
    pub hz: AtomicU64,
    pub maxmemory: AtomicU64,
    /// Parsed `notify-keyspace-events`.
    pub notify_flags: std::sync::atomic::AtomicU32,
    pub tracking_table_max_keys: AtomicU64,
    pub protected_mode: std::sync::atomic::AtomicBool,
    /// The `user` lines, in order.
    users: Mutex<Vec<String>>,
    /// `slowlog-log-slower-than` in microseconds; negative = off.
    pub slowlog_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` in milliseconds; 0 = off.
    pub latency_threshold_ms: AtomicU64,
    /// `stream-node-max-entries` and `stream-node-max-bytes`.
    pub stream_node_max: [AtomicU64; 2],
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        let config = Config {
            values: Mutex::new(Vec::new()),
            proto_max_bulk_len: AtomicU64::new(0),
            client_query_buffer_limit: AtomicU64::new(0),
            maxclients: AtomicU64::new(0),
            timeout_secs: AtomicU64::new(0),
            hz: AtomicU64::new(0),
            maxmemory: AtomicU64::new(0),
            notify_flags: std::sync::atomic::AtomicU32::new(0),
            tracking_table_max_keys: AtomicU64::new(0),
            protected_mode: std::sync::atomic::AtomicBool::new(false),
            users: Mutex::new(Vec::new()),
            slowlog_slower_than: AtomicI64::new(0),
            slowlog_max_len: AtomicU64::new(0),
            latency_threshold_ms: AtomicU64::new(0),
            stream_node_max: [AtomicU64::new(0), AtomicU64::new(0)],
        };
        let defaults: Vec<String> = PARAMS
            .iter()
            .map(|p| normalize(p, p.default).expect("defaults are valid"))
            .collect();
        for (p, v) in PARAMS.iter().zip(&defaults) {
            config.publish(p.name, v);
        }
        *config.lock() = defaults;
        config
    }
}

fn find(name: &str) -> Option<(usize, &'static Param)> {
    PARAMS
        .iter()
        .enumerate()
        .find(|(_, p)| p.name.eq_ignore_ascii_case(name))
}

/// Parses a size with Redis's units: `1k` = 1000, `1kb` = 1024, likewise m/mb, g/gb.
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, u64); 7] = [
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1_000),
        ("b", 1),
    ];
    let (digits, mult) = units
        .iter()
        .find_map(|(u, m)| lower.strip_suffix(u).map(|d| (d, *m)))
        .unwrap_or((lower.as_str(), 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

fn normalize(param: &Param, value: &str) -> Result<String, ConfigError> {
    if param.name == "notify-keyspace-events" {
        let flags = crate::cmd::Notify::parse(value).ok_or_else(|| {
            ConfigError::Invalid("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
        })?;
        return Ok(crate::cmd::Notify::format(flags));
    }
    match param.kind {
        Kind::Int { min, max } => match value.parse::<i64>() {
            Ok(v) if v >= min && v <= max => Ok(v.to_string()),
            Ok(_) => Err(ConfigError::Invalid(format!(
                "argument must be between {min} and {max} inclusive"
            ))),
            Err(_) => Err(ConfigError::Invalid(
                "argument couldn't be parsed into an integer".into(),
            )),
        },
        Kind::Memory => parse_memory(value)
            .map(|v| v.to_string())
            .ok_or_else(|| ConfigError::Invalid("argument must be a memory value".into())),
        Kind::Text | Kind::Lines => Ok(value.to_string()),
        Kind::Enum(words) => words
            .iter()
            .find(|w| w.eq_ignore_ascii_case(value))
            .map(|w| w.to_string())
            .ok_or_else(|| {
                ConfigError::Invalid(
                    "argument(s) must be one of the following: ".to_string() + &words.join(", "),
                )
            }),
    }
}

impl Config {
    /// Sets a parameter at start-up (command line or file): immutable ones allowed.
    ///
    /// # Errors
    /// Unknown name or a value that does not parse.
    pub fn set_initial(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        self.set_inner(name, value, true)
    }

    /// Sets a parameter at runtime (`CONFIG SET`).
    ///
    /// # Errors
    /// Unknown name, an immutable parameter, or a value that does not parse.
    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        self.set_inner(name, value, false)
    }

    fn set_inner(&self, name: &str, value: &str, initial: bool) -> Result<(), ConfigError> {
        let (i, param) = find(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        if param.kind == Kind::Lines {
            if !initial {
                return Err(ConfigError::Unknown(name.to_string()));
            }
            self.users
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(value.to_string());
            return Ok(());
        }
        if !initial && !param.mutable {
            return Err(ConfigError::Immutable);
        }
        let value = normalize(param, value)?;
        self.publish(param.name, &value);
        self.lock()[i] = value;
        Ok(())
    }

    /// Validates without applying (CONFIG SET is all or nothing).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn check(&self, name: &str, value: &str) -> Result<&'static str, ConfigError> {
        let (_, param) = find(name)
            .filter(|(_, p)| p.kind != Kind::Lines)
            .ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        if !param.mutable {
            return Err(ConfigError::Immutable);
        }
        normalize(param, value)?;
        Ok(param.name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, name: &str, value: &str) {
        let number = || value.parse::<u64>().unwrap_or(0);
        match name {
            "proto-max-bulk-len" => self.proto_max_bulk_len.store(number(), Relaxed),
            "client-query-buffer-limit" => self.client_query_buffer_limit.store(number(), Relaxed),
            "maxclients" => self.maxclients.store(number(), Relaxed),
            "timeout" => self.timeout_secs.store(number(), Relaxed),
            "hz" => self.hz.store(number(), Relaxed),
            "maxmemory" => self.maxmemory.store(number(), Relaxed),
            "tracking-table-max-keys" => self.tracking_table_max_keys.store(number(), Relaxed),
            "protected-mode" => self.protected_mode.store(value == "yes", Relaxed),
            "slowlog-log-slower-than" => self
                .slowlog_slower_than
                .store(value.parse().unwrap_or(-1), Relaxed),
            "slowlog-max-len" => self.slowlog_max_len.store(number(), Relaxed),
            "latency-monitor-threshold" => self.latency_threshold_ms.store(number(), Relaxed),
            "stream-node-max-entries" => self.stream_node_max[0].store(number(), Relaxed),
            "stream-node-max-bytes" => self.stream_node_max[1].store(number(), Relaxed),
            "notify-keyspace-events" => self
                .notify_flags
                .store(crate::cmd::Notify::parse(value).unwrap_or(0), Relaxed),
            _ => {}
        }
    }

    /// The `user` lines given at start, in order.
    pub fn users(&self) -> Vec<String> {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current value of a parameter.
    pub fn get(&self, name: &str) -> Option<String> {
        let (i, _) = find(name).filter(|(_, p)| p.kind != Kind::Lines)?;
        Some(self.lock()[i].clone())
    }

    /// `(name, value)` of every parameter matching a glob pattern (CONFIG GET).
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let values = self.lock();
        PARAMS
            .iter()
            .zip(values.iter())
            .filter(|(p, _)| p.kind != Kind::Lines && glob_match(pattern, p.name.as_bytes(), true))
            .map(|(p, v)| (p.name, v.clone()))
            .collect()
    }

    pub fn port(&self) -> u16 {
        self.get("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(6379)
    }

    pub fn databases(&self) -> usize {
        self.get("databases")
            .and_then(|p| p.parse().ok())
            .unwrap_or(16)
    }

    /// `--help` text: every parameter, its default and what it does.
    pub fn help() -> String {
        let mut text = String::new();
        for p in PARAMS {
            let default = if p.default.is_empty() {
                "\"\""
            } else {
                p.default
            };
            text.push_str(&format!(
                "  --{:<28} {} (default {})\n",
                p.name, p.help, default
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100mb"), Some(100 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("mb"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn set_and_get() {
        let c = Config::default();
        c.set("timeout", "5").unwrap();
        assert_eq!(c.timeout_secs.load(Relaxed), 5);
        assert_eq!(c.set("port", "1"), Err(ConfigError::Immutable));
        assert!(matches!(c.set("nope", "1"), Err(ConfigError::Unknown(_))));
        assert!(c.set("timeout", "x").is_err());
        c.set_initial("port", "0").unwrap();
        assert_eq!(c.port(), 0);
        assert_eq!(c.proto_max_bulk_len.load(Relaxed), 512 << 20);
        let got = c.matching(b"*max*");
        assert!(got.iter().any(|(n, _)| *n == "maxclients"));
    }
}
