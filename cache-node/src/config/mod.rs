//! Configuration: the node's table of parameters ([`params::PARAMS`]: ferrocache's own and
//! all of Redis 7.0's) in the shared [`cache_config`] layer, which reads the command line,
//! TOML and redis.conf files and answers CONFIG GET/SET/REWRITE, so they never disagree.
//!
//! Values read on the hot path (limits) are published to atomics here.

pub mod output;
mod params;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use cache_config::Values;
pub use cache_config::{CommandLine, ConfigError};
use cache_protocol::glob::glob_match;

pub(crate) const POLICIES: &[&str] = &[
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

pub(crate) const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];

/// The node's configuration.
pub struct Config {
    values: Values,
    /// The file the configuration came from, for CONFIG REWRITE.
    file: Mutex<Option<String>>,
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
    /// `slowlog-log-slower-than` in microseconds; negative = off.
    pub slowlog_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` in milliseconds; 0 = off.
    pub latency_threshold_ms: AtomicU64,
    /// `stream-node-max-entries` and `stream-node-max-bytes`.
    pub stream_node_max: [AtomicU64; 2],
    /// `client-output-buffer-limit` and `client-output-buffer-cap` (shared with each
    /// client's message queue).
    pub output_limits: std::sync::Arc<output::OutputLimits>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        let config = Config {
            values: Values::new(params::PARAMS),
            file: Mutex::new(None),
            proto_max_bulk_len: AtomicU64::new(0),
            client_query_buffer_limit: AtomicU64::new(0),
            maxclients: AtomicU64::new(0),
            timeout_secs: AtomicU64::new(0),
            hz: AtomicU64::new(0),
            maxmemory: AtomicU64::new(0),
            notify_flags: std::sync::atomic::AtomicU32::new(0),
            tracking_table_max_keys: AtomicU64::new(0),
            protected_mode: std::sync::atomic::AtomicBool::new(false),
            slowlog_slower_than: AtomicI64::new(0),
            slowlog_max_len: AtomicU64::new(0),
            latency_threshold_ms: AtomicU64::new(0),
            stream_node_max: [AtomicU64::new(0), AtomicU64::new(0)],
            output_limits: Default::default(),
        };
        for (name, value) in config.values.matching(|_| true) {
            config.publish(name, &value);
        }
        config
    }
}

/// The node's own rule on top of the table: keyspace-event classes are checked and shown in
/// Redis's canonical order.
fn prepare(name: &str, value: &str) -> Result<String, ConfigError> {
    if name.eq_ignore_ascii_case("save") {
        let points = crate::persist::parse_save(value)
            .ok_or_else(|| ConfigError::Invalid("Invalid save parameters".into()))?;
        return Ok(points
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(" "));
    }
    if !name.eq_ignore_ascii_case("notify-keyspace-events") {
        return Ok(value.to_string());
    }
    let flags = crate::cmd::Notify::parse(value).ok_or_else(|| {
        ConfigError::Invalid("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
    })?;
    Ok(crate::cmd::Notify::format(flags))
}

impl Config {
    /// Builds the configuration from a command line (a config file, then `--NAME VALUE`
    /// pairs), as redis-server does.
    ///
    /// # Errors
    /// The first refused directive, with the file, line and text where it came from a file.
    pub fn from_command_line(line: &CommandLine) -> Result<Config, ConfigError> {
        let config = Config::default();
        if let Some(path) = &line.file {
            for directive in cache_config::load_file(path)? {
                let value = prepare(&directive.name, &directive.value).map_err(|e| {
                    directive
                        .origin
                        .as_ref()
                        .map_or(e.clone(), |o| o.error(&e.to_string()))
                })?;
                cache_config::Directive { value, ..directive }.apply(&config.values)?;
            }
            *config.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.clone());
        }
        for directive in &line.pairs {
            let value = prepare(&directive.name, &directive.value)
                .map_err(|e| ConfigError::Invalid(format!("--{}: {e}", directive.name)))?;
            cache_config::Directive {
                value,
                ..directive.clone()
            }
            .apply(&config.values)?;
        }
        for (name, value) in config.values.matching(|_| true) {
            config.publish(name, &value);
        }
        Ok(config)
    }

    /// Sets a parameter at start-up (command line or file): immutable ones allowed.
    ///
    /// # Errors
    /// Unknown name or a value that does not parse.
    pub fn set_initial(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        let (param, value) = self.values.set_initial(name, &prepare(name, value)?)?;
        self.publish(param.name, &value);
        Ok(())
    }

    /// Sets a parameter at runtime (`CONFIG SET`).
    ///
    /// # Errors
    /// Unknown name, an immutable parameter, or a value that does not parse.
    pub fn set(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        let (param, value) = self.values.set(name, &prepare(name, value)?)?;
        self.publish(param.name, &value);
        Ok(())
    }

    /// Validates without applying (CONFIG SET is all or nothing).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn check(&self, name: &str, value: &str) -> Result<&'static str, ConfigError> {
        let (param, _) = self.values.check(name, &prepare(name, value)?)?;
        Ok(param.name)
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
            "client-output-buffer-limit" => self.output_limits.set_classes(value),
            "client-output-buffer-cap" => self.output_limits.set_cap(number()),
            "notify-keyspace-events" => self
                .notify_flags
                .store(crate::cmd::Notify::parse(value).unwrap_or(0), Relaxed),
            _ => {}
        }
    }

    /// The `user` lines given at start, in order.
    pub fn users(&self) -> Vec<String> {
        self.values.lines("user")
    }

    /// The current value of a parameter.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name)
    }

    /// `(name, value)` of every parameter matching a glob pattern (CONFIG GET).
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        self.values
            .matching(|name| glob_match(pattern, name.as_bytes(), true))
    }

    /// Parameters given that have no effect on this node (logged once at start).
    pub fn no_effect_set(&self) -> Vec<&'static str> {
        self.values.no_effect_set()
    }

    /// CONFIG REWRITE: the running configuration back into the file it came from.
    ///
    /// # Errors
    /// No file at start, or the file cannot be written.
    pub fn rewrite(&self) -> Result<(), ConfigError> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match file {
            Some(path) => self.values.rewrite(&path),
            None => Err(ConfigError::File(
                "The server is running without a config file".into(),
            )),
        }
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
        Values::help(params::PARAMS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
