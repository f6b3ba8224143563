//! What the shared admission path decides on a node, where the reference Redis cannot be
//! asked (it must not be reconfigured): MULTI under memory pressure, EXEC of a queue that
//! would grow memory, CLIENT REPLY, and MEMORY USAGE (which the suite's hash unit needs).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{node, reference, RawConn};

const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

#[test]
fn multi_under_memory_pressure_is_refused_as_redis_refuses_it() {
    let node = node(&[]);
    let mut c = node.raw();
    let mut admin = node.raw();
    assert_eq!(
        text(&admin.cmd_str(&["CONFIG", "SET", "maxmemory", "1"])),
        "+OK\r\n"
    );
    // MULTI itself and DISCARD pass; queueing takes memory, so it is refused and the
    // transaction is flagged.
    assert_eq!(text(&c.cmd_str(&["MULTI"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["SET", "x", "1"])), OOM);
    assert_eq!(text(&c.cmd_str(&["DISCARD"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["MULTI"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["GET", "x"])), OOM);
    assert_eq!(
        text(&c.cmd_str(&["EXEC"])),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(
        text(&admin.cmd_str(&["CONFIG", "SET", "maxmemory", "0"])),
        "+OK\r\n"
    );

    // Queued while there was room, EXEC'd when there is none: EXEC is refused with the
    // reason and the transaction is over.
    assert_eq!(text(&c.cmd_str(&["MULTI"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["SET", "x", "1"])), "+QUEUED\r\n");
    assert_eq!(
        text(&admin.cmd_str(&["CONFIG", "SET", "maxmemory", "1"])),
        "+OK\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["EXEC"])),
        "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["EXEC"])), "-ERR EXEC without MULTI\r\n");
    assert_eq!(
        text(&admin.cmd_str(&["CONFIG", "SET", "maxmemory", "0"])),
        "+OK\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["EXISTS", "x"])), ":0\r\n");
}

#[test]
fn client_reply_off_skip_and_on() {
    let node = node(&[]);
    let mut s = std::net::TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"CLIENT REPLY OFF\r\nSET a 1\r\nGET a\r\nCLIENT REPLY ON\r\nGET a\r\n\
          CLIENT REPLY SKIP\r\nGET a\r\nINCR a\r\nGET a\r\n\
          CLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\nPING\r\n",
    )
    .unwrap();
    // CLIENT REPLY ON right after SKIP clears the skip: its OK is sent (as Redis).
    let expected = b"+OK\r\n$1\r\n1\r\n:2\r\n$1\r\n2\r\n+OK\r\n+PONG\r\n";
    let mut got = vec![0; expected.len()];
    s.read_exact(&mut got).expect("replies");
    assert_eq!(text(&got), text(expected));
    let mut c = RawConn::connect(&node.addr.to_string());
    assert_eq!(
        text(&c.cmd_str(&["CLIENT", "REPLY", "maybe"])),
        "-ERR syntax error\r\n"
    );
}

#[test]
fn memory_usage_matches_redis_in_shape() {
    let node = node(&[]);
    let mut ours = node.raw();
    assert_eq!(text(&ours.cmd_str(&["HSET", "h", "a", "1"])), ":1\r\n");
    let usage = text(&ours.cmd_str(&["MEMORY", "USAGE", "h"]));
    let n: i64 = usage
        .trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("{usage}"));
    assert!(n > 0, "{usage}");
    let Some(mut theirs) = reference("memory_usage_matches_redis_in_shape", 15) else {
        return;
    };
    for args in [
        &["MEMORY", "USAGE", "nosuch"][..],
        &["MEMORY", "USAGE", "h", "SAMPLES"],
        &["MEMORY", "USAGE", "h", "SAMPLES", "x"],
        &["MEMORY", "USAGE"],
        &["MEMORY", "NOPE"],
        &["MEMORY", "PURGE"],
    ] {
        assert_eq!(
            text(&ours.cmd_str(args)),
            text(&theirs.cmd_str(args)),
            "{args:?}"
        );
    }
}

#[test]
fn random_counts_from_the_wire_are_bounded() {
    let node = node(&[]);
    let mut ours = node.raw();
    // Before the bound, this asked for a 2^63-element Vec and killed the connection task.
    for setup in [
        &["SADD", "s", "a"][..],
        &["HSET", "h", "a", "1"],
        &["ZADD", "z", "0", "a"],
    ] {
        ours.cmd_str(setup);
    }
    let huge =
        String::from_utf8_lossy(&ours.cmd_str(&["SRANDMEMBER", "s", "-100000000000"])).into_owned();
    assert!(huge.starts_with("-ERR value is out of range"), "{huge}");
    assert_eq!(
        text(&ours.cmd_str(&["SRANDMEMBER", "s", "-3"])),
        "*3\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
    );
    let Some(mut theirs) = reference("random_counts_from_the_wire_are_bounded", 15) else {
        return;
    };
    let key = "ferrocache:admission:rand";
    theirs.cmd_str(&["SADD", key, "a"]);
    // The suite's overflow cases, on a missing key and on ours: Redis checks the range first.
    for args in [
        &["SRANDMEMBER", "s", "-9223372036854775808"][..],
        &["HRANDFIELD", "h", "-9223372036854775808"],
        &["HRANDFIELD", "h", "-9223372036854770000", "WITHVALUES"],
        &["HRANDFIELD", "h", "-9223372036854775808", "WITHVALUES"],
        &["ZRANDMEMBER", "z", "-9223372036854770000", "WITHSCORES"],
        &["ZRANDMEMBER", "z", "-9223372036854775808"],
    ] {
        assert_eq!(
            text(&ours.cmd_str(args)),
            text(&theirs.cmd_str(args)),
            "{args:?}"
        );
    }
    theirs.cmd_str(&["DEL", key]);
}

#[test]
fn client_unblock_wakes_a_blocked_client() {
    let node = node(&[]);
    let mut blocked = node.raw();
    let id = text(&blocked.cmd_str(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim_end().to_string();
    let mut admin = node.raw();
    for (how, reply) in [
        (None, "*-1\r\n"),
        (Some("TIMEOUT"), "*-1\r\n"),
        (
            Some("ERROR"),
            "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
        ),
    ] {
        blocked.send(&RawConn::encode(&[b"BLPOP", b"l", b"0"]));
        // Wait for the positive signal: the node counts the client as blocked.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !text(&admin.cmd_str(&["INFO", "clients"])).contains("blocked_clients:1") {
            assert!(std::time::Instant::now() < deadline, "never blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut args = vec!["CLIENT", "UNBLOCK", id.as_str()];
        args.extend(how);
        assert_eq!(text(&admin.cmd_str(&args)), ":1\r\n", "{how:?}");
        assert_eq!(text(&blocked.read_reply()), reply, "{how:?}");
    }
    assert_eq!(text(&admin.cmd_str(&["CLIENT", "UNBLOCK", &id])), ":0\r\n");
    assert_eq!(
        text(&admin.cmd_str(&["CLIENT", "UNBLOCK", "asd"])),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        text(&admin.cmd_str(&["CLIENT", "UNBLOCK", &id, "MAYBE"])),
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
}

#[test]
fn keyspace_new_events_report_created_keys() {
    let node = node(&[]);
    let mut c = node.raw();
    let mut sub = node.raw();
    assert_eq!(
        text(&c.cmd_str(&["CONFIG", "SET", "notify-keyspace-events", "En"])),
        "+OK\r\n"
    );
    assert!(text(&sub.cmd_str(&["PSUBSCRIBE", "*"])).contains("psubscribe"));
    c.cmd_str(&["SET", "foo", "bar"]);
    c.cmd_str(&["SET", "foo", "baz"]);
    c.cmd_str(&["SET", "bar", "bar"]);
    for key in ["foo", "bar"] {
        let msg = text(&sub.read_reply());
        assert!(
            msg.contains("__keyevent@0__:new")
                && msg.ends_with(&format!("${}\r\n{key}\r\n", key.len())),
            "{msg}"
        );
    }
}

/// CLIENT KILL's filters are checked as Redis checks them, and CLIENT INFO's `qbuf` shows the
/// asking client's own command, as in Redis (the suite's CLIENT LIST pattern pins it).
#[test]
fn client_kill_filters_and_client_info_match_redis() {
    let node = node(&[]);
    let mut ours = RawConn::connect(&node.addr.to_string());
    let Some(mut theirs) = reference("client_kill_filters_and_client_info_match_redis", 15) else {
        return;
    };
    for cmd in [
        &["CLIENT", "KILL", "TYPE", "wrong_type"][..],
        &["CLIENT", "KILL", "USER", "wrong_user"],
        &["CLIENT", "KILL", "TYPE", "master"],
        &["CLIENT", "KILL", "SKIPME", "maybe"],
        &["CLIENT", "KILL", "ID", "0"],
        &["CLIENT", "KILL", "ID", "10", "extra"],
    ] {
        assert_eq!(
            text(&ours.cmd_str(cmd)),
            text(&theirs.cmd_str(cmd)),
            "{cmd:?}"
        );
    }
    let field = |info: &str, name: &str| {
        info.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")).map(str::to_string))
    };
    let a = text(&ours.cmd_str(&["CLIENT", "INFO"]));
    let b = text(&theirs.cmd_str(&["CLIENT", "INFO"]));
    assert_eq!(field(&a, "qbuf"), field(&b, "qbuf"), "{a} / {b}");
    assert_eq!(field(&a, "qbuf").as_deref(), Some("26"));
    // A pub/sub client is of TYPE pubsub, not normal.
    let mut sub = RawConn::connect(&node.addr.to_string());
    sub.cmd_str(&["SUBSCRIBE", "kill-type-test"]);
    assert_eq!(
        text(&ours.cmd_str(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])),
        ":0\r\n"
    );
    assert_eq!(
        text(&ours.cmd_str(&["CLIENT", "KILL", "TYPE", "pubsub"])),
        ":1\r\n"
    );
}

/// Polls `cond` for up to five seconds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reply_over_the_output_limit_closes_its_client_only() {
    // Redis's hard limit for the normal class, and our cap over every class: the client is
    // closed with its reply unsent, the node and everyone else go on.
    for args in [
        &["--client-output-buffer-limit", "normal 1mb 0 0"][..],
        &["--client-output-buffer-cap", "1mb"],
    ] {
        let node = node(args);
        let mut c = node.raw();
        let value = vec![b'v'; 1024];
        for _ in 0..3 {
            let mut push: Vec<&[u8]> = vec![b"RPUSH", b"l"];
            push.extend(std::iter::repeat_n(&value[..], 500));
            c.cmd(&push);
        }
        let small = c.cmd_str(&["LRANGE", "l", "0", "99"]);
        assert!(small.starts_with(b"*100\r\n"), "{args:?}");
        c.send(&RawConn::encode(&[b"LRANGE", b"l", b"0", b"-1"]));
        assert!(c.read_to_close().is_empty(), "{args:?}: reply sent");
        let mut other = node.raw();
        assert_eq!(text(&other.cmd_str(&["LLEN", "l"])), ":1500\r\n");
    }
}

#[test]
fn a_subscriber_that_does_not_read_is_closed_at_its_limits() {
    let value = vec![b'm'; 10 * 1024];
    // Hard: past 256 KB queued. Soft: past 64 KB for a second.
    for (limits, pause) in [
        ("pubsub 256kb 0 0", Duration::ZERO),
        ("pubsub 0 64kb 1", Duration::from_millis(1100)),
    ] {
        let node = node(&["--client-output-buffer-limit", limits]);
        let mut sub = node.raw();
        assert!(sub.cmd_str(&["SUBSCRIBE", "ch"]).starts_with(b"*3\r\n"));
        let mut publisher = node.raw();
        let mut published = 0;
        // The socket buffers take megabytes before anything stays queued.
        while published < 4000
            && text(&publisher.cmd_str(&["PUBSUB", "NUMSUB", "ch"])).ends_with(":1\r\n")
        {
            for _ in 0..100 {
                publisher.cmd(&[b"PUBLISH", b"ch", &value]);
            }
            published += 100;
            if published == 2000 && !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        eventually(&format!("{limits}: subscriber still there"), || {
            text(&publisher.cmd_str(&["PUBSUB", "NUMSUB", "ch"])) == "*2\r\n$2\r\nch\r\n:0\r\n"
        });
        assert!(published < 4000, "{limits}: never closed");
    }
}
