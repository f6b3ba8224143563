//! The nodes a router places keys on.

use crate::ConfigError;

/// One backend as the router sees it. Placement depends only on `name` and `weight`, never on
/// the node's position in the list, so reordering a configuration moves nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeSpec {
    /// What is hashed: `"host:port"`, or an explicit name that survives a change of address.
    /// Names must be distinct. For ketama, twemproxy's rules apply (see
    /// [`TwemproxyServer::parse`]), and names longer than 80 bytes are not compatible
    /// (twemproxy truncates them into an 86-byte buffer).
    pub name: String,
    /// Relative share of the keyspace. 0 takes no keys (the node is drained).
    pub weight: u32,
}

impl NodeSpec {
    pub fn new(name: impl Into<String>, weight: u32) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            weight,
        }
    }
}

/// An entry of twemproxy's `servers:` list, so that a fleet's configuration can be pasted and
/// keep its placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwemproxyServer {
    /// Where to connect: `host:port`, or the path of a unix socket.
    pub address: String,
    /// The name and weight ketama hashes.
    pub node: NodeSpec,
}

/// libmemcached's default port: twemproxy leaves it out of the hashed name.
const KETAMA_DEFAULT_PORT: u16 = 11211;

impl TwemproxyServer {
    /// Parses `host:port:weight [name]` or `/path/to/socket:weight [name]` as twemproxy does,
    /// splitting from the end. The hashed name is `name` when given; otherwise `host:port`,
    /// except `host` alone when the port is 11211 (libmemcached compatibility) and
    /// `/path/to/socket:` (with the colon) for a socket.
    ///
    /// # Errors
    /// [`ConfigError::BadServer`] for a missing or invalid port or weight, or a weight of 0
    /// (all rejected by twemproxy too).
    pub fn parse(entry: &str) -> Result<TwemproxyServer, ConfigError> {
        let bad = || ConfigError::BadServer(entry.to_owned());
        let unix = entry.starts_with('/');
        let (rest, name) = match entry.rsplit_once(' ') {
            Some((rest, name)) => (rest, Some(name)),
            None => (entry, None),
        };
        let (rest, weight) = rest.rsplit_once(':').ok_or_else(bad)?;
        let weight = parse_digits(weight).filter(|&w| w > 0).ok_or_else(bad)?;
        let weight = u32::try_from(weight).map_err(|_| bad())?;
        if unix {
            // Twemproxy looks for one more ':' and refuses the entry if it finds it.
            if rest.contains(':') {
                return Err(bad());
            }
            let name = name.map_or_else(|| format!("{rest}:"), str::to_owned);
            return Ok(TwemproxyServer {
                address: rest.to_owned(),
                node: NodeSpec::new(name, weight),
            });
        }
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let port = parse_digits(port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p > 0)
            .ok_or_else(bad)?;
        let name = match name {
            Some(name) => name.to_owned(),
            None if port == KETAMA_DEFAULT_PORT => host.to_owned(),
            None => rest.to_owned(),
        };
        Ok(TwemproxyServer {
            address: rest.to_owned(),
            node: NodeSpec::new(name, weight),
        })
    }
}

/// A non-empty run of ASCII digits, as twemproxy's `nc_atoi` accepts.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(entry: &str) -> (String, String, u32) {
        let s = TwemproxyServer::parse(entry).unwrap();
        (s.address, s.node.name, s.node.weight)
    }

    #[test]
    fn hashed_name_follows_twemproxy() {
        assert_eq!(
            parsed("127.0.0.1:6379:1"),
            ("127.0.0.1:6379".into(), "127.0.0.1:6379".into(), 1),
            "the weight is not part of the name"
        );
        assert_eq!(
            parsed("10.0.0.7:6380:3 cache-a"),
            ("10.0.0.7:6380".into(), "cache-a".into(), 3)
        );
        assert_eq!(
            parsed("mc.local:11211:2"),
            ("mc.local:11211".into(), "mc.local".into(), 2),
            "port 11211 is left out"
        );
        assert_eq!(
            parsed("/tmp/redis.sock:1"),
            ("/tmp/redis.sock".into(), "/tmp/redis.sock:".into(), 1)
        );
        assert_eq!(
            parsed("[::1]:7000:1"),
            ("[::1]:7000".into(), "[::1]:7000".into(), 1)
        );
    }

    #[test]
    fn rejects_what_twemproxy_rejects() {
        for entry in [
            "127.0.0.1:6379",
            "127.0.0.1:6379:0",
            "127.0.0.1:6379:x",
            "127.0.0.1:0:1",
            "127.0.0.1:70000:1",
            "127.0.0.1::1",
            "/tmp/a:b:1",
            "",
        ] {
            assert_eq!(
                TwemproxyServer::parse(entry),
                Err(ConfigError::BadServer(entry.into())),
                "{entry:?}"
            );
        }
    }
}
