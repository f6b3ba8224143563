//! End to end: connection and server commands (CLIENT, CONFIG, INFO, COMMAND, databases, HELLO,
//! RESET, SCAN, timeouts, maxclients, configuration sources, redis-cli) against the real binary
//! on a free port, plus differential checks against the reference Redis on database 12.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{compare, node, reference, words, NodeProcess, RawConn};

/// Database of the reference Redis that these differential tests own.
const REF_DB: u32 = 12;

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
    Map(Vec<(V, V)>),
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

    fn int(&self) -> i64 {
        match self {
            V::Int(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }

    fn items(&self) -> &[V] {
        match self {
            V::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    /// A flat RESP2 `[k, v, k, v]` array or a RESP3 map, as (key, value) text pairs.
    fn pairs(&self) -> Vec<(String, String)> {
        match self {
            V::Map(pairs) => pairs.iter().map(|(k, v)| (k.text(), v.text())).collect(),
            V::Array(items) => {
                assert!(items.len() % 2 == 0, "odd flat map: {items:?}");
                items
                    .chunks(2)
                    .map(|p| (p[0].text(), p[1].text()))
                    .collect()
            }
            other => panic!("not a map: {other:?}"),
        }
    }
}

/// Parses one complete reply (the bytes `RawConn` returns).
fn parse(reply: &[u8]) -> V {
    let (v, used) = parse_at(reply);
    assert_eq!(used, reply.len(), "trailing bytes after reply");
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
        b'$' | b'=' if n() < 0 => (V::Nil, after),
        b'$' | b'=' => {
            let len = n() as usize;
            let mut data = buf[after..after + len].to_vec();
            if buf[0] == b'=' {
                // Verbatim string: drop the `txt:` format prefix.
                data.drain(..4);
            }
            (V::Bulk(data), after + len + 2)
        }
        b'*' | b'~' | b'>' if n() < 0 => (V::Nil, after),
        b'*' | b'~' | b'>' => {
            let mut pos = after;
            let mut items = Vec::new();
            for _ in 0..n() {
                let (v, used) = parse_at(&buf[pos..]);
                items.push(v);
                pos += used;
            }
            (V::Array(items), pos)
        }
        b'%' | b'|' => {
            let mut pos = after;
            let mut pairs = Vec::new();
            for _ in 0..n() {
                let (k, used) = parse_at(&buf[pos..]);
                pos += used;
                let (v, used) = parse_at(&buf[pos..]);
                pos += used;
                pairs.push((k, v));
            }
            (V::Map(pairs), pos)
        }
        _ => (V::Other(line), after),
    }
}

fn show(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// The payload of a bulk (or verbatim) string reply.
fn bulk(reply: &[u8]) -> String {
    match parse(reply) {
        V::Bulk(b) => String::from_utf8(b).expect("utf-8 bulk"),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn int(reply: &[u8]) -> i64 {
    parse(reply).int()
}

/// `name=value` fields of one CLIENT LIST / CLIENT INFO line.
fn client_fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// CLIENT LIST text as one field map per line.
fn client_lines(text: &str) -> Vec<HashMap<String, String>> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "CLIENT LIST lines end with \\n: {text:?}"
    );
    text.lines().map(client_fields).collect()
}

/// `field:value` of an INFO reply.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.split("\r\n")
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::to_string)
}

fn info_u64(info: &str, field: &str) -> u64 {
    info_field(info, field)
        .unwrap_or_else(|| panic!("INFO has no {field}: {info}"))
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number: {info}"))
}

fn info(conn: &mut RawConn, section: &str) -> String {
    let args: Vec<&str> = if section.is_empty() {
        vec!["INFO"]
    } else {
        vec!["INFO", section]
    };
    bulk(&conn.cmd_str(&args))
}

/// CONFIG GET as a name → value map.
fn config_get(conn: &mut RawConn, patterns: &[&str]) -> HashMap<String, String> {
    let mut args = vec!["CONFIG", "GET"];
    args.extend_from_slice(patterns);
    parse(&conn.cmd_str(&args)).pairs().into_iter().collect()
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `within`.
fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that can tell whether the server closed it, and knows its own address.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// `ip:port` of this end, as the server's CLIENT LIST `addr=` shows it.
    fn local_addr(&self) -> String {
        self.stream.local_addr().expect("local addr").to_string()
    }

    fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.stream
            .write_all(&RawConn::encode(&args))
            .expect("write");
        loop {
            if let Some(n) = cache_testkit::reply_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).expect("read reply");
            assert!(n > 0, "connection closed; have {:?}", show(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// What arrives until the server closes the connection, or None if it is still open after
    /// `within`.
    fn read_until_closed(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + within;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let closed = loop {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        break false;
                    }
                }
                // Reset by the peer: closed as well.
                Err(_) => break true,
            }
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        closed.then(|| std::mem::take(&mut self.buf))
    }

    fn closed_within(&mut self, within: Duration) -> bool {
        self.read_until_closed(within).is_some()
    }
}

/// Runs a program to completion (stdin fed from `input`), failing after `within`.
fn run(program: &str, args: &[&str], input: &[u8], within: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
    }
    let deadline = Instant::now() + within;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

fn redis_cli(node: &NodeProcess, args: &[&str], input: &[u8]) -> String {
    let port = node.addr.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    let out = run("redis-cli", &all, input, Duration::from_secs(10));
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A file in the temp directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "ferrocache-{}-{}-{name}",
            std::process::id(),
            std::thread::current()
                .name()
                .unwrap_or("t")
                .replace("::", "-")
        ));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn script(text: &str) -> Vec<Vec<&[u8]>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(words)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CLIENT
// ---------------------------------------------------------------------------------------------

#[test]
fn client_id_setname_getname_and_info() {
    let node = node(&[]);
    let mut a = Conn::connect(node.addr);
    let mut b = node.raw();
    let id_a = int(&a.cmd(&["CLIENT", "ID"]));
    let id_b = int(&b.cmd_str(&["CLIENT", "ID"]));
    assert!(id_a > 0, "ids are positive: {id_a}");
    assert!(
        id_b > id_a,
        "ids grow with each connection: {id_a} then {id_b}"
    );
    assert_eq!(int(&a.cmd(&["CLIENT", "ID"])), id_a, "an id is stable");

    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), b"$-1\r\n");
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), b"$5\r\nalpha\r\n");
    assert_eq!(
        a.cmd(&["CLIENT", "SETNAME", "has space"]),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        a.cmd(&["CLIENT", "GETNAME"]),
        b"$5\r\nalpha\r\n",
        "a refused name leaves the old one"
    );
    assert_eq!(
        b.cmd_str(&["CLIENT", "GETNAME"]),
        b"$-1\r\n",
        "names are per connection"
    );

    assert_eq!(a.cmd(&["SELECT", "5"]), b"+OK\r\n");
    let line = bulk(&a.cmd(&["CLIENT", "INFO"]));
    assert!(
        line.ends_with('\n') && line.lines().count() == 1,
        "one line: {line:?}"
    );
    let f = client_fields(&line);
    assert_eq!(f["id"], id_a.to_string(), "{line}");
    assert_eq!(f["name"], "alpha", "{line}");
    assert_eq!(f["db"], "5", "{line}");
    assert_eq!(f["addr"], a.local_addr(), "{line}");
    assert_eq!(f["laddr"], node.addr.to_string(), "{line}");
    assert_eq!(f["cmd"], "client|info", "{line}");
    assert_eq!(f["resp"], "2", "{line}");

    // The empty name removes the name.
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", ""]), b"+OK\r\n");
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), b"$-1\r\n");
    assert_eq!(
        a.cmd(&["CLIENT", "GETNAME", "x"]),
        b"-ERR wrong number of arguments for 'client|getname' command\r\n"
    );
}

