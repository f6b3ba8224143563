//! End to end: the proxy's Prometheus endpoint (`metrics-addr`) with three real nodes behind
//! it, through a node's ejection; SLOWLOG and LATENCY are refused (they are per node).

mod common;

use std::time::Duration;

use cache_testkit::{check_exposition, http_request, metric, scrape};
use common::*;

/// The metrics address from the proxy's INFO (`metrics_addr:` in `# Proxy`).
fn metrics_addr(conn: &mut redis::Connection) -> String {
    let info: String = redis::cmd("INFO").query(conn).unwrap();
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix("metrics_addr:"))
        .unwrap_or_else(|| panic!("no metrics_addr in {info}"))
        .to_string()
}

fn value(page: &str, series: &str) -> f64 {
    metric(page, series).unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

/// Sum over the nodes of one per-node series (`{name}{node="..."}`).
fn over_nodes(page: &str, cluster: &Cluster, name: &str) -> f64 {
    cluster
        .node_names()
        .iter()
        .map(|n| value(page, &format!("{name}{{node=\"{n}\"}}")))
        .sum()
}

#[test]
fn proxy_metrics_follow_traffic_and_ejections() {
    let mut extra = FAST_FAILOVER.to_vec();
    extra.extend(["--metrics-addr", "127.0.0.1:0"]);
    let cluster = Cluster::start(&extra);
    let mut conn = cluster.client();
    let addr = metrics_addr(&mut conn);
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    let before = scrape(&addr);
    check_exposition(&before);
    for n in cluster.node_names() {
        assert_eq!(
            value(
                &before,
                &format!("ferrocache_proxy_node_up{{node=\"{n}\"}}")
            ),
            1.0
        );
        assert_eq!(
            value(
                &before,
                &format!("ferrocache_proxy_node_weight{{node=\"{n}\"}}")
            ),
            1.0
        );
    }
    assert!(value(&before, "ferrocache_proxy_connected_clients") >= 1.0);

    for i in 0..60 {
        let _: () = redis::cmd("SET")
            .arg(format!("m:{i}"))
            .arg(i)
            .query(&mut conn)
            .unwrap();
    }
    let after = scrape(&addr);
    check_exposition(&after);
    let grew = |series: &str| value(&after, series) - value(&before, series);
    assert!(grew("ferrocache_proxy_commands_total") >= 60.0);
    // Every SET went to one node over a shared connection and was timed there.
    let count = "ferrocache_proxy_node_request_duration_seconds_count";
    let timed = over_nodes(&after, &cluster, count) - over_nodes(&before, &cluster, count);
    assert!(timed >= 60.0, "{timed}");
    for n in cluster.node_names() {
        let inf = value(
            &after,
            &format!(
                "ferrocache_proxy_node_request_duration_seconds_bucket{{node=\"{n}\",le=\"+Inf\"}}"
            ),
        );
        assert_eq!(inf, value(&after, &format!("{count}{{node=\"{n}\"}}")));
        assert!(inf > 0.0, "node {n} got none of 60 keys");
    }

    // Per-node diagnostics belong to the nodes: the proxy says so.
    for cmd in [&["SLOWLOG", "GET"][..], &["LATENCY", "LATEST"]] {
        let err = redis::cmd(cmd[0])
            .arg(cmd[1])
            .query::<redis::Value>(&mut conn)
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "'{}' is not supported by the proxy",
                cmd[0].to_lowercase()
            )),
            "{err}"
        );
    }

    // Freeze node 1 until the proxy ejects it: the page shows it.
    let victim = cluster.node_names()[1].clone();
    let router = cluster.router();
    let key = (0..)
        .map(|i| format!("v:{i}"))
        .find(|k| router.node_for_key(k.as_bytes()) == Some(1))
        .unwrap();
    cluster.nodes[1].signal("STOP");
    let ejected = eventually(Duration::from_secs(10), || {
        let _ = redis::cmd("SET").arg(&key).arg("x").query::<()>(&mut conn);
        metric(
            &scrape(&addr),
            &format!("ferrocache_proxy_node_up{{node=\"{victim}\"}}"),
        ) == Some(0.0)
    });
    cluster.nodes[1].signal("CONT");
    assert!(ejected, "node_up never went to 0");
    let page = scrape(&addr);
    check_exposition(&page);
    let of_victim = |name: &str| value(&page, &format!("{name}{{node=\"{victim}\"}}"));
    assert!(of_victim("ferrocache_proxy_node_ejections_total") >= 1.0);
    assert!(of_victim("ferrocache_proxy_node_errors_total") >= 1.0);
    assert!(value(&page, "ferrocache_proxy_epoch") > value(&before, "ferrocache_proxy_epoch"));

    let (status, _, _) = http_request(&addr, b"GET /nothing HTTP/1.1\r\n\r\n");
    assert_eq!(status, 404);
}

#[test]
fn proxy_metrics_are_off_by_default() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    assert_eq!(metrics_addr(&mut conn), "");
}
