//! The proxy's parameters: one table, read from `--NAME VALUE` pairs and the TOML file (same
//! names), listed by `--help`. Failure handling uses twemproxy's names, hyphenated.

use cache_config::{CommandLine, Kind, Param, Values};
use cache_net::tls::{ClientAuth, TlsFiles};
use cache_routing::{Distribution, HashTag, KeyHash, NodeSpec};

const U32: Kind = Kind::Int {
    min: 0,
    max: u32::MAX as i64,
};
const PORT: Kind = Kind::Int { min: 0, max: 65535 };

/// The proxy's parameters, in the shared [`cache_config`] format (so `1gb`, `yes`/`no` and
/// redis.conf files mean what they mean on cache-node).
#[rustfmt::skip]
static PARAMS: &[Param] = &[
    Param::new("bind", Kind::Text, "127.0.0.1", "address to listen on"),
    Param::new("port", PORT, "7000", "TCP port (0 = any free port)"),
    Param::new("node", Kind::Lines, "", "HOST:PORT[:WEIGHT] of a backend; repeat for each node"),
    Param::new("distribution", Kind::Enum(&["rendezvous", "ketama"]), "rendezvous", "rendezvous (slots, weighted HRW) or ketama (twemproxy's md5 ring)"),
    Param::new("hash", Kind::Text, "fnv1a_64", "key hash of the ketama distribution (twemproxy's names)"),
    Param::new("hash-tag", Kind::Text, "{}", "ketama: the two characters around the hashed part of a key, as twemproxy's hash_tag (\"\" = whole key)"),
    Param::new("timeout", U32, "1000", "ms a node may take to answer before the request fails (0 = never)"),
    Param::new("server-failure-limit", U32, "2", "consecutive failures that eject a node"),
    Param::new("server-retry-timeout", U32, "2000", "ms between probes of an ejected node"),
    Param::new("auto-eject-hosts", Kind::Bool, "yes", "yes: an ejected node's keys go to the next node; no: they fail fast"),
    Param::new("tls-port", PORT, "0", "TLS port beside the plain one (0 = no TLS)"),
    Param::new("tls-cert-file", Kind::Text, "", "PEM certificate chain the TLS port presents"),
    Param::new("tls-key-file", Kind::Text, "", "PEM private key of tls-cert-file"),
    Param::new("tls-ca-cert-file", Kind::Text, "", "PEM CA certificates that client certificates (and, with node-tls, the nodes' certificates) must chain to"),
    Param::new("tls-auth-clients", Kind::Enum(&["yes", "no", "optional"]), "yes", "yes, optional or no: whether TLS clients must present a certificate signed by tls-ca-cert-file"),
    Param::new("node-tls", Kind::Bool, "no", "yes: connect to the nodes over TLS, checking their certificates against tls-ca-cert-file"),
    Param::new("tls-client-cert-file", Kind::Text, "", "PEM certificate the proxy presents to nodes that check client certificates"),
    Param::new("tls-client-key-file", Kind::Text, "", "PEM private key of tls-client-cert-file"),
    Param::new("requirepass", Kind::Text, "", "password clients must AUTH with (empty = none)"),
    Param::new("node-password", Kind::Text, "", "password the proxy AUTHs to the nodes with"),
    Param::new("user", Kind::Lines, "", "a user of the proxy, as cache-node's and redis.conf's `user` (\"app on >pass ~app:* +@read\"); repeat for each"),
    Param::new("server-connections", Kind::Int { min: 1, max: 64 }, "1", "connections per node per worker thread, shared by all clients"),
    Param::new("threads", Kind::Int { min: 0, max: 256 }, "0", "worker threads (0 = one per available core)"),
    Param::new("maxclients", Kind::Int { min: 1, max: 1_000_000 }, "10000", "most client connections"),
    Param::new("protected-mode", Kind::Bool, "yes", "yes: while the proxy's default user has no password, refuse clients not on loopback (as Redis)"),
    Param::new("change-feed-url", Kind::Text, "", "postgres://… to LISTEN on for rows changed by other programs (see cache-node install-change-feed); empty = off"),
    Param::new("tracking-table-max-keys", Kind::Int { min: 0, max: i64::MAX }, "1000000", "keys remembered per worker for CLIENT TRACKING clients (beyond: invalidated)"),
    Param::new("client-query-buffer-limit", Kind::Memory, "1gb", "largest request (units as redis.conf: 1gb, 512mb)").at_least(1024 * 1024),
    Param::new("loglevel", Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]), "notice", "debug, verbose, notice, warning or nothing"),
    Param::new("logfile", Kind::Text, "", "file to append the log to (empty = standard output)"),
    Param::new("metrics-addr", Kind::Text, "", "HOST:PORT to serve Prometheus metrics on, at GET /metrics (empty = off)"),
];

