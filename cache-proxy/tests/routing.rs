//! End to end: three cache-nodes behind a cache-proxy, driven by the `redis` crate and raw
//! RESP. Routing follows the ring, hash tags colocate, pipelines keep order, multi-key
//! commands split and merge, SCAN visits every key once.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use cache_routing::key_slot;
use common::*;

#[test]
fn keys_live_where_the_ring_puts_them() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    let router = cluster.router();
    for i in 0..300 {
        let key = format!("key:{i}");
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut conn).unwrap();
    }
    let mut used = HashSet::new();
    for i in 0..300 {
        let key = format!("key:{i}");
        let expected = router.node_for_key(key.as_bytes()).unwrap();
        assert_eq!(cluster.holders(&key), vec![expected], "{key}");
        used.insert(expected);
        let got: i64 = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        assert_eq!(got, i);
    }
    assert_eq!(used.len(), 3, "300 keys should reach all three nodes");
}

#[test]
fn hash_tags_colocate_and_make_multi_key_commands_legal() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    let keys: Vec<String> = (0..20).map(|i| format!("{{user42}}:field{i}")).collect();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg("v").query(&mut conn).unwrap();
    }
    let holder = cluster.holders(&keys[0]);
    assert_eq!(holder.len(), 1);
    for k in &keys {
        assert_eq!(cluster.holders(k), holder);
        assert_eq!(key_slot(k.as_bytes()), key_slot(b"user42"));
    }
    // Same node: MSETNX, RENAME and SUNIONSTORE run.
    let set: i64 = redis::cmd("MSETNX")
        .arg("{t}a")
        .arg("1")
        .arg("{t}b")
        .arg("2")
        .query(&mut conn)
        .unwrap();
    assert_eq!(set, 1);
    let _: () = redis::cmd("RENAME")
        .arg("{t}a")
        .arg("{t}c")
        .query(&mut conn)
        .unwrap();
    let got: String = redis::cmd("GET").arg("{t}c").query(&mut conn).unwrap();
    assert_eq!(got, "1");
    // Different nodes: a clear error naming hash tags.
    let router = cluster.router();
    let (a, b) = two_keys_on_different_nodes(&router);
    let err = redis::cmd("MSETNX")
        .arg(&a)
        .arg("1")
        .arg(&b)
        .arg("2")
        .query::<i64>(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("hash tag"), "{err}");
    let err = redis::cmd("RENAME")
        .arg(&a)
        .arg(&b)
        .query::<()>(&mut conn)
        .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");
}

fn two_keys_on_different_nodes(router: &cache_routing::Router) -> (String, String) {
    let first = "probe:0".to_string();
    let home = router.node_for_key(first.as_bytes());
    let other = (1..1000)
        .map(|i| format!("probe:{i}"))
        .find(|k| router.node_for_key(k.as_bytes()) != home)
        .unwrap();
    (first, other)
}

#[test]
fn a_pipeline_spread_over_nodes_answers_in_order() {
    let cluster = Cluster::start(&[]);
    let mut raw = cluster.proxy.raw();
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..500 {
        let key = format!("p:{i}");
        let value = format!("v{i}");
        request.extend(RawConn::encode(&[b"SET", key.as_bytes(), value.as_bytes()]));
        expected.push(b"+OK\r\n".to_vec());
        request.extend(RawConn::encode(&[b"GET", key.as_bytes()]));
        expected.push(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
        request.extend(RawConn::encode(&[b"INCR", b"counter"]));
        expected.push(format!(":{}\r\n", i + 1).into_bytes());
        request.extend(RawConn::encode(&[b"PING"]));
        expected.push(b"+PONG\r\n".to_vec());
    }
    raw.send(&request);
    for (i, want) in expected.iter().enumerate() {
        let got = raw.read_reply();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "reply {i}"
        );
    }
}

