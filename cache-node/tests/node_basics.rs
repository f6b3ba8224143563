//! End to end: the real binary on a free port, with the `redis` crate and raw RESP.

mod common;

use common::node;
use redis::Commands;

#[test]
fn strings_through_redis_rs() {
    let node = node(&[]);
    let mut c = node.client();
    let _: () = c.set("greeting", "hello").unwrap();
    let got: String = c.get("greeting").unwrap();
    assert_eq!(got, "hello");
    let n: i64 = c.incr("counter", 5).unwrap();
    assert_eq!(n, 5);
    let _: () = c.set_ex("temp", "x", 100).unwrap();
    let ttl: i64 = c.ttl("temp").unwrap();
    assert!((99..=100).contains(&ttl));
    let values: Vec<Option<String>> = c.mget(&["greeting", "missing"]).unwrap();
    assert_eq!(values, vec![Some("hello".to_string()), None]);
}

#[test]
fn pipelined_requests_get_replies_in_order() {
    let node = node(&[]);
    let mut raw = node.raw();
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(common::RawConn::encode(&[
            b"SET",
            format!("k{i}").as_bytes(),
            format!("{i}").as_bytes(),
        ]));
        batch.extend(common::RawConn::encode(&[
            b"GET",
            format!("k{i}").as_bytes(),
        ]));
    }
    raw.send(&batch);
    for i in 0..100 {
        assert_eq!(raw.read_reply(), b"+OK\r\n");
        let v = format!("{i}");
        assert_eq!(
            raw.read_reply(),
            format!("${}\r\n{v}\r\n", v.len()).into_bytes()
        );
    }
}

