//! End to end: the Prometheus endpoint (`metrics-addr`), SLOWLOG, LATENCY and the INFO
//! fields monitoring tools read, on the real binary, compared with the reference Redis where
//! it has the same thing.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cache_testkit::{check_exposition, http_request, metric, scrape};
use common::{node, reference_redis};
use redis::Value;

fn config_get(c: &mut redis::Connection, pattern: &str) -> HashMap<String, String> {
    redis::cmd("CONFIG")
        .arg("GET")
        .arg(pattern)
        .query(c)
        .unwrap()
}

fn metrics_addr(c: &mut redis::Connection) -> String {
    config_get(c, "metrics-addr")["metrics-addr"].clone()
}

/// This connection's address as the server sees it (CLIENT INFO's `addr`).
fn client_addr(c: &mut redis::Connection) -> String {
    let info: String = redis::cmd("CLIENT").arg("INFO").query(c).unwrap();
    info.split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap()
        .to_string()
}

fn value(page: &str, series: &str) -> f64 {
    metric(page, series).unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

#[test]
fn metrics_endpoint_counts_what_the_node_does() {
    let node = node(&["--metrics-addr", "127.0.0.1:0"]);
    let mut c = node.client();
    let addr = metrics_addr(&mut c);
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    let before = scrape(&addr);
    check_exposition(&before);

    for i in 0..20 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    for i in 0..30 {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query(&mut c)
            .unwrap();
    }
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("in3").arg("v").query(&mut c).unwrap();
    let _: () = redis::cmd("EXPIRE")
        .arg("in3")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let _: redis::RedisResult<()> = redis::cmd("INCR").arg("in3").query(&mut c);

    let after = scrape(&addr);
    check_exposition(&after);
    let grew = |series: &str| value(&after, series) - metric(&before, series).unwrap_or(0.0);
    assert_eq!(grew("ferrocache_command_calls_total{cmd=\"set\"}"), 21.0);
    assert_eq!(grew("ferrocache_command_calls_total{cmd=\"get\"}"), 30.0);
    assert_eq!(
        value(
            &after,
            "ferrocache_command_failed_calls_total{cmd=\"incr\"}"
        ),
        1.0
    );
    assert_eq!(grew("ferrocache_keyspace_hits_total"), 20.0);
    assert_eq!(grew("ferrocache_keyspace_misses_total"), 10.0);
    assert!(grew("ferrocache_commands_processed_total") >= 54.0);
    assert!(grew("ferrocache_net_input_bytes_total") > 0.0);
    assert!(grew("ferrocache_net_output_bytes_total") > 0.0);
    // The histogram: its count is the calls, its buckets are cumulative and end at +Inf.
    let get = "ferrocache_command_duration_seconds";
    assert_eq!(value(&after, &format!("{get}_count{{cmd=\"get\"}}")), 30.0);
    assert_eq!(
        value(&after, &format!("{get}_bucket{{cmd=\"get\",le=\"+Inf\"}}")),
        30.0
    );
    let buckets: Vec<f64> = after
        .lines()
        .filter(|l| l.starts_with(&format!("{get}_bucket{{cmd=\"get\",")))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 17);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(value(&after, &format!("{get}_sum{{cmd=\"get\"}}")) > 0.0);
    assert_eq!(value(&after, "ferrocache_db_keys{db=\"0\"}"), 20.0);
    assert_eq!(value(&after, "ferrocache_db_keys{db=\"3\"}"), 1.0);
    assert_eq!(value(&after, "ferrocache_db_keys_expiring{db=\"3\"}"), 1.0);
    assert_eq!(value(&after, "ferrocache_connected_clients"), 1.0);
    assert!(value(&after, "ferrocache_connections_received_total") >= 1.0);
    assert!(value(&after, "ferrocache_memory_used_bytes") > 0.0);
    assert_eq!(value(&after, "ferrocache_memory_max_bytes"), 0.0);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("100mb")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        value(&scrape(&addr), "ferrocache_memory_max_bytes"),
        (100u64 << 20) as f64
    );
}

