//! End to end: fill the real binary past `maxmemory` under each policy and check what stays.

mod common;

use common::{node, RawConn};

const VALUE: usize = 1000;

fn info_field(conn: &mut RawConn, section: &str, field: &str) -> String {
    let reply = conn.cmd_str(&["INFO", section]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("INFO {section} lacks {field}: {text}"))
}

/// Writes `count` keys `prefix:i` with a 1000-byte value (and a TTL in seconds when given),
/// pipelined; returns how many writes were refused with an OOM error.
fn fill(conn: &mut RawConn, prefix: &str, count: usize, ttl: Option<u64>) -> usize {
    let value = vec![b'v'; VALUE];
    let mut oom = 0;
    for chunk_start in (0..count).step_by(100) {
        let end = (chunk_start + 100).min(count);
        let mut batch = Vec::new();
        for i in chunk_start..end {
            let key = format!("{prefix}:{i}");
            match ttl {
                Some(t) => batch.extend(RawConn::encode(&[
                    b"SET",
                    key.as_bytes(),
                    &value,
                    b"EX",
                    t.to_string().as_bytes(),
                ])),
                None => batch.extend(RawConn::encode(&[b"SET", key.as_bytes(), &value])),
            }
        }
        conn.send(&batch);
        for _ in chunk_start..end {
            let reply = conn.read_reply();
            if reply.starts_with(b"-OOM") {
                oom += 1;
            } else {
                assert_eq!(reply, b"+OK\r\n", "{}", String::from_utf8_lossy(&reply));
            }
        }
    }
    oom
}

/// How many of `prefix:0..count` still exist.
fn surviving(conn: &mut RawConn, prefix: &str, count: usize) -> usize {
    let mut alive = 0;
    for start in (0..count).step_by(100) {
        let keys: Vec<String> = (start..(start + 100).min(count))
            .map(|i| format!("{prefix}:{i}"))
            .collect();
        let mut args: Vec<&str> = vec!["EXISTS"];
        args.extend(keys.iter().map(String::as_str));
        let reply = conn.cmd_str(&args);
        let n: usize = String::from_utf8_lossy(&reply[1..reply.len() - 2])
            .parse()
            .expect("integer reply");
        alive += n;
    }
    alive
}

fn read_all(conn: &mut RawConn, prefix: &str, count: usize) {
    let mut batch = Vec::new();
    for i in 0..count {
        batch.extend(RawConn::encode(&[
            b"GET",
            format!("{prefix}:{i}").as_bytes(),
        ]));
    }
    conn.send(&batch);
    for _ in 0..count {
        conn.read_reply();
    }
}

#[test]
fn noeviction_refuses_writes_but_serves_reads_and_del() {
    let node = node(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]);
    let mut c = node.raw();
    let oom = fill(&mut c, "k", 6000, None);
    assert!(oom > 0, "6 MB into 3 MB without an OOM error");
    assert_eq!(
        c.cmd_str(&["SET", "another", "x"]),
        b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    // Reads and deletes still work, and deleting makes room again.
    assert!(c.cmd_str(&["GET", "k:0"]).starts_with(b"$1000\r\n"));
    let mut del: Vec<String> = vec!["DEL".into()];
    del.extend((0..3000).map(|i| format!("k:{i}")));
    let del: Vec<&str> = del.iter().map(String::as_str).collect();
    assert!(!c.cmd_str(&del).starts_with(b"-"));
    assert_eq!(c.cmd_str(&["SET", "another", "x"]), b"+OK\r\n");
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), "0");
}

