//! End to end: MULTI/EXEC/WATCH, blocking pops, pub/sub and keyspace notifications against the
//! real binary on a free port, plus differential checks against the reference Redis on
//! database 11.
//!
//! Every wait is a poll with a deadline and every read has a timeout, so a hung node fails a
//! test instead of hanging the suite.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{compare, node, reference, words, NodeProcess, RawConn};

/// Database of the reference Redis that these differential tests own.
const REF_DB: u32 = 11;

/// The differential tests share database 11 of the reference: one at a time.
static REF_LOCK: Mutex<()> = Mutex::new(());

fn ref_lock() -> MutexGuard<'static, ()> {
    REF_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A parsed RESP2/RESP3 reply.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<V>),
    Other(String),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::Simple(s) | V::Error(s) | V::Other(s) => s.clone(),
            V::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            V::Int(i) => i.to_string(),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn items(&self) -> &[V] {
        match self {
            V::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    fn texts(&self) -> Vec<String> {
        self.items().iter().map(V::text).collect()
    }
}

fn parse(reply: &[u8]) -> V {
    let (v, used) = parse_at(reply);
    assert_eq!(
        used,
        reply.len(),
        "trailing bytes after reply: {}",
        show(reply)
    );
    v
}

fn parse_at(buf: &[u8]) -> (V, usize) {
    let end = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("reply line");
    let line = String::from_utf8_lossy(&buf[1..end]).into_owned();
    let after = end + 2;
    let n = || line.parse::<i64>().expect("length");
    match buf[0] {
        b'+' => (V::Simple(line), after),
        b'-' => (V::Error(line), after),
        b':' => (V::Int(n()), after),
        b'_' => (V::Nil, after),
        b'$' if n() < 0 => (V::Nil, after),
        b'$' => {
            let len = n() as usize;
            (V::Bulk(buf[after..after + len].to_vec()), after + len + 2)
        }
        b'*' | b'>' | b'~' if n() < 0 => (V::Nil, after),
        b'*' | b'>' | b'~' | b'%' => {
            let count = if buf[0] == b'%' { 2 * n() } else { n() };
            let mut pos = after;
            let mut items = Vec::new();
            for _ in 0..count {
                let (v, used) = parse_at(&buf[pos..]);
                items.push(v);
                pos += used;
            }
            (V::Array(items), pos)
        }
        _ => (V::Other(line), after),
    }
}

fn show(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

fn int(reply: &[u8]) -> i64 {
    match parse(reply) {
        V::Int(i) => i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// A RESP array of bulk strings (`kind` `*` for RESP2, `>` for a RESP3 push).
fn frame(kind: char, parts: &[&str]) -> Vec<u8> {
    let mut out = format!("{kind}{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

/// `*N` of bulk strings: what BLPOP, (p)message and friends reply in RESP2.
fn bulks(parts: &[&str]) -> Vec<u8> {
    frame('*', parts)
}

/// A (un)subscribe confirmation: `[kind, name, count]`.
fn confirm(kind: char, what: &str, name: &str, count: i64) -> Vec<u8> {
    let mut out = frame(kind, &[what, name]);
    out[1] = b'3';
    out.extend_from_slice(format!(":{count}\r\n").as_bytes());
    out
}

/// Polls `check` every 10 ms until it holds; panics with `what` after `within`.
fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A client connection with exact reply bytes, read deadlines, and silence checks.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        let _ = stream.set_nodelay(true);
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .expect("write timeout");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn to(node: &NodeProcess) -> Conn {
        Conn::connect(node.addr)
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Writes one command without reading its reply.
    fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_raw(&RawConn::encode(&args));
    }

    fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(args);
        self.read()
    }

    /// The next reply; panics when none is complete within 10 s.
    fn read(&mut self) -> Vec<u8> {
        self.read_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no reply within 10 s; have {:?}", show(&self.buf)))
    }

    /// The next reply if it is complete within `within`; panics if the server closes.
    fn read_within(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(n) = cache_testkit::reply_len(&self.buf) {
                return Some(self.buf.drain(..n).collect());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed; have {:?}", show(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Asserts that not a single byte arrives for `quiet`.
    fn assert_silent(&mut self, quiet: Duration, what: &str) {
        let got = self.read_within(quiet);
        assert!(
            got.is_none() && self.buf.is_empty(),
            "{what}: expected nothing, got {:?}",
            show(&got.unwrap_or_else(|| self.buf.clone()))
        );
    }

    /// Reads (and drops) whatever arrives until the server closes the connection; false if it
    /// is still open after `within`.
    fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        self.buf.clear();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                // Reset by the peer: closed as well.
                Err(_) => return true,
            }
        }
    }

    fn id(&mut self) -> i64 {
        int(&self.cmd(&["CLIENT", "ID"]))
    }

    /// The id of this (subscribed, so CLIENT ID is refused) connection, found by its address
    /// in another connection's CLIENT LIST.
    fn id_via(&self, admin: &mut Conn) -> i64 {
        let addr = self.stream.local_addr().expect("local addr").to_string();
        let list = parse(&admin.cmd(&["CLIENT", "LIST"])).text();
        list.lines()
            .find(|l| l.contains(&format!(" addr={addr} ")))
            .and_then(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{addr} not in CLIENT LIST: {list}"))
    }
}

/// `field:value` of an INFO section, as a number.
fn info_u64(conn: &mut Conn, section: &str, field: &str) -> u64 {
    let text = parse(&conn.cmd(&["INFO", section])).text();
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}: {text}"))
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number: {text}"))
}

/// Waits until exactly `n` clients are blocked (INFO clients `blocked_clients`).
fn wait_blocked(admin: &mut Conn, n: u64) {
    wait_until(
        Duration::from_secs(5),
        &format!("{n} blocked clients"),
        || info_u64(admin, "clients", "blocked_clients") == n,
    );
}

/// The ids CLIENT LIST shows.
fn client_ids(admin: &mut Conn) -> Vec<i64> {
    parse(&admin.cmd(&["CLIENT", "LIST"]))
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Waits until the node has noticed that client `id` went away.
fn wait_gone(admin: &mut Conn, id: i64) {
    wait_until(
        Duration::from_secs(5),
        &format!("client {id} to leave CLIENT LIST"),
        || !client_ids(admin).contains(&id),
    );
}

fn script(text: &str) -> Vec<Vec<&[u8]>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(words)
        .collect()
}

/// Two connections to the reference Redis on database 11 (flushed), or None when the
/// reference is not configured.
fn reference_pair(test: &str) -> Option<(RawConn, RawConn)> {
    let a = reference(test, REF_DB)?;
    let addr = std::env::var(cache_testkit::REFERENCE_ENV).expect("reference address");
    let mut b = RawConn::connect(&addr);
    assert_eq!(b.cmd_str(&["SELECT", &REF_DB.to_string()]), b"+OK\r\n");
    Some((a, b))
}

/// Runs the same two-client scenario on the node and on the reference and asserts that every
/// reply is byte-identical.
fn compare_scenario(
    test: &str,
    node: &NodeProcess,
    scenario: impl Fn(&mut RawConn, &mut RawConn) -> Vec<Vec<u8>>,
) {
    let Some((mut ra, mut rb)) = reference_pair(test) else {
        return;
    };
    let theirs = scenario(&mut ra, &mut rb);
    assert_eq!(ra.cmd_str(&["FLUSHDB"]), b"+OK\r\n");
    let (mut a, mut b) = (node.raw(), node.raw());
    let ours = scenario(&mut a, &mut b);
    assert_eq!(ours.len(), theirs.len());
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(show(o), show(t), "{test}: reply #{i} differs");
    }
}

/// Names no other test (or other user of the reference) publishes on, all the same length.
fn unique(tag: &str) -> String {
    format!("e2e3-{:08}-{tag}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// MULTI / EXEC / DISCARD
// ---------------------------------------------------------------------------------------------

#[test]
fn multi_exec_returns_the_queued_replies_in_order() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut other = Conn::to(&node);
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    for cmd in [
        &["SET", "k", "v"][..],
        &["INCR", "n"],
        &["INCRBY", "n", "41"],
        &["RPUSH", "l", "a", "b"],
        &["GET", "k"],
        &["LRANGE", "l", "0", "-1"],
        &["GET", "missing"],
    ] {
        assert_eq!(a.cmd(cmd), b"+QUEUED\r\n", "{cmd:?}");
    }
    // Nothing ran yet: another client sees none of it.
    assert_eq!(other.cmd(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(other.cmd(&["EXISTS", "n", "l"]), b":0\r\n");
    let mut want = b"*7\r\n+OK\r\n:1\r\n:42\r\n:2\r\n$1\r\nv\r\n".to_vec();
    want.extend_from_slice(&bulks(&["a", "b"]));
    want.extend_from_slice(b"$-1\r\n");
    assert_eq!(show(&a.cmd(&["EXEC"])), show(&want));
    assert_eq!(other.cmd(&["GET", "n"]), b"$2\r\n42\r\n");
    // The connection is out of MULTI again.
    assert_eq!(a.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");
    // An empty transaction is an empty array.
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*0\r\n");

    // Pipelined in one write, the whole transaction answers in order too.
    let mut batch = Vec::new();
    for cmd in [&["MULTI"][..], &["INCR", "p"], &["INCR", "p"], &["EXEC"]] {
        let cmd: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        batch.extend_from_slice(&RawConn::encode(&cmd));
    }
    a.send_raw(&batch);
    assert_eq!(a.read(), b"+OK\r\n");
    assert_eq!(a.read(), b"+QUEUED\r\n");
    assert_eq!(a.read(), b"+QUEUED\r\n");
    assert_eq!(a.read(), b"*2\r\n:1\r\n:2\r\n");
}

#[test]
fn queued_syntax_errors_make_exec_abort() {
    const ABORT: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";
    let node = node(&[]);
    let mut a = Conn::to(&node);

    // An unknown command.
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "k", "1"]), b"+QUEUED\r\n");
    assert_eq!(
        a.cmd(&["NOSUCH", "x", "y"]),
        b"-ERR unknown command 'NOSUCH', with args beginning with: 'x' 'y' \r\n"
    );
    assert_eq!(a.cmd(&["INCR", "n"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), ABORT);
    // Nothing of the queue ran, and the connection left MULTI.
    assert_eq!(a.cmd(&["EXISTS", "k", "n"]), b":0\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");

    // A wrong number of arguments.
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "k", "1"]), b"+QUEUED\r\n");
    assert_eq!(
        a.cmd(&["SET", "k"]),
        b"-ERR wrong number of arguments for 'set' command\r\n"
    );
    assert_eq!(a.cmd(&["EXEC"]), ABORT);
    assert_eq!(a.cmd(&["GET", "k"]), b"$-1\r\n");

    // An unknown subcommand.
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(
        a.cmd(&["CONFIG", "NOSUCH"]),
        b"-ERR unknown subcommand 'NOSUCH'. Try CONFIG HELP.\r\n"
    );
    assert_eq!(a.cmd(&["SET", "k", "1"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), ABORT);
    assert_eq!(a.cmd(&["GET", "k"]), b"$-1\r\n");

    // The failed transaction left nothing behind: the next one runs.
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "k", "2"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
}

#[test]
fn runtime_error_fails_only_that_command() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    assert_eq!(a.cmd(&["SET", "s", "abc"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    for cmd in [
        &["SET", "before", "1"][..],
        &["INCR", "s"],
        &["LPUSH", "s", "x"],
        &["INCR", "after"],
        &["GET", "s"],
    ] {
        assert_eq!(a.cmd(cmd), b"+QUEUED\r\n", "{cmd:?}");
    }
    assert_eq!(
        show(&a.cmd(&["EXEC"])),
        show(
            b"*5\r\n+OK\r\n-ERR value is not an integer or out of range\r\n\
              -WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n\
              $3\r\nabc\r\n"
        )
    );
    assert_eq!(
        a.cmd(&["MGET", "before", "after", "s"]),
        bulks(&["1", "1", "abc"])
    );
}

#[test]
fn nested_multi_and_exec_or_discard_without_multi_are_errors() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    assert_eq!(a.cmd(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");
    assert_eq!(a.cmd(&["DISCARD"]), b"-ERR DISCARD without MULTI\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "k", "v"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"-ERR MULTI calls can not be nested\r\n");
    // As in Redis, the nested MULTI does not doom the transaction.
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
    assert_eq!(a.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
}

#[test]
fn discard_drops_the_queue_and_the_watches() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "k", "v"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["INCR", "n"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["DISCARD"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["EXISTS", "k", "n"]), b":0\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");
    // DISCARD also forgets WATCH: a later write does not abort the next transaction.
    assert_eq!(a.cmd(&["WATCH", "w"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["DISCARD"]), b"+OK\r\n");
    assert_eq!(b.cmd(&["SET", "w", "other"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "w", "mine"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
    assert_eq!(b.cmd(&["GET", "w"]), b"$4\r\nmine\r\n");
}

#[test]
fn transaction_replies_match_reference() {
    let _guard = ref_lock();
    let Some(mut theirs) = reference("transaction_replies_match_reference", REF_DB) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    compare(
        &mut ours,
        &mut theirs,
        &script(
            r#"
            EXEC
            DISCARD
            WATCH
            MULTI
            SET a 1
            NOSUCH x y
            INCR a
            EXEC
            EXEC
            EXISTS a
            MULTI
            SET a
            EXEC
            MULTI
            CONFIG NOSUCH
            EXEC
            MULTI
            GET
            EXEC
            MULTI
            MULTI
            SET b 2
            EXEC
            MULTI
            WATCH x
            PING
            EXEC
            SET s abc
            MULTI
            INCR s
            SET t 1
            LPUSH s x
            GET t
            HSET h f v
            HGETALL h
            ECHO "a b"
            EXEC
            MULTI
            EXEC
            MULTI
            SET d 1
            DISCARD
            GET d
            MULTI
            BLPOP nolist 0
            BRPOP nolist 0
            BLMOVE nolist dst LEFT RIGHT 0
            BZPOPMIN nozset 0
            EXEC
            UNWATCH
            "#,
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// WATCH
// ---------------------------------------------------------------------------------------------

/// WATCH `key` on `a`, let `write` change things, then try a transaction: true if EXEC ran,
/// false if it was aborted (null array).
fn watched_exec(a: &mut Conn, key: &str, write: impl FnOnce()) -> bool {
    assert_eq!(a.cmd(&["WATCH", key]), b"+OK\r\n");
    write();
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "tx-ran", "1"]), b"+QUEUED\r\n");
    let reply = a.cmd(&["EXEC"]);
    match reply.as_slice() {
        b"*-1\r\n" => false,
        b"*1\r\n+OK\r\n" => true,
        other => panic!("unexpected EXEC reply {:?}", show(other)),
    }
}

#[test]
fn another_clients_write_to_a_watched_key_aborts_exec() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);
    // Every kind of write counts, whether the key existed or not.
    let writes: &[&[&str]] = &[
        &["SET", "w", "other"],
        &["SET", "w", "again"],
        &["SETEX", "w", "100", "x"],
        &["MSET", "w", "1", "unrelated", "2"],
        &["INCR", "w"],
        &["APPEND", "w", "z"],
        &["DEL", "w"],
        &["SETNX", "w", "v"],
        &["GETSET", "w", "v2"],
        &["EXPIRE", "w", "100"],
        &["PERSIST", "w"],
        &["RENAME", "unrelated", "w"],
        &["GETDEL", "w"],
        &["LPUSH", "w", "x"],
        &["RPOP", "w"],
        &["HSET", "w", "f", "v"],
        &["DEL", "w"],
        &["SADD", "w", "m"],
        &["DEL", "w"],
        &["ZADD", "w", "1", "m"],
    ];
    for write in writes {
        assert_eq!(a.cmd(&["DEL", "tx-ran"]).len(), 4);
        let ran = watched_exec(&mut a, "w", || {
            let reply = b.cmd(write);
            assert!(!reply.starts_with(b"-"), "{write:?}: {}", show(&reply));
        });
        assert!(!ran, "EXEC ran although another client did {write:?}");
        assert_eq!(a.cmd(&["EXISTS", "tx-ran"]), b":0\r\n", "{write:?}");
    }
    // The watching client's own write counts as well, as in Redis.
    assert_eq!(a.cmd(&["WATCH", "w"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "w", "mine"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["GET", "w"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");
    // A watched key changed inside the transaction that watches it does not abort it.
    assert!(watched_exec(&mut a, "tx-ran", || {}));
}

/// `SET key v PX ms` and `WATCH key` in one write, so they run in one batch: the key is
/// certainly alive when watched however slow this machine is. (`watched_exec` watching it
/// again is a no-op.)
fn set_px_and_watch(a: &mut Conn, key: &str, ms: u64) {
    let mut batch = RawConn::encode(&[
        b"SET",
        key.as_bytes(),
        b"v",
        b"PX",
        ms.to_string().as_bytes(),
    ]);
    batch.extend_from_slice(&RawConn::encode(&[b"WATCH", key.as_bytes()]));
    a.send_raw(&batch);
    assert_eq!(a.read(), b"+OK\r\n");
    assert_eq!(a.read(), b"+OK\r\n");
}

#[test]
fn expiry_of_a_watched_key_aborts_exec() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);

    // Another client gives the key a short TTL, and it passes.
    assert_eq!(a.cmd(&["SET", "e", "v"]), b"+OK\r\n");
    assert!(!watched_exec(&mut a, "e", || {
        assert_eq!(b.cmd(&["PEXPIRE", "e", "50"]), b":1\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }));

    // The TTL was there before WATCH: only the expiry itself happens in between.
    set_px_and_watch(&mut a, "e", 100);
    assert!(!watched_exec(&mut a, "e", || {
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(b.cmd(&["EXISTS", "e"]), b":0\r\n");
    }));

    // Same, with active expiry (nearly) off: EXEC itself must notice that the key's time has
    // passed, as Redis does, even though nothing has removed it yet.
    assert_eq!(a.cmd(&["CONFIG", "SET", "hz", "1"]), b"+OK\r\n");
    for _ in 0..3 {
        set_px_and_watch(&mut a, "e", 40);
        assert!(!watched_exec(&mut a, "e", || {
            std::thread::sleep(Duration::from_millis(80));
        }));
    }

    // A key that keeps its TTL and does not expire in time leaves the transaction alone.
    assert_eq!(a.cmd(&["SET", "e", "v", "EX", "100"]), b"+OK\r\n");
    assert!(watched_exec(&mut a, "e", || {
        std::thread::sleep(Duration::from_millis(50));
    }));
}

#[test]
fn flushdb_and_flushall_by_another_client_abort_exec() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);
    for flush in [&["FLUSHDB"][..], &["FLUSHALL"], &["FLUSHDB", "ASYNC"]] {
        assert_eq!(a.cmd(&["SET", "f", "v"]), b"+OK\r\n");
        assert!(
            !watched_exec(&mut a, "f", || assert_eq!(b.cmd(flush), b"+OK\r\n")),
            "{flush:?} did not abort EXEC"
        );
    }
    // A watched key in database 2 is flushed by FLUSHALL issued from database 0.
    assert_eq!(a.cmd(&["SELECT", "2"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["SET", "f", "v"]), b"+OK\r\n");
    assert!(!watched_exec(&mut a, "f", || assert_eq!(
        b.cmd(&["FLUSHALL"]),
        b"+OK\r\n"
    )));
}

#[test]
fn unwatch_and_exec_clear_the_watches() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);
    assert_eq!(a.cmd(&["WATCH", "u1", "u2"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["UNWATCH"]), b"+OK\r\n");
    assert_eq!(b.cmd(&["SET", "u1", "x"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["GET", "u1"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n$1\r\nx\r\n");

    // EXEC forgets the watches whether it ran or aborted.
    assert!(watched_exec(&mut a, "u2", || {}));
    assert_eq!(b.cmd(&["SET", "u2", "x"]), b"+OK\r\n");
    assert!(watched_exec(&mut a, "u3", || {}));
    assert!(!watched_exec(&mut a, "u2", || assert_eq!(
        b.cmd(&["SET", "u2", "y"]),
        b"+OK\r\n"
    )));
    assert_eq!(b.cmd(&["SET", "u2", "z"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*0\r\n");
}

#[test]
fn watch_inside_multi_is_an_error() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(
        a.cmd(&["WATCH", "k"]),
        b"-ERR WATCH inside MULTI is not allowed\r\n"
    );
    assert_eq!(a.cmd(&["SET", "k", "mine"]), b"+QUEUED\r\n");
    // The refused WATCH watched nothing, and (as in Redis) does not abort the transaction.
    assert_eq!(b.cmd(&["SET", "k", "other"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
    assert_eq!(b.cmd(&["GET", "k"]), b"$4\r\nmine\r\n");
}

#[test]
fn writes_to_other_keys_or_databases_do_not_abort() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);
    assert_eq!(a.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    // Another key, a key with a common prefix, and the same name in another database.
    assert!(watched_exec(&mut a, "k", || {
        assert_eq!(b.cmd(&["SET", "other", "x"]), b"+OK\r\n");
        assert_eq!(b.cmd(&["SET", "k2", "x"]), b"+OK\r\n");
        assert_eq!(b.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
        assert_eq!(b.cmd(&["SELECT", "1"]), b"+OK\r\n");
        assert_eq!(b.cmd(&["SET", "k", "db1"]), b"+OK\r\n");
        assert_eq!(b.cmd(&["FLUSHDB"]), b"+OK\r\n");
        assert_eq!(b.cmd(&["SELECT", "0"]), b"+OK\r\n");
    }));
    // Reads of the watched key by anyone do not abort either.
    assert!(watched_exec(&mut a, "k", || {
        assert_eq!(b.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
        assert_eq!(b.cmd(&["EXISTS", "k"]), b":1\r\n");
        assert_eq!(b.cmd(&["TTL", "k"]), b":-1\r\n");
    }));
}

#[test]
fn watch_replies_match_reference() {
    let _guard = ref_lock();
    let node = node(&[]);
    compare_scenario("watch_replies_match_reference", &node, |a, b| {
        let mut r = Vec::new();
        let tx = |a: &mut RawConn, r: &mut Vec<Vec<u8>>| {
            r.push(a.cmd_str(&["MULTI"]));
            r.push(a.cmd_str(&["GET", "w"]));
            r.push(a.cmd_str(&["INCR", "count"]));
            r.push(a.cmd_str(&["EXEC"]));
        };
        r.push(a.cmd_str(&["SET", "w", "1"]));
        // Another client's write.
        r.push(a.cmd_str(&["WATCH", "w"]));
        r.push(b.cmd_str(&["SET", "w", "2"]));
        tx(a, &mut r);
        // The watcher's own write.
        r.push(a.cmd_str(&["WATCH", "w", "x"]));
        r.push(a.cmd_str(&["INCR", "w"]));
        tx(a, &mut r);
        // A write to something else.
        r.push(a.cmd_str(&["WATCH", "w"]));
        r.push(b.cmd_str(&["SET", "x", "2"]));
        tx(a, &mut r);
        // A key that did not exist and is created.
        r.push(a.cmd_str(&["WATCH", "new"]));
        r.push(b.cmd_str(&["LPUSH", "new", "a"]));
        tx(a, &mut r);
        // UNWATCH.
        r.push(a.cmd_str(&["WATCH", "w"]));
        r.push(a.cmd_str(&["UNWATCH"]));
        r.push(b.cmd_str(&["SET", "w", "3"]));
        tx(a, &mut r);
        // Expiry after another client's PEXPIRE.
        r.push(a.cmd_str(&["WATCH", "w"]));
        r.push(b.cmd_str(&["PEXPIRE", "w", "50"]));
        std::thread::sleep(Duration::from_millis(200));
        tx(a, &mut r);
        // FLUSHDB of a watched key that exists.
        r.push(a.cmd_str(&["SET", "w", "4"]));
        r.push(a.cmd_str(&["WATCH", "w"]));
        r.push(b.cmd_str(&["FLUSHDB"]));
        tx(a, &mut r);
        // WATCH inside MULTI.
        r.push(a.cmd_str(&["MULTI"]));
        r.push(a.cmd_str(&["WATCH", "w"]));
        r.push(a.cmd_str(&["EXEC"]));
        r
    });
}

// ---------------------------------------------------------------------------------------------
// Atomicity
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_is_atomic_for_concurrent_readers() {
    const INCRS: usize = 100;
    let node = node(&[]);
    let addr = node.addr;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut r = Conn::connect(addr);
                let deadline = Instant::now() + Duration::from_secs(8);
                let mut reads = 0u64;
                let mut nonzero = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    let value = match parse(&r.cmd(&["GET", "c"])) {
                        V::Nil => 0,
                        v => v.text().parse::<i64>().expect("integer value"),
                    };
                    assert_eq!(
                        value % INCRS as i64,
                        0,
                        "a reader saw {value}: half of a transaction"
                    );
                    reads += 1;
                    nonzero += u64::from(value > 0);
                }
                (reads, nonzero)
            })
        })
        .collect();

    let mut w = Conn::connect(addr);
    let mut batch = RawConn::encode(&[b"MULTI"]);
    for _ in 0..INCRS {
        batch.extend_from_slice(&RawConn::encode(&[b"INCR", b"c"]));
    }
    batch.extend_from_slice(&RawConn::encode(&[b"EXEC"]));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut txs = 0;
    while txs < 300 && Instant::now() < deadline {
        w.send_raw(&batch);
        assert_eq!(w.read(), b"+OK\r\n");
        for _ in 0..INCRS {
            assert_eq!(w.read(), b"+QUEUED\r\n");
        }
        let exec = parse(&w.read());
        let items = exec.items();
        assert_eq!(items.len(), INCRS);
        txs += 1;
        assert_eq!(items[INCRS - 1], V::Int((txs * INCRS) as i64));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total_reads = 0;
    for r in readers {
        let (reads, _) = r.join().expect("reader panicked");
        total_reads += reads;
    }
    assert!(txs >= 20, "only {txs} transactions ran");
    assert!(
        total_reads >= 20,
        "the readers only read {total_reads} times"
    );
    assert_eq!(
        w.cmd(&["GET", "c"]),
        format!(
            "${}\r\n{}\r\n",
            (txs * INCRS).to_string().len(),
            txs * INCRS
        )
        .into_bytes()
    );
}

// ---------------------------------------------------------------------------------------------
// Blocking pops
// ---------------------------------------------------------------------------------------------

#[test]
fn blpop_blocks_until_another_client_pushes() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut a = Conn::to(&node);
    let mut b = Conn::to(&node);
    assert_eq!(info_u64(&mut admin, "clients", "blocked_clients"), 0);
    a.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    a.assert_silent(Duration::from_millis(200), "BLPOP on an empty list");
    // The pusher's reply is the list's length after its push, before the waiter takes one.
    assert_eq!(b.cmd(&["RPUSH", "k", "v1", "v2"]), b":2\r\n");
    assert_eq!(a.read(), bulks(&["k", "v1"]));
    assert_eq!(b.cmd(&["LRANGE", "k", "0", "-1"]), bulks(&["v2"]));
    wait_blocked(&mut admin, 0);
    // The woken connection goes on normally.
    assert_eq!(a.cmd(&["PING"]), b"+PONG\r\n");

    // BRPOP takes from the tail; LPUSH wakes it too; the emptied list is gone.
    assert_eq!(b.cmd(&["DEL", "k"]), b":1\r\n");
    a.send(&["BRPOP", "k", "5"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(b.cmd(&["LPUSH", "k", "x"]), b":1\r\n");
    assert_eq!(a.read(), bulks(&["k", "x"]));
    assert_eq!(b.cmd(&["EXISTS", "k"]), b":0\r\n");
}

#[test]
fn blpop_times_out_with_a_null_after_the_timeout() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    // A null array in RESP2, a null in RESP3.
    for (hello, null) in [("2", &b"*-1\r\n"[..]), ("3", b"_\r\n")] {
        assert!(!a.cmd(&["HELLO", hello]).starts_with(b"-"));
        let start = Instant::now();
        assert_eq!(a.cmd(&["BLPOP", "nothing", "0.2"]), null, "RESP{hello}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took <= Duration::from_secs(2),
            "BLPOP with a 0.2 s timeout took {took:?}"
        );
    }
    assert!(a.cmd(&["HELLO", "2"]).starts_with(b"*"));
    // The other blocking pops time out the same way.
    for cmd in [
        &["BRPOP", "nothing", "0.1"][..],
        &["BLMOVE", "nothing", "dst", "LEFT", "RIGHT", "0.1"],
        &["BRPOPLPUSH", "nothing", "dst", "0.1"],
        &["BZPOPMIN", "nothing", "0.1"],
        &["BZPOPMAX", "nothing", "0.1"],
        &["BLMPOP", "0.1", "1", "nothing", "LEFT"],
        &["BZMPOP", "0.1", "1", "nothing", "MIN"],
    ] {
        let start = Instant::now();
        assert_eq!(a.cmd(cmd), b"*-1\r\n", "{cmd:?}");
        assert!(start.elapsed() >= Duration::from_millis(70), "{cmd:?}");
    }
    assert_eq!(a.cmd(&["EXISTS", "dst"]), b":0\r\n");
}

#[test]
fn blocked_clients_are_served_in_arrival_order() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut waiters: Vec<Conn> = (0..3).map(|_| Conn::to(&node)).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut admin, i as u64 + 1);
    }
    assert_eq!(admin.cmd(&["RPUSH", "k", "1", "2", "3"]), b":3\r\n");
    for (w, want) in waiters.iter_mut().zip(["1", "2", "3"]) {
        assert_eq!(w.read(), bulks(&["k", want]));
    }
    assert_eq!(admin.cmd(&["EXISTS", "k"]), b":0\r\n");
    wait_blocked(&mut admin, 0);

    // Fewer elements than waiters: the first ones are served, the rest keep waiting.
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&["BLPOP", "k", "0"]);
        wait_blocked(&mut admin, i as u64 + 1);
    }
    assert_eq!(admin.cmd(&["RPUSH", "k", "a", "b"]), b":2\r\n");
    assert_eq!(waiters[0].read(), bulks(&["k", "a"]));
    assert_eq!(waiters[1].read(), bulks(&["k", "b"]));
    waiters[2].assert_silent(Duration::from_millis(150), "the third waiter");
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["RPUSH", "k", "c"]), b":1\r\n");
    assert_eq!(waiters[2].read(), bulks(&["k", "c"]));
}

#[test]
fn blmove_wakes_moves_and_chains_to_a_pop_blocked_on_its_destination() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut mover = Conn::to(&node);
    let mut popper = Conn::to(&node);

    mover.send(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["RPUSH", "src", "x", "y"]), b":2\r\n");
    assert_eq!(mover.read(), b"$1\r\nx\r\n");
    assert_eq!(admin.cmd(&["LRANGE", "src", "0", "-1"]), bulks(&["y"]));
    assert_eq!(admin.cmd(&["LRANGE", "dst", "0", "-1"]), bulks(&["x"]));
    assert_eq!(admin.cmd(&["DEL", "src", "dst"]), b":2\r\n");

    // The element BLMOVE pushes to its destination wakes a client blocked there.
    popper.send(&["BLPOP", "dst", "0"]);
    wait_blocked(&mut admin, 1);
    mover.send(&["BRPOPLPUSH", "src", "dst", "0"]);
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["LPUSH", "src", "m"]), b":1\r\n");
    assert_eq!(mover.read(), b"$1\r\nm\r\n");
    assert_eq!(popper.read(), bulks(&["dst", "m"]));
    assert_eq!(admin.cmd(&["EXISTS", "src", "dst"]), b":0\r\n");
    wait_blocked(&mut admin, 0);
}

#[test]
fn bzpopmin_and_bzpopmax_wake_on_zadd() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut a = Conn::to(&node);
    a.send(&["BZPOPMIN", "z", "0"]);
    wait_blocked(&mut admin, 1);
    a.assert_silent(Duration::from_millis(100), "BZPOPMIN on an empty key");
    assert_eq!(
        admin.cmd(&["ZADD", "z", "2", "b", "1", "a", "3", "c"]),
        b":3\r\n"
    );
    assert_eq!(a.read(), bulks(&["z", "a", "1"]));
    a.send(&["BZPOPMAX", "other", "z", "0"]);
    assert_eq!(a.read(), bulks(&["z", "c", "3"]));
    assert_eq!(admin.cmd(&["ZRANGE", "z", "0", "-1"]), bulks(&["b"]));

    // A RESP3 waiter gets the score as a double.
    assert!(a.cmd(&["HELLO", "3"]).starts_with(b"%"));
    a.send(&["BZPOPMAX", "z2", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["ZADD", "z2", "1.5", "m"]), b":1\r\n");
    assert_eq!(show(&a.read()), "*3\r\n$2\r\nz2\r\n$1\r\nm\r\n,1.5\r\n");
}

#[test]
fn a_key_of_another_type_leaves_waiters_blocked() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut lister = Conn::to(&node);
    let mut zsetter = Conn::to(&node);

    // A list pop is not answered WRONGTYPE when its key becomes a string: it keeps waiting.
    lister.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["SET", "k", "x"]), b"+OK\r\n");
    lister.assert_silent(
        Duration::from_millis(150),
        "BLPOP on a key that became a string",
    );
    assert_eq!(admin.cmd(&["DEL", "k"]), b":1\r\n");
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), b":1\r\n");
    assert_eq!(lister.read(), bulks(&["k", "v"]));

    // Likewise a sorted-set pop on a key that becomes a list.
    zsetter.send(&["BZPOPMIN", "z", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["RPUSH", "z", "x"]), b":1\r\n");
    zsetter.assert_silent(Duration::from_millis(150), "BZPOPMIN on a list");
    assert_eq!(admin.cmd(&["DEL", "z"]), b":1\r\n");
    assert_eq!(admin.cmd(&["ZADD", "z", "1", "m"]), b":1\r\n");
    assert_eq!(zsetter.read(), bulks(&["z", "m", "1"]));

    // Both kinds waiting on one key: each type serves its own, whoever came first.
    zsetter.send(&["BZPOPMIN", "both", "0"]);
    wait_blocked(&mut admin, 1);
    lister.send(&["BLPOP", "both", "0"]);
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["RPUSH", "both", "l"]), b":1\r\n");
    assert_eq!(lister.read(), bulks(&["both", "l"]));
    zsetter.assert_silent(Duration::from_millis(100), "BZPOPMIN behind a list push");
    assert_eq!(admin.cmd(&["ZADD", "both", "2", "z"]), b":1\r\n");
    assert_eq!(zsetter.read(), bulks(&["both", "z", "2"]));
    wait_blocked(&mut admin, 0);
}

