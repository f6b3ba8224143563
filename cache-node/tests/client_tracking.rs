//! End to end: client-side caching (CLIENT TRACKING) on the real binary — RESP3 pushes,
//! REDIRECT to a RESP2 `__redis__:invalidate` subscriber, BCAST, NOLOOP, OPTIN/OPTOUT,
//! invalidation on expiry, eviction and flush, the bounded key table, and Redis's error texts.
//!
//! "No message arrived" is never checked by waiting: invalidations to one client are queued in
//! order, so a test proves a message was *not* sent by making a later, known change and
//! checking that its message is the next one.

mod common;

use std::collections::VecDeque;

use common::{node, reference, NodeProcess, RawConn};

/// A connection that sets push frames (`>`) aside while waiting for replies.
struct Client {
    conn: RawConn,
    pushes: VecDeque<Vec<u8>>,
}

impl Client {
    fn new(node: &NodeProcess) -> Client {
        Client {
            conn: node.raw(),
            pushes: VecDeque::new(),
        }
    }

    /// A RESP3 client (HELLO 3).
    fn resp3(node: &NodeProcess) -> Client {
        let mut c = Client::new(node);
        let hello = c.cmd(&["HELLO", "3"]);
        assert!(hello.starts_with(b"%7\r\n"), "{}", text(&hello));
        c
    }

    /// Sends a command; returns its reply (pushes that arrive first are kept for later).
    fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.conn.send(&RawConn::encode(&args));
        loop {
            let frame = self.conn.read_reply();
            if frame.first() == Some(&b'>') {
                self.pushes.push_back(frame);
            } else {
                return frame;
            }
        }
    }

    fn ok(&mut self, args: &[&str]) {
        let reply = self.cmd(args);
        assert_eq!(text(&reply), "+OK\r\n", "{args:?}");
    }

    /// The next push frame (waits up to the connection's 10 s read timeout).
    fn push(&mut self) -> Vec<u8> {
        match self.pushes.pop_front() {
            Some(p) => p,
            None => self.conn.read_reply(),
        }
    }

    /// The next frame of any kind (a RESP2 subscriber's messages).
    fn frame(&mut self) -> Vec<u8> {
        self.conn.read_reply()
    }

    fn id(&mut self) -> u64 {
        let reply = self.cmd(&["CLIENT", "ID"]);
        text(&reply)[1..].trim().parse().expect("client id")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The RESP3 push a tracking client gets for `keys`.
fn invalidate(keys: &[&str]) -> String {
    let mut s = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        s.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    s
}

const FLUSH_PUSH: &str = ">2\r\n$10\r\ninvalidate\r\n_\r\n";

/// The key named by a one-key invalidation push.
fn pushed_key(push: &[u8]) -> String {
    let t = text(push);
    let lines: Vec<&str> = t.split("\r\n").collect();
    assert_eq!(&lines[..4], &[">2", "$10", "invalidate", "*1"], "{t}");
    lines[5].to_string()
}

fn info_field(c: &mut Client, section: &str, field: &str) -> String {
    let reply = c.cmd(&["INFO", section]);
    text(&reply)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("INFO lacks {field}"))
}

