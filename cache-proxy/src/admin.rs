//! The proxy's own commands: `PROXY NODES|ADD|REMOVE|HELP` and the text of `INFO`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::cluster::{Cluster, Routing};
use crate::config::parse_node;
use crate::reply::{bulk_bytes, error_bytes};

pub async fn proxy_command(cluster: &Arc<Cluster>, routing: &Routing, args: &[Bytes]) -> Bytes {
    let sub = args
        .get(1)
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    match (&sub[..], args.len()) {
        (b"nodes", 2) => bulk_bytes(nodes_text(cluster, routing).as_bytes()),
        (b"add", 3) => {
            let spec = match parse_node(&String::from_utf8_lossy(&args[2])) {
                Ok(spec) => spec,
                Err(e) => return error_bytes(&format!("ERR {e}")),
            };
            match cluster.add_node(spec).await {
                Ok(()) => Bytes::from_static(b"+OK\r\n"),
                Err(e) => error_bytes(&e),
            }
        }
        (b"remove", 3) => match cluster
            .remove_node(&String::from_utf8_lossy(&args[2]))
            .await
        {
            Ok(()) => Bytes::from_static(b"+OK\r\n"),
            Err(e) => error_bytes(&e),
        },
        (b"invalidate", 3) => match cluster.invalidate(routing, &args[2]).await {
            Ok(n) => Bytes::from(format!(":{n}\r\n")),
            Err(e) => error_bytes(&e),
        },
        (b"help", 2) => {
            let lines = [
                "PROXY NODES -- one line per node: address, weight, state, share of the keyspace, consecutive failures, errors, ejections, kind.",
                "PROXY ADD <host:port[:weight]> -- add a node; it takes its share of slots.",
                "PROXY REMOVE <host:port> -- remove a node; its slots go to the others.",
                "PROXY INVALIDATE <pattern> -- forget the keys matching a glob pattern on every node; returns how many.",
            ];
            let mut out = BytesMut::new();
            out.extend_from_slice(format!("*{}\r\n", lines.len()).as_bytes());
            for line in lines {
                out.extend_from_slice(format!("+{line}\r\n").as_bytes());
            }
            out.freeze()
        }
        _ => error_bytes(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PROXY HELP.",
            String::from_utf8_lossy(&sub)
        )),
    }
}

fn nodes_text(cluster: &Cluster, routing: &Routing) -> String {
    let shares = routing.router.shares();
    let mut text = String::new();
    for (i, node) in routing.nodes.iter().enumerate() {
        let state = if routing.live[i] { "up" } else { "ejected" };
        let _ = writeln!(
            text,
            "{} weight={} state={} share={:.4} failures={} errors={} ejections={} kind={} epoch={}",
            node.addr,
            node.weight,
            state,
            shares.get(i).copied().unwrap_or(0.0),
            node.failures(),
            node.errors.load(Relaxed),
            node.ejections.load(Relaxed),
            if node.plain_redis.load(Relaxed) {
                "redis"
            } else {
                "cache-node"
            },
            routing.epoch,
        );
    }
    let _ = cluster;
    text
}