#[test]
fn blpop_serves_the_first_non_empty_key() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut a = Conn::to(&node);
    assert_eq!(admin.cmd(&["RPUSH", "k3", "c"]), b":1\r\n");
    assert_eq!(admin.cmd(&["RPUSH", "k2", "b"]), b":1\r\n");
    assert_eq!(
        a.cmd(&["BLPOP", "k1", "k2", "k3", "0"]),
        bulks(&["k2", "b"])
    );
    assert_eq!(
        a.cmd(&["BLPOP", "k1", "k2", "k3", "0"]),
        bulks(&["k3", "c"])
    );

    // Blocked on several keys: whichever receives data serves it, and only once.
    a.send(&["BLPOP", "k1", "k2", "k3", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["RPUSH", "k3", "x"]), b":1\r\n");
    assert_eq!(a.read(), bulks(&["k3", "x"]));
    wait_blocked(&mut admin, 0);
    assert_eq!(admin.cmd(&["RPUSH", "k1", "later"]), b":1\r\n");
    a.assert_silent(Duration::from_millis(100), "a served waiter");
    assert_eq!(admin.cmd(&["LRANGE", "k1", "0", "-1"]), bulks(&["later"]));
}

#[test]
fn blocking_pop_inside_multi_does_not_block() {
    let node = node(&[]);
    let mut a = Conn::to(&node);
    assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["BLPOP", "empty", "0"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["BZPOPMIN", "empty", "0"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["RPUSH", "l", "v"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["BLPOP", "l", "0"]), b"+QUEUED\r\n");
    let start = Instant::now();
    let mut want = b"*4\r\n*-1\r\n*-1\r\n:1\r\n".to_vec();
    want.extend_from_slice(&bulks(&["l", "v"]));
    assert_eq!(show(&a.cmd(&["EXEC"])), show(&want));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_waiter_that_disconnects_does_not_swallow_a_later_push() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut first = Conn::to(&node);
    let first_id = first.id();
    let mut second = Conn::to(&node);
    first.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    second.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 2);
    let _ = first.stream.shutdown(Shutdown::Both);
    drop(first);
    wait_gone(&mut admin, first_id);
    wait_blocked(&mut admin, 1);
    // The next waiter gets it.
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), b":1\r\n");
    assert_eq!(second.read(), bulks(&["k", "v"]));

    // With no waiter left, the list keeps it.
    let mut third = Conn::to(&node);
    let third_id = third.id();
    third.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    drop(third);
    wait_gone(&mut admin, third_id);
    wait_blocked(&mut admin, 0);
    assert_eq!(admin.cmd(&["RPUSH", "k", "w"]), b":1\r\n");
    assert_eq!(admin.cmd(&["LRANGE", "k", "0", "-1"]), bulks(&["w"]));
}