#[derive(Clone)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub nodes: Vec<NodeSpec>,
    pub distribution: Distribution,
    pub timeout_ms: u64,
    pub failure_limit: u32,
    pub retry_timeout_ms: u64,
    pub auto_eject: bool,
    pub requirepass: Option<String>,
    pub node_password: Option<String>,
    /// The TLS port (0 = none), its certificate files and client-certificate rule.
    pub tls_port: u16,
    pub tls: TlsFiles,
    pub tls_auth_clients: ClientAuth,
    /// Set when the nodes are reached over TLS: the CA to check them and our certificate.
    pub node_tls: Option<TlsFiles>,
    /// The proxy's own `user` lines (ACL rules), in order.
    pub users: Vec<String>,
    pub server_connections: usize,
    pub threads: usize,
    pub maxclients: usize,
    /// `protected-mode`: with no password on the default user, loopback clients only.
    pub protected_mode: bool,
    pub tracking_table_max_keys: usize,
    pub change_feed_url: Option<String>,
    pub query_buffer_limit: usize,
    pub loglevel: String,
    pub logfile: String,
    /// Where to serve `GET /metrics` (None = off: no latency is measured either).
    pub metrics_addr: Option<String>,
}

/// Secrets stay out of debug output (and so out of any log line that prints a config).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("nodes", &self.nodes)
            .field("distribution", &self.distribution)
            .field("requirepass", &redacted(&self.requirepass))
            .field("node_password", &redacted(&self.node_password))
            .field("users", &self.users.len())
            .field("tls_port", &self.tls_port)
            .field("node_tls", &self.node_tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn help() -> String {
        Values::help(PARAMS)
    }

    /// Builds the configuration from a command line: its file (redis.conf or TOML) first, then
    /// the `--NAME VALUE` pairs, which win (and add nodes).
    ///
    /// # Errors
    /// The first refused directive (naming its file and line), or an inconsistent result.
    pub fn from_command_line(line: &CommandLine) -> Result<Config, String> {
        let values = Values::new(PARAMS);
        line.apply(&values).map_err(|e| e.to_string())?;
        Config::from_values(&values)
    }

    /// Builds the configuration from `(name, value)` pairs in order; later pairs win, except
    /// `node` and `user`, which accumulate.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Config, String> {
        let values = Values::new(PARAMS);
        for (name, value) in pairs {
            values
                .set_initial(name, value)
                .map_err(|e| format!("--{name}: {e}"))?;
        }
        Config::from_values(&values)
    }

    fn from_values(values: &Values) -> Result<Config, String> {
        let text = |name: &str| values.get(name).unwrap_or_default();
        let get = |name: &str| -> String { text(name) };
        let num = |name: &str| -> Result<u64, String> {
            text(name)
                .parse::<u64>()
                .map_err(|_| format!("{name}: '{}' is not a number", text(name)))
        };
        let yes = |name: &str| -> Result<bool, String> { Ok(text(name) == "yes") };
        let nodes = values
            .lines("node")
            .iter()
            .map(|n| parse_node(n))
            .collect::<Result<Vec<_>, _>>()?;
        let users = values.lines("user");
        let distribution = match get("distribution").as_str() {
            "rendezvous" => Distribution::Rendezvous,
            "ketama" => Distribution::Ketama {
                hash: KeyHash::parse(&get("hash")).map_err(|e| format!("hash: {e}"))?,
                hash_tag: match get("hash-tag").as_str() {
                    "" => None,
                    tag => Some(HashTag::parse(tag).map_err(|e| format!("hash-tag: {e}"))?),
                },
            },
            other => {
                return Err(format!(
                    "distribution: '{other}' is not rendezvous or ketama"
                ))
            }
        };
        let optional = |name: &str| Some(get(name)).filter(|s| !s.is_empty());
        let port = num("port")?;
        let tls_port = num("tls-port")?;
        let node_tls = yes("node-tls")?.then(|| TlsFiles {
            cert_file: get("tls-client-cert-file").to_string(),
            key_file: get("tls-client-key-file").to_string(),
            ca_cert_file: get("tls-ca-cert-file").to_string(),
        });
        let config = Config {
            bind: get("bind").to_string(),
            port: u16::try_from(port).map_err(|_| format!("port: {port} is out of range"))?,
            nodes,
            distribution,
            timeout_ms: num("timeout")?,
            failure_limit: num("server-failure-limit")?.max(1) as u32,
            retry_timeout_ms: num("server-retry-timeout")?.max(10),
            auto_eject: yes("auto-eject-hosts")?,
            requirepass: optional("requirepass"),
            node_password: optional("node-password"),
            tls_port: u16::try_from(tls_port)
                .map_err(|_| format!("tls-port: {tls_port} is out of range"))?,
            tls: TlsFiles {
                cert_file: get("tls-cert-file").to_string(),
                key_file: get("tls-key-file").to_string(),
                ca_cert_file: get("tls-ca-cert-file").to_string(),
            },
            tls_auth_clients: ClientAuth::parse(&get("tls-auth-clients")).ok_or_else(|| {
                format!(
                    "tls-auth-clients: '{}' is not yes, optional or no",
                    get("tls-auth-clients")
                )
            })?,
            node_tls,
            users,
            server_connections: num("server-connections")?.clamp(1, 64) as usize,
            threads: num("threads")? as usize,
            maxclients: num("maxclients")? as usize,
            protected_mode: yes("protected-mode")?,
            tracking_table_max_keys: num("tracking-table-max-keys")? as usize,
            change_feed_url: optional("change-feed-url"),
            query_buffer_limit: num("client-query-buffer-limit")? as usize,
            loglevel: get("loglevel"),
            logfile: get("logfile"),
            metrics_addr: optional("metrics-addr"),
        };
        config.acl()?;
        Ok(config)
    }

    /// The proxy's users: `requirepass` as the default user's password, then the `user`
    /// lines (parsed by the same code as cache-node's).
    ///
    /// # Errors
    /// A `user` line ACL SETUSER would refuse (without repeating a password).
    pub fn acl(&self) -> Result<cache_acl::Acl, String> {
        let acl = cache_acl::Acl::default();
        if let Some(pass) = &self.requirepass {
            acl.set_default_password(pass);
        }
        for line in &self.users {
            acl.set_user_line(line).map_err(|e| format!("user: {e}"))?;
        }
        Ok(acl)
    }
}

