//! Cluster mode end to end: three cache-nodes with `cluster-enabled yes` and a slot table
//! pushed with CLUSTER SETTABLE answer as a Redis Cluster does: -MOVED, -CROSSSLOT, SELECT
//! refused, a node with an old table redirects and never serves old data; redis-py's
//! `RedisCluster` and `redis-cli -c` work against them; and the replies match a real
//! three-node Redis 7 cluster (its own ports and temp dirs) byte for byte once node ids
//! and ports are named alike.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use cache_testkit::{have_redis_server, reply_len, RedisServer, TempDir};
use common::{node, NodeProcess, RawConn};

/// The three ranges `redis-cli --cluster create` gives three masters.
const RANGES: [&str; 3] = ["0-5460", "5461-10922", "10923-16383"];

struct Cluster {
    nodes: Vec<NodeProcess>,
    ids: Vec<String>,
}

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// The value of a bulk reply.
fn bulk(reply: &[u8]) -> String {
    let t = text(reply);
    t.split("\r\n").nth(1).unwrap_or_default().to_string()
}

impl Cluster {
    fn start(extra: &[&str]) -> Cluster {
        let mut args = vec!["--cluster-enabled", "yes"];
        args.extend_from_slice(extra);
        let nodes: Vec<NodeProcess> = (0..3).map(|_| node(&args)).collect();
        let ids = nodes
            .iter()
            .map(|n| bulk(&n.raw().cmd_str(&["CLUSTER", "MYID"])))
            .collect();
        Cluster { nodes, ids }
    }

    /// `CLUSTER SETTABLE epoch …` with node i owning `ranges[i]`, sent to the nodes `to`.
    fn push(&self, epoch: u64, ranges: [&str; 3], to: &[usize]) {
        for &i in to {
            let reply = self.nodes[i].raw().words(&self.settable(epoch, ranges));
            assert_eq!(text(&reply), "+OK\r\n", "node {i}");
        }
    }

    fn settable(&self, epoch: u64, ranges: [&str; 3]) -> Vec<String> {
        let mut words = vec!["CLUSTER".into(), "SETTABLE".into(), epoch.to_string()];
        for (i, n) in self.nodes.iter().enumerate() {
            words.extend([
                self.ids[i].clone(),
                "127.0.0.1".into(),
                n.addr.port().to_string(),
                "-".into(),
                ranges[i].into(),
            ]);
        }
        words
    }

    fn raw(&self, i: usize) -> RawConn {
        self.nodes[i].raw()
    }

    fn port(&self, i: usize) -> u16 {
        self.nodes[i].addr.port()
    }
}

trait Words {
    fn words(&mut self, words: &[String]) -> Vec<u8>;
}

impl Words for RawConn {
    fn words(&mut self, words: &[String]) -> Vec<u8> {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        self.cmd_str(&words)
    }
}