#[test]
fn metrics_endpoint_answers_only_get_metrics() {
    let node = node(&["--metrics-addr", "127.0.0.1:0"]);
    let addr = metrics_addr(&mut node.client());
    let (status, _, body) = http_request(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = http_request(&addr, b"GET /metricsx HTTP/1.1\r\n\r\n");
    assert_eq!(status, 404);
    let (status, head, _) = http_request(&addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    let (status, head, body) = http_request(&addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
    assert!(
        body.is_empty() && head.contains("Content-Length: "),
        "{head}"
    );
    let (status, _, _) = http_request(&addr, b"GET /metrics?name[]=x HTTP/1.1\r\n\r\n");
    assert_eq!(status, 200);
    let (status, _, _) = http_request(&addr, b"nonsense\r\n\r\n");
    assert_eq!(status, 400);
    // A head that never ends is cut off, not buffered without bound.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let (status, _, _) = http_request(&addr, &huge);
    assert_eq!(status, 431);
    // The node still serves both protocols afterwards.
    assert!(scrape(&addr).contains("ferrocache_uptime_seconds"));
    let pong: String = redis::cmd("PING").query(&mut node.client()).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn metrics_are_off_by_default() {
    let node = node(&[]);
    assert_eq!(metrics_addr(&mut node.client()), "");
    let mut c = node.client();
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("metrics-addr")
        .arg("127.0.0.1:0")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("can't set immutable config"),
        "{err}"
    );
}

fn bulk(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

/// A slow log entry: (id, timestamp, duration, argv, client address, client name).
type Entry = (i64, i64, i64, Vec<String>, String, String);

/// One SLOWLOG GET entry, checking Redis 7's shape on the way.
fn entry(v: &Value) -> Entry {
    let fields = array(v);
    assert_eq!(fields.len(), 6, "{v:?}");
    (
        int(&fields[0]),
        int(&fields[1]),
        int(&fields[2]),
        array(&fields[3]).iter().map(bulk).collect(),
        bulk(&fields[4]),
        bulk(&fields[5]),
    )
}

fn config_set(c: &mut redis::Connection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(c)
        .unwrap();
}

/// The entries the same script leaves in the slow log, newest first. Runs on a fresh
/// connection so the client address is its own.
fn slowlog_script(c: &mut redis::Connection) -> Vec<Entry> {
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(c).unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("obs")
        .query(c)
        .unwrap();
    let mut rpush = redis::cmd("RPUSH");
    rpush.arg("slowlog:list").arg("x".repeat(200));
    for i in 0..40 {
        rpush.arg(i);
    }
    let _: i64 = rpush.query(c).unwrap();
    let _: redis::RedisResult<()> = redis::cmd("AUTH").arg("nosuchpassword").query(c);
    let _: () = redis::cmd("DEL").arg("slowlog:list").query(c).unwrap();
    let got: Value = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(c).unwrap();
    array(&got).iter().map(entry).collect()
}

#[test]
fn slowlog_records_entries_in_redis_shape() {
    let node = node(&[]);
    let mut c = node.client();
    let defaults = config_get(&mut c, "slowlog-*");
    assert_eq!(defaults["slowlog-log-slower-than"], "10000");
    assert_eq!(defaults["slowlog-max-len"], "128");
    config_set(&mut c, "slowlog-log-slower-than", "0");
    let ours = slowlog_script(&mut c);
    // Newest first; SLOWLOG RESET is logged once it has run, as Redis does, before the
    // connection had a name.
    let names: Vec<&str> = ours.iter().map(|e| e.3[0].as_str()).collect();
    assert_eq!(
        names,
        ["DEL", "AUTH", "RPUSH", "CLIENT", "SLOWLOG"],
        "{ours:?}"
    );
    let ids: Vec<i64> = ours.iter().map(|e| e.0).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1] + 1), "{ids:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let local = client_addr(&mut c);
    for (i, (_, time, usec, _, addr, name)) in ours.iter().enumerate() {
        assert!((now - time).abs() <= 5, "{time} vs {now}");
        assert!(*usec >= 0);
        assert_eq!(addr, &local);
        assert_eq!(name, if i == 4 { "" } else { "obs" });
    }
    // 43 arguments: 31 kept, then one saying how many more; a long one cut at 128 bytes.
    let rpush = &ours[2].3;
    assert_eq!(rpush.len(), 32);
    assert_eq!(rpush[2], format!("{}... (72 more bytes)", "x".repeat(128)));
    assert_eq!(rpush[31], "... (12 more arguments)");
    assert_eq!(ours[1].3, ["AUTH", "(redacted)"]);

    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert!(len >= 5, "{len}"); // the four above and SLOWLOG GET itself
    let two: Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert_eq!(array(&two).len(), 2);
    let ten: Value = redis::cmd("SLOWLOG").arg("GET").query(&mut c).unwrap();
    assert!(array(&ten).len() <= 10);
    let err = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-2)
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("count should be greater than or equal to -1"),
        "{err}"
    );

    // slowlog-max-len trims the oldest; a negative threshold logs nothing.
    config_set(&mut c, "slowlog-max-len", "3");
    for _ in 0..5 {
        let _: String = redis::cmd("PING").query(&mut c).unwrap();
    }
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(len, 3);
    config_set(&mut c, "slowlog-log-slower-than", "-1");
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut c).unwrap();
    let _: String = redis::cmd("PING").query(&mut c).unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(len, 0);
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg("-2")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("argument must be between"),
        "{err}"
    );

    // The same script on the reference Redis leaves the same entries (argv, name; the
    // timestamp and duration are its own).
    let Some(addr) = reference_redis("slowlog_records_entries_in_redis_shape") else {
        return;
    };
    let mut theirs = redis::Client::open(format!("redis://{addr}/15"))
        .unwrap()
        .get_connection()
        .unwrap();
    let saved = config_get(&mut theirs, "slowlog-log-slower-than");
    config_set(&mut theirs, "slowlog-log-slower-than", "0");
    let reference = slowlog_script(&mut theirs);
    config_set(
        &mut theirs,
        "slowlog-log-slower-than",
        &saved["slowlog-log-slower-than"],
    );
    let strip = |entries: &[Entry]| {
        entries
            .iter()
            .map(|e| (e.3.clone(), e.5.clone()))
            .collect::<Vec<_>>()
    };
    // Another client of the shared Redis may have been logged in between: compare ours
    // with the reference's entries from this connection only.
    let their_local = client_addr(&mut theirs);
    let reference: Vec<_> = reference
        .into_iter()
        .filter(|e| e.4 == their_local)
        .collect();
    assert_eq!(strip(&ours), strip(&reference));
}

