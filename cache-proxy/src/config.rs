//! The proxy's parameters: one table, read from `--NAME VALUE` pairs and the TOML file (same
//! names), listed by `--help`. Failure handling uses twemproxy's names, hyphenated.

use cache_net::tls::{ClientAuth, TlsFiles};
use cache_routing::{Distribution, HashTag, KeyHash, NodeSpec};

/// (name, default, help)
const PARAMS: &[(&str, &str, &str)] = &[
    ("bind", "127.0.0.1", "address to listen on"),
    ("port", "7000", "TCP port (0 = any free port)"),
    ("node", "", "HOST:PORT[:WEIGHT] of a backend; repeat for each node"),
    ("distribution", "rendezvous", "rendezvous (slots, weighted HRW) or ketama (twemproxy's md5 ring)"),
    ("hash", "fnv1a_64", "key hash of the ketama distribution (twemproxy's names)"),
    ("hash-tag", "{}", "ketama: the two characters around the hashed part of a key, as twemproxy's hash_tag (\"\" = whole key)"),
    ("timeout", "1000", "ms a node may take to answer before the request fails (0 = never)"),
    ("server-failure-limit", "2", "consecutive failures that eject a node"),
    ("server-retry-timeout", "2000", "ms between probes of an ejected node"),
    ("auto-eject-hosts", "yes", "yes: an ejected node's keys go to the next node; no: they fail fast"),
    ("tls-port", "0", "TLS port beside the plain one (0 = no TLS)"),
    ("tls-cert-file", "", "PEM certificate chain the TLS port presents"),
    ("tls-key-file", "", "PEM private key of tls-cert-file"),
    ("tls-ca-cert-file", "", "PEM CA certificates that client certificates (and, with node-tls, the nodes' certificates) must chain to"),
    ("tls-auth-clients", "yes", "yes, optional or no: whether TLS clients must present a certificate signed by tls-ca-cert-file"),
    ("node-tls", "no", "yes: connect to the nodes over TLS, checking their certificates against tls-ca-cert-file"),
    ("tls-client-cert-file", "", "PEM certificate the proxy presents to nodes that check client certificates"),
    ("tls-client-key-file", "", "PEM private key of tls-client-cert-file"),
    ("requirepass", "", "password clients must AUTH with (empty = none)"),
    ("node-password", "", "password the proxy AUTHs to the nodes with"),
    ("user", "", "a user of the proxy, as cache-node's and redis.conf's `user` (\"app on >pass ~app:* +@read\"); repeat for each"),
    ("server-connections", "1", "connections per node per worker thread, shared by all clients"),
    ("threads", "0", "worker threads (0 = one per available core)"),
    ("maxclients", "10000", "most client connections"),
    ("change-feed-url", "", "postgres://… to LISTEN on for rows changed by other programs (see cache-node install-change-feed); empty = off"),
    ("tracking-table-max-keys", "1000000", "keys remembered per worker for CLIENT TRACKING clients (beyond: invalidated)"),
    ("client-query-buffer-limit", "1073741824", "largest request in bytes"),
    ("loglevel", "notice", "debug, verbose, notice or warning"),
    ("metrics-addr", "", "HOST:PORT to serve Prometheus metrics on, at GET /metrics (empty = off)"),
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
    pub tracking_table_max_keys: usize,
    pub change_feed_url: Option<String>,
    pub query_buffer_limit: usize,
    pub loglevel: String,
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
        PARAMS
            .iter()
            .map(|(name, default, help)| format!("  --{name:<28} {help} [{default}]\n"))
            .collect()
    }

    /// Builds the configuration from `(name, value)` pairs in order; later pairs win, except
    /// `node`, which accumulates.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Config, String> {
        let mut values: Vec<(&str, String)> = PARAMS
            .iter()
            .map(|(name, default, _)| (*name, default.to_string()))
            .collect();
        let mut nodes = Vec::new();
        let mut users = Vec::new();
        for (name, value) in pairs {
            if name == "node" {
                nodes.push(parse_node(value)?);
                continue;
            }
            if name == "user" {
                users.push(value.clone());
                continue;
            }
            let slot = values
                .iter_mut()
                .find(|(n, _)| *n == name.as_str())
                .ok_or_else(|| format!("unknown parameter '{name}'"))?;
            slot.1 = value.clone();
        }
        let get = |name: &str| -> &str {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let num = |name: &str| -> Result<u64, String> {
            get(name)
                .parse::<u64>()
                .map_err(|_| format!("{name}: '{}' is not a number", get(name)))
        };
        let yes = |name: &str| -> Result<bool, String> {
            match get(name) {
                "yes" | "true" => Ok(true),
                "no" | "false" => Ok(false),
                other => Err(format!("{name}: '{other}' is not yes or no")),
            }
        };
        let distribution = match get("distribution") {
            "rendezvous" => Distribution::Rendezvous,
            "ketama" => Distribution::Ketama {
                hash: KeyHash::parse(get("hash")).map_err(|e| format!("hash: {e}"))?,
                hash_tag: match get("hash-tag") {
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
        let optional = |name: &str| Some(get(name).to_string()).filter(|s| !s.is_empty());
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
            tls_auth_clients: ClientAuth::parse(get("tls-auth-clients")).ok_or_else(|| {
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
            tracking_table_max_keys: num("tracking-table-max-keys")? as usize,
            change_feed_url: optional("change-feed-url"),
            query_buffer_limit: num("client-query-buffer-limit")? as usize,
            loglevel: get("loglevel").to_string(),
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