#[test]
fn client_setinfo_sets_lib_name_and_version() {
    let node = node(&[]);
    let mut a = node.raw();
    assert_eq!(
        a.cmd_str(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]),
        b"+OK\r\n"
    );
    assert_eq!(
        a.cmd_str(&["CLIENT", "SETINFO", "lib-ver", "1.2.3"]),
        b"+OK\r\n"
    );
    let f = client_fields(&bulk(&a.cmd_str(&["CLIENT", "INFO"])));
    assert_eq!(f["lib-name"], "mylib");
    assert_eq!(f["lib-ver"], "1.2.3");

    let refused = a.cmd_str(&["CLIENT", "SETINFO", "lib-name", "two words"]);
    assert!(refused.starts_with(b"-ERR "), "{}", show(&refused));
    let refused = a.cmd_str(&["CLIENT", "SETINFO", "no-such-attr", "x"]);
    assert!(refused.starts_with(b"-ERR "), "{}", show(&refused));
    assert_eq!(
        a.cmd_str(&["CLIENT", "SETINFO", "lib-name"]),
        b"-ERR wrong number of arguments for 'client|setinfo' command\r\n"
    );
    let f = client_fields(&bulk(&a.cmd_str(&["CLIENT", "INFO"])));
    assert_eq!(f["lib-name"], "mylib", "refused values change nothing");

    // redis-rs sends CLIENT SETINFO when it connects; the node must take it.
    let mut c = node.client();
    let line: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    let f = client_fields(&line);
    assert_eq!(f["lib-name"], "redis-rs", "{line}");
    assert!(!f["lib-ver"].is_empty(), "{line}");
}

#[test]
fn client_list_shows_everyone_and_filters_by_id() {
    let node = node(&[]);
    let mut a = node.raw();
    let mut b = node.raw();
    let id_a = int(&a.cmd_str(&["CLIENT", "ID"]));
    let id_b = int(&b.cmd_str(&["CLIENT", "ID"]));
    assert_eq!(a.cmd_str(&["CLIENT", "SETNAME", "alpha"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["CLIENT", "SETNAME", "beta"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["SELECT", "2"]), b"+OK\r\n");

    let lines = client_lines(&bulk(&a.cmd_str(&["CLIENT", "LIST"])));
    assert_eq!(lines.len(), 2, "{lines:?}");
    let line = |id: i64| {
        lines
            .iter()
            .find(|l| l["id"] == id.to_string())
            .unwrap_or_else(|| panic!("no line for id {id}: {lines:?}"))
            .clone()
    };
    let la = line(id_a);
    let lb = line(id_b);
    assert_eq!(la["name"], "alpha");
    assert_eq!(la["cmd"], "client|list");
    assert_eq!(lb["name"], "beta");
    assert_eq!(lb["db"], "2");
    assert_eq!(lb["cmd"], "select");
    assert_eq!(la["laddr"], node.addr.to_string());

    let only_b = client_lines(&bulk(&a.cmd_str(&[
        "CLIENT",
        "LIST",
        "ID",
        &id_b.to_string(),
    ])));
    assert_eq!(only_b.len(), 1, "{only_b:?}");
    assert_eq!(only_b[0]["id"], id_b.to_string());
    assert_eq!(only_b[0]["name"], "beta");

    let both = client_lines(&bulk(&a.cmd_str(&[
        "CLIENT",
        "LIST",
        "ID",
        &id_a.to_string(),
        &id_b.to_string(),
        "999999",
    ])));
    let ids: BTreeSet<String> = both.iter().map(|l| l["id"].clone()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([id_a.to_string(), id_b.to_string()]),
        "{both:?}"
    );

    assert_eq!(
        a.cmd_str(&["CLIENT", "LIST", "ID", "999999"]),
        b"$0\r\n\r\n"
    );
    assert_eq!(a.cmd_str(&["CLIENT", "LIST", "ID", "0"]), b"$0\r\n\r\n");
    assert_eq!(
        a.cmd_str(&["CLIENT", "LIST", "ID", "abc"]),
        b"-ERR Invalid client ID\r\n"
    );
    assert_eq!(
        client_lines(&bulk(&a.cmd_str(&["CLIENT", "LIST", "TYPE", "normal"]))).len(),
        2
    );
    assert_eq!(
        a.cmd_str(&["CLIENT", "LIST", "TYPE", "pubsub"]),
        b"$0\r\n\r\n"
    );

    // A connection that goes away leaves the list.
    drop(b);
    wait_until(Duration::from_secs(5), "the closed client to leave", || {
        let lines = client_lines(&bulk(&a.cmd_str(&["CLIENT", "LIST"])));
        lines.len() == 1 && lines[0]["id"] == id_a.to_string()
    });
}

#[test]
fn client_kill_closes_the_connection() {
    let node = node(&[]);
    let mut admin = Conn::connect(node.addr);
    let id_admin = int(&admin.cmd(&["CLIENT", "ID"]));

    // New form: CLIENT KILL ID n.
    let mut v1 = Conn::connect(node.addr);
    let id_v1 = int(&v1.cmd(&["CLIENT", "ID"]));
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id_v1.to_string()]),
        b":1\r\n"
    );
    assert!(
        v1.closed_within(Duration::from_secs(5)),
        "CLIENT KILL ID left the connection open"
    );
    wait_until(Duration::from_secs(5), "the killed client to leave", || {
        admin.cmd(&["CLIENT", "LIST", "ID", &id_v1.to_string()]) == b"$0\r\n\r\n"
    });
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id_v1.to_string()]),
        b":0\r\n",
        "nobody left to kill"
    );

    // Old form: CLIENT KILL ip:port.
    let mut v2 = Conn::connect(node.addr);
    assert_eq!(v2.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "KILL", &v2.local_addr()]), b"+OK\r\n");
    assert!(
        v2.closed_within(Duration::from_secs(5)),
        "CLIENT KILL ip:port left the connection open"
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "127.0.0.1:1"]),
        b"-ERR No such client\r\n"
    );

    // SKIPME (default yes): the caller is spared unless it says no.
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id_admin.to_string()]),
        b":0\r\n"
    );
    assert_eq!(admin.cmd(&["PING"]), b"+PONG\r\n");
    let mut v3 = Conn::connect(node.addr);
    let mut v4 = Conn::connect(node.addr);
    assert_eq!(v3.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(v4.cmd(&["PING"]), b"+PONG\r\n");
    wait_until(Duration::from_secs(5), "exactly three clients", || {
        client_lines(&bulk(&admin.cmd(&["CLIENT", "LIST"]))).len() == 3
    });
    // Everyone on the node's address but the caller.
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "LADDR", &node.addr.to_string()]),
        b":2\r\n"
    );
    assert!(v3.closed_within(Duration::from_secs(5)));
    assert!(v4.closed_within(Duration::from_secs(5)));
    assert_eq!(admin.cmd(&["PING"]), b"+PONG\r\n");

    // Killing oneself: the reply arrives, then the connection closes.
    let mut me = Conn::connect(node.addr);
    let addr = me.local_addr();
    assert_eq!(me.cmd(&["CLIENT", "KILL", "ADDR", &addr]), b":0\r\n");
    assert_eq!(
        me.cmd(&["CLIENT", "KILL", "ADDR", &addr, "SKIPME", "no"]),
        b":1\r\n"
    );
    assert!(me.closed_within(Duration::from_secs(5)));
    assert_eq!(
        admin.cmd(&[
            "CLIENT",
            "KILL",
            "ID",
            &id_admin.to_string(),
            "SKIPME",
            "no"
        ]),
        b":1\r\n"
    );
    assert!(admin.closed_within(Duration::from_secs(5)));

    // The old form on oneself answers +OK and closes too.
    let mut me = Conn::connect(node.addr);
    let addr = me.local_addr();
    assert_eq!(me.cmd(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
    assert!(me.closed_within(Duration::from_secs(5)));
}

// ---------------------------------------------------------------------------------------------
// timeout and maxclients
// ---------------------------------------------------------------------------------------------

#[test]
fn idle_clients_are_closed_after_timeout_active_ones_are_not() {
    let node = node(&[]);
    let mut active = Conn::connect(node.addr);
    assert_eq!(active.cmd(&["CONFIG", "SET", "timeout", "1"]), b"+OK\r\n");
    let id_active = int(&active.cmd(&["CLIENT", "ID"]));
    let mut idle = Conn::connect(node.addr);
    let id_idle = int(&idle.cmd(&["CLIENT", "ID"]));
    let last_command = Instant::now();

    let mut closed_after = None;
    // Keep `active` busy past two whole timeouts while watching `idle`.
    while last_command.elapsed() < Duration::from_millis(2500) || closed_after.is_none() {
        assert!(
            last_command.elapsed() < Duration::from_millis(3500),
            "the idle client was not closed within 3.5 s of its last command"
        );
        assert_eq!(active.cmd(&["PING"]), b"+PONG\r\n");
        if closed_after.is_none() && idle.closed_within(Duration::from_millis(150)) {
            closed_after = Some(last_command.elapsed());
        }
    }
    let closed_after = closed_after.expect("closed");
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after only {closed_after:?} with timeout 1"
    );
    let ids: Vec<String> = client_lines(&bulk(&active.cmd(&["CLIENT", "LIST"])))
        .into_iter()
        .map(|l| l["id"].clone())
        .collect();
    assert_eq!(ids, vec![id_active.to_string()], "idle was {id_idle}");

    // timeout 0 turns it off.
    assert_eq!(active.cmd(&["CONFIG", "SET", "timeout", "0"]), b"+OK\r\n");
    let mut quiet = Conn::connect(node.addr);
    assert_eq!(quiet.cmd(&["PING"]), b"+PONG\r\n");
    assert!(
        !quiet.closed_within(Duration::from_millis(2200)),
        "closed with timeout 0"
    );
    assert_eq!(quiet.cmd(&["PING"]), b"+PONG\r\n");
}