#[test]
fn slowlog_and_latency_help_match_redis() {
    let node = node(&[]);
    let mut ours = node.raw();
    for (cmd, bad) in [("SLOWLOG", "LEN"), ("LATENCY", "LATEST")] {
        let help = ours.cmd_str(&[cmd, "HELP"]);
        let text = String::from_utf8_lossy(&help);
        assert!(text.contains(&format!("{cmd} <subcommand>")), "{text}");
        assert_eq!(
            ours.cmd_str(&[cmd, "nosuch"]),
            format!("-ERR unknown subcommand 'nosuch'. Try {cmd} HELP.\r\n").into_bytes()
        );
        assert_eq!(
            ours.cmd_str(&[cmd, bad, "x"]),
            format!(
                "-ERR wrong number of arguments for '{}|{}' command\r\n",
                cmd.to_lowercase(),
                bad.to_lowercase()
            )
            .into_bytes()
        );
    }
    let Some(addr) = reference_redis("slowlog_and_latency_help_match_redis") else {
        return;
    };
    let mut theirs = common::RawConn::connect(&addr);
    // SLOWLOG's help is Redis's word for word; LATENCY's lists only what we implement.
    assert_eq!(
        ours.cmd_str(&["SLOWLOG", "HELP"]),
        theirs.cmd_str(&["SLOWLOG", "HELP"])
    );
    for script in [
        vec!["SLOWLOG", "GET", "x"],
        vec!["SLOWLOG", "GET", "-7"],
        vec!["SLOWLOG", "nosuch"],
        vec!["SLOWLOG"],
        vec!["LATENCY", "HISTORY"],
        vec!["LATENCY", "HISTORY", "no-such-event"],
        vec!["LATENCY", "RESET", "no-such-event"],
        vec!["COMMAND", "INFO", "slowlog|get", "latency|latest"],
    ] {
        let a = ours.cmd_str(&script);
        let b = theirs.cmd_str(&script);
        if script[0] == "COMMAND" {
            // Same names and arity (the flags and categories differ in detail).
            let head = |r: &[u8]| {
                let text = String::from_utf8_lossy(r).into_owned();
                text.split("\r\n").take(5).collect::<Vec<_>>().join("|")
            };
            assert_eq!(head(&a), head(&b));
        } else {
            assert_eq!(
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b),
                "{script:?}"
            );
        }
    }
}

