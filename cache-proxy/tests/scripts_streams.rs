//! Scripts, functions and streams through the proxy, against three real nodes: scripts run on
//! the node of their declared keys (else Redis Cluster's CROSSSLOT), SCRIPT/FUNCTION changes
//! reach every node, a node that lacks a script the proxy has seen gets it without the client
//! noticing, and streams (blocking reads included) work as on one server.
mod common;

use std::time::Duration;

use common::{eventually, node, router_for, Cluster};
use redis::{Connection, RedisError, Value};

const CROSSSLOT: &str = "Keys in request don't hash to the same slot";

/// A key living on each node, in node order.
fn key_per_node(cluster: &Cluster, prefix: &str) -> Vec<String> {
    let router = cluster.router();
    (0..cluster.nodes.len())
        .map(|n| {
            (0..10_000)
                .map(|i| format!("{prefix}{i}"))
                .find(|k| router.node_for_key(k.as_bytes()) == Some(n))
                .expect("a key for every node")
        })
        .collect()
}

fn err(result: Result<Value, RedisError>) -> RedisError {
    result.expect_err("an error reply")
}

fn crossslot(e: &RedisError) -> bool {
    e.code() == Some("CROSSSLOT") && e.to_string().contains(CROSSSLOT)
}

const INCR_SCRIPT: &str =
    "redis.call('INCRBY', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])";

#[test]
fn eval_goes_to_the_node_of_its_keys() {
    let cluster = Cluster::start(&[]);
    let mut c = cluster.client();
    let keys = key_per_node(&cluster, "ev");
    for (i, key) in keys.iter().enumerate() {
        let got: String = redis::cmd("EVAL")
            .arg(INCR_SCRIPT)
            .arg(1)
            .arg(key)
            .arg(5)
            .query(&mut c)
            .unwrap();
        assert_eq!(got, "5");
        // The key is on its own node, and only there.
        assert_eq!(cluster.holders(key), vec![i]);
    }
    // Two keys of one hash tag: one node, one script.
    let got: i64 = redis::cmd("EVAL")
        .arg("redis.call('SET', KEYS[1], 1) redis.call('SET', KEYS[2], 2) return redis.call('EXISTS', KEYS[1], KEYS[2])")
        .arg(2)
        .arg("{user1}:a")
        .arg("{user1}:b")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, 2);
    // Keys on different nodes: Redis Cluster's error, for EVAL, EVALSHA, EVAL_RO and FCALL.
    let e = err(redis::cmd("EVAL")
        .arg("return 1")
        .arg(2)
        .arg(&keys[0])
        .arg(&keys[1])
        .query(&mut c));
    assert!(crossslot(&e), "{e}");
    let e = err(redis::cmd("EVAL_RO")
        .arg("return 1")
        .arg(2)
        .arg(&keys[1])
        .arg(&keys[2])
        .query(&mut c));
    assert!(crossslot(&e), "{e}");
    let e = err(redis::cmd("FCALL")
        .arg("f")
        .arg(2)
        .arg(&keys[0])
        .arg(&keys[2])
        .query(&mut c));
    assert!(crossslot(&e), "{e}");
    // Keyless scripts run too (on one fixed node).
    let one: i64 = redis::cmd("EVAL")
        .arg("return 1")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(one, 1);
}

fn script_exists(conn: &mut Connection, shas: &[&str]) -> Vec<i64> {
    redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(shas)
        .query(conn)
        .unwrap()
}