/// Which node (index into RANGES) owns `slot`.
fn owner(slot: u16) -> usize {
    match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

fn slot(key: &str) -> u16 {
    cache_routing::key_slot(key.as_bytes())
}

#[test]
fn redirects_as_a_redis_cluster_node() {
    let cluster = Cluster::start(&[]);
    let mut c = cluster.raw(0);
    // No table yet: no slot is served.
    assert_eq!(
        text(&c.cmd_str(&["GET", "a"])),
        "-CLUSTERDOWN Hash slot not served\r\n"
    );
    assert!(text(&c.cmd_str(&["CLUSTER", "INFO"])).contains("cluster_state:fail"));
    cluster.push(1, RANGES, &[0, 1, 2]);
    assert!(text(&c.cmd_str(&["CLUSTER", "INFO"])).contains("cluster_state:ok\r\n"));
    assert!(text(&c.cmd_str(&["INFO", "cluster"])).contains("cluster_enabled:1\r\n"));
    assert!(text(&c.cmd_str(&["INFO", "server"])).contains("redis_mode:cluster\r\n"));
    // "a" is slot 15495: node 2's.
    assert_eq!(
        text(&c.cmd_str(&["GET", "a"])),
        format!("-MOVED 15495 127.0.0.1:{}\r\n", cluster.port(2))
    );
    let mine = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| owner(slot(k)) == 0)
        .unwrap();
    assert_eq!(text(&c.cmd_str(&["SET", &mine, "v"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["GET", &mine])), "$1\r\nv\r\n");
    assert_eq!(
        text(&c.cmd_str(&["MSET", "{t}a", "1", "{t}b", "2"])),
        if owner(slot("t")) == 0 {
            "+OK\r\n".to_string()
        } else {
            format!(
                "-MOVED {} 127.0.0.1:{}\r\n",
                slot("t"),
                cluster.port(owner(slot("t")))
            )
        }
    );
    assert_eq!(
        text(&c.cmd_str(&["MGET", "a", "b"])),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    // Keyless commands are served anywhere; SELECT only 0.
    assert_eq!(text(&c.cmd_str(&["DBSIZE"])), ":1\r\n");
    assert_eq!(
        text(&c.cmd_str(&["SELECT", "1"])),
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["SELECT", "0"])), "+OK\r\n");
    for cmd in ["READONLY", "READWRITE", "ASKING"] {
        assert_eq!(text(&c.cmd_str(&[cmd])), "+OK\r\n", "{cmd}");
    }
    // A transaction: a redirected command fails the EXEC; keys of two slots in one queue
    // make EXEC itself answer CROSSSLOT and discard the transaction.
    assert_eq!(text(&c.cmd_str(&["MULTI"])), "+OK\r\n");
    assert!(text(&c.cmd_str(&["GET", "a"])).starts_with("-MOVED 15495 "));
    assert_eq!(
        text(&c.cmd_str(&["EXEC"])),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    let other = (0..)
        .map(|i| format!("o{i}"))
        .find(|k| owner(slot(k)) == 0 && slot(k) != slot(&mine))
        .unwrap();
    assert_eq!(text(&c.cmd_str(&["MULTI"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["SET", &mine, "1"])), "+QUEUED\r\n");
    assert_eq!(text(&c.cmd_str(&["SET", &other, "2"])), "+QUEUED\r\n");
    assert_eq!(
        text(&c.cmd_str(&["EXEC"])),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["EXEC"])), "-ERR EXEC without MULTI\r\n");
    assert_eq!(text(&c.cmd_str(&["GET", &mine])), "$1\r\nv\r\n");
    // Not in cluster mode, the cluster-mode commands say so.
    let plain = node(&[]);
    let mut p = plain.raw();
    for cmd in [&["CLUSTER", "SLOTS"][..], &["READONLY"]] {
        assert_eq!(
            text(&p.cmd_str(cmd)),
            "-ERR This instance has cluster support disabled\r\n"
        );
    }
    assert!(text(&p.cmd_str(&["INFO", "cluster"])).contains("cluster_enabled:0\r\n"));
}