#[test]
fn multi_key_commands_split_and_merge() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    let mut mset = redis::cmd("MSET");
    for i in 0..60 {
        mset.arg(format!("m:{i}")).arg(format!("{i}"));
    }
    let _: () = mset.query(&mut conn).unwrap();
    let holders: HashSet<usize> = (0..60)
        .flat_map(|i| cluster.holders(&format!("m:{i}")))
        .collect();
    assert_eq!(holders.len(), 3);
    // MGET keeps the caller's order, with nil for missing keys.
    let mut mget = redis::cmd("MGET");
    for i in (0..60).rev() {
        mget.arg(format!("m:{i}"));
        mget.arg(format!("missing:{i}"));
    }
    let values: Vec<Option<String>> = mget.query(&mut conn).unwrap();
    for (j, i) in (0..60).rev().enumerate() {
        assert_eq!(values[2 * j], Some(format!("{i}")));
        assert_eq!(values[2 * j + 1], None);
    }
    let mut exists = redis::cmd("EXISTS");
    for i in 0..60 {
        exists.arg(format!("m:{i}"));
    }
    exists.arg("m:0").arg("nope");
    assert_eq!(exists.query::<i64>(&mut conn).unwrap(), 61);
    let mut touch = redis::cmd("TOUCH");
    for i in 0..10 {
        touch.arg(format!("m:{i}"));
    }
    assert_eq!(touch.query::<i64>(&mut conn).unwrap(), 10);
    let mut del = redis::cmd("DEL");
    for i in 0..30 {
        del.arg(format!("m:{i}"));
    }
    assert_eq!(del.query::<i64>(&mut conn).unwrap(), 30);
    let mut unlink = redis::cmd("UNLINK");
    for i in 0..60 {
        unlink.arg(format!("m:{i}"));
    }
    assert_eq!(unlink.query::<i64>(&mut conn).unwrap(), 30);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut conn).unwrap(), 0);
    // A wrong type inside a split MGET is still nil, as on one Redis.
    let _: () = redis::cmd("LPUSH")
        .arg("list")
        .arg("x")
        .query(&mut conn)
        .unwrap();
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg("list")
        .arg("m:1")
        .query(&mut conn)
        .unwrap();
    assert_eq!(values, vec![None, None]);
}

#[test]
fn scan_visits_every_key_once_and_cluster_wide_commands_sum() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    for i in 0..500 {
        let _: () = redis::cmd("SET")
            .arg(format!("s:{i}"))
            .arg(i)
            .query(&mut conn)
            .unwrap();
    }
    let _: () = redis::cmd("SADD")
        .arg("aset")
        .arg("x")
        .query(&mut conn)
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: u64 = 0;
    let mut rounds = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("s:*")
            .arg("COUNT")
            .arg(40)
            .query(&mut conn)
            .unwrap();
        seen.extend(keys);
        cursor = next;
        rounds += 1;
        assert!(rounds < 1000, "SCAN does not terminate");
        if cursor == 0 {
            break;
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 500);
    assert_eq!(seen.len(), 500, "a key was returned twice");
    let (_, sets): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("TYPE")
        .arg("set")
        .arg("COUNT")
        .arg(1000)
        .query(&mut conn)
        .unwrap();
    // The first page covers the first node only; the set may be elsewhere.
    assert!(sets.iter().all(|k| k == "aset"));
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut conn).unwrap(), 501);
    let keys: Vec<String> = redis::cmd("KEYS").arg("s:1*").query(&mut conn).unwrap();
    assert_eq!(keys.len(), 111);
    let info: String = redis::cmd("INFO").query(&mut conn).unwrap();
    assert!(info.contains("db0:keys=501,"), "{info}");
    assert!(info.contains("redis_mode:proxy"));
    let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut conn).unwrap(), 0);
    for node in &cluster.nodes {
        let mut c = node.client();
        assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    }
}