/// `HOST:PORT[:WEIGHT]`; the node's name (what rendezvous and ketama hash) is `HOST:PORT`, as
/// twemproxy names a server without an explicit name.
pub fn parse_node(text: &str) -> Result<NodeSpec, String> {
    let parts: Vec<&str> = text.rsplitn(3, ':').collect();
    let (host, port, weight) = match parts.as_slice() {
        [port, host] => (*host, *port, "1"),
        [weight, port, host] if port.parse::<u16>().is_ok() => (*host, *port, *weight),
        _ => return Err(format!("node '{text}' is not HOST:PORT[:WEIGHT]")),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("node '{text}': bad port"))?;
    let weight: u32 = weight
        .parse()
        .ok()
        .filter(|w| *w > 0)
        .ok_or_else(|| format!("node '{text}': weight must be a positive integer"))?;
    if host.is_empty() {
        return Err(format!("node '{text}': empty host"));
    }
    Ok(NodeSpec {
        name: format!("{host}:{port}"),
        weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_accumulate_and_parse_weights() {
        let pairs = vec![
            ("node".to_string(), "127.0.0.1:7001".to_string()),
            ("node".to_string(), "127.0.0.1:7002:3".to_string()),
            ("port".to_string(), "0".to_string()),
        ];
        let config = Config::from_pairs(&pairs).unwrap();
        assert_eq!(config.port, 0);
        assert_eq!(config.nodes.len(), 2);
        assert_eq!(config.nodes[1].name, "127.0.0.1:7002");
        assert_eq!(config.nodes[1].weight, 3);
        assert!(parse_node("nohost").is_err());
        assert!(parse_node("h:1:0").is_err());
        assert!(Config::from_pairs(&[("bogus".into(), "1".into())]).is_err());

        let secret = vec![
            ("node".to_string(), "127.0.0.1:7001".to_string()),
            ("requirepass".to_string(), "hunter2".to_string()),
            ("node-password".to_string(), "s3cret-node".to_string()),
            ("user".to_string(), "app on >pw-of-app ~* +@all".to_string()),
        ];
        let shown = format!("{:?}", Config::from_pairs(&secret).unwrap());
        for word in ["hunter2", "s3cret-node", "pw-of-app"] {
            assert!(!shown.contains(word), "{word} in {shown}");
        }
    }
}
