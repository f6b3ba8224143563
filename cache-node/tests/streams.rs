//! Streams against the reference Redis (database 12, keys `st:*`): the same commands to both,
//! byte-identical replies. IDs are explicit (or `ms-*`) so that replies are deterministic;
//! what carries wall-clock times (XPENDING's idle, XINFO CONSUMERS, FULL) stays out of the
//! byte comparisons. Blocking reads: one client blocks on each server, another writes, and
//! the blocked clients' replies are compared.

mod common;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{compare, node, reference, script, words, NodeProcess, RawConn};

const DB: u32 = 12;

/// The tests share database 12 of the reference: they take turns (each flushes it).
static TURN: Mutex<()> = Mutex::new(());

/// Runs `text` on a fresh node and on the reference; None when there is no reference.
fn run_script(test: &str, text: &str) -> Option<()> {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let mut theirs = reference(test, DB)?;
    let node = node(&[]);
    let mut ours = node.raw();
    for line in text.lines().map(str::trim) {
        // `!cmd` goes to both without comparing (HELLO's reply carries the client id).
        match line.strip_prefix('!') {
            Some(setup) => {
                ours.cmd(&words(setup));
                theirs.cmd(&words(setup));
            }
            None => compare(&mut ours, &mut theirs, &script(line)),
        }
    }
    theirs.cmd_str(&["FLUSHDB"]);
    Some(())
}

#[test]
fn xadd_ids_and_trimming_match_redis() {
    run_script(
        "xadd_ids_and_trimming_match_redis",
        r#"
        XADD st:s 1-1 a 1 b 2
        XADD st:s 1-1 a 1
        XADD st:s 1-0 a 1
        XADD st:s 1-* c 3
        XADD st:s 2-* c 3
        XADD st:s 2 d 4
        XADD st:s 0-0 a 1
        XADD st:n 0-0 a 1
        EXISTS st:n
        XADD st:n 0-* a 1
        XADD st:s 3-0 a
        XADD st:s 3-0
        XADD st:s NOMKSTREAM 3-0 a 1
        XADD st:none NOMKSTREAM 1-0 a 1
        EXISTS st:none
        XADD st:s - a 1
        XADD st:s + a 1
        XADD st:s abc a 1
        XADD st:s 1-abc a 1
        XADD st:s -1 a 1
        XADD st:s 18446744073709551616 a 1
        XADD st:s MAXLEN a 1
        XADD st:s MAXLEN -1 4-0 a 1
        XADD st:s MAXLEN 1 MINID 1 4-0 a 1
        XADD st:s LIMIT 10 4-0 a 1
        XADD st:s MAXLEN 2 LIMIT 10 4-0 a 1
        XADD st:s MAXLEN ~ 2 LIMIT -1 4-0 a 1
        XADD st:s MAXLEN = 3 4-0 a 1
        XLEN st:s
        XRANGE st:s - +
        XADD st:s MINID = 3-5 5-0 e 5
        XRANGE st:s - +
        XADD st:s MINID ~ 9 LIMIT 0 6-0 f 6
        XLEN st:s
        SET st:str x
        XADD st:str 1-0 a 1
        XLEN st:str
        XLEN st:nosuch
        TYPE st:s
        OBJECT ENCODING st:s
        XADD st:max 18446744073709551615-18446744073709551615 a 1
        XADD st:max * a 1
        XADD st:max 18446744073709551615-* a 1
        XTRIM st:s
        XTRIM st:s MAXLEN
        XTRIM st:s MAXLEN 1 LIMIT 1
        XTRIM st:s FOO 1
        XTRIM st:nosuch MAXLEN 1
        XTRIM st:str MAXLEN 1
        XTRIM st:s MAXLEN 1
        XRANGE st:s - +
        "#,
    );
}