#[test]
fn transactions_run_on_one_node_and_watch_sees_other_clients() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("{tx}a")
        .arg("1")
        .ignore()
        .cmd("INCR")
        .arg("{tx}a")
        .query(&mut conn)
        .unwrap();
    assert_eq!(n, 2);
    let got: String = redis::cmd("GET").arg("{tx}a").query(&mut conn).unwrap();
    assert_eq!(got, "2");
    // Raw, to see every reply.
    let mut raw = cluster.proxy.raw();
    assert_eq!(raw.cmd_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["INCR", "{tx}n"]), b"+QUEUED\r\n");
    assert_eq!(raw.cmd_str(&["INCR", "{tx}n"]), b"+QUEUED\r\n");
    assert_eq!(raw.cmd_str(&["EXEC"]), b"*2\r\n:1\r\n:2\r\n");
    // Keys on two nodes: refused at EXEC.
    let router = cluster.router();
    let (a, b) = two_keys_on_different_nodes(&router);
    assert_eq!(raw.cmd_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["SET", &a, "1"]), b"+QUEUED\r\n");
    assert_eq!(raw.cmd_str(&["SET", &b, "1"]), b"+QUEUED\r\n");
    let reply = String::from_utf8(raw.cmd_str(&["EXEC"])).unwrap();
    assert!(reply.starts_with("-EXECABORT"), "{reply}");
    // A queued unknown command aborts the transaction.
    assert_eq!(raw.cmd_str(&["MULTI"]), b"+OK\r\n");
    assert!(raw
        .cmd_str(&["NOSUCH"])
        .starts_with(b"-ERR unknown command"));
    assert_eq!(
        raw.cmd_str(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // WATCH: another client's write makes EXEC return nil.
    let mut other = cluster.proxy.raw();
    assert_eq!(raw.cmd_str(&["WATCH", "{w}k"]), b"+OK\r\n");
    assert_eq!(other.cmd_str(&["SET", "{w}k", "x"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["SET", "{w}k", "mine"]), b"+QUEUED\r\n");
    assert_eq!(raw.cmd_str(&["EXEC"]), b"*-1\r\n");
    // Without interference it commits.
    assert_eq!(raw.cmd_str(&["WATCH", "{w}k"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["SET", "{w}k", "mine"]), b"+QUEUED\r\n");
    assert_eq!(raw.cmd_str(&["EXEC"]), b"*1\r\n+OK\r\n");
    assert_eq!(other.cmd_str(&["GET", "{w}k"]), b"$4\r\nmine\r\n");
}

#[test]
fn blocking_pops_wait_on_their_own_connection() {
    let cluster = Cluster::start(&[]);
    let proxy_addr = cluster.proxy.addr;
    let waiter = std::thread::spawn(move || {
        let mut raw = RawConn::connect(&proxy_addr.to_string());
        raw.cmd_str(&["BLPOP", "queue", "5"])
    });
    std::thread::sleep(Duration::from_millis(200));
    // Other traffic is not stalled by the blocked client.
    let mut conn = cluster.client();
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("x{i}"))
            .arg(i)
            .query(&mut conn)
            .unwrap();
    }
    let _: () = redis::cmd("RPUSH")
        .arg("queue")
        .arg("job")
        .query(&mut conn)
        .unwrap();
    let reply = waiter.join().unwrap();
    assert_eq!(reply, b"*2\r\n$5\r\nqueue\r\n$3\r\njob\r\n");
    // A timeout comes back as nil.
    let mut raw = cluster.proxy.raw();
    assert_eq!(raw.cmd_str(&["BLPOP", "empty", "0.1"]), b"*-1\r\n");
}

#[test]
fn publishers_and_subscribers_meet() {
    let cluster = Cluster::start(&[]);
    let mut sub = cluster.proxy.raw();
    assert_eq!(
        sub.cmd_str(&["SUBSCRIBE", "news", "sports"]),
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    );
    assert_eq!(
        sub.read_reply(),
        b"*3\r\n$9\r\nsubscribe\r\n$6\r\nsports\r\n:2\r\n"
    );
    assert_eq!(
        sub.cmd_str(&["PSUBSCRIBE", "alert.*"]),
        b"*3\r\n$10\r\npsubscribe\r\n$7\r\nalert.*\r\n:3\r\n"
    );
    let err = sub.cmd_str(&["GET", "x"]);
    assert!(err.starts_with(b"-ERR Can't execute 'get'"));
    let mut conn = cluster.client();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut conn)
        .unwrap();
    assert_eq!(receivers, 1);
    assert_eq!(
        sub.read_reply(),
        b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    let _: i64 = redis::cmd("PUBLISH")
        .arg("alert.fire")
        .arg("run")
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        sub.read_reply(),
        b"*4\r\n$8\r\npmessage\r\n$7\r\nalert.*\r\n$10\r\nalert.fire\r\n$3\r\nrun\r\n"
    );
    // PUBSUB answers for the whole cluster: channels live on their nodes, patterns on all.
    let mut admin = cluster.proxy.raw();
    assert_eq!(
        admin.cmd_str(&["PUBSUB", "NUMSUB", "news", "sports", "none"]),
        b"*6\r\n$4\r\nnews\r\n:1\r\n$6\r\nsports\r\n:1\r\n$4\r\nnone\r\n:0\r\n"
    );
    assert_eq!(admin.cmd_str(&["PUBSUB", "NUMPAT"]), b":1\r\n");
    let channels = admin.cmd_str(&["PUBSUB", "CHANNELS"]);
    let text = String::from_utf8_lossy(&channels).into_owned();
    assert!(
        text.starts_with("*2\r\n") && text.contains("news") && text.contains("sports"),
        "{text}"
    );
    assert_eq!(
        sub.cmd_str(&["UNSUBSCRIBE", "news"]),
        b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:2\r\n"
    );
    // Still subscribed (RESP2): PING answers as Redis does there.
    assert_eq!(sub.cmd_str(&["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(
        sub.cmd_str(&["PING", "hi"]),
        b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
    );
}

#[test]
fn local_commands_and_bad_input() {
    let cluster = Cluster::start(&[]);
    let mut raw = cluster.proxy.raw();
    assert_eq!(raw.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(raw.cmd_str(&["ECHO", "hi"]), b"$2\r\nhi\r\n");
    assert_eq!(raw.cmd_str(&["SELECT", "0"]), b"+OK\r\n");
    assert!(raw.cmd_str(&["SELECT", "1"]).starts_with(b"-ERR"));
    assert_eq!(
        raw.cmd_str(&["GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        raw.cmd_str(&["NOPE", "a"]),
        b"-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n"
    );
    // CONFIG speaks for every node: SET reaches each, GET answers where they agree.
    assert_eq!(raw.cmd_str(&["CONFIG", "GET", "x"]), b"*0\r\n");
    assert_eq!(raw.cmd_str(&["CONFIG", "SET", "hz", "42"]), b"+OK\r\n");
    for node in &cluster.nodes {
        assert_eq!(
            node.raw().cmd_str(&["CONFIG", "GET", "hz"]),
            b"*2\r\n$2\r\nhz\r\n$2\r\n42\r\n"
        );
    }
    assert_eq!(
        raw.cmd_str(&["CONFIG", "GET", "hz"]),
        b"*2\r\n$2\r\nhz\r\n$2\r\n42\r\n"
    );
    assert!(raw
        .cmd_str(&["CONFIG", "SET", "hz", "nope"])
        .starts_with(b"-ERR CONFIG SET failed"));
    cluster.nodes[0]
        .raw()
        .cmd_str(&["CONFIG", "SET", "hz", "10"]);
    assert_eq!(
        raw.cmd_str(&["CONFIG", "GET", "hz"]),
        b"-ERR the nodes' values differ: ask a node\r\n"
    );
    // CLIENT REPLY OFF / SKIP keep replies from the client, ON answers and restores them.
    raw.send(b"CLIENT REPLY OFF\r\nSET quiet 1\r\nGET quiet\r\nCLIENT REPLY ON\r\n");
    assert_eq!(raw.read_reply(), b"+OK\r\n");
    raw.send(b"CLIENT REPLY SKIP\r\nINCR quiet\r\nGET quiet\r\n");
    assert_eq!(raw.read_reply(), b"$1\r\n2\r\n");
    // Inline commands work (what telnet sends).
    raw.send(b"SET inline 1\r\nGET inline\r\n");
    assert_eq!(raw.read_reply(), b"+OK\r\n");
    assert_eq!(raw.read_reply(), b"$1\r\n1\r\n");
    // HELLO 3 switches the protocol; node replies come back in RESP3.
    let hello = raw.cmd_str(&["HELLO", "3"]);
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    assert_eq!(raw.cmd_str(&["HSET", "h", "f", "v"]), b":1\r\n");
    assert_eq!(
        raw.cmd_str(&["HGETALL", "h"]),
        b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    assert_eq!(raw.cmd_str(&["GET", "missing"]), b"_\r\n");
    // A protocol error gets Redis's text and the connection closes; the proxy lives on.
    let mut bad = cluster.proxy.raw();
    bad.send(b"*1\r\n$-5\r\n");
    let reply = bad.read_to_close();
    assert!(
        String::from_utf8_lossy(&reply).starts_with("-ERR Protocol error"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(raw.cmd_str(&["PING"]), b"+PONG\r\n");
}

#[test]
fn password_for_clients_and_for_nodes() {
    let nodes: Vec<NodeProcess> = (0..2).map(|_| node(&["--requirepass", "nodepw"])).collect();
    let proxy = proxy_for(
        &nodes,
        &["--requirepass", "clientpw", "--node-password", "nodepw"],
    );
    let mut raw = proxy.raw();
    assert_eq!(
        raw.cmd_str(&["GET", "k"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert!(raw.cmd_str(&["AUTH", "nodepw"]).starts_with(b"-WRONGPASS"));
    assert_eq!(raw.cmd_str(&["AUTH", "clientpw"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");
    let value = vec![b'v'; 100_000];
    assert_eq!(raw.cmd(&[b"SET", b"big", &value]), b"+OK\r\n".to_vec());

    // Before AUTH, Redis's limits: 10 arguments of at most 16384 bytes (a bare
    // `$536870912` header is answered, not reserved).
    cache_testkit::assert_unauthenticated_limits(|| proxy.raw());
}

#[test]
fn proxy_add_and_remove_move_only_their_share() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    for i in 0..600 {
        let _: () = redis::cmd("SET")
            .arg(format!("a:{i}"))
            .arg(i)
            .query(&mut conn)
            .unwrap();
    }
    let fourth = node(&[]);
    let name = fourth.addr.to_string();
    let _: () = redis::cmd("PROXY")
        .arg("ADD")
        .arg(&name)
        .query(&mut conn)
        .unwrap();
    let lines = proxy_nodes(&mut conn);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let mut names = cluster.node_names();
    names.push(name.clone());
    let router = router_for(&names);
    // Keys that stayed are still served; keys that moved to the new node are misses there
    // (never an old copy), and new writes land on it.
    let mut moved = 0;
    for i in 0..600 {
        let key = format!("a:{i}");
        let owner = router.node_for_key(key.as_bytes()).unwrap();
        let got: Option<i64> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        if owner == 3 {
            moved += 1;
            assert_eq!(got, None);
        } else {
            assert_eq!(got, Some(i));
        }
    }
    assert!((90..=210).contains(&moved), "moved {moved} of 600");
    // The old owners dropped the moved keys (no orphans left to resurface).
    let total: i64 = cluster
        .nodes
        .iter()
        .map(|n| {
            let mut c = n.client();
            redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap()
        })
        .sum();
    assert_eq!(total, 600 - moved);
    let _: () = redis::cmd("SET")
        .arg("after-add")
        .arg("1")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("PROXY")
        .arg("REMOVE")
        .arg(&name)
        .query(&mut conn)
        .unwrap();
    assert_eq!(proxy_nodes(&mut conn).len(), 3);
    let got: Option<i64> = redis::cmd("GET").arg("a:1").query(&mut conn).unwrap();
    let owner = cluster.router().node_for_key(b"a:1").unwrap();
    if router.node_for_key(b"a:1").unwrap() != 3 {
        assert_eq!(got, Some(1), "owner {owner}");
    }
    let err = redis::cmd("PROXY")
        .arg("REMOVE")
        .arg("127.0.0.1:1")
        .query::<()>(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("not a member"));
}

#[test]
fn proxy_invalidate_forgets_a_pattern_on_every_node() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("user:{i}"))
            .arg(i)
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("order:{i}"))
            .arg(i)
            .query(&mut conn)
            .unwrap();
    }
    let removed: i64 = redis::cmd("PROXY")
        .arg("INVALIDATE")
        .arg("user:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(removed, 50);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut conn).unwrap(), 50);
    let got: Option<i64> = redis::cmd("GET").arg("user:7").query(&mut conn).unwrap();
    assert_eq!(got, None);
    let got: Option<i64> = redis::cmd("GET").arg("order:7").query(&mut conn).unwrap();
    assert_eq!(got, Some(7));
    // The node command itself is the proxy's business, not a client's: the table marks
    // CACHE node-only, so the proxy does not know it.
    let err = redis::cmd("CACHE")
        .arg("INVALIDATE")
        .arg("*")
        .query::<i64>(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("unknown command 'CACHE'"), "{err}");
}

/// SORT ... STORE, GEORADIUS ... STORE and ZUNIONSTORE name keys past the table's `1 1 1`
/// (movable keys): the proxy finds them all, runs the command when they share a node and
/// refuses it otherwise, instead of storing on the source's node.
#[test]
fn movable_store_keys_are_routed_by_all_their_keys() {
    let cluster = Cluster::start(&[]);
    let mut conn = cluster.client();
    let router = cluster.router();
    let (a, b) = two_keys_on_different_nodes(&router);
    let _: i64 = redis::cmd("RPUSH")
        .arg(&a)
        .arg(3)
        .arg(1)
        .arg(2)
        .query(&mut conn)
        .unwrap();
    let err = redis::cmd("SORT")
        .arg(&a)
        .arg("STORE")
        .arg(&b)
        .query::<i64>(&mut conn)
        .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");
    let err = redis::cmd("GEORADIUS")
        .arg(&a)
        .arg(15)
        .arg(37)
        .arg(200)
        .arg("km")
        .arg("STORE")
        .arg(&b)
        .query::<i64>(&mut conn)
        .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");
    let err = redis::cmd("ZUNIONSTORE")
        .arg(&b)
        .arg(1)
        .arg(&a)
        .query::<i64>(&mut conn)
        .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");
    // With one hash tag the store lands on the keys' node.
    let _: i64 = redis::cmd("RPUSH")
        .arg("{s}src")
        .arg(3)
        .arg(1)
        .arg(2)
        .query(&mut conn)
        .unwrap();
    let n: i64 = redis::cmd("SORT")
        .arg("{s}src")
        .arg("STORE")
        .arg("{s}dst")
        .query(&mut conn)
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(cluster.holders("{s}dst"), cluster.holders("{s}src"));
    let sorted: Vec<i64> = redis::cmd("LRANGE")
        .arg("{s}dst")
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(sorted, vec![1, 2, 3]);
}