/// Connects, sends PING and reports the answer (or "closed").
fn try_ping(addr: SocketAddr) -> String {
    let mut c = Conn::connect(addr);
    let _ = c.stream.write_all(&RawConn::encode(&[b"PING".as_slice()]));
    match c.read_until_closed(Duration::from_millis(500)) {
        Some(bytes) => format!("closed after {}", show(&bytes)),
        None => show(&std::mem::take(&mut c.buf)),
    }
}

#[test]
fn maxclients_rejects_connections_over_the_limit() {
    let node = node(&[]);
    let mut admin = node.raw();
    assert_eq!(
        admin.cmd_str(&["CONFIG", "SET", "maxclients", "3"]),
        b"+OK\r\n"
    );
    let mut b = node.raw();
    assert_eq!(b.cmd_str(&["PING"]), b"+PONG\r\n");
    let mut c = node.raw();
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");

    let mut over = Conn::connect(node.addr);
    let got = over
        .read_until_closed(Duration::from_secs(5))
        .expect("the connection over the limit is closed");
    assert_eq!(show(&got), "-ERR max number of clients reached\r\n");

    let stats = info(&mut admin, "stats");
    assert_eq!(info_u64(&stats, "rejected_connections"), 1, "{stats}");
    let clients = info(&mut admin, "clients");
    assert_eq!(info_u64(&clients, "connected_clients"), 3, "{clients}");
    assert_eq!(info_u64(&clients, "maxclients"), 3, "{clients}");

    // A slot frees up when a client leaves.
    drop(c);
    wait_until(Duration::from_secs(5), "a free slot", || {
        try_ping(node.addr) == "+PONG\r\n"
    });
    // Raising the limit lets more in at once.
    assert_eq!(
        admin.cmd_str(&["CONFIG", "SET", "maxclients", "100"]),
        b"+OK\r\n"
    );
    let mut more: Vec<RawConn> = (0..5).map(|_| node.raw()).collect();
    for m in &mut more {
        assert_eq!(m.cmd_str(&["PING"]), b"+PONG\r\n");
    }
    assert_eq!(b.cmd_str(&["PING"]), b"+PONG\r\n");
}

// ---------------------------------------------------------------------------------------------
// CONFIG and configuration sources
// ---------------------------------------------------------------------------------------------

#[test]
fn config_get_with_globs_and_several_patterns() {
    let node = node(&[]);
    let mut c = node.raw();
    let all = config_get(&mut c, &["*"]);
    for name in [
        "bind",
        "port",
        "requirepass",
        "maxclients",
        "timeout",
        "databases",
        "proto-max-bulk-len",
        "client-query-buffer-limit",
        "hz",
        "loglevel",
        "save",
        "appendonly",
    ] {
        assert!(all.contains_key(name), "CONFIG GET * lacks {name}: {all:?}");
    }
    assert_eq!(all["port"], node.addr.port().to_string());
    assert_eq!(all["databases"], "16");
    assert_eq!(all["maxclients"], "10000");

    let names = |m: HashMap<String, String>| m.into_keys().collect::<BTreeSet<_>>();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        names(config_get(&mut c, &["*max*"])),
        // Redis 7.0.15's answer (the node knows all of Redis's parameters).
        set(&[
            "acllog-max-len",
            "active-defrag-cycle-max",
            "active-defrag-max-scan-fields",
            "hash-max-listpack-entries",
            "hash-max-listpack-value",
            "hash-max-ziplist-entries",
            "hash-max-ziplist-value",
            "hll-sparse-max-bytes",
            "list-max-listpack-size",
            "list-max-ziplist-size",
            "maxclients",
            "maxmemory",
            "maxmemory-clients",
            "maxmemory-eviction-tenacity",
            "maxmemory-policy",
            "maxmemory-samples",
            "min-replicas-max-lag",
            "min-slaves-max-lag",
            "proto-max-bulk-len",
            "repl-diskless-sync-max-replicas",
            "replica-ignore-maxmemory",
            "set-max-intset-entries",
            "slave-ignore-maxmemory",
            "slowlog-max-len",
            "stream-node-max-bytes",
            "stream-node-max-entries",
            "tracking-table-max-keys",
            "zset-max-listpack-entries",
            "zset-max-listpack-value",
            "zset-max-ziplist-entries",
            "zset-max-ziplist-value",
        ])
    );
    assert_eq!(names(config_get(&mut c, &["h?"])), set(&["hz"]));
    assert_eq!(
        names(config_get(&mut c, &["[pt]*o*"])),
        // Redis 7.0.15's answer.
        set(&[
            "port",
            "proc-title-template",
            "propagation-error-behavior",
            "protected-mode",
            "proto-max-bulk-len",
            "tcp-backlog",
            "timeout",
            "tls-port",
            "tls-protocols",
            "tls-replication",
            "tls-session-cache-size",
            "tls-session-cache-timeout",
            "tls-session-caching",
        ])
    );
    assert_eq!(
        names(config_get(&mut c, &["*MAX*"])),
        names(config_get(&mut c, &["*max*"])),
        "patterns ignore case"
    );
    let two = config_get(&mut c, &["port", "timeout"]);
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!(two["port"], node.addr.port().to_string());
    assert_eq!(two["timeout"], "0");
    // A parameter matched by several patterns comes back once.
    let reply = parse(&c.cmd_str(&["CONFIG", "GET", "*max*", "maxclients", "max*"]));
    assert_eq!(reply.pairs().len(), 31, "{reply:?}");
    assert_eq!(c.cmd_str(&["CONFIG", "GET", "nosuch*"]), b"*0\r\n");
    assert_eq!(c.cmd_str(&["CONFIG", "GET", "nosuch"]), b"*0\r\n");
    // A direct (glob-free) lookup answers with the name as asked, as Redis does.
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "MAXCLIENTS"]),
        b"*2\r\n$10\r\nMAXCLIENTS\r\n$5\r\n10000\r\n"
    );
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET"]),
        b"-ERR wrong number of arguments for 'config|get' command\r\n"
    );
}

#[test]
fn config_set_is_all_or_nothing() {
    let node = node(&[]);
    let mut c = node.raw();
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "timeout", "100", "hz", "20"]),
        b"+OK\r\n"
    );
    let got = config_get(&mut c, &["timeout", "hz"]);
    assert_eq!((got["timeout"].as_str(), got["hz"].as_str()), ("100", "20"));
    assert_eq!(info_u64(&info(&mut c, "server"), "hz"), 20);

    // One bad value: nothing changes, not even the good pair before it.
    assert_eq!(
        show(&c.cmd_str(&["CONFIG", "SET", "timeout", "200", "hz", "abc"])),
        "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n"
    );
    assert_eq!(
        show(&c.cmd_str(&["CONFIG", "SET", "timeout", "200", "nosuch", "1"])),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
    );
    assert_eq!(
        show(&c.cmd_str(&["CONFIG", "SET", "timeout", "200", "databases", "4"])),
        "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n"
    );
    let refused = c.cmd_str(&["CONFIG", "SET", "timeout", "200", "maxclients", "0"]);
    assert!(
        refused
            .starts_with(b"-ERR CONFIG SET failed (possibly related to argument 'maxclients') - "),
        "{}",
        show(&refused)
    );
    assert_eq!(
        show(&c.cmd_str(&["CONFIG", "SET", "timeout", "200", "timeout", "300"])),
        "-ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter\r\n"
    );
    assert_eq!(
        show(&c.cmd_str(&["CONFIG", "SET", "timeout", "200", "hz"])),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        show(&c.cmd_str(&["CONFIG", "SET", "timeout"])),
        "-ERR wrong number of arguments for 'config|set' command\r\n"
    );
    let got = config_get(&mut c, &["timeout", "hz", "databases", "maxclients"]);
    assert_eq!(
        got["timeout"], "100",
        "a refused CONFIG SET changed timeout"
    );
    assert_eq!(got["hz"], "20");
    assert_eq!(got["databases"], "16");
    assert_eq!(got["maxclients"], "10000");

    // Immutable parameters keep their value.
    let refused = c.cmd_str(&["CONFIG", "SET", "port", "1"]);
    assert_eq!(
        show(&refused),
        "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"
    );
    assert_eq!(
        config_get(&mut c, &["port"])["port"],
        node.addr.port().to_string()
    );

    // Memory units are understood and shown in bytes; names ignore case.
    assert_eq!(
        c.cmd_str(&[
            "CONFIG",
            "SET",
            "PROTO-MAX-BULK-LEN",
            "2mb",
            "maxclients",
            "77"
        ]),
        b"+OK\r\n"
    );
    let got = config_get(&mut c, &["proto-max-bulk-len", "maxclients"]);
    assert_eq!(got["proto-max-bulk-len"], "2097152");
    assert_eq!(info_u64(&info(&mut c, "clients"), "maxclients"), 77);
    // And the new limit is in force.
    c.send(b"*2\r\n$3\r\nGET\r\n$3000000\r\n");
    assert_eq!(
        c.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
}