#[test]
fn resp3_default_mode_invalidates_once_per_read() {
    let node = node(&[]);
    let mut reader = Client::resp3(&node);
    let mut writer = Client::new(&node);
    writer.ok(&["MSET", "k1", "a", "k2", "b"]);
    reader.ok(&["CLIENT", "TRACKING", "ON"]);
    assert_eq!(text(&reader.cmd(&["GET", "k1"])), "$1\r\na\r\n");
    assert_eq!(text(&reader.cmd(&["GET", "k2"])), "$1\r\nb\r\n");

    writer.ok(&["SET", "k1", "x"]);
    assert_eq!(text(&reader.push()), invalidate(&["k1"]));

    // One shot: a second write to k1 sends nothing, so the next message is k2's.
    writer.ok(&["SET", "k1", "y"]);
    writer.ok(&["SET", "k2", "z"]);
    assert_eq!(text(&reader.push()), invalidate(&["k2"]));

    // Read again, tracked again; a DEL is a change like any other.
    reader.cmd(&["GET", "k1"]);
    assert_eq!(text(&writer.cmd(&["DEL", "k1"])), ":1\r\n");
    assert_eq!(text(&reader.push()), invalidate(&["k1"]));

    // Its own write is invalidated too (no NOLOOP), after the write's reply.
    reader.cmd(&["GET", "own"]);
    reader.conn.send(&RawConn::encode(&[b"SET", b"own", b"1"]));
    assert_eq!(text(&reader.conn.read_reply()), "+OK\r\n");
    assert_eq!(text(&reader.conn.read_reply()), invalidate(&["own"]));

    // Keys of every read-only command with keys are tracked: MGET, HGET, EXISTS.
    assert_eq!(text(&writer.cmd(&["HSET", "h", "f", "v"])), ":1\r\n");
    reader.cmd(&["MGET", "m1", "m2"]);
    reader.cmd(&["HGET", "h", "f"]);
    reader.cmd(&["EXISTS", "e"]);
    for (key, write) in [
        ("m2", vec!["SET", "m2", "1"]),
        ("h", vec!["HSET", "h", "f", "w"]),
        ("e", vec!["SET", "e", "1"]),
        ("m1", vec!["APPEND", "m1", "1"]),
    ] {
        writer.cmd(&write);
        assert_eq!(text(&reader.push()), invalidate(&[key]));
    }

    // After OFF, reads are no longer tracked.
    reader.ok(&["CLIENT", "TRACKING", "OFF"]);
    assert_eq!(text(&reader.cmd(&["CLIENT", "GETREDIR"])), ":-1\r\n");
}

#[test]
fn noloop_skips_the_clients_own_writes() {
    let node = node(&[]);
    let mut a = Client::resp3(&node);
    let mut b = Client::new(&node);
    a.ok(&["CLIENT", "TRACKING", "ON", "NOLOOP"]);
    a.cmd(&["GET", "mine"]);
    a.cmd(&["GET", "theirs"]);
    a.ok(&["SET", "mine", "1"]);
    b.ok(&["SET", "theirs", "1"]);
    // Had `mine` been sent, it would have come first.
    assert_eq!(text(&a.push()), invalidate(&["theirs"]));
    let flags = text(&a.cmd(&["CLIENT", "TRACKINGINFO"]));
    assert!(flags.contains("noloop"), "{flags}");
}

#[test]
fn bcast_notifies_every_write_under_the_prefixes() {
    let node = node(&[]);
    let mut a = Client::resp3(&node);
    let mut everything = Client::resp3(&node);
    let mut quiet = Client::resp3(&node);
    let mut w = Client::new(&node);
    a.ok(&[
        "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "session:",
    ]);
    everything.ok(&["CLIENT", "TRACKING", "ON", "BCAST"]);
    quiet.ok(&[
        "CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP", "PREFIX", "q:",
    ]);
    w.ok(&["SET", "user:1", "a"]);
    w.ok(&["SET", "other:1", "a"]);
    w.ok(&["SET", "user:1", "b"]);
    w.ok(&["SET", "session:9", "a"]);
    // No read needed, and not one-shot: each write under a prefix is sent.
    assert_eq!(text(&a.push()), invalidate(&["user:1"]));
    assert_eq!(text(&a.push()), invalidate(&["user:1"]));
    assert_eq!(text(&a.push()), invalidate(&["session:9"]));
    for key in ["user:1", "other:1", "user:1", "session:9"] {
        assert_eq!(text(&everything.push()), invalidate(&[key]));
    }
    // NOLOOP in BCAST mode: its own write under its prefix is not sent, another's is.
    quiet.ok(&["SET", "q:own", "1"]);
    w.ok(&["SET", "q:other", "1"]);
    assert_eq!(text(&quiet.push()), invalidate(&["q:other"]));

    let info = text(&a.cmd(&["CLIENT", "TRACKINGINFO"]));
    assert_eq!(
        info,
        "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$8\r\nsession:\r\n$5\r\nuser:\r\n"
    );
    // "", "user:", "session:", "q:"
    assert_eq!(info_field(&mut w, "stats", "tracking_total_prefixes"), "4");
}