#[test]
fn xtrim_approximate_follows_redis_nodes() {
    let mut lines = String::from("CONFIG GET stream-node-max-entries\n");
    for i in 1..=230 {
        lines.push_str(&format!("XADD st:t {i}-0 field v{i}\n"));
    }
    lines.push_str(
        "XTRIM st:t MAXLEN ~ 150\nXLEN st:t\nXTRIM st:t MAXLEN ~ 10 LIMIT 100\nXLEN st:t\n\
         XTRIM st:t MINID ~ 215\nXLEN st:t\nXTRIM st:t MINID 215\nXRANGE st:t - + COUNT 2\n\
         XINFO STREAM st:t\nXDEL st:t 215 216 999\nXINFO STREAM st:t\n",
    );
    run_script("xtrim_approximate_follows_redis_nodes", &lines);
}

#[test]
fn ranges_and_deletes_match_redis() {
    run_script(
        "ranges_and_deletes_match_redis",
        r#"
        XADD st:r 1-0 a 1
        XADD st:r 1-5 a 2 b 3
        XADD st:r 2-0 other x
        XADD st:r 3-18446744073709551615 a 4
        XADD st:r 4-0 a 5
        XRANGE st:r - +
        XREVRANGE st:r + -
        XRANGE st:r 1 1
        XRANGE st:r (1-0 +
        XRANGE st:r - (4-0
        XRANGE st:r (3-18446744073709551615 +
        XREVRANGE st:r (4 (1
        XRANGE st:r - + COUNT 2
        XRANGE st:r - + COUNT 0
        XRANGE st:r - + COUNT -3
        XRANGE st:r - + COUNT x
        XRANGE st:r - + LIMIT 1
        XRANGE st:r (- +
        XRANGE st:r - (+
        XRANGE st:r (0-0 (0-0
        XRANGE st:r - (0-0
        XRANGE st:r (18446744073709551615-18446744073709551615 +
        XRANGE st:r 5 1
        XRANGE st:nosuch - +
        XDEL st:r 1-5 9-9
        XDEL st:r 1-5
        XDEL st:r bad
        XDEL st:nosuch bad
        XRANGE st:r - +
        XDEL st:r 1-0 2-0 3-18446744073709551615 4-0
        XLEN st:r
        EXISTS st:r
        XRANGE st:r - +
        XINFO STREAM st:r
        XADD st:r 4-0 a 1
        XADD st:r 4-1 a 1
        XSETID st:r 3-0
        XSETID st:r 9-0 ENTRIESADDED 1
        XSETID st:r 9-0 ENTRIESADDED -1
        XSETID st:r 9-0 MAXDELETEDID 10-0
        XSETID st:r 9-0 ENTRIESADDED 20 MAXDELETEDID 5-0
        XSETID st:r 9-0 BOGUS
        XSETID st:nosuch 1-0
        XINFO STREAM st:r
        XADD st:r 8-0 a 1
        XADD st:r 9-* a 1
        XINFO GROUPS st:r
        XINFO STREAM st:r FULL COUNT
        XINFO STREAM st:r FOO
        XINFO STREAM st:nosuch
        XINFO FOO st:r
        XINFO HELP
        XINFO
        "#,
    );
}

#[test]
fn consumer_groups_match_redis() {
    run_script(
        "consumer_groups_match_redis",
        r#"
        XGROUP CREATE st:g grp $
        XGROUP CREATE st:g grp $ MKSTREAM
        XGROUP CREATE st:g grp $ MKSTREAM
        XINFO GROUPS st:g
        XADD st:g 1-0 a 1
        XADD st:g 2-0 b 2
        XADD st:g 3-0 c 3
        XGROUP CREATE st:g from0 0 ENTRIESREAD 0
        XGROUP CREATE st:g bad 0 ENTRIESREAD -5
        XGROUP CREATE st:g bad 0 FOO
        XGROUP CREATE st:g bad -
        XREADGROUP GROUP grp alice STREAMS st:g >
        XREADGROUP GROUP from0 alice COUNT 2 STREAMS st:g >
        XINFO GROUPS st:g
        XREADGROUP GROUP from0 bob STREAMS st:g >
        XREADGROUP GROUP from0 bob STREAMS st:g >
        XREADGROUP GROUP from0 alice STREAMS st:g 0
        XREADGROUP GROUP from0 bob STREAMS st:g 0-0
        XREADGROUP GROUP from0 carol STREAMS st:g 0
        XPENDING st:g from0
        XPENDING st:g from0 IDLE 100000000 - + 10
        XPENDING st:g from0 - + 0
        XPENDING st:g from0 - + x
        XPENDING st:g from0 (1 + 10 nobody
        XPENDING st:g from0 IDLE 1 - +
        XPENDING st:g nogroup
        XPENDING st:nosuch grp
        XACK st:g from0 1-0 1-0 9-9
        XACK st:g from0 bad
        XACK st:g nogroup 2-0
        XACK st:nosuch grp 2-0
        XPENDING st:g from0
        XDEL st:g 2-0
        XREADGROUP GROUP from0 alice STREAMS st:g 0
        XINFO GROUPS st:g
        XADD st:g 4-0 d 4
        XREADGROUP GROUP from0 alice NOACK STREAMS st:g >
        XPENDING st:g from0
        XINFO GROUPS st:g
        XGROUP SETID st:g from0 0
        XGROUP SETID st:g from0 $ ENTRIESREAD 3
        XGROUP SETID st:g nogroup 0
        XGROUP SETID st:nosuch grp 0
        XINFO GROUPS st:g
        XGROUP CREATECONSUMER st:g from0 dave
        XGROUP CREATECONSUMER st:g from0 dave
        XGROUP CREATECONSUMER st:g nogroup dave
        XGROUP DELCONSUMER st:g from0 bob
        XGROUP DELCONSUMER st:g from0 bob
        XPENDING st:g from0
        XGROUP DESTROY st:g grp
        XGROUP DESTROY st:g grp
        XGROUP DESTROY st:nosuch grp
        XGROUP FOO st:g grp
        XGROUP CREATE st:g
        XGROUP HELP
        XINFO GROUPS st:g
        XREADGROUP GROUP nogroup alice STREAMS st:g >
        XREADGROUP GROUP from0 alice STREAMS st:g $
        XREADGROUP GROUP from0 alice STREAMS st:g
        XREADGROUP GROUP from0 alice STREAMS st:g st:h > >
        XREADGROUP STREAMS st:g >
        XREADGROUP GROUP from0 alice FOO STREAMS st:g >
        XREAD STREAMS st:g >
        XREAD GROUP a b STREAMS st:g 0
        XREAD NOACK STREAMS st:g 0
        XREAD COUNT 1 STREAMS st:g st:nosuch 0 0
        XREAD COUNT x STREAMS st:g 0
        XREAD BLOCK -1 STREAMS st:g 0
        XREAD BLOCK x STREAMS st:g 0
        XREAD STREAMS st:g $
        XREAD STREAMS st:g
        SET st:str x
        XREAD STREAMS st:g st:str 0 0
        XREADGROUP GROUP g c STREAMS st:str >
        "#,
    );
}

#[test]
fn claims_match_redis() {
    run_script(
        "claims_match_redis",
        r#"
        XADD st:c 1-0 a 1
        XADD st:c 2-0 b 2
        XADD st:c 3-0 c 3
        XADD st:c 4-0 d 4
        XGROUP CREATE st:c g 0
        XREADGROUP GROUP g alice STREAMS st:c >
        XCLAIM st:c g bob 0 1-0 2-0
        XCLAIM st:c g bob 0 1-0 JUSTID
        XCLAIM st:c g bob 100000000 3-0
        XCLAIM st:c g bob 0 3-0 RETRYCOUNT 7 JUSTID IDLE 100000000
        XPENDING st:c g
        XCLAIM st:c g carol 0 9-0 FORCE
        XCLAIM st:c g carol 0 4-0 FORCE LASTID 10-0 JUSTID
        XINFO GROUPS st:c
        XCLAIM st:c g carol x 1-0
        XCLAIM st:c g carol 0 1-0 IDLE x
        XCLAIM st:c g carol 0 1-0 TIME x
        XCLAIM st:c g carol 0 1-0 RETRYCOUNT x
        XCLAIM st:c g carol 0 1-0 LASTID x
        XCLAIM st:c g carol 0 1-0 BOGUS
        XCLAIM st:c nogroup carol 0 1-0
        XCLAIM st:nosuch g carol 0 1-0
        XDEL st:c 2-0
        XCLAIM st:c g carol 0 2-0 3-0 JUSTID
        XPENDING st:c g
        XREADGROUP GROUP g alice STREAMS st:c 0
        XADD st:c 5-0 e 5
        XADD st:c 6-0 f 6
        XREADGROUP GROUP g alice STREAMS st:c >
        XDEL st:c 5-0
        XAUTOCLAIM st:c g dave 0 0-0 COUNT 1
        XAUTOCLAIM st:c g dave 0 0-0 COUNT 2 JUSTID
        XAUTOCLAIM st:c g dave 0 0-0
        XAUTOCLAIM st:c g dave 100000000 0-0
        XAUTOCLAIM st:c g dave 0 (0-0 COUNT 1
        XAUTOCLAIM st:c g dave 0 0-0 COUNT 0
        XAUTOCLAIM st:c g dave 0 0-0 COUNT 8070450532247928833
        XAUTOCLAIM st:c g dave 0 0-0 FOO
        XAUTOCLAIM st:c g dave x 0-0
        XAUTOCLAIM st:c g dave 0 x
        XAUTOCLAIM st:c nogroup dave 0 0-0
        XPENDING st:c g
        XTRIM st:c MAXLEN 1
        XAUTOCLAIM st:c g erin 0 0-0
        XPENDING st:c g
        "#,
    );
}

#[test]
fn streams_go_where_other_types_go() {
    run_script(
        "streams_go_where_other_types_go",
        r#"
        XADD st:a 1-0 a 1
        XGROUP CREATE st:a g 0
        XREADGROUP GROUP g c STREAMS st:a >
        COPY st:a st:b
        XPENDING st:b g
        XINFO STREAM st:b
        RENAME st:b st:c
        TYPE st:c
        EXISTS st:b
        SCAN 0 TYPE stream MATCH st:c
        OBJECT ENCODING st:c
        EXPIRE st:c 100
        TTL st:c
        PERSIST st:c
        DEL st:c
        XADD st:a 2-0 b 2
        XDEL st:a 1-0 2-0
        EXISTS st:a
        TYPE st:a
        XLEN st:a
        XINFO STREAM st:a
        "#,
    );
}

#[test]
fn resp3_stream_replies_match_redis() {
    run_script(
        "resp3_stream_replies_match_redis",
        r#"
        !HELLO 3
        XADD st:3 1-0 a 1
        XADD st:4 1-0 b 2
        XREAD STREAMS st:3 st:4 0 0
        XREAD STREAMS st:nosuch 0
        XRANGE st:3 - + COUNT 0
        XINFO STREAM st:3
        XGROUP CREATE st:3 g 0
        XINFO GROUPS st:3
        XREADGROUP GROUP g c STREAMS st:3 >
        XPENDING st:3 nosuch
        XPENDING st:4 nosuch
        "#,
    );
}

/// Waits until client `id` is parked. The shared reference flags it in CLIENT LIST; our node
/// has no other clients, so its `blocked_clients` reaching `expected` is the signal.
fn wait_blocked(conn: &mut RawConn, id: &str, ours: bool, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = if ours {
            let info = String::from_utf8_lossy(&conn.cmd_str(&["INFO", "clients"])).to_string();
            info.contains(&format!("blocked_clients:{expected}\r\n"))
        } else {
            let list =
                String::from_utf8_lossy(&conn.cmd_str(&["CLIENT", "LIST", "ID", id])).to_string();
            list.contains("flags=b")
        };
        if seen {
            return;
        }
        assert!(Instant::now() < deadline, "client {id} never blocked");
        std::thread::yield_now();
    }
}

/// One server's side of a blocking test: a writer and the readers (with whether each is
/// parked).
struct Side {
    writer: RawConn,
    readers: Vec<(RawConn, String, bool)>,
    ours: bool,
}

impl Side {
    fn open(addr: &str, readers: usize, ours: bool) -> Side {
        let open = || {
            let mut c = RawConn::connect(addr);
            assert_eq!(c.cmd_str(&["SELECT", &DB.to_string()]), b"+OK\r\n");
            c
        };
        let writer = open();
        let readers = (0..readers)
            .map(|_| {
                let mut c = open();
                let id = String::from_utf8_lossy(&c.cmd_str(&["CLIENT", "ID"]))
                    .trim_start_matches(':')
                    .trim()
                    .to_string();
                (c, id, false)
            })
            .collect();
        Side {
            writer,
            readers,
            ours,
        }
    }

    /// Sends a command from reader `r`; with `parks`, waits until the server has parked it.
    fn send(&mut self, r: usize, line: &str, parks: bool) {
        let (conn, id, parked) = &mut self.readers[r];
        conn.send(&RawConn::encode(&words(line)));
        if parks {
            *parked = true;
            let id = id.clone();
            let expected = self.readers.iter().filter(|r| r.2).count();
            wait_blocked(&mut self.writer, &id, self.ours, expected);
        }
    }

    fn read(&mut self, r: usize) -> Vec<u8> {
        let (conn, _, parked) = &mut self.readers[r];
        *parked = false;
        conn.read_reply()
    }
}

/// Runs a blocking scenario on both servers: `setup` by the writer, then each step either
/// blocks a reader (`block <n> <command>`; `send` for one that answers at once), writes (`write <command>`), or reads the reply
/// of reader n (`read <n>`), which is compared.
fn run_blocking(test: &str, readers: usize, steps: &str) {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut flush) = reference(test, DB) else {
        return;
    };
    let addr = common::reference_redis(test).unwrap_or_default();
    let node: NodeProcess = node(&[]);
    let mut sides = [
        Side::open(&node.addr.to_string(), readers, true),
        Side::open(&addr, readers, false),
    ];
    for step in steps.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (verb, rest) = step.split_once(' ').unwrap_or((step, ""));
        match verb {
            "block" | "send" => {
                let (n, line) = rest.split_once(' ').expect("block|send <n> <command>");
                let n: usize = n.parse().expect("reader number");
                for side in &mut sides {
                    side.send(n, line, verb == "block");
                }
            }
            "write" => {
                let [a, b] = &mut sides;
                compare(&mut a.writer, &mut b.writer, &[words(rest)]);
            }
            "read" => {
                let n: usize = rest.parse().expect("reader number");
                let [a, b] = &mut sides;
                let ours = a.read(n);
                let theirs = b.read(n);
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs),
                    "blocked reply of reader {n} differs at step {step:?}"
                );
            }
            other => panic!("unknown step {other}"),
        }
    }
    flush.cmd_str(&["FLUSHDB"]);
}

#[test]
fn blocked_xread_is_woken_by_xadd() {
    run_blocking(
        "blocked_xread_is_woken_by_xadd",
        2,
        r#"
        write XADD st:b1 1-0 old 1
        block 0 XREAD BLOCK 0 STREAMS st:b0 st:b1 st:b2 $ $ $
        send 1 XREAD BLOCK 0 COUNT 1 STREAMS st:b1 0-0
        read 1
        write XADD st:b1 2-0 new 2
        read 0
        block 0 XREAD BLOCK 0 STREAMS st:b2 $
        write MULTI
        write XADD st:b2 5-0 in multi
        write XADD st:b2 6-0 in multi
        write EXEC
        read 0
        send 0 XREAD BLOCK 30 STREAMS st:b3 $
        read 0
        write MULTI
        write XREAD BLOCK 0 STREAMS st:b3 $
        write EXEC
        "#,
    );
}

#[test]
fn blocked_readgroup_served_in_arrival_order() {
    run_blocking(
        "blocked_readgroup_served_in_arrival_order",
        2,
        r#"
        write XGROUP CREATE st:q g $ MKSTREAM
        block 0 XREADGROUP GROUP g alice BLOCK 0 STREAMS st:q >
        block 1 XREADGROUP GROUP g bob BLOCK 0 STREAMS st:q >
        write XADD st:q 1-0 job 1
        read 0
        write XADD st:q 2-0 job 2
        read 1
        write XPENDING st:q g
        write XINFO GROUPS st:q
        block 0 XREADGROUP GROUP g alice BLOCK 0 NOACK STREAMS st:q >
        write XADD st:q 3-0 job 3
        read 0
        write XPENDING st:q g
        "#,
    );
}

#[test]
fn blocked_readgroup_sees_key_and_group_go() {
    run_blocking(
        "blocked_readgroup_sees_key_and_group_go",
        2,
        r#"
        write XGROUP CREATE st:d g $ MKSTREAM
        block 0 XREADGROUP GROUP g alice BLOCK 0 STREAMS st:d >
        block 1 XREAD BLOCK 0 STREAMS st:d $
        write DEL st:d
        read 0
        write XADD st:d 1-0 back 1
        read 1
        write XGROUP CREATE st:d g $
        block 0 XREADGROUP GROUP g alice BLOCK 0 STREAMS st:d >
        write XGROUP DESTROY st:d g
        read 0
        write XGROUP CREATE st:d g $
        block 0 XREADGROUP GROUP g alice BLOCK 0 STREAMS st:d >
        write SET st:d string
        read 0
        "#,
    );
}

/// Keyspace events of stream commands, as Redis 7.0's t_stream.c raises them (class `t`).
/// The reference cannot take part: its configuration is not ours to change.
#[test]
fn stream_commands_raise_redis_events() {
    let node = node(&["--notify-keyspace-events", "E$t"]);
    let mut sub = node.raw();
    sub.cmd_str(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    let mut c = node.raw();
    let steps: &[(&str, &[&str])] = &[
        ("XADD s 1-0 a 1", &["xadd"]),
        ("XADD s MAXLEN 1 2-0 a 2", &["xadd", "xtrim"]),
        ("XADD s MAXLEN 5 3-0 a 3", &["xadd"]),
        ("XTRIM s MAXLEN 1", &["xtrim"]),
        ("XTRIM s MAXLEN 1", &[]),
        ("XDEL s 1-0", &[]),
        ("XDEL s 3-0", &["xdel"]),
        ("XGROUP CREATE s g 0", &["xgroup-create"]),
        ("XGROUP CREATECONSUMER s g c1", &["xgroup-createconsumer"]),
        ("XGROUP CREATECONSUMER s g c1", &[]),
        ("XADD s 4-0 a 4", &["xadd"]),
        (
            "XREADGROUP GROUP g c2 STREAMS s >",
            &["xgroup-createconsumer"],
        ),
        ("XCLAIM s g c3 0 4-0", &["xgroup-createconsumer"]),
        ("XGROUP SETID s g 0", &["xgroup-setid"]),
        ("XGROUP DELCONSUMER s g c1", &["xgroup-delconsumer"]),
        ("XSETID s 9-0", &["xsetid"]),
        ("XGROUP DESTROY s g", &["xgroup-destroy"]),
        ("XGROUP CREATE m g $ MKSTREAM", &["xgroup-create"]),
    ];
    for (line, events) in steps {
        c.cmd(&words(line));
        // A marker after each step: everything before it belongs to this step.
        c.cmd_str(&["SET", "marker", "x"]);
        let mut got = Vec::new();
        loop {
            let msg = String::from_utf8_lossy(&sub.read_reply()).to_string();
            let event = msg
                .split("\r\n")
                .filter_map(|l| l.strip_prefix("__keyevent@0__:"))
                .find(|e| *e != "*")
                .unwrap_or_default()
                .to_string();
            if event == "set" {
                break;
            }
            got.push(event);
        }
        assert_eq!(got, *events, "events of {line}");
    }
}