/// INFO's sections that the proxy answers itself (the keyspace is summed from the nodes).
pub fn info_text(cluster: &Cluster, routing: &Routing) -> String {
    let config = &cluster.config;
    let uptime = cluster.started.elapsed().as_secs();
    let stats = &cluster.stats;
    let mut text = String::new();
    let _ = write!(
        text,
        "# Server\r\nredis_version:7.0.15\r\nferrocache_version:{}\r\nredis_mode:proxy\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        config.port,
        uptime,
        uptime / 86400,
    );
    let _ = write!(
        text,
        "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\r\n",
        stats.admission.connected(),
        config.maxclients,
        stats.blocked.load(Relaxed),
    );
    let _ = write!(
        text,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\n\r\n",
        stats.admission.received(),
        stats.commands.load(Relaxed),
        stats.admission.rejected(),
    );
    let _ = write!(
        text,
        "# Proxy\r\ndistribution:{}\r\nepoch:{}\r\nnodes:{}\r\nnodes_up:{}\r\nmetrics_addr:{}\r\n",
        match config.distribution {
            cache_routing::Distribution::Rendezvous => "rendezvous",
            cache_routing::Distribution::Ketama { .. } => "ketama",
        },
        routing.epoch,
        routing.nodes.len(),
        routing.live.iter().filter(|l| **l).count(),
        cluster
            .metrics_addr
            .get()
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    if config.change_feed_url.is_some() {
        let feed = &cluster.feed;
        let _ = write!(
            text,
            "change_feed:{}\r\nchange_feed_invalidated_keys:{}\r\nchange_feed_full_invalidations:{}\r\n",
            match (feed.connected.load(Relaxed), feed.resyncing.load(Relaxed)) {
                (true, 0) => "up",
                (true, _) => "resyncing",
                _ => "down",
            },
            feed.invalidated.load(Relaxed),
            feed.full_invalidations.load(Relaxed),
        );
    }
    for (i, node) in routing.nodes.iter().enumerate() {
        let _ = write!(
            text,
            "node{i}:addr={},state={},errors={},ejections={}\r\n",
            node.addr,
            if routing.live[i] { "up" } else { "ejected" },
            node.errors.load(Relaxed),
            node.ejections.load(Relaxed),
        );
    }
    text
}

/// The proxy's Prometheus page (served on `metrics-addr`).
pub fn metrics_text(cluster: &Cluster) -> String {
    use cache_net::metrics::Exposition;
    const COUNTER: &str = "counter";
    const GAUGE: &str = "gauge";
    let routing = cluster.routing();
    let stats = &cluster.stats;
    let mut m = Exposition::new();
    m.connections(
        "ferrocache_proxy",
        stats.admission.connected(),
        stats.admission.received(),
        stats.admission.rejected(),
    );
    #[rustfmt::skip]
    let scalars: [(&str, &str, &str, u64); 3] = [
        ("uptime_seconds", GAUGE, "Seconds since the proxy started.", cluster.started.elapsed().as_secs()),
        ("commands_total", COUNTER, "Client commands received.", stats.commands.load(Relaxed)),
        ("epoch", GAUGE, "Routing epoch: it moves at every membership or liveness change.", routing.epoch),
    ];
    for (name, kind, help, value) in scalars {
        m.single(&format!("ferrocache_proxy_{name}"), kind, help, value);
    }
    type Pick = fn(&Routing, usize) -> u64;
    #[rustfmt::skip]
    let per_node: [(&str, &str, &str, Pick); 5] = [
        ("up", GAUGE, "1 while the node takes traffic, 0 while it is ejected.", |r, i| u64::from(r.live[i])),
        ("weight", GAUGE, "The node's weight on the ring.", |r, i| u64::from(r.nodes[i].weight)),
        ("errors_total", COUNTER, "Failed requests or connections to the node.", |r, i| r.nodes[i].errors.load(Relaxed)),
        ("ejections_total", COUNTER, "Times the node was ejected.", |r, i| r.nodes[i].ejections.load(Relaxed)),
        ("consecutive_failures", GAUGE, "Failures since the node last answered.", |r, i| u64::from(r.nodes[i].failures())),
    ];
    for (name, kind, help, pick) in per_node {
        let name = format!("ferrocache_proxy_node_{name}");
        m.family(&name, kind, help);
        for (i, node) in routing.nodes.iter().enumerate() {
            m.sample(&name, &[("node", &node.addr)], pick(&routing, i));
        }
    }
    let duration = "ferrocache_proxy_node_request_duration_seconds";
    m.family(
        duration,
        "histogram",
        "Time from sending a request on a shared node connection to its reply.",
    );
    for node in &routing.nodes {
        m.histogram(duration, &[("node", &node.addr)], &node.latency.snapshot());
    }
    m.finish()
}