#[test]
fn optin_and_optout_follow_client_caching() {
    let node = node(&[]);
    let mut w = Client::new(&node);

    let mut optin = Client::resp3(&node);
    optin.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
    optin.cmd(&["GET", "in:untracked"]);
    optin.ok(&["CLIENT", "CACHING", "YES"]);
    let info = text(&optin.cmd(&["CLIENT", "TRACKINGINFO"]));
    assert!(info.contains("caching-yes"), "{info}");
    optin.cmd(&["GET", "in:tracked"]);
    // CACHING applies to the next command only.
    optin.cmd(&["GET", "in:after"]);
    w.ok(&["SET", "in:untracked", "1"]);
    w.ok(&["SET", "in:after", "1"]);
    w.ok(&["SET", "in:tracked", "1"]);
    assert_eq!(text(&optin.push()), invalidate(&["in:tracked"]));

    // Given before MULTI, CACHING YES covers the whole transaction.
    optin.ok(&["CLIENT", "CACHING", "YES"]);
    optin.ok(&["MULTI"]);
    assert_eq!(text(&optin.cmd(&["GET", "tx:1"])), "+QUEUED\r\n");
    assert_eq!(text(&optin.cmd(&["GET", "tx:2"])), "+QUEUED\r\n");
    assert!(text(&optin.cmd(&["EXEC"])).starts_with("*2\r\n"));
    optin.cmd(&["GET", "tx:after"]);
    w.ok(&["SET", "tx:after", "1"]);
    w.ok(&["SET", "tx:2", "1"]);
    w.ok(&["SET", "tx:1", "1"]);
    assert_eq!(text(&optin.push()), invalidate(&["tx:2"]));
    assert_eq!(text(&optin.push()), invalidate(&["tx:1"]));

    let mut optout = Client::resp3(&node);
    optout.ok(&["CLIENT", "TRACKING", "ON", "OPTOUT"]);
    optout.ok(&["CLIENT", "CACHING", "NO"]);
    optout.cmd(&["GET", "out:skipped"]);
    optout.cmd(&["GET", "out:tracked"]);
    w.ok(&["SET", "out:skipped", "1"]);
    w.ok(&["SET", "out:tracked", "1"]);
    assert_eq!(text(&optout.push()), invalidate(&["out:tracked"]));
}

#[test]
fn resp2_client_redirects_to_an_invalidate_subscriber() {
    let node = node(&[]);
    let mut sub = Client::new(&node);
    let sub_id = sub.id();
    assert_eq!(
        text(&sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"])),
        "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n"
    );
    let mut tracker = Client::new(&node);
    let id = sub_id.to_string();
    tracker.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &id]);
    assert_eq!(
        text(&tracker.cmd(&["CLIENT", "GETREDIR"])),
        format!(":{sub_id}\r\n")
    );
    tracker.cmd(&["GET", "rk"]);
    let mut w = Client::new(&node);
    w.ok(&["SET", "rk", "1"]);
    assert_eq!(
        text(&sub.frame()),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$2\r\nrk\r\n"
    );
    w.ok(&["FLUSHALL"]);
    assert_eq!(
        text(&sub.frame()),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
    );
    let list = text(&tracker.cmd(&["CLIENT", "LIST"]));
    let line = list
        .lines()
        .find(|l| l.contains(&format!("redir={sub_id}")))
        .unwrap_or_else(|| panic!("no redirecting client in {list}"));
    assert!(line.contains("flags=t "), "{line}");
}