#[test]
fn inline_commands_and_protocol_errors() {
    let node = node(&[]);
    let mut raw = node.raw();
    raw.send(b"SET a \"b c\"\r\nGET a\r\n");
    assert_eq!(raw.read_reply(), b"+OK\r\n");
    assert_eq!(raw.read_reply(), b"$3\r\nb c\r\n");
    raw.send(b"*1\r\n$x\r\n");
    assert_eq!(
        raw.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    // The server survives and serves others.
    let mut again = node.raw();
    assert_eq!(again.cmd_str(&["PING"]), b"+PONG\r\n");
}

#[test]
fn large_value_in_pieces() {
    let node = node(&[]);
    let mut raw = node.raw();
    let value = vec![b'v'; 3 * 1024 * 1024];
    let frame = common::RawConn::encode(&[b"SET", b"big", &value]);
    for chunk in frame.chunks(64 * 1024) {
        raw.send(chunk);
    }
    assert_eq!(raw.read_reply(), b"+OK\r\n");
    assert_eq!(raw.cmd_str(&["STRLEN", "big"]), b":3145728\r\n");
}

#[test]
fn bulk_length_limit_is_enforced() {
    let node = node(&["--proto-max-bulk-len", "1mb"]);
    let mut raw = node.raw();
    raw.send(b"*2\r\n$3\r\nGET\r\n$2000000\r\n");
    assert_eq!(
        raw.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
}

#[test]
fn auth_and_hello() {
    let node = node(&["--requirepass", "sekret"]);
    let mut raw = node.raw();
    assert_eq!(
        raw.cmd_str(&["GET", "a"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        raw.cmd_str(&["AUTH", "wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    let hello = raw.cmd_str(&["HELLO", "3", "AUTH", "default", "sekret", "SETNAME", "me"]);
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    assert_eq!(raw.cmd_str(&["GET", "a"]), b"_\r\n");
    assert_eq!(raw.cmd_str(&["CLIENT", "GETNAME"]), b"$2\r\nme\r\n");
}

#[test]
fn active_expiry_removes_untouched_keys() {
    let node = node(&["--hz", "50"]);
    let mut raw = node.raw();
    for i in 0..200 {
        raw.cmd_str(&["SET", &format!("k{i}"), "v", "PX", "50"]);
    }
    raw.cmd_str(&["SET", "keep", "v"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if raw.cmd_str(&["DBSIZE"]) == b":1\r\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired keys were not collected"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let info = String::from_utf8(raw.cmd_str(&["INFO", "stats"])).unwrap();
    assert!(info.contains("expired_keys:200"), "{info}");
}

#[test]
fn shutdown_command_stops_the_process() {
    let mut node = node(&[]);
    let mut raw = node.raw();
    raw.send(&common::RawConn::encode(&[b"SHUTDOWN"]));
    assert!(node.wait_exit(std::time::Duration::from_secs(10)));
}

#[test]
fn sigterm_stops_the_process() {
    let mut node = node(&[]);
    node.terminate();
    assert!(node.wait_exit(std::time::Duration::from_secs(10)));
}

/// CPU time (user + system, in clock ticks) the process has used, from /proc.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn a_busy_polling_worker_serves_everything_and_sleeps_when_idle() {
    // One worker on a machine with more CPUs polls for a while after every batch.
    let node = node(&["--threads", "1", "--busy-poll-us", "500"]);
    let mut c = node.client();
    let mut blocked = node.client();
    let waiter = std::thread::spawn(move || {
        let got: Option<(String, String)> = redis::cmd("BLPOP")
            .arg("queue")
            .arg(5)
            .query(&mut blocked)
            .unwrap();
        got
    });
    for i in 0..2_000 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    let mut pipe = redis::pipe();
    for i in 0..2_000 {
        pipe.get(format!("k{i}"));
    }
    let values: Vec<i64> = pipe.query(&mut c).unwrap();
    assert_eq!(values, (0..2_000).collect::<Vec<_>>());
    // A parked connection is still woken promptly while the worker polls.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let _: i64 = c.rpush("queue", "job").unwrap();
    assert_eq!(
        waiter.join().unwrap(),
        Some(("queue".to_string(), "job".to_string()))
    );
    // Idle, the poller goes back to sleep: well under 5% of a CPU over a second.
    let Some(before) = cpu_ticks(node.pid()) else {
        eprintln!("skipped the idle CPU check: no /proc here");
        return;
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = cpu_ticks(node.pid()).unwrap();
    assert!(
        after - before <= 5,
        "an idle node used {} ticks of CPU in a second",
        after - before
    );
}

#[test]
fn unauthenticated_clients_get_redis_limits_before_auth() {
    // Redis (networking.c) lets a client that must authenticate send at most 10 arguments
    // of at most 16384 bytes before AUTH: a header alone used to make the node reserve
    // 512 MB per connection.
    let node = node(&["--requirepass", "sekret"]);
    cache_testkit::assert_unauthenticated_limits(|| node.raw());
    // At the limits, and after AUTH, everything passes.
    let mut c = node.raw();
    let ten: Vec<&[u8]> = std::iter::once(&b"DEL"[..])
        .chain(std::iter::repeat_n(&b"x"[..], 9))
        .collect();
    assert_eq!(
        c.cmd(&ten),
        b"-NOAUTH Authentication required.\r\n".to_vec()
    );
    let value = vec![b'v'; 16384];
    assert_eq!(
        c.cmd(&[b"ECHO", &value]),
        b"-NOAUTH Authentication required.\r\n".to_vec()
    );
    assert_eq!(c.cmd_str(&["AUTH", "sekret"]), b"+OK\r\n");
    let value = vec![b'v'; 100_000];
    assert_eq!(c.cmd(&[b"SET", b"k", &value]), b"+OK\r\n".to_vec());
    let eleven: Vec<&[u8]> = std::iter::once(&b"DEL"[..])
        .chain(std::iter::repeat_n(&b"x"[..], 10))
        .collect();
    assert_eq!(c.cmd(&eleven), b":0\r\n".to_vec());
}

#[test]
fn parsed_arguments_count_against_the_query_buffer_limit() {
    // `*N` and empty arguments: each costs 6 bytes on the wire and a slot in the argument
    // vector, so the vector outgrew what was sent. What a request holds counts against
    // client-query-buffer-limit, as its unparsed bytes always did.
    let node = node(&["--client-query-buffer-limit", "1mb"]);
    let mut c = node.raw();
    // 32,768 empty arguments hold 1 MiB of slots; the next one is over the limit.
    let mut frame = b"*1000000\r\n".to_vec();
    for _ in 0..32_770 {
        frame.extend_from_slice(b"$0\r\n\r\n");
    }
    c.send(&frame);
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: query buffer limit exceeded\r\n"
    );
    let mut again = node.raw();
    assert_eq!(again.cmd_str(&["PING"]), b"+PONG\r\n");
}