#[test]
fn commands_pipelined_after_a_blocking_command_wait_for_it() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut a = Conn::to(&node);
    let mut batch = Vec::new();
    for cmd in [
        &[&b"BLPOP"[..], b"k", b"0"][..],
        &[b"SET", b"after", b"1"],
        &[b"GET", b"after"],
        &[b"PING"],
    ] {
        batch.extend_from_slice(&RawConn::encode(cmd));
    }
    a.send_raw(&batch);
    wait_blocked(&mut admin, 1);
    a.assert_silent(Duration::from_millis(200), "a blocked pipeline");
    // The commands behind BLPOP have not run yet.
    assert_eq!(admin.cmd(&["GET", "after"]), b"$-1\r\n");
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), b":1\r\n");
    assert_eq!(a.read(), bulks(&["k", "v"]));
    assert_eq!(a.read(), b"+OK\r\n");
    assert_eq!(a.read(), b"$1\r\n1\r\n");
    assert_eq!(a.read(), b"+PONG\r\n");

    // Behind a timeout: the null first, then the rest.
    let mut batch = RawConn::encode(&[b"BLPOP", b"nothing", b"0.1"]);
    batch.extend_from_slice(&RawConn::encode(&[b"INCR", b"after"]));
    a.send_raw(&batch);
    assert_eq!(a.read(), b"*-1\r\n");
    assert_eq!(a.read(), b":2\r\n");

    // Commands that arrive in later writes while blocked also wait.
    a.send(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    a.send(&["ECHO", "late"]);
    a.assert_silent(Duration::from_millis(100), "a blocked client");
    assert_eq!(admin.cmd(&["LPUSH", "k", "z"]), b":1\r\n");
    assert_eq!(a.read(), bulks(&["k", "z"]));
    assert_eq!(a.read(), b"$4\r\nlate\r\n");
}