#[test]
fn an_old_table_answers_moved_never_old_data() {
    let cluster = Cluster::start(&[]);
    cluster.push(1, RANGES, &[0, 1, 2]);
    let key = (0..)
        .map(|i| format!("old{i}"))
        .find(|k| owner(slot(k)) == 0)
        .unwrap();
    let s = slot(&key).to_string();
    assert_eq!(
        text(&cluster.raw(0).cmd_str(&["SET", &key, "v1"])),
        "+OK\r\n"
    );
    // Epoch 2 gives node 0's slots to node 1; node 2 is frozen at epoch 1.
    cluster.push(2, ["-", "0-10922", "10923-16383"], &[0, 1]);
    let moved_to = |i: usize| format!("-MOVED {s} 127.0.0.1:{}\r\n", cluster.port(i));
    assert_eq!(text(&cluster.raw(0).cmd_str(&["GET", &key])), moved_to(1));
    assert_eq!(text(&cluster.raw(2).cmd_str(&["GET", &key])), moved_to(0));
    assert_eq!(text(&cluster.raw(1).cmd_str(&["GET", &key])), "$-1\r\n");
    // The old owner dropped the slot's keys: given the slot back, it has nothing old.
    assert_eq!(
        text(&cluster.raw(0).cmd_str(&["CLUSTER", "COUNTKEYSINSLOT", &s])),
        ":0\r\n"
    );
    cluster.push(3, RANGES, &[0, 1, 2]);
    assert_eq!(text(&cluster.raw(0).cmd_str(&["GET", &key])), "$-1\r\n");
    // An older epoch is refused, as is another table under the same epoch.
    let mut c = cluster.raw(0);
    assert_eq!(
        text(&c.words(&cluster.settable(2, RANGES))),
        "-ERR Table epoch 2 is older than this node's epoch 3\r\n"
    );
    assert_eq!(
        text(&c.words(&cluster.settable(3, ["-", "0-10922", "10923-16383"]))),
        "-ERR Table epoch 3 is already installed with other contents\r\n"
    );
    assert_eq!(text(&c.words(&cluster.settable(3, RANGES))), "+OK\r\n");
    assert!(text(&c.cmd_str(&["CLUSTER", "SETTABLE", "4", "x"]))
        .starts_with("-ERR CLUSTER SETTABLE takes"));
    // SETTABLE is @admin.
    assert_eq!(
        text(&c.cmd_str(&["ACL", "SETUSER", "app", "on", "nopass", "+@all", "-@admin"])),
        "+OK\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["AUTH", "app", "x"])), "+OK\r\n");
    assert!(text(&c.words(&cluster.settable(5, RANGES))).starts_with("-NOPERM"));
}

#[test]
fn announced_address_is_what_the_node_lists_for_itself() {
    let cluster = Cluster::start(&[
        "--cluster-announce-ip",
        "10.1.2.3",
        "--cluster-announce-port",
        "7777",
        "--cluster-announce-hostname",
        "cache-0.example",
    ]);
    cluster.push(1, RANGES, &[0, 1, 2]);
    let nodes = text(&cluster.raw(0).cmd_str(&["CLUSTER", "NODES"]));
    let me = nodes
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap()
        .to_string();
    assert!(
        me.starts_with(&format!(
            "{} 10.1.2.3:7777@0,cache-0.example myself,master - 0 0 1 connected 0-5460",
            cluster.ids[0]
        )),
        "{nodes}"
    );
    let slots = text(&cluster.raw(0).cmd_str(&["CLUSTER", "SLOTS"]));
    assert!(slots.contains("$8\r\n10.1.2.3\r\n:7777\r\n"), "{slots}");
    assert!(
        slots.contains("$8\r\nhostname\r\n$15\r\ncache-0.example\r\n"),
        "{slots}"
    );
}

#[test]
fn redis_py_cluster_client_works() {
    let cluster = Cluster::start(&[]);
    cluster.push(1, RANGES, &[0, 1, 2]);
    common::python_client("redis_py_cluster.py", &cluster.nodes[1].addr.to_string());
}

#[test]
fn redis_cli_follows_moved() {
    let cluster = Cluster::start(&[]);
    cluster.push(1, RANGES, &[0, 1, 2]);
    let cli = |args: &[&str]| {
        let port = cluster.port(0).to_string();
        match Command::new("redis-cli")
            .args(["-c", "-p", &port])
            .args(args)
            .output()
        {
            Ok(o) => Some(text(&o.stdout).trim().to_string()),
            Err(_) => None,
        }
    };
    let Some(set) = cli(&["SET", "a", "via-cli"]) else {
        eprintln!("SKIPPED redis_cli_follows_moved: redis-cli is not installed");
        return;
    };
    assert_eq!(set, "OK");
    assert_eq!(cli(&["GET", "a"]).unwrap(), "via-cli");
    assert_eq!(
        text(&cluster.raw(2).cmd_str(&["GET", "a"])),
        "$7\r\nvia-cli\r\n",
        "the owner holds it"
    );
}

/// A real three-master Redis cluster on free ports, each in its own temp dir.
struct RedisCluster {
    servers: Vec<RedisServer>,
    _dirs: Vec<TempDir>,
}

impl RedisCluster {
    fn start() -> Option<RedisCluster> {
        let mut dirs = Vec::new();
        let mut servers = Vec::new();
        for i in 0..3 {
            let dir = TempDir::new(&format!("cluster-{i}"));
            let bus = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
                .to_string();
            let args = ["--cluster-enabled", "yes", "--cluster-port", &bus];
            servers.push(RedisServer::start(dir.path(), &args));
            dirs.push(dir);
        }
        let addrs: Vec<String> = servers.iter().map(RedisServer::addr).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .arg("--cluster-yes")
            .output()
            .ok()?;
        assert!(created.status.success(), "{}", text(&created.stdout));
        let deadline = Instant::now() + Duration::from_secs(30);
        for s in &servers {
            let mut c = RawConn::connect(&s.addr());
            while !text(&c.cmd_str(&["CLUSTER", "INFO"])).contains("cluster_state:ok") {
                assert!(
                    Instant::now() < deadline,
                    "the Redis cluster did not converge"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(RedisCluster {
            servers,
            _dirs: dirs,
        })
    }

    /// (id, port) of the owner of each of RANGES, in that order.
    fn nodes(&self) -> Vec<(String, u16)> {
        let mut c = RawConn::connect(&self.servers[0].addr());
        let listing = text(&c.cmd_str(&["CLUSTER", "NODES"]));
        let mut nodes: Vec<(String, u16, u16)> = listing
            .lines()
            .filter(|l| l.contains(' '))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let port = f[1].split([':', '@']).nth(1).unwrap().parse().unwrap();
                let first: u16 = f[8].split('-').next().unwrap().parse().unwrap();
                (f[0].to_string(), port, first)
            })
            .collect();
        nodes.sort_by_key(|n| n.2);
        nodes.into_iter().map(|(id, port, _)| (id, port)).collect()
    }
}

/// A reply with node i's id and port written `<id i>` / `<port i>`, and what differs by
/// nature (a bus port, pong times, replication offsets) set to 0.
fn normalize(reply: &[u8], nodes: &[(String, u16)]) -> String {
    let mut t = text(reply);
    for (i, (id, port)) in nodes.iter().enumerate() {
        t = t.replace(id, &format!("<id-{i}>"));
        t = t.replace(&port.to_string(), &format!("<port-{i}>"));
    }
    let mut out = String::new();
    for (n, line) in t.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        // CLUSTER NODES: `id ip:port@cport flags master ping pong epoch link slots`.
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() >= 8 && f[1].contains('@') {
            let addr = f[1].split('@').next().unwrap();
            out.push_str(&format!(
                "{} {addr}@0 {} {} 0 0 0 {}",
                f[0],
                f[2],
                f[3],
                f[7..].join(" ")
            ));
        } else {
            out.push_str(line);
        }
    }
    let marker = "replication-offset\r\n:";
    let mut zeroed = String::new();
    let mut rest = out.as_str();
    while let Some(at) = rest.find(marker) {
        zeroed.push_str(&rest[..at + marker.len()]);
        zeroed.push('0');
        rest = rest[at + marker.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    zeroed.push_str(rest);
    zeroed
}

/// The elements of an array reply, each as its own bytes.
fn elements(reply: &[u8]) -> Vec<Vec<u8>> {
    let header = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut rest = &reply[header..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let n = reply_len(rest).unwrap();
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out
}

#[test]
fn replies_match_a_real_redis_cluster() {
    if !have_redis_server("replies_match_a_real_redis_cluster") {
        return;
    }
    let Some(redis) = RedisCluster::start() else {
        eprintln!("SKIPPED replies_match_a_real_redis_cluster: redis-cli is not installed");
        return;
    };
    let theirs_nodes = redis.nodes();
    let cluster = Cluster::start(&[]);
    cluster.push(1, RANGES, &[0, 1, 2]);
    let ours_nodes: Vec<(String, u16)> = (0..3)
        .map(|i| (cluster.ids[i].clone(), cluster.port(i)))
        .collect();
    let theirs_first = theirs_nodes[0].1;
    let mut theirs = RawConn::connect(&format!("127.0.0.1:{theirs_first}"));
    let mut ours = cluster.raw(0);
    let same = |ours: &mut RawConn, theirs: &mut RawConn, words: &[&str]| {
        let (a, b) = (ours.cmd_str(words), theirs.cmd_str(words));
        (normalize(&a, &ours_nodes), normalize(&b, &theirs_nodes))
    };
    for words in [
        &["CLUSTER", "SLOTS"][..],
        &["GET", "a"],
        &["MSET", "a", "1", "b", "2"],
        &["SELECT", "1"],
        &["SWAPDB", "0", "1"],
        &["CLUSTER", "KEYSLOT", "{user}:1"],
        &["CLUSTER", "COUNTKEYSINSLOT", "0"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
        &["CLUSTER", "MYID", "extra"],
    ] {
        let (a, b) = same(&mut ours, &mut theirs, words);
        assert_eq!(a, b, "{words:?}");
    }
    // CLUSTER NODES: the same lines once ids, ports and times are named alike (Redis
    // lists its nodes in no particular order).
    let (a, b) = same(&mut ours, &mut theirs, &["CLUSTER", "NODES"]);
    let sorted = |s: &str| {
        // (The bulk's length differs with the bus ports and times.)
        let mut lines: Vec<String> = s.lines().skip(1).map(String::from).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&a), sorted(&b));
    // CLUSTER SHARDS: the same shards, in no particular order.
    let shards = |c: &mut RawConn, nodes: &[(String, u16)]| {
        let mut s: Vec<String> = elements(&c.cmd_str(&["CLUSTER", "SHARDS"]))
            .iter()
            .map(|e| normalize(e, nodes))
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        shards(&mut ours, &ours_nodes),
        shards(&mut theirs, &theirs_nodes)
    );
    // CLUSTER INFO: the same fields (the bus message counters aside).
    let fields = |c: &mut RawConn| -> Vec<String> {
        text(&c.cmd_str(&["CLUSTER", "INFO"]))
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("cluster_stats_messages_") && !l.is_empty())
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(fields(&mut ours), fields(&mut theirs));
    // A transaction across two slots of one node.
    let x = (0..)
        .map(|i| format!("x{i}"))
        .find(|k| owner(slot(k)) == 0)
        .unwrap();
    let y = (0..)
        .map(|i| format!("y{i}"))
        .find(|k| owner(slot(k)) == 0 && slot(k) != slot(&x))
        .unwrap();
    for words in [
        &["MULTI"][..],
        &["SET", &x, "1"],
        &["SET", &y, "2"],
        &["EXEC"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "a"],
        &["EXEC"],
    ] {
        let (a, b) = same(&mut ours, &mut theirs, words);
        assert_eq!(a, b, "{words:?}");
    }
}