#[test]
fn script_load_flush_and_exists_cover_the_cluster() {
    let cluster = Cluster::start(&[]);
    let mut c = cluster.client();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(INCR_SCRIPT)
        .query(&mut c)
        .unwrap();
    assert_eq!(sha.len(), 40);
    for n in &cluster.nodes {
        assert_eq!(
            script_exists(&mut n.client(), &[&sha]),
            vec![1],
            "loaded on every node"
        );
    }
    let unknown = "0000000000000000000000000000000000000000";
    assert_eq!(script_exists(&mut c, &[&sha, unknown]), vec![1, 0]);
    // A node lost it behind the proxy's back: it still exists for the cluster, since the
    // proxy restores it where it is missing.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut cluster.nodes[1].client())
        .unwrap();
    assert_eq!(script_exists(&mut c, &[&sha]), vec![1]);
    // A script only one node has (loaded there directly): not everywhere, so not for the
    // cluster (the AND of the nodes).
    let direct: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 'direct'")
        .query(&mut cluster.nodes[0].client())
        .unwrap();
    assert_eq!(script_exists(&mut c, &[&direct, &sha]), vec![0, 1]);
    let ok: String = redis::cmd("SCRIPT").arg("FLUSH").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    for n in &cluster.nodes {
        assert_eq!(
            script_exists(&mut n.client(), &[&sha]),
            vec![0],
            "flushed on every node"
        );
    }
    // Flushed through the proxy: EVALSHA now gets NOSCRIPT, as from Redis.
    let keys = key_per_node(&cluster, "fl");
    let e = err(redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg(&keys[0])
        .arg(1)
        .query(&mut c));
    assert_eq!(e.code(), Some("NOSCRIPT"), "{e}");
}

#[test]
fn a_node_that_lost_or_never_had_a_script_gets_it_invisibly() {
    let mut cluster = Cluster::start(&[]);
    let mut c = cluster.client();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(INCR_SCRIPT)
        .query(&mut c)
        .unwrap();
    let keys = key_per_node(&cluster, "ns");
    // Node 2 comes back empty (its script cache flushed behind the proxy's back).
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut cluster.nodes[2].client())
        .unwrap();
    for key in &keys {
        let got: String = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(key)
            .arg(2)
            .query(&mut c)
            .unwrap();
        assert_eq!(got, "2");
    }
    assert_eq!(
        script_exists(&mut cluster.nodes[2].client(), &[&sha]),
        vec![1]
    );
    // Lost again after the proxy loaded it there: the node's NOSCRIPT is answered by a load
    // and a retry, and the pipeline around it keeps its replies in order.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut cluster.nodes[2].client())
        .unwrap();
    let (got, after): (String, String) = redis::pipe()
        .cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg(&keys[2])
        .arg(1)
        .cmd("GET")
        .arg(&keys[0])
        .query(&mut c)
        .unwrap();
    assert_eq!((got.as_str(), after.as_str()), ("3", "2"));
    assert_eq!(
        script_exists(&mut cluster.nodes[2].client(), &[&sha]),
        vec![1]
    );
    // A script first seen in an EVAL is known too.
    let body = "return redis.call('GET', KEYS[1])";
    let _: Value = redis::cmd("EVAL")
        .arg(body)
        .arg(1)
        .arg(&keys[0])
        .query(&mut c)
        .unwrap();
    let body_sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(body)
        .query(&mut cluster.nodes[0].client())
        .unwrap();
    let got: String = redis::cmd("EVALSHA")
        .arg(&body_sha)
        .arg(1)
        .arg(&keys[1])
        .query(&mut c)
        .unwrap();
    assert_eq!(got, "2");
    // A node that joins later.
    let fresh = node(&[]);
    let added: String = redis::cmd("PROXY")
        .arg("ADD")
        .arg(fresh.addr.to_string())
        .query(&mut c)
        .unwrap();
    assert_eq!(added, "OK");
    let mut names = cluster.node_names();
    names.push(fresh.addr.to_string());
    let router = router_for(&names);
    let key = (0..10_000)
        .map(|i| format!("joined{i}"))
        .find(|k| router.node_for_key(k.as_bytes()) == Some(3))
        .expect("a key for the new node");
    assert!(eventually(Duration::from_secs(5), || {
        redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(1)
            .arg(&key)
            .arg(7)
            .query::<String>(&mut c)
            .is_ok()
    }));
    assert_eq!(script_exists(&mut fresh.client(), &[&sha]), vec![1]);
    cluster.nodes.push(fresh);
}

const LIBRARY: &str = "#!lua name=counters\nredis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\nredis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";