#[test]
fn redirect_target_gone_sends_tracking_redir_broken() {
    let node = node(&[]);
    let mut target = Client::new(&node);
    let target_id = target.id();
    let mut u = Client::resp3(&node);
    u.ok(&[
        "CLIENT",
        "TRACKING",
        "ON",
        "REDIRECT",
        &target_id.to_string(),
    ]);
    u.cmd(&["GET", "bk"]);
    drop(target);
    // Wait until the node has seen the disconnect.
    let mut w = Client::new(&node);
    for _ in 0..500 {
        let list = text(&w.cmd(&["CLIENT", "LIST"]));
        if !list.contains(&format!("id={target_id} ")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    w.ok(&["SET", "bk", "1"]);
    assert_eq!(
        text(&u.push()),
        format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{target_id}\r\n")
    );
    let info = text(&u.cmd(&["CLIENT", "TRACKINGINFO"]));
    assert!(info.contains("broken_redirect"), "{info}");
    assert!(text(&u.cmd(&["CLIENT", "LIST"])).contains("flags=tR "));
}

#[test]
fn resp3_redirect_target_gets_pushes() {
    let node = node(&[]);
    let mut target = Client::resp3(&node);
    let target_id = target.id().to_string();
    let mut t = Client::new(&node);
    t.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &target_id]);
    t.cmd(&["GET", "vk"]);
    Client::new(&node).ok(&["SET", "vk", "1"]);
    assert_eq!(text(&target.push()), invalidate(&["vk"]));
}

#[test]
fn expiry_invalidates() {
    let node = node(&["--hz", "100"]);
    let mut a = Client::resp3(&node);
    let mut w = Client::new(&node);
    w.ok(&["SET", "short", "1", "PX", "50"]);
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    assert_eq!(text(&a.cmd(&["GET", "short"])), "$1\r\n1\r\n");
    // Nobody touches the key: active expiry removes it and the reader is told.
    assert_eq!(text(&a.push()), invalidate(&["short"]));
    assert_eq!(info_field(&mut w, "stats", "expired_keys"), "1");
}

#[test]
fn eviction_invalidates() {
    let node = node(&["--maxmemory-policy", "allkeys-random"]);
    let mut a = Client::resp3(&node);
    let mut w = Client::new(&node);
    let value = "v".repeat(1000);
    let victims: Vec<String> = (0..200).map(|i| format!("victim:{i}")).collect();
    for k in &victims {
        w.ok(&["SET", k, &value]);
    }
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    for k in &victims {
        a.cmd(&["GET", k]);
    }
    // Cap memory just above what is used now, then keep writing other keys: only eviction
    // can remove the victims, and each one removed must be invalidated.
    let used: u64 = info_field(&mut w, "memory", "used_memory")
        .parse()
        .expect("used_memory");
    w.ok(&["CONFIG", "SET", "maxmemory", &(used + 200_000).to_string()]);
    for i in 0..5000 {
        w.ok(&["SET", &format!("fill:{i}"), &value]);
    }
    let evicted: u64 = info_field(&mut w, "stats", "evicted_keys")
        .parse()
        .expect("evicted_keys");
    assert!(evicted > 0, "nothing was evicted");
    let gone: Vec<&String> = victims
        .iter()
        .filter(|k| text(&w.cmd(&["EXISTS", k])) == ":0\r\n")
        .collect();
    assert!(!gone.is_empty(), "no victim was evicted");
    let mut told = std::collections::HashSet::new();
    while told.len() < gone.len() {
        told.insert(pushed_key(&a.push()));
    }
    for k in gone {
        assert!(told.contains(k), "{k} evicted without an invalidation");
    }
}