/// Runs a command slow enough for a 1 ms threshold (KEYS over many keys), up to a few tries.
fn slow_command(c: &mut redis::Connection) {
    let mut pipe = redis::pipe();
    for i in 0..50_000 {
        pipe.cmd("SET").arg(format!("slow:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(c).unwrap();
    let _: Vec<String> = redis::cmd("KEYS").arg("*nomatch*").query(c).unwrap();
}

#[test]
fn latency_monitor_records_slow_commands() {
    let node = node(&[]);
    let mut c = node.client();
    let threshold = config_get(&mut c, "latency-monitor-threshold");
    assert_eq!(threshold["latency-monitor-threshold"], "0");
    // Off by default: even a slow command leaves nothing.
    slow_command(&mut c);
    let latest: Value = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert!(array(&latest).is_empty(), "{latest:?}");

    config_set(&mut c, "latency-monitor-threshold", "1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let latest = loop {
        let started = Instant::now();
        let _: Vec<String> = redis::cmd("KEYS").arg("*nomatch*").query(&mut c).unwrap();
        let latest: Value = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
        if !array(&latest).is_empty() {
            break latest;
        }
        assert!(
            Instant::now() < deadline,
            "KEYS took {:?} and was never recorded",
            started.elapsed()
        );
    };
    let events = array(&latest);
    let event = array(&events[0]);
    assert_eq!(event.len(), 4, "{event:?}");
    assert_eq!(bulk(&event[0]), "command");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - int(&event[1])).abs() <= 5);
    let (latest_ms, max_ms) = (int(&event[2]), int(&event[3]));
    assert!(latest_ms >= 1 && max_ms >= latest_ms, "{event:?}");

    let history: Value = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg("command")
        .query(&mut c)
        .unwrap();
    let samples = array(&history);
    assert!(!samples.is_empty());
    for s in samples {
        let pair = array(s);
        assert_eq!(pair.len(), 2);
        assert!(int(&pair[1]) >= 1 && int(&pair[1]) <= max_ms);
    }
    // Event names are exact: a differently cased name is another (absent) event.
    let none: i64 = redis::cmd("LATENCY")
        .arg("RESET")
        .arg("COMMAND")
        .query(&mut c)
        .unwrap();
    assert_eq!(none, 0);
    let reset: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c).unwrap();
    assert!(reset >= 1);
    let latest: Value = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert!(array(&latest).is_empty());
}

