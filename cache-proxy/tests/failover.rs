//! End to end: nodes that die, freeze and come back. Ejection, fallback to the next node,
//! readmission without stale reads, other nodes unaffected, plain Redis backends.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The first of `count` keys whose home is node `index`.
fn keys_on(cluster: &Cluster, index: usize, count: usize) -> Vec<String> {
    let router = cluster.router();
    (0..)
        .map(|i| format!("k:{i}"))
        .filter(|k| router.node_for_key(k.as_bytes()) == Some(index))
        .take(count)
        .collect()
}

fn get(conn: &mut redis::Connection, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET").arg(key).query(conn)
}

#[test]
fn a_frozen_node_is_ejected_its_keys_move_and_it_returns_without_stale_data() {
    let cluster = Cluster::start(FAST_FAILOVER);
    let mut conn = cluster.client();
    let on_victim = keys_on(&cluster, 1, 20);
    let on_other = keys_on(&cluster, 0, 5);
    for k in on_victim.iter().chain(&on_other) {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("old")
            .query(&mut conn)
            .unwrap();
    }
    // Freeze node 1: its process keeps its memory (the old values) but answers nothing.
    cluster.nodes[1].signal("STOP");
    // Requests for it fail (timeout) until it is ejected; the others keep working.
    let started = Instant::now();
    let ejected = eventually(Duration::from_secs(10), || {
        redis::cmd("SET")
            .arg(&on_victim[0])
            .arg("new")
            .query::<()>(&mut conn)
            .is_ok()
    });
    assert!(ejected, "writes never moved to another node");
    assert!(started.elapsed() < Duration::from_secs(5));
    let lines = proxy_nodes(&mut conn);
    assert!(lines[1].contains("state=ejected"), "{lines:?}");
    for k in &on_other {
        assert_eq!(get(&mut conn, k).unwrap().as_deref(), Some("old"));
    }
    // While it is out, every key of it is written elsewhere.
    for k in &on_victim {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("new")
            .query(&mut conn)
            .unwrap();
    }
    // Thaw it: it is probed, its written slots are dropped, then it is readmitted.
    cluster.nodes[1].signal("CONT");
    let back = eventually(Duration::from_secs(10), || {
        proxy_nodes(&mut conn)[1].contains("state=up")
    });
    assert!(back, "node was not readmitted");
    // No read returns the value from before the freeze: either the new value (if it is
    // still where it was written) or a miss.
    for k in &on_victim {
        let got = get(&mut conn, k).unwrap();
        assert_ne!(got.as_deref(), Some("old"), "stale read of {k}");
    }
    // The thawed node really held the old values and dropped them.
    let mut direct = cluster.nodes[1].client();
    for k in &on_victim {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut direct).unwrap();
        assert_eq!(got, None, "{k} was not dropped on the returning node");
    }
    // And the node serves its keys again.
    let _: () = redis::cmd("SET")
        .arg(&on_victim[0])
        .arg("newest")
        .query(&mut conn)
        .unwrap();
    let got: Option<String> = redis::cmd("GET")
        .arg(&on_victim[0])
        .query(&mut direct)
        .unwrap();
    assert_eq!(got.as_deref(), Some("newest"));
}

#[test]
fn a_slow_node_does_not_stall_the_others() {
    let cluster = Cluster::start(&[
        "--timeout",
        "500",
        "--server-failure-limit",
        "1000",
        "--server-retry-timeout",
        "200",
    ]);
    let mut conn = cluster.client();
    let on_slow = keys_on(&cluster, 2, 1);
    let on_fast = keys_on(&cluster, 0, 20);
    cluster.nodes[2].signal("STOP");
    // A pipeline mixing both: the frozen node's request times out with an error; the rest
    // are answered.
    let mut pipe = redis::pipe();
    for k in &on_fast {
        pipe.cmd("SET").arg(k).arg("v").ignore();
    }
    pipe.cmd("GET").arg(&on_slow[0]);
    let started = Instant::now();
    let result: redis::RedisResult<(Option<String>,)> = pipe.query(&mut conn);
    let elapsed = started.elapsed();
    assert!(result.is_err(), "a frozen node cannot answer");
    assert!(
        elapsed < Duration::from_secs(3),
        "timeout not enforced: {elapsed:?}"
    );
    // Meanwhile a second client using only healthy nodes is answered promptly, and
    // repeatedly, while the frozen node's requests keep failing.
    let mut other = cluster.client();
    for k in &on_fast {
        let started = Instant::now();
        assert_eq!(get(&mut other, k).unwrap().as_deref(), Some("v"));
        assert!(started.elapsed() < Duration::from_millis(400));
    }
    let err = get(&mut other, &on_slow[0]).unwrap_err();
    assert!(
        err.to_string().contains(&cluster.nodes[2].addr.to_string()),
        "{err}"
    );
    cluster.nodes[2].signal("CONT");
    let recovered = eventually(Duration::from_secs(5), || {
        get(&mut other, &on_slow[0]).is_ok()
    });
    assert!(recovered);
}