#[test]
fn config_resetstat_resets_info_counters() {
    let node = node(&[]);
    let mut c = node.raw();
    assert_eq!(c.cmd_str(&["SET", "k", "v"]), b"+OK\r\n");
    c.cmd_str(&["GET", "k"]);
    c.cmd_str(&["GET", "k"]);
    c.cmd_str(&["GET", "nosuch"]);
    let stats = info(&mut c, "stats");
    assert_eq!(info_u64(&stats, "keyspace_hits"), 2, "{stats}");
    assert_eq!(info_u64(&stats, "keyspace_misses"), 1, "{stats}");
    assert!(info_u64(&stats, "total_commands_processed") >= 4, "{stats}");
    assert!(
        info_u64(&stats, "total_connections_received") >= 1,
        "{stats}"
    );
    assert!(info(&mut c, "commandstats").contains("cmdstat_get:calls=3,"));

    assert_eq!(c.cmd_str(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    let stats = info(&mut c, "stats");
    assert_eq!(info_u64(&stats, "keyspace_hits"), 0, "{stats}");
    assert_eq!(info_u64(&stats, "keyspace_misses"), 0, "{stats}");
    assert_eq!(info_u64(&stats, "total_connections_received"), 0, "{stats}");
    // Only CONFIG RESETSTAT itself has been counted since.
    assert_eq!(info_u64(&stats, "total_commands_processed"), 1, "{stats}");
    let cmdstats = info(&mut c, "commandstats");
    assert!(!cmdstats.contains("cmdstat_get:"), "{cmdstats}");
    assert!(!cmdstats.contains("cmdstat_set:"), "{cmdstats}");
    assert!(
        cmdstats.contains("cmdstat_config|resetstat:calls=1,"),
        "{cmdstats}"
    );

    // Counting starts again from zero; the data is untouched.
    assert_eq!(c.cmd_str(&["GET", "k"]), b"$1\r\nv\r\n");
    let stats = info(&mut c, "stats");
    assert_eq!(info_u64(&stats, "keyspace_hits"), 1, "{stats}");
    assert!(info(&mut c, "commandstats").contains("cmdstat_get:calls=1,"));
}

#[test]
fn command_line_parameters_show_in_config_get() {
    let node = node(&[
        "--maxclients",
        "7",
        "--timeout",
        "30",
        "--hz",
        "25",
        "--databases",
        "4",
        "--proto-max-bulk-len",
        "1mb",
    ]);
    let mut c = node.raw();
    let got = config_get(
        &mut c,
        &["maxclients", "timeout", "hz", "databases", "proto-*"],
    );
    assert_eq!(got["maxclients"], "7");
    assert_eq!(got["timeout"], "30");
    assert_eq!(got["hz"], "25");
    assert_eq!(got["databases"], "4");
    assert_eq!(got["proto-max-bulk-len"], "1048576");
    assert_eq!(info_u64(&info(&mut c, "clients"), "maxclients"), 7);
    assert_eq!(info_u64(&info(&mut c, "server"), "hz"), 25);
    // `--databases 4` is really 4 databases.
    assert_eq!(c.cmd_str(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["SELECT", "4"]),
        b"-ERR DB index is out of range\r\n"
    );
}

#[test]
fn bad_command_line_parameters_stop_the_node() {
    let bin = env!("CARGO_BIN_EXE_cache-node");
    for args in [
        &["--port", "0", "--maxclients", "abc"][..],
        &["--port", "0", "--nosuchparam", "1"][..],
        &["--port", "0", "--maxclients"][..],
    ] {
        let out = run(bin, args, b"", Duration::from_secs(10));
        assert!(!out.status.success(), "{args:?} was accepted: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(args[2].trim_start_matches('-')),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn toml_config_file_is_applied_and_the_command_line_wins() {
    let file = TempFile::new(
        "node.toml",
        "# sample\nmaxclients = 50\ntimeout = 30\nhz = 20\nproto-max-bulk-len = \"2mb\"\n\
         # the helper passes --loglevel notice, which must win for the node to report ready\n\
         loglevel = \"warning\"\n",
    );
    // `--config` after other parameters (the helper puts --bind/--port/--loglevel first).
    let node = node(&["--config", file.path(), "--maxclients", "7"]);
    let mut c = node.raw();
    let got = config_get(
        &mut c,
        &[
            "maxclients",
            "timeout",
            "hz",
            "proto-max-bulk-len",
            "loglevel",
        ],
    );
    assert_eq!(
        got["maxclients"], "7",
        "the command line wins over the file"
    );
    assert_eq!(got["timeout"], "30", "from the file");
    assert_eq!(got["hz"], "20", "from the file");
    assert_eq!(got["proto-max-bulk-len"], "2097152", "from the file");
    assert_eq!(
        got["loglevel"], "notice",
        "the command line wins over the file"
    );
    let server = info(&mut c, "server");
    assert_eq!(
        info_field(&server, "config_file").as_deref(),
        Some(file.path()),
        "{server}"
    );

    // A bad value in the file stops the node with a message naming the file and parameter.
    let bad = TempFile::new("bad.toml", "maxclients = \"lots\"\n");
    let bin = env!("CARGO_BIN_EXE_cache-node");
    let out = run(
        bin,
        &["--config", bad.path(), "--port", "0"],
        b"",
        Duration::from_secs(10),
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(bad.path()) && stderr.contains("maxclients"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// INFO
// ---------------------------------------------------------------------------------------------

const DEFAULT_SECTIONS: &[&str] = &[
    "# Server",
    "# Clients",
    "# Memory",
    "# Persistence",
    "# Stats",
    "# Replication",
    "# CPU",
    "# Keyspace",
];

#[test]
fn info_default_and_chosen_sections() {
    let node = node(&[]);
    let mut c = node.raw();
    for which in ["", "default"] {
        let text = info(&mut c, which);
        for s in DEFAULT_SECTIONS {
            assert!(
                text.contains(&format!("{s}\r\n")),
                "INFO {which} lacks {s}: {text}"
            );
        }
        assert!(!text.contains("# Commandstats"), "{text}");
        assert_eq!(
            info_field(&text, "redis_version").as_deref(),
            Some("7.0.15")
        );
        assert_eq!(info_u64(&text, "tcp_port"), u64::from(node.addr.port()));
        assert_eq!(info_u64(&text, "connected_clients"), 1);
        assert_eq!(info_field(&text, "role").as_deref(), Some("master"));
    }
    let all = info(&mut c, "all");
    assert!(all.contains("# Commandstats\r\n"), "{all}");
    let server = info(&mut c, "server");
    assert!(server.starts_with("# Server\r\n"), "{server}");
    assert!(!server.contains("# Clients"), "{server}");
    let two = bulk(&c.cmd_str(&["INFO", "server", "CLIENTS"]));
    assert!(two.contains("# Server\r\n") && two.contains("# Clients\r\n"));
    assert!(!two.contains("# Memory"), "{two}");
    assert_eq!(c.cmd_str(&["INFO", "nosuchsection"]), b"$0\r\n\r\n");
}

#[test]
fn info_keyspace_counts_keys_and_expires_per_db() {
    let node = node(&[]);
    let mut c = node.raw();
    assert_eq!(info(&mut c, "keyspace"), "# Keyspace\r\n");
    for k in ["a", "b", "c"] {
        assert_eq!(c.cmd_str(&["SET", k, "v"]), b"+OK\r\n");
    }
    assert_eq!(c.cmd_str(&["SET", "d", "v", "EX", "100"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SET", "e", "v", "PX", "100000"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SET", "x", "v"]), b"+OK\r\n");
    let text = info(&mut c, "keyspace");
    assert!(text.contains("\r\ndb0:keys=5,expires=2,"), "{text}");
    assert!(text.contains("\r\ndb3:keys=1,expires=0,"), "{text}");
    assert!(
        !text.contains("db1:"),
        "empty databases are not listed: {text}"
    );

    assert_eq!(c.cmd_str(&["FLUSHDB"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SELECT", "0"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["PERSIST", "d"]), b":1\r\n");
    assert_eq!(c.cmd_str(&["DEL", "a"]), b":1\r\n");
    let text = info(&mut c, "keyspace");
    assert!(text.contains("\r\ndb0:keys=4,expires=1,"), "{text}");
    assert!(!text.contains("db3:"), "{text}");
}

#[test]
fn info_stats_and_commandstats_count_commands() {
    let node = node(&[]);
    let mut c = node.raw();
    let before = info_u64(&info(&mut c, "stats"), "total_commands_processed");
    assert_eq!(c.cmd_str(&["SET", "k", "1"]), b"+OK\r\n");
    for _ in 0..3 {
        assert_eq!(c.cmd_str(&["GET", "k"]), b"$1\r\n1\r\n");
    }
    for _ in 0..2 {
        assert_eq!(c.cmd_str(&["GET", "missing"]), b"$-1\r\n");
    }
    let stats = info(&mut c, "stats");
    let after = info_u64(&stats, "total_commands_processed");
    // INFO, SET, 5 GETs.
    assert!(after >= before + 7, "{before} -> {after}");
    assert_eq!(info_u64(&stats, "keyspace_hits"), 3, "{stats}");
    assert_eq!(info_u64(&stats, "keyspace_misses"), 2, "{stats}");
    assert!(info_u64(&stats, "total_net_input_bytes") > 0, "{stats}");
    assert!(info_u64(&stats, "total_net_output_bytes") > 0, "{stats}");

    assert!(c.cmd_str(&["GET"]).starts_with(b"-ERR wrong number"));
    assert_eq!(c.cmd_str(&["SET", "s", "text"]), b"+OK\r\n");
    assert!(c.cmd_str(&["INCR", "s"]).starts_with(b"-ERR"));
    c.cmd_str(&["CONFIG", "GET", "port"]);
    let cmdstats = info(&mut c, "commandstats");
    let line = |name: &str| {
        cmdstats
            .split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
            .unwrap_or_else(|| panic!("no cmdstat_{name}: {cmdstats}"))
            .to_string()
    };
    let get = client_fields(&line("get").replace(',', " "));
    assert_eq!(get["calls"], "5", "{cmdstats}");
    assert_eq!(get["rejected_calls"], "1", "{cmdstats}");
    assert_eq!(get["failed_calls"], "0", "{cmdstats}");
    let incr = client_fields(&line("incr").replace(',', " "));
    assert_eq!(incr["calls"], "1", "{cmdstats}");
    assert_eq!(incr["failed_calls"], "1", "{cmdstats}");
    assert!(line("set").starts_with("calls=2,"), "{cmdstats}");
    assert!(line("config|get").starts_with("calls=1,"), "{cmdstats}");

    let grown = info_u64(&info(&mut c, "stats"), "total_commands_processed");
    assert!(grown > after, "{after} -> {grown}");
}

#[test]
fn used_memory_grows_with_stored_data() {
    let node = node(&[]);
    let mut c = node.raw();
    let used = |c: &mut RawConn| info_u64(&info(c, "memory"), "used_memory");
    let before = used(&mut c);
    assert!(before > 0, "used_memory is positive");
    let value = vec![b'x'; 1 << 20];
    for i in 0..10 {
        let key = format!("big{i}");
        assert_eq!(c.cmd(&[b"SET", key.as_bytes(), &value]), b"+OK\r\n");
    }
    let after = used(&mut c);
    assert!(
        after >= before + 9 * (1 << 20),
        "used_memory {before} -> {after} after storing 10 MB"
    );
    let text = info(&mut c, "memory");
    assert!(info_field(&text, "used_memory_human").is_some(), "{text}");
    assert_eq!(c.cmd_str(&["FLUSHALL"]), b"+OK\r\n");
    let flushed = used(&mut c);
    assert!(
        flushed + 8 * (1 << 20) <= after,
        "used_memory {after} -> {flushed} after FLUSHALL"
    );
}

// ---------------------------------------------------------------------------------------------
// COMMAND
// ---------------------------------------------------------------------------------------------

#[test]
fn command_count_info_docs_and_getkeys() {
    let node = node(&[]);
    let mut c = node.raw();
    let count = int(&c.cmd_str(&["COMMAND", "COUNT"]));
    // A bare COMMAND once panicked the connection task (subcommand lookup past the args).
    let all = parse(&c.cmd_str(&["COMMAND"]));
    assert_eq!(all.items().len() as i64, count);
    assert!(count > 50, "{count}");
    let names: BTreeSet<String> = all.items().iter().map(|e| e.items()[0].text()).collect();
    assert_eq!(names.len() as i64, count, "names are unique");
    for n in [
        "get", "set", "config", "client", "command", "scan", "info", "hello",
    ] {
        assert!(names.contains(n), "COMMAND lacks {n}");
    }
    // COMMAND LIST names the subcommands too (`client|list`), as Redis 7.0 does.
    let listed: BTreeSet<String> = parse(&c.cmd_str(&["COMMAND", "LIST"]))
        .items()
        .iter()
        .map(V::text)
        .collect();
    let top: BTreeSet<String> = listed
        .iter()
        .filter(|n| !n.contains('|'))
        .cloned()
        .collect();
    assert_eq!(top, names);
    assert!(listed.contains("client|list") && listed.contains("config|get"));
    let mut only = |args: &[&str]| -> Vec<String> {
        parse(&c.cmd_str(args))
            .items()
            .iter()
            .map(V::text)
            .collect()
    };
    assert_eq!(
        only(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "set"]),
        ["set"]
    );
    let config = only(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "config|*re*"]);
    assert!(
        config.contains(&"config|resetstat".to_string()),
        "{config:?}"
    );
    assert!(!config.contains(&"config|get".to_string()), "{config:?}");
    let geo = only(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "geo"]);
    assert!(geo.contains(&"geoadd".to_string()) && !geo.contains(&"set".to_string()));
    assert!(only(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"]).is_empty());
    assert!(only(&["COMMAND", "LIST", "FILTERBY", "MODULE", "m"]).is_empty());
    for bad in [
        &["COMMAND", "LIST", "bad"][..],
        &["COMMAND", "LIST", "FILTERBY", "bad"],
        &["COMMAND", "LIST", "FILTERBY", "bad", "x"],
    ] {
        assert!(c.cmd_str(bad).starts_with(b"-ERR syntax error"), "{bad:?}");
    }

    let info = parse(&c.cmd_str(&["COMMAND", "INFO", "get"]));
    let get = info.items()[0].items();
    assert_eq!(get[0].text(), "get");
    assert_eq!(get[1].int(), 2, "arity");
    let flags: Vec<String> = get[2].items().iter().map(V::text).collect();
    assert!(
        flags.contains(&"readonly".to_string()) && flags.contains(&"fast".to_string()),
        "{flags:?}"
    );
    assert_eq!((get[3].int(), get[4].int(), get[5].int()), (1, 1, 1));
    let info = parse(&c.cmd_str(&["COMMAND", "INFO", "set", "nosuch", "mset"]));
    let items = info.items();
    assert_eq!(items[0].items()[1].int(), -3);
    assert_eq!(items[1], V::Nil);
    let mset = items[2].items();
    assert_eq!(
        (mset[1].int(), mset[3].int(), mset[4].int(), mset[5].int()),
        (-3, 1, -1, 2)
    );

    let docs = parse(&c.cmd_str(&["COMMAND", "DOCS", "get"]));
    let docs = docs.items();
    assert_eq!(docs[0].text(), "get");
    let fields: HashMap<String, String> = docs[1].pairs().into_iter().collect();
    assert_eq!(fields["group"], "string");
    assert!(!fields["summary"].is_empty());
    assert_eq!(c.cmd_str(&["COMMAND", "DOCS", "nosuch"]), b"*0\r\n");

    assert_eq!(
        c.cmd_str(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]),
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        c.cmd_str(&["COMMAND", "GETKEYS", "SET", "k", "v", "EX", "10"]),
        b"*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(
        c.cmd_str(&["COMMAND", "GETKEYS", "PING", "x"]),
        b"-ERR The command has no key arguments\r\n"
    );
    assert_eq!(
        c.cmd_str(&["COMMAND", "GETKEYS", "GET", "a", "b"]),
        b"-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        c.cmd_str(&["COMMAND", "GETKEYS", "NOSUCH", "x"]),
        b"-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        c.cmd_str(&["COMMAND", "GETKEYS", "GET"]),
        b"-ERR wrong number of arguments for 'command|getkeys' command\r\n"
    );
}

#[test]
fn redis_cli_command_count() {
    let node = node(&[]);
    let mut c = node.raw();
    let count = int(&c.cmd_str(&["COMMAND", "COUNT"]));
    assert_eq!(
        redis_cli(&node, &["COMMAND", "COUNT"], b""),
        format!("{count}\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------------

#[test]
fn select_swapdb_move_and_flush_across_databases() {
    let node = node(&[]);
    let mut a = node.raw();
    let mut b = node.raw();
    assert_eq!(b.cmd_str(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["SET", "k", "in0"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["SET", "k", "in1"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["SET", "only1", "x"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["GET", "k"]), b"$3\r\nin0\r\n");
    assert_eq!(b.cmd_str(&["GET", "k"]), b"$3\r\nin1\r\n");
    assert_eq!(a.cmd_str(&["DBSIZE"]), b":1\r\n");
    assert_eq!(b.cmd_str(&["DBSIZE"]), b":2\r\n");
    assert_eq!(a.cmd_str(&["EXISTS", "only1"]), b":0\r\n");

    // SWAPDB: each connection keeps its index and now sees the other data.
    assert_eq!(a.cmd_str(&["SWAPDB", "0", "1"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["GET", "k"]), b"$3\r\nin1\r\n");
    assert_eq!(a.cmd_str(&["DBSIZE"]), b":2\r\n");
    assert_eq!(b.cmd_str(&["GET", "k"]), b"$3\r\nin0\r\n");
    assert_eq!(b.cmd_str(&["DBSIZE"]), b":1\r\n");
    assert_eq!(a.cmd_str(&["SWAPDB", "1", "1"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["DBSIZE"]), b":1\r\n");
    assert_eq!(
        a.cmd_str(&["SWAPDB", "0", "16"]),
        b"-ERR DB index is out of range\r\n"
    );

    // MOVE: from a's db 0 to db 1; refused when the target has the key.
    assert_eq!(a.cmd_str(&["SET", "m", "moved"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["MOVE", "m", "1"]), b":1\r\n");
    assert_eq!(a.cmd_str(&["EXISTS", "m"]), b":0\r\n");
    assert_eq!(b.cmd_str(&["GET", "m"]), b"$5\r\nmoved\r\n");
    assert_eq!(a.cmd_str(&["MOVE", "m", "1"]), b":0\r\n");
    assert_eq!(a.cmd_str(&["SET", "m", "other"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["MOVE", "m", "0"]), b":0\r\n");
    assert_eq!(a.cmd_str(&["GET", "m"]), b"$5\r\nother\r\n");
    assert_eq!(b.cmd_str(&["GET", "m"]), b"$5\r\nmoved\r\n");
    assert_eq!(
        a.cmd_str(&["MOVE", "m", "0"]),
        b"-ERR source and destination objects are the same\r\n"
    );
    // The TTL travels with the key.
    assert_eq!(a.cmd_str(&["SET", "t", "v", "EX", "100"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["MOVE", "t", "1"]), b":1\r\n");
    let ttl = int(&b.cmd_str(&["TTL", "t"]));
    assert!((99..=100).contains(&ttl), "{ttl}");

    // FLUSHDB empties only the caller's database.
    let size_a = int(&a.cmd_str(&["DBSIZE"]));
    assert!(size_a > 0);
    assert_eq!(b.cmd_str(&["FLUSHDB"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["DBSIZE"]), b":0\r\n");
    assert_eq!(int(&a.cmd_str(&["DBSIZE"])), size_a);

    // FLUSHALL empties every database.
    assert_eq!(b.cmd_str(&["SET", "z", "1"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["SELECT", "7"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["SET", "y", "1"]), b"+OK\r\n");
    assert_eq!(a.cmd_str(&["FLUSHALL"]), b"+OK\r\n");
    for db in ["0", "1", "7"] {
        assert_eq!(a.cmd_str(&["SELECT", db]), b"+OK\r\n");
        assert_eq!(a.cmd_str(&["DBSIZE"]), b":0\r\n", "db {db}");
    }
    assert_eq!(b.cmd_str(&["DBSIZE"]), b":0\r\n");
    assert_eq!(
        a.cmd_str(&["SELECT", "16"]),
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(a.cmd_str(&["SELECT", "15"]), b"+OK\r\n");
}

// ---------------------------------------------------------------------------------------------
// HELLO and RESET
// ---------------------------------------------------------------------------------------------

#[test]
fn hello_switches_protocol_and_reset_restores_defaults() {
    let node = node(&[]);
    let mut c = node.raw();
    let port = node.addr.port().to_string();
    let id = int(&c.cmd_str(&["CLIENT", "ID"]));
    let resp2_port = format!("*2\r\n$4\r\nport\r\n${}\r\n{port}\r\n", port.len());
    let resp3_port = format!("%1\r\n$4\r\nport\r\n${}\r\n{port}\r\n", port.len());
    assert_eq!(show(&c.cmd_str(&["CONFIG", "GET", "port"])), resp2_port);

    let hello = c.cmd_str(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%7\r\n"), "{}", show(&hello));
    let V::Map(pairs) = parse(&hello) else {
        panic!("HELLO 3 answers a map: {}", show(&hello));
    };
    let fields: HashMap<String, V> = pairs.into_iter().map(|(k, v)| (k.text(), v)).collect();
    let fields: HashMap<&str, String> = ["proto", "id", "version", "server", "mode", "role"]
        .into_iter()
        .map(|k| (k, fields[k].text()))
        .collect();
    assert_eq!(fields["proto"], "3");
    assert_eq!(fields["id"], id.to_string());
    assert_eq!(fields["version"], "7.0.15");
    assert_eq!(show(&c.cmd_str(&["CONFIG", "GET", "port"])), resp3_port);
    assert_eq!(c.cmd_str(&["GET", "missing"]), b"_\r\n");
    let f = client_fields(&bulk(&c.cmd_str(&["CLIENT", "INFO"])));
    assert_eq!(f["resp"], "3");

    let hello = c.cmd_str(&["HELLO", "2"]);
    assert!(hello.starts_with(b"*14\r\n"), "{}", show(&hello));
    assert_eq!(show(&c.cmd_str(&["CONFIG", "GET", "port"])), resp2_port);
    assert_eq!(c.cmd_str(&["GET", "missing"]), b"$-1\r\n");

    assert_eq!(
        c.cmd_str(&["HELLO", "4"]),
        b"-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        c.cmd_str(&["GET", "missing"]),
        b"$-1\r\n",
        "a refused HELLO keeps RESP2"
    );
    let hello = c.cmd_str(&["HELLO", "3", "SETNAME", "h3"]);
    assert!(hello.starts_with(b"%7\r\n"), "{}", show(&hello));
    assert_eq!(c.cmd_str(&["CLIENT", "GETNAME"]), b"$2\r\nh3\r\n");
    // HELLO without a version answers in the current protocol.
    assert!(c.cmd_str(&["HELLO"]).starts_with(b"%7\r\n"));

    assert_eq!(c.cmd_str(&["SELECT", "4"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SET", "k4", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["RESET"]), b"+RESET\r\n");
    assert_eq!(c.cmd_str(&["GET", "missing"]), b"$-1\r\n", "RESP2 again");
    assert_eq!(show(&c.cmd_str(&["CONFIG", "GET", "port"])), resp2_port);
    assert_eq!(c.cmd_str(&["GET", "k4"]), b"$-1\r\n", "database 0 again");
    assert_eq!(c.cmd_str(&["CLIENT", "GETNAME"]), b"$-1\r\n", "no name");
    let f = client_fields(&bulk(&c.cmd_str(&["CLIENT", "INFO"])));
    assert_eq!((f["db"].as_str(), f["resp"].as_str()), ("0", "2"));
    assert_eq!(f["id"], id.to_string(), "same connection");
    assert_eq!(c.cmd_str(&["SELECT", "4"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["GET", "k4"]), b"$1\r\nv\r\n");
}

// ---------------------------------------------------------------------------------------------
// SCAN
// ---------------------------------------------------------------------------------------------

/// Runs a whole SCAN with `extra` options, calling `between` after each page; returns every
/// key seen (with repeats) and the number of calls.
fn full_scan(
    c: &mut RawConn,
    extra: &[&str],
    mut between: impl FnMut(usize),
) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let reply = parse(&c.cmd_str(&args));
        let parts = reply.items();
        keys.extend(parts[1].items().iter().map(V::text));
        cursor = parts[0].text();
        calls += 1;
        assert!(calls < 10_000, "SCAN does not end");
        if cursor == "0" {
            return (keys, calls);
        }
        between(calls);
    }
}

fn set(keys: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    keys.into_iter().collect()
}

fn fill(c: &mut RawConn, keys: &[String]) {
    for chunk in keys.chunks(200) {
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for k in chunk {
            args.push(k.as_bytes());
            args.push(b"v");
        }
        assert_eq!(c.cmd(&args), b"+OK\r\n");
    }
}

#[test]
fn scan_returns_every_key() {
    let node = node(&[]);
    let mut c = node.raw();
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    fill(&mut c, &keys);
    let expected: BTreeSet<String> = keys.iter().cloned().collect();

    let (seen, calls) = full_scan(&mut c, &["COUNT", "7"], |_| {});
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(calls > 1000 / 7 / 2, "COUNT 7 pages through: {calls} calls");
    let (seen, _) = full_scan(&mut c, &[], |_| {});
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);

    // An empty database ends at once.
    assert_eq!(c.cmd_str(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SCAN", "0"]), b"*2\r\n$1\r\n0\r\n*0\r\n");
}

#[test]
fn scan_filters_by_match_and_type() {
    let node = node(&[]);
    let mut c = node.raw();
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    fill(&mut c, &keys);

    let (seen, _) = full_scan(&mut c, &["MATCH", "key:1*", "COUNT", "7"], |_| {});
    let want = set(keys.iter().filter(|k| k.starts_with("key:1")).cloned());
    assert_eq!(want.len(), 111);
    assert_eq!(set(seen), want);

    let (seen, _) = full_scan(&mut c, &["COUNT", "7", "MATCH", "key:?"], |_| {});
    assert_eq!(set(seen), set((0..10).map(|i| format!("key:{i}"))));

    let (seen, _) = full_scan(&mut c, &["MATCH", "nomatch*", "COUNT", "7"], |_| {});
    assert!(seen.is_empty(), "{seen:?}");

    let (seen, _) = full_scan(&mut c, &["COUNT", "7", "TYPE", "string"], |_| {});
    assert_eq!(set(seen), set(keys.iter().cloned()));
    let (seen, _) = full_scan(&mut c, &["COUNT", "7", "TYPE", "STRING"], |_| {});
    assert_eq!(seen.len(), 1000, "type names ignore case");
    for other in ["list", "hash", "set", "zset"] {
        let (seen, _) = full_scan(&mut c, &["COUNT", "7", "TYPE", other], |_| {});
        assert!(seen.is_empty(), "TYPE {other}: {seen:?}");
    }
    let (seen, _) = full_scan(
        &mut c,
        &["MATCH", "key:2?", "TYPE", "string", "COUNT", "7"],
        |_| {},
    );
    assert_eq!(set(seen), set((20..30).map(|i| format!("key:{i}"))));

    // Expired keys are not returned.
    assert_eq!(c.cmd_str(&["SELECT", "2"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SET", "live", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SET", "gone", "v", "PX", "1"]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(10));
    let (seen, _) = full_scan(&mut c, &[], |_| {});
    assert_eq!(seen, vec!["live".to_string()]);
}

#[test]
fn scan_never_misses_keys_present_throughout_despite_changes() {
    let node = node(&[]);
    let mut c = node.raw();
    let mut other = node.raw();
    let stable: Vec<String> = (0..1000).map(|i| format!("stable:{i}")).collect();
    let transient: Vec<String> = (0..600).map(|i| format!("transient:{i}")).collect();
    fill(&mut c, &stable);
    fill(&mut c, &transient);

    // Between pages another client deletes one old key and adds two new ones.
    let (seen, calls) = full_scan(&mut c, &["COUNT", "7"], |step| {
        if let Some(k) = transient.get(step) {
            assert_eq!(other.cmd_str(&["DEL", k]), b":1\r\n");
        }
        for n in [2 * step, 2 * step + 1] {
            assert_eq!(
                other.cmd_str(&["SET", &format!("added:{n}"), "v"]),
                b"+OK\r\n"
            );
        }
    });
    assert!(calls > 100, "{calls}");
    let seen: BTreeSet<String> = seen.into_iter().collect();
    let missed: Vec<&String> = stable.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missed.is_empty(), "SCAN missed stable keys: {missed:?}");
    // Nothing that never existed.
    assert!(seen.iter().all(|k| k.starts_with("stable:")
        || k.starts_with("transient:")
        || k.starts_with("added:")));
}

// ---------------------------------------------------------------------------------------------
// redis-cli
// ---------------------------------------------------------------------------------------------

#[test]
fn redis_cli_interoperates() {
    let node = node(&[]);
    assert_eq!(redis_cli(&node, &["SET", "a", "b"], b""), "OK\n");
    assert_eq!(redis_cli(&node, &["GET", "a"], b""), "b\n");
    assert_eq!(redis_cli(&node, &["PING"], b""), "PONG\n");
    assert_eq!(redis_cli(&node, &["INCR", "n"], b""), "1\n");
    assert_eq!(redis_cli(&node, &["GET", "nosuch"], b""), "\n");
    // Inline commands piped in, one per line.
    assert_eq!(redis_cli(&node, &[], b"PING\r\n"), "PONG\n");
    assert_eq!(
        redis_cli(&node, &[], b"SET piped \"x y\"\nGET piped\nDBSIZE\n"),
        "OK\nx y\n3\n"
    );
    // -n selects a database first.
    assert_eq!(
        redis_cli(&node, &["-n", "3", "SET", "in3", "v"], b""),
        "OK\n"
    );
    let mut c = node.raw();
    assert_eq!(c.cmd_str(&["EXISTS", "in3"]), b":0\r\n");
    assert_eq!(c.cmd_str(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["GET", "in3"]), b"$1\r\nv\r\n");
    let keyspace = redis_cli(&node, &["INFO", "keyspace"], b"");
    assert!(keyspace.contains("db0:keys=3,expires=0"), "{keyspace}");
    assert!(keyspace.contains("db3:keys=1,expires=0"), "{keyspace}");
    // RESP3 through redis-cli -3.
    assert_eq!(redis_cli(&node, &["-3", "GET", "nosuch"], b""), "\n");
}

// ---------------------------------------------------------------------------------------------
// Differential: byte-identical replies with the reference Redis
// ---------------------------------------------------------------------------------------------

#[test]
fn server_command_errors_match_redis() {
    let Some(mut theirs) = reference("server_command_errors_match_redis", REF_DB) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    assert_eq!(ours.cmd_str(&["SELECT", &REF_DB.to_string()]), b"+OK\r\n");
    // Only commands that fail or change nothing (the reference is shared): every CONFIG SET
    // below is refused, and the values in refused pairs equal the reference's defaults.
    let lines = script(
        r#"
        CONFIG SET nosuchparam 1
        CONFIG SET timeout 0 nosuchparam 1
        CONFIG SET databases 1
        CONFIG SET hz abc
        CONFIG SET maxclients abc
        CONFIG SET timeout 0 maxclients abc
        CONFIG SET timeout 0 timeout 0
        CONFIG SET timeout 0 hz
        CONFIG SET timeout
        CONFIG SET
        CONFIG GET
        CONFIG GET nosuchparam
        CONFIG GET maxclients
        CONFIG GET MAXCLIENTS
        CONFIG GET MaxClients maxclients *maxcl*
        CONFIG GET maxclients MAXCLIENTS
        CONFIG GET h?
        CONFIG RESETSTAT x
        CONFIG
        CONFIG NOSUCH
        CLIENT
        CLIENT NOSUCH
        CLIENT KILL 127.0.0.1:1
        CLIENT KILL 1.2.3.4:5
        CLIENT KILL ADDR 1.2.3.4:5
        CLIENT KILL ID 999999999
        CLIENT KILL ID 0
        CLIENT KILL ID abc
        CLIENT KILL ID 999999999 SKIPME no
        CLIENT KILL SKIPME maybe
        CLIENT KILL FOO bar
        CLIENT KILL ADDR
        CLIENT ID x
        CLIENT GETNAME
        CLIENT GETNAME x
        CLIENT SETNAME
        CLIENT SETNAME a b
        CLIENT SETNAME "a b"
        CLIENT SETNAME differential
        CLIENT GETNAME
        CLIENT LIST ID abc
        CLIENT LIST ID 0
        CLIENT LIST ID 999999999
        CLIENT LIST ID
        CLIENT LIST TYPE foo
        CLIENT LIST FOO
        SELECT 16
        SELECT -1
        SELECT 99999999999999999999
        SELECT abc
        SELECT
        SELECT 12
        SWAPDB 0 16
        SWAPDB -1 0
        SWAPDB a 0
        SWAPDB 0 b
        SWAPDB 0
        MOVE nosuch 16
        MOVE nosuch abc
        MOVE nosuch 12
        MOVE nosuch 11
        DBSIZE
        DBSIZE x
        FLUSHDB BOGUS
        FLUSHALL BOGUS
        HELLO 4
        HELLO 1
        HELLO abc
        HELLO 3 BOGUS
        HELLO 2 SETNAME "a b"
        RESET x
        INFO nosuchsection
        COMMAND NOSUCH
        COMMAND COUNT x
        COMMAND GETKEYS
        COMMAND GETKEYS GET
        COMMAND GETKEYS PING x
        COMMAND GETKEYS NOSUCH x
        COMMAND GETKEYS GET a b
        COMMAND GETKEYS MSET a 1 b 2
        COMMAND GETKEYS MSET a 1 b
        COMMAND GETKEYS SET k v EX 10
        COMMAND INFO nosuch
        COMMAND DOCS nosuch
        SCAN 0
        SCAN abc
        SCAN 0 COUNT 0
        SCAN 0 COUNT abc
        SCAN 0 TYPE
        SCAN 0 MATCH
        SCAN 0 BOGUS x
        "#,
    );
    compare(&mut ours, &mut theirs, &lines);
}

/// The names of CONFIG GET's reply as a set.
fn config_names(conn: &mut RawConn, pattern: &str) -> BTreeSet<String> {
    config_get(conn, &[pattern]).into_keys().collect()
}

#[test]
fn config_get_globs_match_redis() {
    let Some(mut theirs) = reference("config_get_globs_match_redis", REF_DB) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    // Redis has many more parameters: compare on the ones both have.
    let their_all = config_names(&mut theirs, "*");
    let our_all = config_names(&mut ours, "*");
    let shared: BTreeSet<String> = our_all.intersection(&their_all).cloned().collect();
    assert!(shared.len() >= 10, "{shared:?}");
    for pattern in [
        "*max*",
        "*MAX*",
        "h?",
        "[pt]*o*",
        "time*",
        "*-*",
        "port",
        "*a*",
        "[^p]*",
        "*[!a-m]",
        "?????",
        "*s",
        "proto-max-bulk-len",
        "nosuch",
    ] {
        let a: BTreeSet<String> = config_names(&mut ours, pattern)
            .into_iter()
            .filter(|n| shared.contains(n))
            .collect();
        let b: BTreeSet<String> = config_names(&mut theirs, pattern)
            .into_iter()
            .filter(|n| shared.contains(n))
            .collect();
        assert_eq!(a, b, "CONFIG GET {pattern}");
    }
}

#[test]
fn command_table_matches_redis() {
    let Some(mut theirs) = reference("command_table_matches_redis", REF_DB) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    // Top-level names: each one's subcommands are compared through its own entry.
    let names: Vec<String> = parse(&ours.cmd_str(&["COMMAND", "LIST"]))
        .items()
        .iter()
        .map(V::text)
        .filter(|n| !n.contains('|'))
        .collect();
    // Arity and key positions decide arity errors and COMMAND GETKEYS: they must be Redis's,
    // for every command and every subcommand we have.
    let shape = |e: &V| {
        let i = e.items();
        (i[0].text(), i[1].int(), i[3].int(), i[4].int(), i[5].int())
    };
    let mut checked = 0;
    // ferrocache's own commands have no Redis counterpart.
    const OURS_ONLY: &[&str] = &["cache"];
    for name in names.iter().filter(|n| !OURS_ONLY.contains(&n.as_str())) {
        let a = parse(&ours.cmd_str(&["COMMAND", "INFO", name]));
        let b = parse(&theirs.cmd_str(&["COMMAND", "INFO", name]));
        let (a, b) = (&a.items()[0], &b.items()[0]);
        assert_ne!(*b, V::Nil, "the reference has no {name}");
        assert_eq!(shape(a), shape(b), "COMMAND INFO {name}");
        let their_subs: HashMap<String, &V> = b.items()[9]
            .items()
            .iter()
            .map(|s| (s.items()[0].text(), s))
            .collect();
        for sub in a.items()[9].items() {
            let sub_name = sub.items()[0].text();
            // Subcommands newer than 7.0 (CLIENT SETINFO) have nothing to compare with.
            if let Some(theirs) = their_subs.get(&sub_name) {
                assert_eq!(shape(sub), shape(theirs), "COMMAND INFO {sub_name}");
                checked += 1;
            }
        }
        checked += 1;
    }
    assert!(checked > names.len(), "{checked}");
}

/// MONITOR shows each command once it ran, in Redis 7.0's line format and order: a script's
/// commands after the script (as `lua`), a transaction's after MULTI and before EXEC,
/// passwords redacted, @admin commands not at all.
#[test]
fn monitor_streams_executed_commands_in_redis_order() {
    let node = node(&[]);
    let mut m = node.raw();
    assert_eq!(m.cmd_str(&["MONITOR"]), b"+OK\r\n");
    let mut c = node.raw();
    let addr = {
        let info = String::from_utf8_lossy(&c.cmd_str(&["CLIENT", "INFO"])).into_owned();
        info.split_whitespace()
            .find_map(|f| f.strip_prefix("addr=").map(str::to_string))
            .expect("addr")
    };
    c.cmd_str(&["SET", "mon \"k\"", "a\nb"]);
    c.cmd_str(&[
        "EVAL",
        "return redis.call('get', KEYS[1])",
        "1",
        "mon \"k\"",
    ]);
    c.cmd_str(&["MULTI"]);
    c.cmd_str(&["INCR", "mon:n"]);
    c.cmd_str(&["EXEC"]);
    c.cmd_str(&["CONFIG", "GET", "maxmemory"]);
    c.cmd_str(&["AUTH", "nobody", "secret"]);
    c.cmd_str(&["PING"]);
    let expected = [
        format!("[0 {addr}] \"CLIENT\" \"INFO\""),
        format!("[0 {addr}] \"SET\" \"mon \\\"k\\\"\" \"a\\nb\""),
        format!(
            "[0 {addr}] \"EVAL\" \"return redis.call('get', KEYS[1])\" \"1\" \"mon \\\"k\\\"\""
        ),
        "[0 lua] \"get\" \"mon \\\"k\\\"\"".to_string(),
        format!("[0 {addr}] \"MULTI\""),
        format!("[0 {addr}] \"INCR\" \"mon:n\""),
        format!("[0 {addr}] \"EXEC\""),
        format!("[0 {addr}] \"AUTH\" \"(redacted)\" \"(redacted)\""),
        format!("[0 {addr}] \"PING\""),
    ];
    for want in expected {
        let line = String::from_utf8_lossy(&m.read_reply()).into_owned();
        let (stamp, rest) = line
            .strip_prefix('+')
            .and_then(|l| l.split_once(' '))
            .unwrap_or_else(|| panic!("not a monitor line: {line:?}"));
        assert!(
            stamp.split_once('.').is_some_and(|(s, us)| {
                s.parse::<u64>().is_ok() && us.len() == 6 && us.parse::<u32>().is_ok()
            }),
            "{line:?}"
        );
        assert_eq!(rest, format!("{want}\r\n"));
    }
}

/// A request-size limit below 1mb would refuse every later argument, CONFIG SET included (the
/// node could not be repaired): refused with Redis 7.0.15's bounds error.
#[test]
fn request_limits_keep_redis_lower_bounds() {
    let node = node(&[]);
    let mut c = node.raw();
    for name in ["proto-max-bulk-len", "client-query-buffer-limit"] {
        assert_eq!(
            String::from_utf8_lossy(&c.cmd_str(&["CONFIG", "SET", name, "0"])),
            format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be between 1048576 and 9223372036854775807 inclusive\r\n")
        );
        assert_eq!(c.cmd_str(&["CONFIG", "SET", name, "1mb"]), b"+OK\r\n");
    }
    assert_eq!(c.cmd_str(&["SET", "k", "v"]), b"+OK\r\n");
}
