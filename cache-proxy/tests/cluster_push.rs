//! The proxy as the membership authority of cache-nodes in cluster mode: it pushes its
//! routing to them as their slot table (CLUSTER SETTABLE, the routing's epoch) at start and
//! on `PROXY ADD`/`REMOVE`, so a cluster client talking to the nodes directly finds the
//! proxy's placement, and clients of the proxy never see a redirection.
//!
//! ```text
//!  test ──spawn──► cache-node ×3 (cluster-enabled yes) ◄── cache-proxy ◄── redis crate
//!                        ▲ RedisCluster (redis-py), raw RESP, straight to the nodes
//! ```

mod common;

use std::time::Duration;

use common::scripts::{run_script, Target};
use common::{eventually, node, proxy_for, router_for, NodeProcess, RawConn};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

fn cluster_node() -> NodeProcess {
    node(&["--cluster-enabled", "yes"])
}

/// Waits until every node reports `cluster_current_epoch:EPOCH` and a full table.
fn wait_for_epoch(nodes: &[&NodeProcess], epoch: u64) {
    for n in nodes {
        let mut c = n.raw();
        let want = format!("cluster_current_epoch:{epoch}\r\n");
        assert!(
            eventually(Duration::from_secs(10), || {
                let info = text(&c.cmd_str(&["CLUSTER", "INFO"]));
                info.contains(&want) && info.contains("cluster_state:ok")
            }),
            "node {} never reached epoch {epoch}: {}",
            n.addr,
            text(&c.cmd_str(&["CLUSTER", "INFO"]))
        );
    }
}

/// Node `owner` serves `key`; every other node redirects it there.
fn only_owner_serves(nodes: &[&NodeProcess], owner: usize, key: &str) {
    let slot = cache_routing::key_slot(key.as_bytes());
    for (i, n) in nodes.iter().enumerate() {
        let reply = text(&n.raw().cmd_str(&["GET", key]));
        if i == owner {
            assert!(!reply.starts_with('-'), "owner {i} of {key}: {reply}");
        } else {
            assert_eq!(
                reply,
                format!("-MOVED {slot} {}\r\n", nodes[owner].addr),
                "node {i} for {key}"
            );
        }
    }
}

#[test]
fn the_proxy_pushes_its_table_and_clients_of_either_agree() {
    let nodes: Vec<NodeProcess> = (0..3).map(|_| cluster_node()).collect();
    let proxy = proxy_for(&nodes, &[]);
    let refs: Vec<&NodeProcess> = nodes.iter().collect();
    wait_for_epoch(&refs, 1);
    let names: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let router = router_for(&names);
    let mut through = proxy.raw();
    for i in 0..200 {
        let key = format!("push:{i}");
        assert_eq!(
            text(&through.cmd_str(&["SET", &key, &i.to_string()])),
            "+OK\r\n"
        );
        let owner = router.node_for_key(key.as_bytes()).unwrap();
        if i % 20 == 0 {
            only_owner_serves(&refs, owner, &key);
        }
        // Written through the proxy, read straight from the owner.
        let direct = text(&nodes[owner].raw().cmd_str(&["GET", &key]));
        assert_eq!(direct, format!("${}\r\n{i}\r\n", i.to_string().len()));
    }

    // A fourth node: the epoch moves, every node gets the table, the proxy's clients see
    // no redirection (moved keys are misses, as without cluster mode).
    let fourth = cluster_node();
    let name = fourth.addr.to_string();
    assert_eq!(text(&through.cmd_str(&["PROXY", "ADD", &name])), "+OK\r\n");
    let mut all: Vec<&NodeProcess> = nodes.iter().collect();
    all.push(&fourth);
    wait_for_epoch(&all, 2);
    let mut names4 = names.clone();
    names4.push(name.clone());
    let router4 = router_for(&names4);
    let mut moved = 0;
    for i in 0..200 {
        let key = format!("push:{i}");
        let reply = text(&through.cmd_str(&["GET", &key]));
        let owner = router4.node_for_key(key.as_bytes()).unwrap();
        if owner == 3 {
            moved += 1;
            assert_eq!(reply, "$-1\r\n", "{key}");
        } else {
            assert_eq!(
                reply,
                format!("${}\r\n{i}\r\n", i.to_string().len()),
                "{key}"
            );
        }
        if i % 20 == 0 {
            only_owner_serves(&all, owner, &key);
        }
    }
    assert!(moved > 0);

    // Back to three: the removed node is told it owns nothing.
    assert_eq!(
        text(&through.cmd_str(&["PROXY", "REMOVE", &name])),
        "+OK\r\n"
    );
    wait_for_epoch(&refs, 3);
    let mut gone = RawConn::connect(&name);
    assert!(text(&gone.cmd_str(&["GET", "push:1"])).starts_with("-MOVED "));
    for i in 0..200 {
        let key = format!("push:{i}");
        let reply = text(&through.cmd_str(&["SET", &key, "again"]));
        assert_eq!(reply, "+OK\r\n", "{key}");
    }

    // A cluster client straight to the nodes, with the table the proxy pushed.
    drop(gone);
    drop(fourth);
    let mut nodes = nodes;
    let first = nodes.remove(0);
    run_script(
        "python3",
        &["tests/clients/redis_py_cluster.py"],
        &Target::Node(first),
    );
    drop(nodes);
}