#[test]
fn flush_sends_a_null_invalidation_to_every_tracking_client() {
    let node = node(&[]);
    let mut a = Client::resp3(&node);
    let mut b = Client::resp3(&node);
    let mut w = Client::new(&node);
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    b.ok(&["CLIENT", "TRACKING", "ON", "BCAST"]);
    a.cmd(&["GET", "k"]);
    w.ok(&["FLUSHALL"]);
    assert_eq!(text(&a.push()), FLUSH_PUSH);
    assert_eq!(text(&b.push()), FLUSH_PUSH);
    w.ok(&["SELECT", "3"]);
    w.ok(&["FLUSHDB"]);
    assert_eq!(text(&a.push()), FLUSH_PUSH);
    // The flush emptied the table: k is no longer tracked.
    assert_eq!(info_field(&mut w, "stats", "tracking_total_keys"), "0");
}

#[test]
fn dropped_slots_are_invalidated() {
    let node = node(&[]);
    let mut a = Client::resp3(&node);
    let mut w = Client::new(&node);
    w.ok(&["MSET", "{moved}1", "a", "{kept}1", "b"]);
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    a.cmd(&["GET", "{moved}1"]);
    a.cmd(&["GET", "{kept}1"]);
    let slot = text(&w.cmd(&["CLUSTER", "KEYSLOT", "{moved}1"]))[1..]
        .trim()
        .to_string();
    // What the proxy does after a ring change: the dropped key is invalidated, the other not.
    assert_eq!(
        text(&w.cmd(&["CLUSTER", "DROPSLOTS", &slot, &slot])),
        ":1\r\n"
    );
    w.ok(&["SET", "{kept}1", "c"]);
    assert_eq!(text(&a.push()), invalidate(&["{moved}1"]));
    assert_eq!(text(&a.push()), invalidate(&["{kept}1"]));
}

#[test]
fn cache_invalidate_tells_trackers_of_matching_keys() {
    let node = node(&[]);
    let mut a = Client::resp3(&node);
    let mut w = Client::new(&node);
    w.ok(&["MSET", "deploy:1", "a", "keep:1", "b"]);
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    a.cmd(&["GET", "deploy:1"]);
    a.cmd(&["GET", "deploy:2"]);
    a.cmd(&["GET", "keep:1"]);
    // deploy:1 is dropped from memory; deploy:2 was never there but was read (as absent).
    assert_eq!(text(&w.cmd(&["CACHE", "INVALIDATE", "deploy:*"])), ":1\r\n");
    w.ok(&["SET", "keep:1", "c"]);
    assert_eq!(text(&a.push()), invalidate(&["deploy:1"]));
    assert_eq!(text(&a.push()), invalidate(&["deploy:2"]));
    assert_eq!(text(&a.push()), invalidate(&["keep:1"]));
}

#[test]
fn full_table_forgets_and_invalidates_keys() {
    let node = node(&["--tracking-table-max-keys", "10"]);
    let mut a = Client::resp3(&node);
    let mut w = Client::new(&node);
    assert_eq!(
        text(&w.cmd(&["CONFIG", "GET", "tracking-table-max-keys"])),
        "*2\r\n$23\r\ntracking-table-max-keys\r\n$2\r\n10\r\n"
    );
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    let keys: Vec<String> = (0..20).map(|i| format!("t:{i}")).collect();
    for k in &keys {
        a.cmd(&["GET", k]);
    }
    // Nothing was written: each of the 10 invalidations is a key the table had to forget.
    let mut forgotten = std::collections::HashSet::new();
    for _ in 0..10 {
        let key = pushed_key(&a.push());
        assert!(keys.contains(&key), "{key}");
        assert!(forgotten.insert(key), "a key forgotten twice");
    }
    assert_eq!(info_field(&mut w, "stats", "tracking_total_keys"), "10");
    assert_eq!(info_field(&mut w, "stats", "tracking_total_items"), "10");
    assert_eq!(info_field(&mut w, "clients", "tracking_clients"), "1");
    // The keys still tracked are exactly the others: a write to each is announced once.
    for k in keys.iter().filter(|k| !forgotten.contains(*k)) {
        w.ok(&["SET", k, "1"]);
        assert_eq!(text(&a.push()), invalidate(&[k]));
    }
    assert_eq!(info_field(&mut w, "stats", "tracking_total_keys"), "0");
    a.ok(&["CLIENT", "TRACKING", "OFF"]);
    assert_eq!(info_field(&mut w, "clients", "tracking_clients"), "0");
}