#[test]
fn allkeys_lru_evicts_and_keeps_recently_used_keys() {
    let node = node(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = node.raw();
    fill(&mut c, "hot", 200, None);
    for round in 0..40 {
        // Touch the hot keys between waves of cold writes.
        read_all(&mut c, "hot", 200);
        assert_eq!(fill(&mut c, &format!("cold{round}"), 500, None), 0);
    }
    let hot = surviving(&mut c, "hot", 200);
    assert!(hot >= 180, "only {hot} of 200 recently used keys survived");
    let evicted: u64 = info_field(&mut c, "stats", "evicted_keys").parse().unwrap();
    assert!(evicted > 10_000, "evicted {evicted}");
    let used: u64 = info_field(&mut c, "memory", "used_memory").parse().unwrap();
    assert!(
        used < 5 * 1024 * 1024,
        "used_memory {used} over a 4 MB limit"
    );
    assert_eq!(
        info_field(&mut c, "memory", "maxmemory_policy"),
        "allkeys-lru"
    );
}

#[test]
fn allkeys_lfu_keeps_frequently_used_keys() {
    let node = node(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lfu"]);
    let mut c = node.raw();
    fill(&mut c, "hot", 200, None);
    for _ in 0..20 {
        read_all(&mut c, "hot", 200);
    }
    assert!(c.cmd_str(&["OBJECT", "FREQ", "hot:1"]).starts_with(b":"));
    for round in 0..20 {
        assert_eq!(fill(&mut c, &format!("cold{round}"), 1000, None), 0);
    }
    let hot = surviving(&mut c, "hot", 200);
    assert!(
        hot >= 180,
        "only {hot} of 200 frequently used keys survived"
    );
}

#[test]
fn allkeys_random_evicts_without_errors() {
    let node = node(&["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-random"]);
    let mut c = node.raw();
    assert_eq!(fill(&mut c, "k", 15_000, None), 0);
    let left = surviving(&mut c, "k", 15_000);
    assert!(left > 500 && left < 5000, "{left} keys left");
}

#[test]
fn volatile_policies_never_evict_keys_without_ttl() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "volatile-tinylfu",
    ] {
        let node = node(&["--maxmemory", "4mb", "--maxmemory-policy", policy]);
        let mut c = node.raw();
        fill(&mut c, "keep", 1000, None);
        assert_eq!(fill(&mut c, "temp", 8000, Some(10_000)), 0, "{policy}");
        assert_eq!(
            surviving(&mut c, "keep", 1000),
            1000,
            "{policy} evicted a key without TTL"
        );
        assert!(
            surviving(&mut c, "temp", 8000) < 8000,
            "{policy} evicted nothing"
        );
        // With no volatile key left to evict, writes that need memory are refused.
        let mut del: Vec<String> = vec!["DEL".into()];
        del.extend((0..8000).map(|i| format!("temp:{i}")));
        let del: Vec<&str> = del.iter().map(String::as_str).collect();
        c.cmd_str(&del);
        assert!(
            fill(&mut c, "more", 6000, None) > 0,
            "{policy} without volatile keys"
        );
    }
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring_first() {
    let node = node(&["--maxmemory", "4mb", "--maxmemory-policy", "volatile-ttl"]);
    let mut c = node.raw();
    fill(&mut c, "soon", 1000, Some(1_000));
    fill(&mut c, "late", 1000, Some(100_000));
    fill(&mut c, "later", 3000, Some(200_000));
    let soon = surviving(&mut c, "soon", 1000);
    let late = surviving(&mut c, "late", 1000);
    assert!(
        soon < late,
        "soonest-expiring kept {soon}, later ones {late}"
    );
}

#[test]
fn tinylfu_keeps_the_hot_set_through_a_scan() {
    let node = node(&[
        "--maxmemory",
        "4mb",
        "--maxmemory-policy",
        "allkeys-tinylfu",
    ]);
    let mut c = node.raw();
    fill(&mut c, "hot", 1500, None);
    for _ in 0..5 {
        read_all(&mut c, "hot", 1500);
    }
    let before = surviving(&mut c, "hot", 1500);
    // A one-off scan, cache-aside: each key read once (a miss), then written.
    for start in (0..20_000).step_by(500) {
        let mut batch = Vec::new();
        for i in start..start + 500 {
            batch.extend(RawConn::encode(&[b"GET", format!("scan:{i}").as_bytes()]));
        }
        c.send(&batch);
        for _ in 0..500 {
            c.read_reply();
        }
        fill(&mut c, &format!("scan{start}"), 500, None);
    }
    let after = surviving(&mut c, "hot", 1500);
    assert!(
        after * 10 >= before * 9,
        "the scan flushed the hot set: {before} hot keys before, {after} after"
    );
}

#[test]
fn policy_and_limit_change_at_runtime() {
    let node = node(&[]);
    let mut c = node.raw();
    assert_eq!(info_field(&mut c, "memory", "maxmemory"), "0");
    assert_eq!(
        // Above a fresh node's own footprint (~2.2 MB with the latency histograms that
        // `latency-tracking yes` keeps, as Redis does), so there is something to evict.
        c.cmd_str(&["CONFIG", "SET", "maxmemory", "4mb"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-tinylfu"]),
        b"+OK\r\n"
    );
    assert_eq!(info_field(&mut c, "memory", "maxmemory"), "4194304");
    assert_eq!(
        info_field(&mut c, "memory", "maxmemory_policy"),
        "allkeys-tinylfu"
    );
    assert!(c
        .cmd_str(&["CONFIG", "SET", "maxmemory-policy", "bogus"])
        .starts_with(b"-ERR CONFIG SET failed"));
    assert_eq!(fill(&mut c, "k", 5000, None), 0);
    let evicted: u64 = info_field(&mut c, "stats", "evicted_keys").parse().unwrap();
    assert!(evicted > 0);
    c.cmd_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    c.cmd_str(&["SET", "f", "1"]);
    assert!(c.cmd_str(&["OBJECT", "FREQ", "f"]).starts_with(b":"));
    assert!(c
        .cmd_str(&["OBJECT", "IDLETIME", "f"])
        .starts_with(b"-ERR An LFU"));
}
