//! Shared by the proxy's end-to-end tests: real cache-node processes behind a real
//! cache-proxy process, all on free ports.
#![allow(dead_code, unused_imports)]

pub mod scripts;

use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use cache_routing::{Distribution, NodeSpec, Router};
pub use cache_testkit::{NodeProcess, RawConn};

/// The cache-node binary, next to this test's own target directory. `cargo test --workspace`
/// builds it; a lone `cargo test -p cache-proxy` builds it here once.
pub fn node_bin() -> String {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let bin: PathBuf = profile_dir.join("cache-node");
    BUILD.call_once(|| {
        if !bin.exists() {
            let release = profile_dir.ends_with("release");
            let mut cmd = std::process::Command::new(env!("CARGO"));
            cmd.args(["build", "-p", "cache-node"]);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build -p cache-node");
            assert!(status.success(), "building cache-node failed");
        }
    });
    bin.to_string_lossy().into_owned()
}

pub fn node(args: &[&str]) -> NodeProcess {
    NodeProcess::start(&node_bin(), args)
}

pub fn proxy(args: &[&str]) -> NodeProcess {
    NodeProcess::start(env!("CARGO_BIN_EXE_cache-proxy"), args)
}

/// Three nodes and a proxy in front of them.
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    pub proxy: NodeProcess,
}

/// Failure settings short enough for tests: a node is ejected after 2 failed requests and
/// probed every 200 ms.
pub const FAST_FAILOVER: &[&str] = &[
    "--timeout",
    "300",
    "--server-failure-limit",
    "2",
    "--server-retry-timeout",
    "200",
];

impl Cluster {
    pub fn start(extra: &[&str]) -> Cluster {
        let nodes: Vec<NodeProcess> = (0..3).map(|_| node(&[])).collect();
        let proxy = proxy_for(&nodes, extra);
        Cluster { nodes, proxy }
    }

    pub fn client(&self) -> redis::Connection {
        self.proxy.client()
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.to_string()).collect()
    }

    /// The ring the proxy should be using when every node is up.
    pub fn router(&self) -> Router {
        router_for(&self.node_names())
    }

    /// Which node index holds `key` right now (asked of the nodes themselves).
    pub fn holders(&self, key: &str) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                let mut c = n.client();
                redis::cmd("EXISTS").arg(key).query::<i64>(&mut c).unwrap() == 1
            })
            .map(|(i, _)| i)
            .collect()
    }
}

pub fn proxy_for(nodes: &[NodeProcess], extra: &[&str]) -> NodeProcess {
    let names: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let mut args: Vec<&str> = Vec::new();
    for name in &names {
        args.push("--node");
        args.push(name);
    }
    args.extend_from_slice(extra);
    proxy(&args)
}

pub fn router_for(names: &[String]) -> Router {
    let specs: Vec<NodeSpec> = names
        .iter()
        .map(|n| NodeSpec {
            name: n.clone(),
            weight: 1,
        })
        .collect();
    Router::build(
        &Distribution::Rendezvous,
        &specs,
        &vec![true; specs.len()],
        1,
    )
}

/// Polls `check` until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// `PROXY NODES` as lines.
pub fn proxy_nodes(conn: &mut redis::Connection) -> Vec<String> {
    let text: String = redis::cmd("PROXY").arg("NODES").query(conn).unwrap();
    text.lines().map(str::to_string).collect()
}
