//! Database-driven invalidation for the cluster: three write-through cache-nodes on the real
//! PostgreSQL, a proxy following the change feed. A row changed by another program (psql)
//! is forgotten on the node that owns its key, and a tracking client of the proxy is told.
//! Needs `FERROCACHE_POSTGRES` (`.ci/run` sets it); prints SKIPPED without it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn info_field(conn: &mut RawConn, name: &str) -> String {
    let reply = conn.cmd_str(&["INFO"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

struct Tables {
    url: String,
    names: Vec<String>,
}

impl Drop for Tables {
    fn drop(&mut self) {
        for t in &self.names {
            let _ = Command::new("psql")
                .args([
                    &self.url,
                    "-q",
                    "-c",
                    &format!("DROP TABLE IF EXISTS {t} CASCADE"),
                ])
                .output();
        }
    }
}

#[test]
fn a_row_changed_in_postgres_reaches_a_tracking_client_through_the_proxy() {
    let Ok(url) = std::env::var("FERROCACHE_POSTGRES") else {
        eprintln!("SKIPPED change feed through the proxy: set FERROCACHE_POSTGRES");
        return;
    };
    let table = format!("fc_proxy_feed_{}", std::process::id());
    let users = format!("{table}_users");
    let _cleanup = Tables {
        url: url.clone(),
        names: vec![table.clone(), users.clone()],
    };
    psql(
        &url,
        &format!(
            "DROP TABLE IF EXISTS {users}; CREATE TABLE {users} (id bigint PRIMARY KEY, name text);
             INSERT INTO {users} VALUES (7, 'before'), (8, 'other');"
        ),
    );
    let map = format!("user:={users}.id");
    let node_args = [
        "--backing-mode",
        "write-through",
        "--backing-url",
        &url,
        "--backing-table",
        &table,
        "--backing-map",
        &map,
    ];
    let nodes: Vec<NodeProcess> = (0..3).map(|_| node(&node_args)).collect();
    let status = Command::new(node_bin())
        .args([
            "install-change-feed",
            "--backing-url",
            &url,
            "--backing-table",
            &table,
            "--backing-map",
            &map,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "install-change-feed");
    let proxy = proxy_for(&nodes, &["--change-feed-url", &url]);
    let mut admin = proxy.raw();
    let up = eventually(Duration::from_secs(10), || {
        info_field(&mut admin, "change_feed") == "up"
    });
    assert!(up, "the proxy's change feed did not come up");

    let mut reader = proxy.raw();
    assert!(reader.cmd_str(&["HELLO", "3"]).starts_with(b"%"));
    assert_eq!(reader.cmd_str(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    assert_eq!(
        reader.cmd_str(&["HGET", "user:7", "name"]),
        b"$6\r\nbefore\r\n"
    );
    // Installing the row the read loaded is reported to trackers like any change, so the
    // read-through itself may cause one redundant invalidation, a little later: let it pass
    // (skip pushes until a PING's reply) so the next push is the UPDATE's.
    std::thread::sleep(Duration::from_millis(300));
    reader.send(&RawConn::encode(&[b"PING"]));
    while reader.read_reply().starts_with(b">") {}
    // That push, if it came after the read was tracked, also ended the tracking (an
    // invalidation is sent once): read again, a hit now, so the key is surely tracked.
    reader.send(&RawConn::encode(&[b"HGET", b"user:7", b"name"]));
    let again = reply_after_pushes(&mut reader);
    assert_eq!(again, b"$6\r\nbefore\r\n");
    // Cached on its node now; another program changes the row.
    let before = info_field(&mut admin, "change_feed_invalidated_keys");
    let started = Instant::now();
    psql(
        &url,
        &format!("UPDATE {users} SET name = 'after' WHERE id = 7"),
    );
    assert_eq!(
        reader.read_reply(),
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:7\r\n".to_vec()
    );
    let delay = started.elapsed();
    assert!(delay < Duration::from_secs(5), "{delay:?}");
    eprintln!("psql UPDATE -> invalidation push through the proxy: {delay:?}");
    // The trigger reports the old and the new row: a second, redundant invalidation of the
    // same key may follow. Skip pushes until the reply.
    reader.send(&RawConn::encode(&[b"HGET", b"user:7", b"name"]));
    let reply = reply_after_pushes(&mut reader);
    assert_eq!(reply, b"$5\r\nafter\r\n");
    assert_ne!(
        info_field(&mut admin, "change_feed_invalidated_keys"),
        before
    );

    // A write through the cluster (the node's own, carrying its origin) is not echoed back
    // as an invalidation of what the node just wrote.
    let mut writer = proxy.raw();
    assert_eq!(
        writer.cmd_str(&["HSET", "user:8", "name", "mine"]),
        b":0\r\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    let counted = info_field(&mut admin, "change_feed_invalidated_keys");
    assert_eq!(
        writer.cmd_str(&["HSET", "user:8", "name", "again"]),
        b":0\r\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        info_field(&mut admin, "change_feed_invalidated_keys"),
        counted
    );
    assert_eq!(
        writer.cmd_str(&["HGET", "user:8", "name"]),
        b"$5\r\nagain\r\n"
    );
    for t in [&table, &users] {
        psql(
            &url,
            &format!("DROP TRIGGER IF EXISTS ferrocache_notify ON {t}"),
        );
    }
}

/// The next reply that is not a push (invalidations may come before it).
fn reply_after_pushes(conn: &mut RawConn) -> Vec<u8> {
    loop {
        let frame = conn.read_reply();
        if !frame.starts_with(b">") {
            return frame;
        }
    }
}