#[test]
fn blocking_replies_match_reference() {
    let _guard = ref_lock();
    let Some(mut theirs) = reference("blocking_replies_match_reference", REF_DB) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    compare(
        &mut ours,
        &mut theirs,
        &script(
            r#"
            RPUSH l a b c d
            BLPOP l 0
            BRPOP nolist l 0
            BLPOP nolist 0.05
            BLPOP nolist -1
            BLPOP nolist abc
            BLPOP nolist inf
            BLPOP
            BLPOP l
            BLMOVE l dst LEFT RIGHT 0
            BLMOVE l dst UP RIGHT 0
            BRPOPLPUSH l dst 0
            BLMOVE nolist dst LEFT RIGHT 0.05
            LRANGE dst 0 -1
            BLMPOP 0 2 nolist dst RIGHT COUNT 5
            BLMPOP 0.05 1 nolist LEFT
            BLMPOP 0 0 l LEFT
            ZADD z 1 a 2 b 3 c
            BZPOPMIN z 0
            BZPOPMAX noz z 0
            BZPOPMIN noz 0.05
            BZMPOP 0 1 z MIN COUNT 3
            BZMPOP 0.05 1 z MAX
            SET str x
            BLPOP str 0
            BZPOPMIN str 0
            BLMOVE str dst LEFT LEFT 0
            "#,
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// Pub/Sub
// ---------------------------------------------------------------------------------------------

#[test]
fn subscribe_and_psubscribe_confirmations_are_exact() {
    let node = node(&[]);
    let mut s = Conn::to(&node);
    s.send(&["SUBSCRIBE", "a", "bb"]);
    assert_eq!(s.read(), confirm('*', "subscribe", "a", 1));
    assert_eq!(
        s.read(),
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nbb\r\n:2\r\n".to_vec()
    );
    // Subscribing again to the same channel confirms without counting it twice.
    assert_eq!(
        s.cmd(&["SUBSCRIBE", "a"]),
        confirm('*', "subscribe", "a", 2)
    );
    assert_eq!(
        s.cmd(&["PSUBSCRIBE", "p*"]),
        b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n".to_vec()
    );
    assert_eq!(
        s.cmd(&["PUNSUBSCRIBE", "p*"]),
        confirm('*', "punsubscribe", "p*", 2)
    );
    assert_eq!(
        s.cmd(&["UNSUBSCRIBE", "a"]),
        confirm('*', "unsubscribe", "a", 1)
    );
    // Unsubscribing from a channel one is not subscribed to still confirms.
    assert_eq!(
        s.cmd(&["UNSUBSCRIBE", "zz"]),
        confirm('*', "unsubscribe", "zz", 1)
    );
}

#[test]
fn publish_counts_receivers_and_delivers_messages_in_resp2() {
    let node = node(&[]);
    let mut by_channel = Conn::to(&node);
    let mut by_pattern = Conn::to(&node);
    let mut by_both = Conn::to(&node);
    let mut publisher = Conn::to(&node);
    assert_eq!(
        by_channel.cmd(&["SUBSCRIBE", "news"]),
        confirm('*', "subscribe", "news", 1)
    );
    by_pattern.cmd(&["PSUBSCRIBE", "n*"]);
    by_both.cmd(&["SUBSCRIBE", "news"]);
    by_both.cmd(&["PSUBSCRIBE", "ne?s"]);

    // One delivery per matching subscription: by_both gets it twice.
    assert_eq!(publisher.cmd(&["PUBLISH", "news", "hello"]), b":4\r\n");
    assert_eq!(by_channel.read(), bulks(&["message", "news", "hello"]));
    assert_eq!(
        by_pattern.read(),
        bulks(&["pmessage", "n*", "news", "hello"])
    );
    assert_eq!(by_both.read(), bulks(&["message", "news", "hello"]));
    assert_eq!(
        by_both.read(),
        bulks(&["pmessage", "ne?s", "news", "hello"])
    );

    // Only patterns match this one; nobody gets the last.
    assert_eq!(publisher.cmd(&["PUBLISH", "nope", "x"]), b":1\r\n");
    assert_eq!(by_pattern.read(), bulks(&["pmessage", "n*", "nope", "x"]));
    assert_eq!(publisher.cmd(&["PUBLISH", "other", "x"]), b":0\r\n");

    // Binary-safe payloads, empty ones, and order of many messages.
    let payload = "a\r\nb\0c";
    assert_eq!(publisher.cmd(&["PUBLISH", "news", payload]), b":4\r\n");
    assert_eq!(publisher.cmd(&["PUBLISH", "news", ""]), b":4\r\n");
    for i in 0..50 {
        publisher.send(&["PUBLISH", "news", &i.to_string()]);
    }
    for _ in 0..50 {
        assert_eq!(publisher.read(), b":4\r\n");
    }
    assert_eq!(by_channel.read(), bulks(&["message", "news", payload]));
    assert_eq!(by_channel.read(), bulks(&["message", "news", ""]));
    for i in 0..50 {
        assert_eq!(
            by_channel.read(),
            bulks(&["message", "news", &i.to_string()])
        );
    }
    // Nothing extra arrives.
    by_channel.assert_silent(Duration::from_millis(100), "the channel subscriber");

    // A subscriber that leaves is no longer counted.
    let gone = by_pattern.id_via(&mut publisher);
    drop(by_pattern);
    wait_gone(&mut publisher, gone);
    assert_eq!(publisher.cmd(&["PUBLISH", "news", "x"]), b":3\r\n");
}

#[test]
fn resp3_subscribers_get_push_frames() {
    let node = node(&[]);
    let mut s3 = Conn::to(&node);
    let mut s2 = Conn::to(&node);
    let mut publisher = Conn::to(&node);
    assert!(s3.cmd(&["HELLO", "3"]).starts_with(b"%"));
    assert_eq!(
        s3.cmd(&["SUBSCRIBE", "ch"]),
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n".to_vec()
    );
    assert_eq!(
        s3.cmd(&["PSUBSCRIBE", "c*"]),
        confirm('>', "psubscribe", "c*", 2)
    );
    s2.cmd(&["SUBSCRIBE", "ch"]);

    assert_eq!(publisher.cmd(&["PUBLISH", "ch", "hi"]), b":3\r\n");
    // The same message, framed per subscriber's protocol.
    assert_eq!(s3.read(), frame('>', &["message", "ch", "hi"]));
    assert_eq!(s3.read(), frame('>', &["pmessage", "c*", "ch", "hi"]));
    assert_eq!(s2.read(), frame('*', &["message", "ch", "hi"]));

    // In RESP3 a subscribed connection runs any command, and a push can arrive between
    // replies without disturbing them.
    assert_eq!(s3.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(s3.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(s3.cmd(&["GET", "missing"]), b"_\r\n");
    assert_eq!(s3.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(publisher.cmd(&["PUBLISH", "cx", "p"]), b":1\r\n");
    assert_eq!(s3.read(), frame('>', &["pmessage", "c*", "cx", "p"]));

    // Unsubscribing confirms with pushes too.
    s3.send(&["UNSUBSCRIBE"]);
    assert_eq!(s3.read(), confirm('>', "unsubscribe", "ch", 1));
    assert_eq!(
        s3.cmd(&["PUNSUBSCRIBE"]),
        confirm('>', "punsubscribe", "c*", 0)
    );
    assert_eq!(publisher.cmd(&["PUBLISH", "ch", "x"]), b":1\r\n");
    assert_eq!(s2.read(), frame('*', &["message", "ch", "x"]));
    s3.assert_silent(Duration::from_millis(100), "an unsubscribed RESP3 client");

    // HELLO 2 while subscribed in RESP3: later messages are RESP2 arrays, and the RESP2
    // restrictions apply.
    s3.cmd(&["SUBSCRIBE", "ch"]);
    assert!(s3.cmd(&["HELLO", "2"]).starts_with(b"*"));
    assert_eq!(publisher.cmd(&["PUBLISH", "ch", "y"]), b":2\r\n");
    assert_eq!(s3.read(), frame('*', &["message", "ch", "y"]));
    assert_eq!(s2.read(), frame('*', &["message", "ch", "y"]));
    assert!(s3
        .cmd(&["GET", "k"])
        .starts_with(b"-ERR Can't execute 'get'"));
}

#[test]
fn resp2_subscribed_mode_allows_only_pubsub_commands() {
    let node = node(&[]);
    let mut s = Conn::to(&node);
    s.cmd(&["SUBSCRIBE", "ch"]);
    for (cmd, name) in [
        (&["GET", "x"][..], "get"),
        (&["SET", "x", "1"], "set"),
        (&["MULTI"], "multi"),
        (&["CLIENT", "ID"], "client|id"),
        (&["CONFIG", "GET", "x"], "config|get"),
        (&["HELLO", "3"], "hello"),
    ] {
        assert_eq!(
            show(&s.cmd(cmd)),
            format!(
                "-ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
            ),
            "{cmd:?}"
        );
    }
    assert_eq!(s.cmd(&["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(s.cmd(&["PING", "hi"]), bulks(&["pong", "hi"]));
    // The refused SET did nothing.
    let mut other = Conn::to(&node);
    assert_eq!(other.cmd(&["EXISTS", "x"]), b":0\r\n");
    // Leaving the last subscription leaves subscribed mode.
    assert_eq!(
        s.cmd(&["UNSUBSCRIBE", "ch"]),
        confirm('*', "unsubscribe", "ch", 0)
    );
    assert_eq!(s.cmd(&["GET", "x"]), b"$-1\r\n");
    assert_eq!(s.cmd(&["PING"]), b"+PONG\r\n");
    // RESET leaves it as well.
    s.cmd(&["PSUBSCRIBE", "*"]);
    assert_eq!(s.cmd(&["RESET"]), b"+RESET\r\n");
    assert_eq!(s.cmd(&["GET", "x"]), b"$-1\r\n");
    assert_eq!(other.cmd(&["PUBLISH", "ch", "m"]), b":0\r\n");
    assert_eq!(other.cmd(&["PUBSUB", "NUMPAT"]), b":0\r\n");
}

#[test]
fn unsubscribe_without_arguments_drops_every_channel() {
    let node = node(&[]);
    let mut s = Conn::to(&node);
    let mut publisher = Conn::to(&node);
    // Not subscribed at all: one confirmation with a null name.
    assert_eq!(
        s.cmd(&["UNSUBSCRIBE"]),
        b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n".to_vec()
    );
    assert_eq!(
        s.cmd(&["PUNSUBSCRIBE"]),
        b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n".to_vec()
    );
    s.send(&["SUBSCRIBE", "a", "b", "c"]);
    for _ in 0..3 {
        s.read();
    }
    s.cmd(&["PSUBSCRIBE", "p*"]);
    // One confirmation per channel (in no particular order), counting down; patterns stay.
    s.send(&["UNSUBSCRIBE"]);
    let mut names = Vec::new();
    for left in [3, 2, 1] {
        let reply = parse(&s.read());
        let items = reply.items();
        assert_eq!(items[0], V::Bulk(b"unsubscribe".to_vec()));
        assert_eq!(items[2], V::Int(left));
        names.push(items[1].text());
    }
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(publisher.cmd(&["PUBLISH", "a", "x"]), b":0\r\n");
    assert_eq!(publisher.cmd(&["PUBLISH", "px", "x"]), b":1\r\n");
    assert_eq!(s.read(), bulks(&["pmessage", "p*", "px", "x"]));
    // Still subscribed to the pattern: still in subscribed mode.
    assert!(s
        .cmd(&["GET", "x"])
        .starts_with(b"-ERR Can't execute 'get'"));
    assert_eq!(
        s.cmd(&["PUNSUBSCRIBE"]),
        confirm('*', "punsubscribe", "p*", 0)
    );
    assert_eq!(s.cmd(&["GET", "x"]), b"$-1\r\n");
    assert_eq!(publisher.cmd(&["PUBLISH", "px", "x"]), b":0\r\n");
}

#[test]
fn pubsub_channels_numsub_and_numpat() {
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    assert_eq!(admin.cmd(&["PUBSUB", "CHANNELS"]), b"*0\r\n");
    assert_eq!(admin.cmd(&["PUBSUB", "NUMPAT"]), b":0\r\n");
    assert_eq!(admin.cmd(&["PUBSUB", "NUMSUB"]), b"*0\r\n");
    let mut s1 = Conn::to(&node);
    let mut s2 = Conn::to(&node);
    s1.send(&["SUBSCRIBE", "news.a", "news.b"]);
    s1.read();
    s1.read();
    s2.cmd(&["SUBSCRIBE", "news.a"]);
    s2.cmd(&["PSUBSCRIBE", "news.*"]);
    s1.cmd(&["PSUBSCRIBE", "news.*"]);
    s1.cmd(&["PSUBSCRIBE", "other*"]);

    let mut channels = parse(&admin.cmd(&["PUBSUB", "CHANNELS"])).texts();
    channels.sort();
    assert_eq!(channels, ["news.a", "news.b"]);
    assert_eq!(
        admin.cmd(&["PUBSUB", "CHANNELS", "*.b"]),
        bulks(&["news.b"])
    );
    assert_eq!(admin.cmd(&["PUBSUB", "CHANNELS", "x*"]), b"*0\r\n");
    assert_eq!(
        show(&admin.cmd(&["PUBSUB", "NUMSUB", "news.a", "news.b", "nosuch"])),
        "*6\r\n$6\r\nnews.a\r\n:2\r\n$6\r\nnews.b\r\n:1\r\n$6\r\nnosuch\r\n:0\r\n"
    );
    // Patterns are counted once however many clients use them.
    assert_eq!(admin.cmd(&["PUBSUB", "NUMPAT"]), b":2\r\n");
    assert_eq!(info_u64(&mut admin, "stats", "pubsub_channels"), 2);
    assert_eq!(info_u64(&mut admin, "stats", "pubsub_patterns"), 2);

    // A client that leaves takes its subscriptions along.
    let s1_id = s1.id_via(&mut admin);
    drop(s1);
    wait_gone(&mut admin, s1_id);
    assert_eq!(admin.cmd(&["PUBSUB", "CHANNELS"]), bulks(&["news.a"]));
    assert_eq!(
        show(&admin.cmd(&["PUBSUB", "NUMSUB", "news.a", "news.b"])),
        "*4\r\n$6\r\nnews.a\r\n:1\r\n$6\r\nnews.b\r\n:0\r\n"
    );
    assert_eq!(admin.cmd(&["PUBSUB", "NUMPAT"]), b":1\r\n");
    assert_eq!(info_u64(&mut admin, "stats", "pubsub_channels"), 1);
    assert_eq!(info_u64(&mut admin, "stats", "pubsub_patterns"), 1);
}

#[test]
fn pubsub_replies_match_reference() {
    let _guard = ref_lock();
    let node = node(&[]);
    let (ch1, ch2, pat) = (unique("one"), unique("two"), unique("*"));
    compare_scenario("pubsub_replies_match_reference", &node, |s, p| {
        let mut r = Vec::new();
        r.push(s.cmd_str(&["UNSUBSCRIBE"]));
        r.push(s.cmd_str(&["PUNSUBSCRIBE"]));
        r.push(s.cmd_str(&["UNSUBSCRIBE", &ch1]));
        s.send(&RawConn::encode(&[
            b"SUBSCRIBE",
            ch1.as_bytes(),
            ch2.as_bytes(),
        ]));
        r.push(s.read_reply());
        r.push(s.read_reply());
        r.push(s.cmd_str(&["PSUBSCRIBE", &pat]));
        r.push(s.cmd_str(&["SUBSCRIBE", &ch1]));
        r.push(p.cmd_str(&["PUBSUB", "NUMSUB", &ch1, &ch2, &unique("none")]));
        r.push(p.cmd_str(&["PUBSUB", "CHANNELS", &unique("o*")]));
        r.push(p.cmd_str(&["PUBLISH", &ch1, "hello"]));
        r.push(s.read_reply());
        r.push(s.read_reply());
        r.push(p.cmd_str(&["PUBLISH", &unique("xyz"), ""]));
        r.push(s.read_reply());
        for cmd in [
            &["GET", "x"][..],
            &["SET", "x", "1"],
            &["PUBLISH", "c", "m"],
            &["PING"],
            &["PING", "hello"],
            &["UNSUBSCRIBE", &ch2],
            &["PUNSUBSCRIBE", &pat],
            &["PUNSUBSCRIBE", &pat],
            &["UNSUBSCRIBE", &ch1],
            &["GET", "x"],
            &["PING"],
            &["PUBLISH", &ch1, "m"],
        ] {
            r.push(s.cmd_str(cmd));
        }
        // RESP3 pushes.
        r.push(
            p.cmd_str(&["HELLO", "3"])
                .starts_with(b"%")
                .to_string()
                .into_bytes(),
        );
        // A flat array in RESP3 too (redis-py's RESP3 pubsub_numsub() relies on it).
        r.push(p.cmd_str(&["PUBSUB", "NUMSUB", &ch1, &unique("none")]));
        r.push(p.cmd_str(&["SUBSCRIBE", &ch1]));
        r.push(p.cmd_str(&["PSUBSCRIBE", &pat]));
        r.push(s.cmd_str(&["PUBLISH", &ch1, "three"]));
        r.push(p.read_reply());
        r.push(p.read_reply());
        r.push(p.cmd_str(&["GET", "x"]));
        r.push(p.cmd_str(&["PING"]));
        r.push(p.cmd_str(&["UNSUBSCRIBE", &ch1]));
        r.push(p.cmd_str(&["PUNSUBSCRIBE"]));
        r
    });
}

#[test]
fn a_slow_subscriber_is_disconnected_and_memory_stays_bounded() {
    const MESSAGE: usize = 64 * 1024;
    const MESSAGES: usize = 640; // ~40 MB, over the 32 MB pub/sub output limit
    let node = node(&[]);
    let mut admin = Conn::to(&node);
    let mut slow = Conn::to(&node);
    let slow_id = slow.id();
    slow.cmd(&["SUBSCRIBE", "firehose"]);
    let base_used = info_u64(&mut admin, "memory", "used_memory");
    let base_rss = info_u64(&mut admin, "memory", "used_memory_rss");

    let mut publisher = Conn::to(&node);
    let payload = "x".repeat(MESSAGE);
    let (mut peak_used, mut peak_rss) = (base_used, base_rss);
    let mut delivered = 0;
    let start = Instant::now();
    for chunk in 0..MESSAGES / 16 {
        for _ in 0..16 {
            publisher.send(&["PUBLISH", "firehose", &payload]);
        }
        for _ in 0..16 {
            delivered += int(&publisher.read());
        }
        if chunk % 4 == 0 {
            peak_used = peak_used.max(info_u64(&mut admin, "memory", "used_memory"));
            peak_rss = peak_rss.max(info_u64(&mut admin, "memory", "used_memory_rss"));
        }
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "publishing took too long"
        );
    }
    // The subscriber was cut off before everything was queued for it.
    assert!(
        (delivered as usize) < MESSAGES,
        "all {delivered} messages were accepted for a subscriber that never reads"
    );
    // The node still answers, and the slow client is gone from CLIENT LIST and the channel.
    assert_eq!(admin.cmd(&["PING"]), b"+PONG\r\n");
    wait_gone(&mut admin, slow_id);
    assert_eq!(admin.cmd(&["PUBLISH", "firehose", "x"]), b":0\r\n");
    assert_eq!(
        admin.cmd(&["PUBSUB", "NUMSUB", "firehose"]),
        b"*2\r\n$8\r\nfirehose\r\n:0\r\n"
    );
    assert!(
        slow.closed_within(Duration::from_secs(5)),
        "the slow subscriber's connection was not closed"
    );
    peak_used = peak_used.max(info_u64(&mut admin, "memory", "used_memory"));
    peak_rss = peak_rss.max(info_u64(&mut admin, "memory", "used_memory_rss"));
    const MB: u64 = 1024 * 1024;
    eprintln!(
        "slow subscriber: {delivered} of {MESSAGES} messages accepted in {:?}; used_memory \
         {base_used} -> peak {peak_used}, RSS {base_rss} -> peak {peak_rss}",
        start.elapsed()
    );
    assert!(
        peak_used < base_used + 100 * MB,
        "used_memory grew from {base_used} to {peak_used}"
    );
    assert!(
        peak_rss < base_rss + 100 * MB,
        "RSS grew from {base_rss} to {peak_rss}"
    );
    // The memory queued for it is given back.
    wait_until(
        Duration::from_secs(5),
        "queued messages to be freed",
        || info_u64(&mut admin, "memory", "used_memory") < base_used + 16 * MB,
    );
}

// ---------------------------------------------------------------------------------------------
// Keyspace notifications
// ---------------------------------------------------------------------------------------------

/// Reads the next keyspace and keyevent pmessages for one event on `key` in `db`.
fn expect_event(s: &mut Conn, db: u32, event: &str, key: &str) {
    let space = format!("__keyspace@{db}__:{key}");
    let evt = format!("__keyevent@{db}__:{event}");
    assert_eq!(
        show(&s.read()),
        show(&bulks(&["pmessage", "__key*__:*", &space, event])),
        "keyspace message for {event} {key}"
    );
    assert_eq!(
        show(&s.read()),
        show(&bulks(&["pmessage", "__key*__:*", &evt, key])),
        "keyevent message for {event} {key}"
    );
}

#[test]
fn keyspace_notifications_for_writes_and_expiry() {
    let node = node(&[]);
    let mut c = Conn::to(&node);
    let mut s = Conn::to(&node);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        bulks(&["notify-keyspace-events", "AKE"])
    );
    assert_eq!(
        s.cmd(&["PSUBSCRIBE", "__key*__:*"]),
        confirm('*', "psubscribe", "__key*__:*", 1)
    );

    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    expect_event(&mut s, 0, "set", "k");
    assert_eq!(c.cmd(&["DEL", "k"]), b":1\r\n");
    expect_event(&mut s, 0, "del", "k");
    // Deleting nothing notifies nothing.
    assert_eq!(c.cmd(&["DEL", "k"]), b":0\r\n");

    assert_eq!(c.cmd(&["SET", "t", "v"]), b"+OK\r\n");
    expect_event(&mut s, 0, "set", "t");
    assert_eq!(c.cmd(&["PEXPIRE", "t", "50"]), b":1\r\n");
    expect_event(&mut s, 0, "expire", "t");
    // Nobody touches `t`: active expiry removes it and says so.
    let start = Instant::now();
    expect_event(&mut s, 0, "expired", "t");
    assert!(start.elapsed() < Duration::from_secs(3));

    assert_eq!(c.cmd(&["LPUSH", "l", "a", "b"]), b":2\r\n");
    expect_event(&mut s, 0, "lpush", "l");
    assert_eq!(c.cmd(&["HSET", "h", "f", "v", "g", "w"]), b":2\r\n");
    expect_event(&mut s, 0, "hset", "h");
    assert_eq!(c.cmd(&["ZADD", "z", "1", "m"]), b":1\r\n");
    expect_event(&mut s, 0, "zadd", "z");
    // Other databases are named in the channels.
    assert_eq!(c.cmd(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k3", "v"]), b"+OK\r\n");
    expect_event(&mut s, 3, "set", "k3");
    // A read is no event.
    assert_eq!(c.cmd(&["GET", "k3"]), b"$1\r\nv\r\n");
    s.assert_silent(Duration::from_millis(100), "after a read");

    // Only keyevent messages with E alone, only generic and string events with "E$g".
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "E$g"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd(&["SET", "k3", "w"]), b"+OK\r\n");
    assert_eq!(
        s.read(),
        bulks(&["pmessage", "__key*__:*", "__keyevent@3__:set", "k3"])
    );
    assert_eq!(c.cmd(&["LPUSH", "l3", "a"]), b":1\r\n");
    assert_eq!(c.cmd(&["DEL", "l3"]), b":1\r\n");
    assert_eq!(
        s.read(),
        bulks(&["pmessage", "__key*__:*", "__keyevent@3__:del", "l3"])
    );
    s.assert_silent(Duration::from_millis(100), "with lists not selected");

    // A plain SUBSCRIBE to one keyspace channel gets only that key's events.
    let mut one = Conn::to(&node);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "K$"]),
        b"+OK\r\n"
    );
    one.cmd(&["SUBSCRIBE", "__keyspace@3__:mine"]);
    assert_eq!(c.cmd(&["SET", "theirs", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "mine", "v"]), b"+OK\r\n");
    assert_eq!(
        one.read(),
        bulks(&["message", "__keyspace@3__:mine", "set"])
    );
    one.assert_silent(Duration::from_millis(100), "a single-key subscriber");
}

#[test]
fn keyspace_notifications_off_send_nothing() {
    let node = node(&[]);
    let mut c = Conn::to(&node);
    let mut s = Conn::to(&node);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        bulks(&["notify-keyspace-events", ""])
    );
    s.cmd(&["PSUBSCRIBE", "__key*__:*"]);
    // First on, then off again with the empty setting.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]),
        b"+OK\r\n"
    );
    for cmd in [
        &["SET", "k", "v"][..],
        &["PEXPIRE", "k", "30"],
        &["LPUSH", "l", "a"],
        &["HSET", "h", "f", "v"],
        &["ZADD", "z", "1", "m"],
        &["SADD", "s", "m"],
        &["DEL", "l", "h"],
    ] {
        assert!(!c.cmd(cmd).starts_with(b"-"), "{cmd:?}");
    }
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(c.cmd(&["EXISTS", "k"]), b":0\r\n");
    s.assert_silent(Duration::from_millis(300), "notifications turned off");
    // Classes without K or E send nothing either.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "A"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    s.assert_silent(Duration::from_millis(200), "no K or E");
}

/// WATCH is touched only by what could change the key: FLUSHDB leaves a watched key that did
/// not exist clean, and SMOVE into a set that already holds the member leaves that set clean
/// (Redis signals the destination only when the member was added).
#[test]
fn watch_ignores_changes_that_change_nothing() {
    let _guard = ref_lock();
    let node = node(&[]);
    compare_scenario(
        "watch_ignores_changes_that_change_nothing",
        &node,
        |a, b| {
            let mut r = Vec::new();
            for cmd in [
                &["DEL", "x"][..],
                &["WATCH", "x"],
                &["FLUSHDB"],
                &["MULTI"],
                &["PING"],
                &["EXEC"],
                &["SET", "x", "1"],
                &["WATCH", "x"],
                &["FLUSHDB"],
                &["MULTI"],
                &["PING"],
                &["EXEC"],
                &["SADD", "src{t}", "a", "b"],
                &["SADD", "dst{t}", "a"],
                &["WATCH", "dst{t}"],
                &["MULTI"],
                &["SADD", "dst{t}", "c"],
            ] {
                r.push(a.cmd_str(cmd));
            }
            r.push(b.cmd_str(&["SMOVE", "src{t}", "dst{t}", "a"]));
            r.push(a.cmd_str(&["EXEC"]));
            r.push(a.cmd_str(&["SCARD", "dst{t}"]));
            r.push(a.cmd_str(&["WATCH", "dst{t}"]));
            r.push(a.cmd_str(&["MULTI"]));
            r.push(a.cmd_str(&["PING"]));
            r.push(b.cmd_str(&["SMOVE", "src{t}", "dst{t}", "b"]));
            r.push(a.cmd_str(&["EXEC"]));
            r
        },
    );
}