#[test]
fn reset_and_disconnect_turn_tracking_off() {
    let node = node(&[]);
    let mut w = Client::new(&node);
    let mut a = Client::resp3(&node);
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    {
        let mut b = Client::resp3(&node);
        b.ok(&["CLIENT", "TRACKING", "ON", "BCAST"]);
        assert_eq!(info_field(&mut w, "clients", "tracking_clients"), "2");
    }
    assert_eq!(text(&a.cmd(&["RESET"])), "+RESET\r\n");
    for _ in 0..500 {
        if info_field(&mut w, "clients", "tracking_clients") == "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(info_field(&mut w, "clients", "tracking_clients"), "0");
    assert_eq!(
        text(&a.cmd(&["CLIENT", "TRACKINGINFO"])),
        "*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"
    );
}

/// The replies (errors included) of a RESP2 session of tracking commands, compared byte for
/// byte with the reference Redis.
#[test]
fn replies_and_errors_match_redis() {
    let Some(mut theirs) = reference("replies_and_errors_match_redis", 14) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    ours.cmd_str(&["SELECT", "14"]);
    // A client id neither server has.
    let missing = "987654321";
    let script: Vec<Vec<&str>> = vec![
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "GETREDIR"],
        vec!["CLIENT", "TRACKING"],
        vec!["CLIENT", "CACHING"],
        vec!["CLIENT", "GETREDIR", "x"],
        vec!["CLIENT", "CACHING", "YES"],
        vec!["CLIENT", "TRACKING", "maybe"],
        vec!["CLIENT", "TRACKING", "ON", "bogus"],
        vec!["CLIENT", "TRACKING", "ON", "REDIRECT"],
        vec!["CLIENT", "TRACKING", "ON", "REDIRECT", "abc"],
        vec!["CLIENT", "TRACKING", "ON", "REDIRECT", missing],
        vec!["CLIENT", "TRACKING", "ON", "REDIRECT", "0"],
        vec!["CLIENT", "TRACKING", "ON", "REDIRECT", "-1"],
        vec!["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
        vec!["CLIENT", "TRACKING", "ON", "PREFIX", "a"],
        vec!["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
        vec![
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a",
        ],
        vec![
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "a",
        ],
        vec!["CLIENT", "TRACKING", "OFF"],
        vec!["CLIENT", "TRACKING", "on"],
        vec!["CLIENT", "GETREDIR"],
        vec!["CLIENT", "CACHING", "yes"],
        vec!["CLIENT", "CACHING", "no"],
        vec!["CLIENT", "CACHING", "maybe"],
        vec!["CLIENT", "TRACKING", "ON", "BCAST"],
        vec!["CLIENT", "TRACKING", "ON", "OPTIN", "NOLOOP"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "CACHING", "yes"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "CACHING", "no"],
        vec!["CLIENT", "TRACKING", "ON", "OPTOUT"],
        vec!["GET", "k"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "TRACKING", "OFF"],
        vec![
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b", "PREFIX", "a",
        ],
        vec!["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ax"],
        vec!["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "c"],
        vec!["CLIENT", "TRACKINGINFO"],
        vec!["CLIENT", "TRACKING", "ON"],
        vec!["CLIENT", "TRACKING", "OFF"],
        vec!["CLIENT", "TRACKINGINFO"],
    ];
    for cmd in &script {
        let a = ours.cmd_str(cmd);
        let b = theirs.cmd_str(cmd);
        assert_eq!(text(&a), text(&b), "reply differs for {cmd:?}");
    }
}

/// The hook the backing store's change feed uses: drop keys from memory and tell trackers.
#[test]
fn invalidate_keys_drops_and_notifies() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let config = cache_node::Config::default();
    config.set_initial("port", "0").expect("port");
    let handle = runtime
        .block_on(cache_node::Node::start(config, None))
        .expect("node starts");
    let mut a = Client {
        conn: RawConn::connect(&handle.addr.to_string()),
        pushes: VecDeque::new(),
    };
    assert!(a.cmd(&["HELLO", "3"]).starts_with(b"%7"));
    a.ok(&["SET", "db:row", "cached"]);
    a.ok(&["CLIENT", "TRACKING", "ON"]);
    a.cmd(&["GET", "db:row"]);
    a.cmd(&["GET", "db:absent"]);
    handle.shared.invalidate_keys(0, &[b"db:row", b"db:absent"]);
    assert_eq!(text(&a.push()), invalidate(&["db:row"]));
    assert_eq!(text(&a.push()), invalidate(&["db:absent"]));
    assert_eq!(text(&a.cmd(&["EXISTS", "db:row"])), ":0\r\n");
    runtime.block_on(handle.shutdown());
}

/// Sends `args` on a RESP3 tracking connection and returns the next two frames as they
/// arrive (push or reply), to check their order.
fn two_frames(c: &mut Client, args: &[&str]) -> (String, String) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.conn.send(&RawConn::encode(&args));
    (text(&c.conn.read_reply()), text(&c.conn.read_reply()))
}

/// Redis's order on the tracking connection itself: the invalidation of a key its own command
/// changed follows that command's reply (a transaction's follows the whole EXEC reply); one
/// sent by another client's write before this command comes first.
#[test]
fn invalidations_are_ordered_around_replies_as_redis_orders_them() {
    let node = node(&[]);
    let mut targets = vec![("node", Client::resp3(&node), Client::new(&node))];
    if let Some(addr) = cache_testkit::reference_redis("tracking order") {
        let connect = || {
            let mut c = Client {
                conn: RawConn::connect(&addr),
                pushes: VecDeque::new(),
            };
            c.ok(&["SELECT", "14"]);
            c
        };
        let mut c = connect();
        c.cmd(&["HELLO", "3"]);
        targets.push(("redis", c, connect()));
    }
    for (name, mut c, mut w) in targets {
        c.cmd(&["DEL", "ord:h", "ord:a{t}", "ord:b{t}", "ord:k"]);
        c.ok(&["CLIENT", "TRACKING", "ON"]);
        c.cmd(&["HSET", "ord:h", "f", "1"]);
        c.cmd(&["HGET", "ord:h", "f"]);
        let (first, second) = two_frames(&mut c, &["HDEL", "ord:h", "f"]);
        assert_eq!(
            (first.as_str(), second),
            (":1\r\n", invalidate(&["ord:h"])),
            "{name}: HDEL"
        );

        c.ok(&["MSET", "ord:a{t}", "1", "ord:b{t}", "2"]);
        c.cmd(&["GET", "ord:a{t}"]);
        c.ok(&["MULTI"]);
        assert_eq!(text(&c.cmd(&["INCR", "ord:a{t}"])), "+QUEUED\r\n");
        let (first, second) = two_frames(&mut c, &["EXEC"]);
        assert_eq!(
            (first.as_str(), second),
            ("*1\r\n:2\r\n", invalidate(&["ord:a{t}"])),
            "{name}: EXEC"
        );

        w.ok(&["SET", "ord:k", "1"]);
        c.cmd(&["GET", "ord:k"]);
        // The other client's write is done (its reply read) before PING is sent.
        w.ok(&["SET", "ord:k", "2"]);
        let (first, second) = two_frames(&mut c, &["PING"]);
        assert_eq!(
            (first, second.as_str()),
            (invalidate(&["ord:k"]), "+PONG\r\n"),
            "{name}: PING after another client's write"
        );
        c.ok(&["CLIENT", "TRACKING", "OFF"]);
        c.cmd(&["DEL", "ord:h", "ord:a{t}", "ord:b{t}", "ord:k"]);
    }
}

/// A key evicted to make room for a command is invalidated before that command's reply, and
/// eviction runs before every command over maxmemory, reads included (Redis's processCommand).
#[test]
fn eviction_for_a_command_is_invalidated_before_its_reply() {
    let node = node(&["--maxmemory-policy", "volatile-random"]);
    let mut c = Client::resp3(&node);
    c.ok(&["CLIENT", "TRACKING", "ON"]);
    let used: u64 = info_field(&mut c, "memory", "used_memory")
        .parse()
        .expect("used_memory");
    c.ok(&[
        "CONFIG",
        "SET",
        "maxmemory",
        &(used + 100 * 1024).to_string(),
    ]);
    c.ok(&["SETEX", "volatile-key", "10000", "x"]);
    c.cmd(&["GET", "volatile-key"]);
    // SETBIT grows one key by 200 KB in one go, over the limit; the next command evicts.
    assert_eq!(
        text(&c.cmd(&["SETBIT", "big-key", "1600000", "0"])),
        ":0\r\n"
    );
    let (first, second) = two_frames(&mut c, &["GETBIT", "big-key", "0"]);
    assert_eq!(
        (first, second.as_str()),
        (invalidate(&["volatile-key"]), ":0\r\n")
    );
    c.ok(&["CONFIG", "SET", "maxmemory", "0"]);
}

/// EVAL_RO is not a read by itself: a script's declared keys are tracked only once it ran a
/// read command (Redis 7.0's rule for every script).
#[test]
fn read_only_script_without_a_read_tracks_nothing() {
    let node = node(&[]);
    let mut c = Client::resp3(&node);
    let mut w = Client::new(&node);
    c.ok(&["CLIENT", "TRACKING", "ON"]);
    c.cmd(&["EVAL_RO", "redis.call('ping')", "2", "k1{t}", "k2{t}"]);
    w.ok(&["MSET", "k2{t}", "2", "k1{t}", "2"]);
    c.cmd(&[
        "EVAL_RO",
        "redis.call('get', 'k1{t}')",
        "2",
        "k1{t}",
        "k2{t}",
    ]);
    w.ok(&["MSET", "k2{t}", "3", "k1{t}", "3"]);
    // Only the second script tracked: its keys' pushes are the first ones, in write order.
    assert_eq!(text(&c.push()), invalidate(&["k2{t}"]));
    assert_eq!(text(&c.push()), invalidate(&["k1{t}"]));
}

/// FLUSHALL empties the key table even when nobody tracks any more (the keys read before
/// CLIENT TRACKING OFF stayed in it), and a lowered tracking-table-max-keys applies without a
/// further read (the cron trims, as Redis's serverCron).
#[test]
fn table_is_emptied_by_flushall_and_trimmed_by_a_lowered_limit() {
    let node = node(&[]);
    let mut c = Client::resp3(&node);
    c.ok(&["CLIENT", "TRACKING", "ON"]);
    c.cmd(&["GET", "stale1"]);
    c.cmd(&["GET", "stale2"]);
    c.ok(&["CLIENT", "TRACKING", "OFF"]);
    c.ok(&["FLUSHALL"]);
    assert_eq!(info_field(&mut c, "stats", "tracking_total_keys"), "0");

    c.ok(&["CLIENT", "TRACKING", "ON"]);
    c.ok(&["MSET", "t1", "1", "t2", "2"]);
    c.cmd(&["MGET", "t1", "t2"]);
    c.ok(&["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    // No command is sent: the push comes from the cron.
    let key = pushed_key(&c.push());
    assert!(key == "t1" || key == "t2", "{key}");
    assert_eq!(info_field(&mut c, "stats", "tracking_total_keys"), "1");
}