#[test]
fn without_auto_eject_a_dead_nodes_keys_fail_fast() {
    let mut args = FAST_FAILOVER.to_vec();
    args.extend_from_slice(&["--auto-eject-hosts", "no"]);
    let mut cluster = Cluster::start(&args);
    let mut conn = cluster.client();
    let on_dead = keys_on(&cluster, 0, 1);
    let on_live = keys_on(&cluster, 1, 1);
    let dead = cluster.nodes.remove(0);
    drop(dead); // killed
    for _ in 0..5 {
        let err = get(&mut conn, &on_dead[0]).unwrap_err();
        assert_eq!(err.kind(), redis::ErrorKind::ResponseError, "{err}");
    }
    let started = Instant::now();
    let _ = get(&mut conn, &on_dead[0]);
    assert!(started.elapsed() < Duration::from_millis(500), "not fast");
    assert_eq!(get(&mut conn, &on_live[0]).unwrap(), None);
}

#[test]
fn plain_redis_backends_work_and_fall_back_to_scan_for_drops() {
    let Ok(status) = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
    else {
        eprintln!("SKIPPED plain_redis_backends: redis-server is not installed");
        return;
    };
    assert!(status.status.success());
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let mut args: Vec<String> = Vec::new();
    for s in &servers {
        args.push("--node".into());
        args.push(format!("127.0.0.1:{}", s.port));
    }
    args.extend(FAST_FAILOVER.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proxy = proxy(&args);
    let mut conn = proxy.client();
    let kinds_known = eventually(Duration::from_secs(5), || {
        proxy_nodes(&mut conn)
            .iter()
            .all(|l| l.contains("kind=redis"))
    });
    assert!(kinds_known, "{:?}", proxy_nodes(&mut conn));
    let mut mset = redis::cmd("MSET");
    for i in 0..100 {
        mset.arg(format!("r:{i}")).arg(i);
    }
    let _: () = mset.query(&mut conn).unwrap();
    let mut mget = redis::cmd("MGET");
    for i in 0..100 {
        mget.arg(format!("r:{i}"));
    }
    let values: Vec<i64> = mget.query(&mut conn).unwrap();
    assert_eq!(values, (0..100).collect::<Vec<_>>());
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut conn).unwrap(), 100);
    // Freeze one, write its keys elsewhere, thaw: the fallback (SCAN + UNLINK) drops them.
    let names: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let router = router_for(&names);
    let victim_keys: Vec<String> = (0..100)
        .map(|i| format!("r:{i}"))
        .filter(|k| router.node_for_key(k.as_bytes()) == Some(0))
        .collect();
    servers[0].signal("STOP");
    let moved = eventually(Duration::from_secs(10), || {
        redis::cmd("SET")
            .arg(&victim_keys[0])
            .arg("new")
            .query::<()>(&mut conn)
            .is_ok()
    });
    assert!(moved);
    servers[0].signal("CONT");
    let back = eventually(Duration::from_secs(10), || {
        proxy_nodes(&mut conn)[0].contains("state=up")
    });
    assert!(back);
    let got: Option<String> = redis::cmd("GET")
        .arg(&victim_keys[0])
        .query(&mut conn)
        .unwrap();
    assert_ne!(got.as_deref(), Some("0"), "stale read");
}

/// A throwaway redis-server on a free port.
struct RedisServer {
    port: u16,
    child: std::process::Child,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let up = eventually(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "redis-server did not start");
        RedisServer { port, child }
    }

    fn signal(&self, name: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
