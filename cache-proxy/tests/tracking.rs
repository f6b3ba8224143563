//! Client-side caching through the proxy: RESP3 clients that turn tracking on at the proxy
//! are told about changes to the keys they read, whichever node holds them and whoever
//! changed them (another client of the proxy, a client of a node directly, an expiry, a
//! PROXY INVALIDATE).

mod common;

use std::time::{Duration, Instant};

use common::*;

fn push_for(keys: &[&str]) -> Vec<u8> {
    let mut out = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        out.extend(format!("${}\r\n{k}\r\n", k.len()).into_bytes());
    }
    out
}

fn resp3(cluster: &Cluster) -> RawConn {
    let mut conn = cluster.proxy.raw();
    let hello = conn.cmd_str(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%"));
    conn
}

#[test]
fn a_reader_is_told_when_another_client_writes_its_key() {
    let cluster = Cluster::start(&[]);
    let mut reader = resp3(&cluster);
    let mut writer = cluster.proxy.raw();
    assert_eq!(reader.cmd_str(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    // Keys on every node.
    let keys: Vec<String> = (0..12).map(|i| format!("t:{i}")).collect();
    for k in &keys {
        assert_eq!(writer.cmd_str(&["SET", k, "v1"]), b"+OK\r\n");
    }
    // The nodes report changes asynchronously: a read right after a write may be followed
    // by that write's (now redundant) invalidation. Let those pass before reading.
    std::thread::sleep(Duration::from_millis(200));
    for k in &keys {
        assert_eq!(reader.cmd_str(&["GET", k]), b"$2\r\nv1\r\n");
    }
    for k in &keys {
        let started = Instant::now();
        assert_eq!(writer.cmd_str(&["SET", k, "v2"]), b"+OK\r\n");
        assert_eq!(reader.read_reply(), push_for(&[k]), "{k}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // One-shot: a second write is not reported until the key is read again.
    assert_eq!(writer.cmd_str(&["SET", &keys[0], "v3"]), b"+OK\r\n");
    assert_eq!(reader.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(reader.cmd_str(&["GET", &keys[0]]), b"$2\r\nv3\r\n");
    // A write made directly on a node (not through the proxy) is reported too.
    let router = cluster.router();
    let owner = router.node_for_key(keys[0].as_bytes()).unwrap();
    let mut direct = cluster.nodes[owner].raw();
    assert_eq!(direct.cmd_str(&["DEL", &keys[0]]), b":1\r\n");
    assert_eq!(reader.read_reply(), push_for(&[&keys[0]]));
    // Expiry reaches the reader as well.
    assert_eq!(reader.cmd_str(&["GET", &keys[1]]), b"$2\r\nv2\r\n");
    assert_eq!(writer.cmd_str(&["PEXPIRE", &keys[1], "50"]), b":1\r\n");
    assert_eq!(reader.read_reply(), push_for(&[&keys[1]]));
    // And explicit invalidation.
    assert_eq!(reader.cmd_str(&["GET", &keys[2]]), b"$2\r\nv2\r\n");
    assert!(writer
        .cmd_str(&["PROXY", "INVALIDATE", "t:2"])
        .starts_with(b":"));
    assert_eq!(reader.read_reply(), push_for(&[&keys[2]]));
    assert_eq!(reader.cmd_str(&["CLIENT", "TRACKING", "OFF"]), b"+OK\r\n");
}

#[test]
fn bcast_prefixes_noloop_and_optin_through_the_proxy() {
    let cluster = Cluster::start(&[]);
    let mut watcher = resp3(&cluster);
    let mut writer = resp3(&cluster);
    assert_eq!(
        watcher.cmd_str(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:"]),
        b"+OK\r\n"
    );
    assert_eq!(writer.cmd_str(&["SET", "order:1", "x"]), b"+OK\r\n");
    assert_eq!(writer.cmd_str(&["SET", "user:1", "x"]), b"+OK\r\n");
    assert_eq!(watcher.read_reply(), push_for(&["user:1"]));
    // NOLOOP: the writer's own changes are not echoed to it.
    assert_eq!(
        writer.cmd_str(&["CLIENT", "TRACKING", "ON", "NOLOOP"]),
        b"+OK\r\n"
    );
    assert_eq!(writer.cmd_str(&["GET", "user:2"]), b"_\r\n");
    assert_eq!(writer.cmd_str(&["SET", "user:2", "y"]), b"+OK\r\n");
    assert_eq!(watcher.read_reply(), push_for(&["user:2"]));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(writer.cmd_str(&["PING"]), b"+PONG\r\n");
    // OPTIN: only reads after CLIENT CACHING YES are tracked.
    let mut optin = resp3(&cluster);
    assert_eq!(
        optin.cmd_str(&["CLIENT", "TRACKING", "ON", "OPTIN"]),
        b"+OK\r\n"
    );
    assert_eq!(optin.cmd_str(&["GET", "a"]), b"_\r\n");
    assert_eq!(optin.cmd_str(&["CLIENT", "CACHING", "YES"]), b"+OK\r\n");
    assert_eq!(optin.cmd_str(&["GET", "b"]), b"_\r\n");
    assert_eq!(writer.cmd_str(&["SET", "a", "1"]), b"+OK\r\n");
    assert_eq!(writer.cmd_str(&["SET", "b", "1"]), b"+OK\r\n");
    assert_eq!(optin.read_reply(), push_for(&["b"]));
    let info = optin.cmd_str(&["CLIENT", "TRACKINGINFO"]);
    assert!(String::from_utf8_lossy(&info).contains("optin"));
    // RESP2 clients are told to use RESP3.
    let mut resp2 = cluster.proxy.raw();
    assert!(resp2
        .cmd_str(&["CLIENT", "TRACKING", "ON"])
        .starts_with(b"-ERR the proxy supports client tracking on RESP3"));
    assert_eq!(
        resp2.cmd_str(&["CLIENT", "TRACKING", "ON", "PREFIX", "x"]),
        b"-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    );
}

#[test]
fn a_ring_change_tells_every_tracking_client_to_flush() {
    let cluster = Cluster::start(FAST_FAILOVER);
    let mut reader = resp3(&cluster);
    assert_eq!(reader.cmd_str(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    assert_eq!(reader.cmd_str(&["GET", "r"]), b"_\r\n");
    let mut admin = cluster.client();
    let extra = node(&[]);
    let _: () = redis::cmd("PROXY")
        .arg("ADD")
        .arg(extra.addr.to_string())
        .query(&mut admin)
        .unwrap();
    // The next batch of the reader sees the new epoch and is told to flush everything.
    assert_eq!(reader.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        reader.read_reply(),
        b">2\r\n$10\r\ninvalidate\r\n_\r\n".to_vec()
    );
}