#[test]
fn functions_are_loaded_everywhere_and_restored_on_demand() {
    let cluster = Cluster::start(&[]);
    let mut c = cluster.client();
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut c)
        .unwrap();
    assert_eq!(name, "counters");
    let keys = key_per_node(&cluster, "fn");
    for key in &keys {
        let n: i64 = redis::cmd("FCALL")
            .arg("bump")
            .arg(1)
            .arg(key)
            .arg(3)
            .query(&mut c)
            .unwrap();
        assert_eq!(n, 3);
        let v: String = redis::cmd("FCALL_RO")
            .arg("peek")
            .arg(1)
            .arg(key)
            .query(&mut c)
            .unwrap();
        assert_eq!(v, "3");
    }
    // A node that lost its libraries gets them back on the next call.
    let _: () = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query(&mut cluster.nodes[0].client())
        .unwrap();
    let n: i64 = redis::cmd("FCALL")
        .arg("bump")
        .arg(1)
        .arg(&keys[0])
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 4);
    // DELETE reaches every node (and the proxy forgets the library).
    let ok: String = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("counters")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    for (key, n) in keys.iter().zip(&cluster.nodes) {
        let listed: Vec<Value> = redis::cmd("FUNCTION")
            .arg("LIST")
            .query(&mut n.client())
            .unwrap();
        assert!(listed.is_empty(), "deleted on every node");
        let e = err(redis::cmd("FCALL")
            .arg("bump")
            .arg(1)
            .arg(key)
            .arg(1)
            .query(&mut c));
        assert!(e.to_string().contains("Function not found"), "{e}");
    }
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut c)
        .unwrap();
    let ok: String = redis::cmd("FUNCTION").arg("FLUSH").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    for n in &cluster.nodes {
        let listed: Vec<Value> = redis::cmd("FUNCTION")
            .arg("LIST")
            .query(&mut n.client())
            .unwrap();
        assert!(listed.is_empty(), "flushed on every node");
    }
}

#[test]
fn streams_through_the_proxy() {
    let cluster = Cluster::start(&[]);
    let mut c = cluster.client();
    let keys = key_per_node(&cluster, "st");
    for key in &keys {
        let id: String = redis::cmd("XADD")
            .arg(key)
            .arg("1-1")
            .arg("f")
            .arg("v")
            .query(&mut c)
            .unwrap();
        assert_eq!(id, "1-1");
        let len: i64 = redis::cmd("XLEN").arg(key).query(&mut c).unwrap();
        assert_eq!(len, 1);
    }
    let ok: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&keys[1])
        .arg("g")
        .arg("0")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let read: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("alice")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(&keys[1])
        .arg(">")
        .query(&mut c)
        .unwrap();
    assert!(
        matches!(read, Value::Array(ref streams) if streams.len() == 1),
        "{read:?}"
    );
    let acked: i64 = redis::cmd("XACK")
        .arg(&keys[1])
        .arg("g")
        .arg("1-1")
        .query(&mut c)
        .unwrap();
    assert_eq!(acked, 1);
    // Several streams of one hash tag: one read.
    for k in ["{s}a", "{s}b"] {
        let _: String = redis::cmd("XADD")
            .arg(k)
            .arg("*")
            .arg("f")
            .arg("v")
            .query(&mut c)
            .unwrap();
    }
    let both: Value = redis::cmd("XREAD")
        .arg("STREAMS")
        .arg("{s}a")
        .arg("{s}b")
        .arg(0)
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert!(
        matches!(both, Value::Array(ref streams) if streams.len() == 2),
        "{both:?}"
    );
    // Streams of different nodes: Redis Cluster's error.
    let e = err(redis::cmd("XREAD")
        .arg("STREAMS")
        .arg(&keys[0])
        .arg(&keys[2])
        .arg(0)
        .arg(0)
        .query(&mut c));
    assert!(crossslot(&e), "{e}");
    // A blocking read waits on a connection of its own while others carry on.
    let proxy = cluster.proxy.url();
    let key = keys[2].clone();
    let reader = std::thread::spawn(move || {
        let mut r = redis::Client::open(proxy)
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(5000)
            .arg("STREAMS")
            .arg(&key)
            .arg("$")
            .query::<Value>(&mut r)
    });
    std::thread::sleep(Duration::from_millis(200));
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let _: String = redis::cmd("XADD")
        .arg(&keys[2])
        .arg("*")
        .arg("new")
        .arg("entry")
        .query(&mut c)
        .unwrap();
    let got = reader.join().unwrap().unwrap();
    let text = format!("{got:?}");
    assert!(text.contains("new") && text.contains("entry"), "{text}");
}