fn info_fields(info: &str) -> HashMap<String, String> {
    info.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What redis_exporter (and most dashboards) read from INFO.
const EXPORTER_FIELDS: &[&str] = &[
    "redis_version",
    "uptime_in_seconds",
    "connected_clients",
    "blocked_clients",
    "maxclients",
    "used_memory",
    "used_memory_rss",
    "used_memory_peak",
    "used_memory_lua",
    "total_system_memory",
    "maxmemory",
    "mem_fragmentation_ratio",
    "mem_fragmentation_bytes",
    "loading",
    "rdb_changes_since_last_save",
    "rdb_bgsave_in_progress",
    "rdb_last_save_time",
    "rdb_last_bgsave_status",
    "rdb_last_bgsave_time_sec",
    "aof_enabled",
    "aof_rewrite_in_progress",
    "aof_last_rewrite_time_sec",
    "total_connections_received",
    "total_commands_processed",
    "instantaneous_ops_per_sec",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "instantaneous_input_kbps",
    "instantaneous_output_kbps",
    "rejected_connections",
    "expired_keys",
    "evicted_keys",
    "keyspace_hits",
    "keyspace_misses",
    "pubsub_channels",
    "pubsub_patterns",
    "latest_fork_usec",
    "total_error_replies",
    "role",
    "connected_slaves",
    "master_repl_offset",
    "repl_backlog_size",
    "used_cpu_sys",
    "used_cpu_user",
];

#[test]
fn info_has_the_fields_exporters_read() {
    let node = node(&[]);
    let mut c = node.client();
    let info: String = redis::cmd("INFO").arg("all").query(&mut c).unwrap();
    let ours = info_fields(&info);
    for f in EXPORTER_FIELDS {
        assert!(ours.contains_key(*f), "INFO lacks {f}");
    }
    assert_eq!(ours["role"], "master");
    assert_eq!(ours["connected_slaves"], "0");
    assert_eq!(ours["latest_fork_usec"], "0");
    assert_eq!(ours["rdb_changes_since_last_save"], "0");
    assert!(ours["used_memory_rss"].parse::<u64>().unwrap() > 0);
    assert!(ours["total_system_memory"].parse::<u64>().unwrap() > 0);
    assert!(ours["used_cpu_user"].parse::<f64>().is_ok());
    assert!(ours["instantaneous_input_kbps"].parse::<f64>().is_ok());

    // A steady stream of commands shows in instantaneous_ops_per_sec (sampled every 100 ms).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for _ in 0..50 {
            let _: String = redis::cmd("PING").query(&mut c).unwrap();
        }
        let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
        let stats = info_fields(&info);
        if stats["instantaneous_ops_per_sec"].parse::<u64>().unwrap() > 0 {
            assert!(stats["instantaneous_input_kbps"].parse::<f64>().unwrap() > 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "ops/sec never moved: {info}");
        std::thread::sleep(Duration::from_millis(30));
    }
    // INFO's errors count the error replies.
    let before: u64 = info_fields(&redis::cmd("INFO").query::<String>(&mut c).unwrap())
        ["total_error_replies"]
        .parse()
        .unwrap();
    let _: redis::RedisResult<()> = redis::cmd("INCR").arg("nosuch:list").arg("x").query(&mut c);
    let _: () = redis::cmd("RPUSH").arg("l").arg("a").query(&mut c).unwrap();
    let _: redis::RedisResult<()> = redis::cmd("INCR").arg("l").query(&mut c);
    let after: u64 = info_fields(&redis::cmd("INFO").query::<String>(&mut c).unwrap())
        ["total_error_replies"]
        .parse()
        .unwrap();
    assert_eq!(after - before, 2);

    // Every field we report in these sections has Redis's name for it.
    let Some(addr) = reference_redis("info_has_the_fields_exporters_read") else {
        return;
    };
    let mut theirs = redis::Client::open(format!("redis://{addr}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let their_info: String = redis::cmd("INFO").arg("all").query(&mut theirs).unwrap();
    let theirs = info_fields(&their_info);
    for f in EXPORTER_FIELDS {
        assert!(theirs.contains_key(*f), "the reference Redis has no {f}");
    }
    for section in ["persistence", "stats", "replication", "cpu"] {
        let info: String = redis::cmd("INFO").arg(section).query(&mut c).unwrap();
        for name in info_fields(&info).keys() {
            assert!(
                theirs.contains_key(name),
                "INFO {section}: {name} is not a Redis field"
            );
        }
    }
}

#[test]
fn metrics_show_the_backing_store_queue() {
    let dir = std::env::temp_dir().join(format!(
        "ferrocache-obs-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let d = dir.display().to_string();
    let node = node(&[
        "--backing-mode",
        "write-back",
        "--dir",
        &d,
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let mut c = node.client();
    let addr = metrics_addr(&mut c);
    for i in 0..10 {
        let _: () = redis::cmd("SET")
            .arg(format!("b:{i}"))
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    // The write-back queue drains into SQLite (every 100 ms by default).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = scrape(&addr);
        check_exposition(&page);
        if value(&page, "ferrocache_backing_flushed_total") >= 10.0 {
            assert_eq!(value(&page, "ferrocache_backing_pending_writes"), 0.0);
            assert_eq!(value(&page, "ferrocache_backing_failed_total"), 0.0);
            assert!(value(&page, "ferrocache_backing_commits_total") >= 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "never flushed:\n{page}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--loglevel debug` logs every command with its client's context (id and address), and never
/// its arguments (AUTH's password stays out of the log).
#[test]
fn debug_log_carries_request_context_without_arguments() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cache-node"))
        .args(["--bind", "127.0.0.1", "--port", "0", "--loglevel", "debug"])
        .args(["--requirepass", "s3cret-word"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("node log");
        if let Some(a) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
        {
            break a.to_string();
        }
    };
    let mut c = redis::Client::open(format!("redis://:s3cret-word@{addr}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let mine = client_addr(&mut c);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    let found = loop {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = line.contains("cmd=\"set\"") && line.contains(&mine);
            lines.push(line);
            if hit {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    assert!(
        found,
        "no debug line for SET from {mine}:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("cmd=\"auth\"")),
        "AUTH itself is logged (by name)"
    );
    assert!(
        !lines.iter().any(|l| l.contains("s3cret-word")),
        "the password reached the log"
    );
}
