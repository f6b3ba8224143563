//! End to end: the real binary in front of a real database. Every scenario runs against
//! SQLite (a file in a temp dir) and PostgreSQL (`FERROCACHE_POSTGRES`, which `.ci/run` sets;
//! the PostgreSQL variant prints SKIPPED when it is unset). Each test has its own table (and
//! temp dir) and drops it at the end.

mod common;

use std::io::{Read, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{node, NodeProcess, RawConn};

const PG_ENV: &str = "FERROCACHE_POSTGRES";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database for one test: its own SQLite file or PostgreSQL table, and a temp dir for the
/// node's journal.
#[allow(clippy::large_enum_variant)] // one per test
enum Kind {
    Sqlite,
    Postgres {
        url: String,
        rt: tokio::runtime::Runtime,
        client: tokio_postgres::Client,
    },
}

struct Db {
    kind: Kind,
    dir: PathBuf,
    table: String,
    /// Where the node connects (a forwarder's address for the down-and-back test).
    url: String,
}

fn pg_connect(url: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to FERROCACHE_POSTGRES");
        tokio::spawn(conn);
        client
    });
    (rt, client)
}

impl Db {
    fn sqlite() -> Db {
        let dir = std::env::temp_dir().join(unique("ferrocache-backing"));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("store.db").display());
        Db {
            kind: Kind::Sqlite,
            dir,
            table: unique("kv"),
            url,
        }
    }

    fn postgres(test: &str) -> Option<Db> {
        let url = match std::env::var(PG_ENV) {
            Ok(u) if !u.is_empty() => u,
            _ => {
                eprintln!("SKIPPED {test}: set {PG_ENV}=postgres://user@host/db to run it");
                return None;
            }
        };
        let dir = std::env::temp_dir().join(unique("ferrocache-backing"));
        std::fs::create_dir_all(&dir).unwrap();
        let (rt, client) = pg_connect(&url);
        Some(Db {
            kind: Kind::Postgres {
                url: url.clone(),
                rt,
                client,
            },
            dir,
            table: unique("t_kv"),
            url,
        })
    }

    fn is_pg(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }

    fn sqlite_path(&self) -> PathBuf {
        self.dir.join("store.db")
    }

    /// Node arguments for this database in `mode`, plus `extra`.
    fn start(&self, mode: &str, extra: &[&str]) -> NodeProcess {
        let dir = self.dir.display().to_string();
        let mut args = vec![
            "--backing-mode",
            mode,
            "--backing-url",
            &self.url,
            "--backing-table",
            &self.table,
            "--dir",
            &dir,
        ];
        args.extend_from_slice(extra);
        node(&args)
    }

    /// A write-back node on this test's table at `url` (a forwarder's), flushing every 20 ms.
    fn start_write_back_at(&self, url: &str) -> NodeProcess {
        let dir = self.dir.display().to_string();
        node(&[
            "--backing-mode",
            "write-back",
            "--backing-url",
            url,
            "--backing-table",
            &self.table,
            "--dir",
            &dir,
            "--write-back-delay",
            "20",
            "--backing-timeout",
            "500",
        ])
    }

    /// Runs SQL (several statements allowed).
    fn exec(&self, sql: &str) {
        match &self.kind {
            Kind::Sqlite => {
                let c = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                c.busy_timeout(Duration::from_secs(5)).unwrap();
                c.execute_batch(sql).unwrap();
            }
            Kind::Postgres { rt, client, .. } => rt.block_on(client.batch_execute(sql)).unwrap(),
        }
    }

    /// The stored (kind, value without the version byte, expires_at ms or 0) of a key.
    fn row(&self, db: i32, key: &str) -> Option<(i16, Vec<u8>, i64)> {
        let t = &self.table;
        match &self.kind {
            Kind::Sqlite => {
                let c = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                c.busy_timeout(Duration::from_secs(5)).unwrap();
                let mut stmt = c
                    .prepare(&format!(
                        "SELECT kind, value, coalesce(expires_at, 0) FROM {t} WHERE db = ?1 AND key = ?2"
                    ))
                    .unwrap();
                let mut rows = stmt
                    .query_map(rusqlite::params![db, key.as_bytes()], |r| {
                        Ok((r.get(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?))
                    })
                    .unwrap();
                rows.next()
                    .map(|r| r.unwrap())
                    .map(|(k, v, e)| (k, v[1..].to_vec(), e))
            }
            Kind::Postgres { rt, client, .. } => {
                let row = rt
                    .block_on(client.query_opt(
                        &format!(
                            "SELECT kind, value, coalesce((extract(epoch from expires_at) * 1000)::int8, 0) \
                             FROM {t} WHERE db = $1 AND key = $2"
                        ),
                        &[&db, &key.as_bytes()],
                    ))
                    .unwrap();
                row.map(|r| {
                    let v: Vec<u8> = r.get(1);
                    (r.get(0), v[1..].to_vec(), r.get(2))
                })
            }
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        self.row(0, key).map(|(kind, v, _)| {
            assert_eq!(kind, 0, "{key} is not a string");
            String::from_utf8(v).unwrap()
        })
    }

    /// Writes a string row directly, as another program would.
    fn put_string(&self, key: &str, value: &str) {
        let t = &self.table;
        let mut v = vec![1u8];
        v.extend_from_slice(value.as_bytes());
        match &self.kind {
            Kind::Sqlite => {
                let c = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                c.busy_timeout(Duration::from_secs(5)).unwrap();
                c.execute(
                    &format!(
                        "INSERT OR REPLACE INTO {t} (db, key, kind, value) VALUES (0, ?1, 0, ?2)"
                    ),
                    rusqlite::params![key.as_bytes(), v],
                )
                .unwrap();
            }
            Kind::Postgres { rt, client, .. } => {
                rt.block_on(client.execute(
                    &format!(
                        "INSERT INTO {t} (db, key, kind, value) VALUES (0, $1, 0, $2) \
                         ON CONFLICT (db, key) DO UPDATE SET value = EXCLUDED.value, kind = 0, expires_at = NULL"
                    ),
                    &[&key.as_bytes(), &v],
                ))
                .unwrap();
            }
        }
    }

    /// Holds an exclusive lock on the table from another session until the guard drops.
    fn lock_table(&self) -> LockGuard {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let t = self.table.clone();
        let thread =
            match &self.kind {
                Kind::Sqlite => {
                    let path = self.sqlite_path();
                    std::thread::spawn(move || {
                        let c = rusqlite::Connection::open(path).unwrap();
                        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
                        ready_tx.send(()).unwrap();
                        let _ = release_rx.recv();
                        c.execute_batch("ROLLBACK").unwrap();
                    })
                }
                Kind::Postgres { url, .. } => {
                    let url = url.clone();
                    std::thread::spawn(move || {
                        let (rt, client) = pg_connect(&url);
                        rt.block_on(client.batch_execute(&format!(
                            "BEGIN; LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE"
                        )))
                        .unwrap();
                        ready_tx.send(()).unwrap();
                        let _ = release_rx.recv();
                        rt.block_on(client.batch_execute("ROLLBACK")).unwrap();
                    })
                }
            };
        ready_rx.recv().unwrap();
        LockGuard {
            release: Some(release_tx),
            thread: Some(thread),
        }
    }
}

struct LockGuard {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Kind::Postgres { rt, client, .. } = &self.kind {
            let _ = rt.block_on(client.batch_execute(&format!(
                "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {}_users",
                self.table, self.table
            )));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn info(conn: &mut RawConn, field: &str) -> String {
    let reply = conn.cmd_str(&["INFO", "backing"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("INFO backing lacks {field}: {text}"))
}

/// INFO clients' blocked_clients.
fn blocked_clients(conn: &mut RawConn) -> u64 {
    let reply = String::from_utf8_lossy(&conn.cmd_str(&["INFO", "clients"])).into_owned();
    reply
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO clients lacks blocked_clients: {reply}"))
}

fn info_n(conn: &mut RawConn, field: &str) -> u64 {
    info(conn, field).parse().unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bulk(v: &str) -> Vec<u8> {
    format!("${}\r\n{v}\r\n", v.len()).into_bytes()
}

const NIL: &[u8] = b"$-1\r\n";
const OK: &[u8] = b"+OK\r\n";

/// Declares a test body once and runs it against both stores.
macro_rules! both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn sqlite() {
                let db = Db::sqlite();
                ($body)(&db);
            }

            #[test]
            fn postgres() {
                let Some(db) = Db::postgres(concat!(stringify!($name), "::postgres")) else {
                    return;
                };
                ($body)(&db);
            }
        }
    };
}

both_stores!(
    read_through_loads_every_type_and_keeps_fields_on_write,
    |db: &Db| {
        // A first node writes every type through; a second, empty one reads them back.
        {
            let n = db.start("write-through", &[]);
            let mut c = n.raw();
            assert_eq!(c.cmd_str(&["SET", "s", "hello"]), OK);
            assert_eq!(c.cmd_str(&["HSET", "h", "a", "1", "b", "2"]), b":2\r\n");
            assert_eq!(c.cmd_str(&["RPUSH", "l", "x", "y", "z"]), b":3\r\n");
            assert_eq!(c.cmd_str(&["SADD", "st", "m1", "m2"]), b":2\r\n");
            assert_eq!(c.cmd_str(&["ZADD", "z", "1.5", "a", "2", "b"]), b":2\r\n");
            assert_eq!(c.cmd_str(&["SET", "ttl", "v", "EX", "1000"]), OK);
        }
        db.put_string("external", "from another program");
        let n = db.start("write-through", &[]);
        let mut c = n.raw();
        assert_eq!(c.cmd_str(&["GET", "s"]), bulk("hello"));
        assert_eq!(
            c.cmd_str(&["GET", "external"]),
            bulk("from another program")
        );
        assert_eq!(
            c.cmd_str(&["LRANGE", "l", "0", "-1"]),
            b"*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"
        );
        assert_eq!(c.cmd_str(&["SCARD", "st"]), b":2\r\n");
        assert_eq!(c.cmd_str(&["ZSCORE", "z", "a"]), bulk("1.5"));
        let ttl: i64 = String::from_utf8_lossy(&c.cmd_str(&["TTL", "ttl"]))[1..]
            .trim()
            .parse()
            .unwrap();
        assert!((990..=1000).contains(&ttl), "ttl {ttl}");
        // A write to a key not in memory loads it first: the other fields survive.
        assert_eq!(c.cmd_str(&["HSET", "h", "c", "3"]), b":1\r\n");
        assert_eq!(c.cmd_str(&["HLEN", "h"]), b":3\r\n");
        assert_eq!(c.cmd_str(&["GET", "missing"]), NIL);
        assert_eq!(c.cmd_str(&["EXISTS", "s", "missing", "l"]), b":2\r\n");
        // "missing" was looked up twice (no negative caching): two misses.
        assert_eq!(info_n(&mut c, "backing_load_misses"), 2);
        assert_eq!(
            info(&mut c, "backing_store"),
            if db.is_pg() { "postgres" } else { "sqlite" }
        );
    }
);

both_stores!(single_flight_one_load_for_many_clients, |db: &Db| {
    let n = db.start("write-through", &[]);
    db.put_string("hot", "value");
    let clients = 40;
    let mut conns: Vec<RawConn> = (0..clients).map(|_| n.raw()).collect();
    // Hold the table so the one load waits while every client asks (PostgreSQL: reads
    // block behind ACCESS EXCLUSIVE; SQLite's WAL readers never block, so there the
    // clients race the load).
    let lock = db.is_pg().then(|| db.lock_table());
    let barrier = Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = conns
        .drain(..)
        .map(|mut c| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                c.cmd_str(&["GET", "hot"])
            })
        })
        .collect();
    if let Some(lock) = lock {
        std::thread::sleep(Duration::from_millis(300));
        drop(lock);
    }
    for t in threads {
        assert_eq!(t.join().unwrap(), bulk("value"));
    }
    let mut c = n.raw();
    assert_eq!(
        info_n(&mut c, "backing_loads"),
        1,
        "one load for {clients} clients"
    );
    if db.is_pg() {
        assert!(info_n(&mut c, "backing_loads_joined") >= 1);
    }
});

both_stores!(negative_caching_remembers_absent_keys, |db: &Db| {
    let n = db.start("write-through", &["--backing-negative-ttl", "60000"]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["GET", "k"]), NIL);
    db.put_string("k", "late");
    // Still remembered as absent: no second load.
    assert_eq!(c.cmd_str(&["GET", "k"]), NIL);
    assert_eq!(info_n(&mut c, "backing_loads"), 1);
    assert!(info_n(&mut c, "backing_negative_hits") >= 1);
    // Our own write forgets the negative entry.
    assert_eq!(c.cmd_str(&["SET", "k", "mine"]), OK);
    assert_eq!(c.cmd_str(&["GET", "k"]), bulk("mine"));
    drop(n);
    // Without negative caching the row is seen at once.
    let n = db.start("write-through", &[]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["GET", "k2"]), NIL);
    db.put_string("k2", "late");
    assert_eq!(c.cmd_str(&["GET", "k2"]), bulk("late"));
});

both_stores!(evicted_keys_come_back_from_the_database, |db: &Db| {
    let n = db.start(
        "write-back",
        &[
            "--maxmemory-policy",
            "allkeys-lru",
            "--write-back-delay",
            "10",
            // Small statements: each pooled connection keeps a write buffer as big as the
            // largest batch it sent, memory no eviction can free.
            "--write-back-batch",
            "64",
        ],
    );
    let mut c = n.raw();
    // A limit a few megabytes above what the idle node uses (pools, caches, buffers).
    let reply = c.cmd_str(&["INFO", "memory"]);
    let used: u64 = String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|l| {
            l.strip_prefix("used_memory:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let limit = (used + (6 << 20)).to_string();
    assert_eq!(c.cmd_str(&["CONFIG", "SET", "maxmemory", &limit]), OK);
    let value = "v".repeat(1000);
    let count = 10000;
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let mut batch = Vec::new();
        for i in chunk {
            let key = format!("k{i}");
            let v = format!("{i}:{value}");
            batch.extend(RawConn::encode(&[b"SET", key.as_bytes(), v.as_bytes()]));
        }
        c.send(&batch);
        for _ in chunk {
            assert_eq!(c.read_reply(), OK);
        }
    }
    let reply = c.cmd_str(&["INFO", "stats"]);
    let text = String::from_utf8_lossy(&reply);
    let evicted: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(evicted > 1000, "expected evictions, got {evicted}");
    wait_until("the queue to drain", Duration::from_secs(30), || {
        info_n(&mut c, "backing_pending_writes") == 0
    });
    // Every key reads back right, from memory or reloaded.
    for i in (0..count).step_by(7) {
        let key = format!("k{i}");
        assert_eq!(
            c.cmd_str(&["GET", &key]),
            bulk(&format!("{i}:{value}")),
            "{key}"
        );
    }
    assert!(info_n(&mut c, "backing_load_hits") > 100);
});

both_stores!(
    write_through_failure_keeps_cache_and_database_equal,
    |db: &Db| {
        let n = db.start("write-through", &["--backing-timeout", "400"]);
        let mut c = n.raw();
        assert_eq!(c.cmd_str(&["SET", "k", "old"]), OK);
        assert_eq!(c.cmd_str(&["HSET", "h", "f", "1"]), b":1\r\n");
        {
            let _lock = db.lock_table();
            let reply = c.cmd_str(&["SET", "k", "new"]);
            assert!(
                reply.starts_with(b"-ERR backing store write failed"),
                "{}",
                String::from_utf8_lossy(&reply)
            );
            assert_eq!(c.cmd_str(&["GET", "k"]), bulk("old"));
            let reply = c.cmd_str(&["DEL", "h"]);
            assert!(reply.starts_with(b"-ERR backing store write failed"));
            assert_eq!(c.cmd_str(&["HGET", "h", "f"]), bulk("1"));
            let reply = c.cmd_str(&["SET", "fresh", "x"]);
            assert!(reply.starts_with(b"-ERR"));
            // A transaction fails whole, and every key it wrote comes back.
            assert_eq!(c.cmd_str(&["MULTI"]), OK);
            assert_eq!(c.cmd_str(&["SET", "k", "tx"]), b"+QUEUED\r\n");
            assert_eq!(c.cmd_str(&["HSET", "h", "f", "2"]), b"+QUEUED\r\n");
            let reply = c.cmd_str(&["EXEC"]);
            assert!(
                reply.starts_with(b"-ERR backing store write failed"),
                "{}",
                String::from_utf8_lossy(&reply)
            );
            assert_eq!(c.cmd_str(&["GET", "k"]), bulk("old"));
            assert_eq!(c.cmd_str(&["HGET", "h", "f"]), bulk("1"));
        }
        // (Checked after the lock: a PostgreSQL table locked exclusively refuses reads too, so
        // loading an absent key fails meanwhile.)
        assert_eq!(c.cmd_str(&["EXISTS", "fresh"]), b":0\r\n");
        assert_eq!(db.string("k").as_deref(), Some("old"));
        assert!(db.row(0, "fresh").is_none());
        assert!(info_n(&mut c, "backing_failed") >= 3);
        // Back to normal once the lock is gone.
        assert_eq!(c.cmd_str(&["SET", "k", "new"]), OK);
        assert_eq!(db.string("k").as_deref(), Some("new"));
    }
);

both_stores!(
    evicted_keys_still_queued_are_served_from_the_queue,
    |db: &Db| {
        // Nothing is flushed: an evicted key's only newer copy is the write-back queue's.
        let n = db.start(
            "write-back",
            &[
                "--maxmemory-policy",
                "allkeys-lru",
                "--write-back-delay",
                "3600000",
                "--write-back-batch",
                "1000000",
            ],
        );
        let mut c = n.raw();
        for i in 0..100 {
            db.put_string(&format!("k{i}"), "stale");
        }
        let reply = c.cmd_str(&["INFO", "memory"]);
        let used: u64 = String::from_utf8_lossy(&reply)
            .lines()
            .find_map(|l| {
                l.strip_prefix("used_memory:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        let limit = (used + (2 << 20)).to_string();
        assert_eq!(c.cmd_str(&["CONFIG", "SET", "maxmemory", &limit]), OK);
        let value = "q".repeat(1000);
        let count = 3000;
        for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
            let mut batch = Vec::new();
            for i in chunk {
                let v = format!("{i}:{value}");
                batch.extend(RawConn::encode(&[
                    b"SET",
                    format!("k{i}").as_bytes(),
                    v.as_bytes(),
                ]));
            }
            c.send(&batch);
            for _ in chunk {
                assert_eq!(c.read_reply(), OK);
            }
        }
        let reply = c.cmd_str(&["INFO", "stats"]);
        let evicted: u64 = String::from_utf8_lossy(&reply)
            .lines()
            .find_map(|l| {
                l.strip_prefix("evicted_keys:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        assert!(evicted > 100, "expected evictions, got {evicted}");
        assert_eq!(db.string("k0").as_deref(), Some("stale"), "nothing flushed");
        let loads_before = info_n(&mut c, "backing_loads");
        for i in 0..count {
            let key = format!("k{i}");
            assert_eq!(
                c.cmd_str(&["GET", &key]),
                bulk(&format!("{i}:{value}")),
                "{key}"
            );
        }
        assert!(
            info_n(&mut c, "backing_loads") > loads_before,
            "some keys were reloaded"
        );
    }
);

both_stores!(ttls_and_deletions_reach_the_database, |db: &Db| {
    let n = db.start("write-through", &[]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["SET", "a", "1", "EX", "100"]), OK);
    let (_, _, exp) = db.row(0, "a").unwrap();
    let now = cache_node::now_ms() as i64;
    assert!(
        (now + 98_000..=now + 100_500).contains(&exp),
        "{exp} vs {now}"
    );
    assert_eq!(c.cmd_str(&["PERSIST", "a"]), b":1\r\n");
    assert_eq!(db.row(0, "a").unwrap().2, 0);
    assert_eq!(c.cmd_str(&["PEXPIRE", "a", "150"]), b":1\r\n");
    assert!(db.row(0, "a").unwrap().2 > 0);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(c.cmd_str(&["GET", "a"]), NIL);
    drop(n);
    // The row may still be there, but it is expired and never served.
    let n = db.start("write-through", &[]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["GET", "a"]), NIL);
    assert_eq!(c.cmd_str(&["SET", "b", "1"]), OK);
    assert_eq!(c.cmd_str(&["DEL", "b"]), b":1\r\n");
    assert!(db.row(0, "b").is_none());
    assert_eq!(c.cmd_str(&["SELECT", "2"]), OK);
    assert_eq!(c.cmd_str(&["SET", "c", "1"]), OK);
    assert_eq!(c.cmd_str(&["MOVE", "c", "3"]), b":1\r\n");
    assert!(db.row(2, "c").is_none());
    assert!(db.row(3, "c").is_some());
    assert_eq!(c.cmd_str(&["SELECT", "3"]), OK);
    assert_eq!(c.cmd_str(&["FLUSHDB"]), OK);
    assert!(db.row(3, "c").is_none());
    assert_eq!(
        c.cmd_str(&["SWAPDB", "0", "1"]).get(..4),
        Some(&b"-ERR"[..])
    );
});

both_stores!(write_back_survives_kill_9, |db: &Db| {
    // No flush can happen before the kill: every write lives only in the journal.
    let args = [
        "--write-back-delay",
        "3600000",
        "--write-back-batch",
        "1000000",
    ];
    let n = db.start("write-back", &args);
    let mut c = n.raw();
    let count = 3000;
    let mut batch = Vec::new();
    for i in 0..count {
        let key = format!("k{i}");
        batch.extend(RawConn::encode(&[b"SET", key.as_bytes(), b"first"]));
        batch.extend(RawConn::encode(&[
            b"SET",
            key.as_bytes(),
            format!("v{i}").as_bytes(),
        ]));
    }
    batch.extend(RawConn::encode(&[b"HSET", b"h", b"f", b"1", b"g", b"2"]));
    batch.extend(RawConn::encode(&[b"SET", b"gone", b"x"]));
    batch.extend(RawConn::encode(&[b"DEL", b"gone"]));
    c.send(&batch);
    for _ in 0..(2 * count + 3) {
        let r = c.read_reply();
        assert!(
            r == OK || r.starts_with(b":"),
            "{}",
            String::from_utf8_lossy(&r)
        );
    }
    assert!(info_n(&mut c, "backing_pending_writes") >= count as u64);
    assert!(db.row(0, "k0").is_none(), "nothing flushed before the kill");
    drop(n); // SIGKILL
             // The restart replays the journal into the database before it serves.
    let n = db.start("write-back", &[]);
    for i in 0..count {
        assert_eq!(db.string(&format!("k{i}")), Some(format!("v{i}")), "k{i}");
    }
    assert!(db.row(0, "h").is_some());
    assert!(db.row(0, "gone").is_none());
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["HGET", "h", "g"]), bulk("2"));
    assert_eq!(info_n(&mut c, "backing_pending_writes"), 0);
    // A graceful stop flushes what is queued.
    assert_eq!(c.cmd_str(&["SET", "late", "1"]), OK);
    let mut n = n;
    n.terminate();
    assert!(n.wait_exit(Duration::from_secs(20)));
    assert_eq!(db.string("late").as_deref(), Some("1"));
});

/// A TCP forwarder to PostgreSQL the test can cut and restore: a database outage without
/// stopping the shared server.
struct Forwarder {
    port: u16,
    up: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Forwarder {
    fn start(target: &str) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, streams2, target) = (up.clone(), streams.clone(), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused-ish
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut list = streams2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                drop(list);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Forwarder { port, up, streams }
    }

    /// A forwarder to the PostgreSQL of `FERROCACHE_POSTGRES`, and that URL through it.
    fn to_postgres() -> (Forwarder, String) {
        let url = std::env::var(PG_ENV).unwrap();
        let host_port = url
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_string();
        let f = Forwarder::start(&host_port);
        let via = url.replacen(&host_port, &format!("127.0.0.1:{}", f.port), 1);
        (f, via)
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

both_stores!(
    write_back_database_down_then_back_loses_nothing,
    |db: &Db| {
        // PostgreSQL: the node goes through a forwarder we cut. SQLite: another connection holds
        // the database's write lock.
        let forwarder = db.is_pg().then(Forwarder::to_postgres);
        let n = if let Some((_, url)) = &forwarder {
            db.start_write_back_at(url)
        } else {
            db.start(
                "write-back",
                &["--write-back-delay", "20", "--backing-timeout", "300"],
            )
        };
        let mut c = n.raw();
        let keys = 20;
        for k in 0..keys {
            assert_eq!(c.cmd_str(&["SET", &format!("c{k}"), "0"]), OK);
        }
        assert_eq!(c.cmd_str(&["SET", "k0", "0"]), OK);
        wait_until("the first flush", Duration::from_secs(10), || {
            db.row(0, "k0").is_some()
        });
        let lock = match &forwarder {
            Some((f, _)) => {
                f.cut();
                None
            }
            None => Some(db.lock_table()),
        };
        // Writes go on while the database is away (the keys are in memory: no load needed):
        // counters climb, so order matters.
        for round in 1..=50 {
            let mut batch = Vec::new();
            for k in 0..keys {
                batch.extend(RawConn::encode(&[b"INCR", format!("c{k}").as_bytes()]));
            }
            c.send(&batch);
            for _ in 0..keys {
                let r = c.read_reply();
                assert_eq!(r, format!(":{round}\r\n").into_bytes());
            }
            if round % 10 == 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        wait_until("a failed flush", Duration::from_secs(10), || {
            info_n(&mut c, "backing_retries") > 0
        });
        assert!(info_n(&mut c, "backing_pending_writes") >= keys as u64);
        assert!(info_n(&mut c, "backing_oldest_pending_ms") > 0);
        assert_eq!(
            c.cmd_str(&["GET", "c3"]),
            bulk("50"),
            "the node keeps serving"
        );
        match &forwarder {
            Some((f, _)) => f.restore(),
            None => drop(lock),
        }
        wait_until("the queue to drain", Duration::from_secs(30), || {
            info_n(&mut c, "backing_pending_writes") == 0
        });
        for k in 0..keys {
            assert_eq!(db.string(&format!("c{k}")).as_deref(), Some("50"), "c{k}");
        }
    }
);

both_stores!(write_back_journal_always_and_coalescing, |db: &Db| {
    let n = db.start(
        "write-back",
        &["--appendfsync", "always", "--write-back-delay", "50"],
    );
    let mut c = n.raw();
    // One pipeline: the replies wait for one fsync (group commit within the batch).
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend(RawConn::encode(&[b"SET", b"k", i.to_string().as_bytes()]));
    }
    c.send(&batch);
    for _ in 0..200 {
        assert_eq!(c.read_reply(), OK);
    }
    // Acknowledged with appendfsync always: on disk before the reply, whatever happens next.
    wait_until("the flush", Duration::from_secs(10), || {
        db.string("k").as_deref() == Some("199")
    });
    // 200 writes of one key, coalesced: far fewer rows written than commands.
    assert!(info_n(&mut c, "backing_flushed") < 20);
    assert!(info_n(&mut c, "backing_journal_bytes") < 1 << 20);
});

both_stores!(mapped_table_rows_are_hashes, |db: &Db| {
    let users = format!("{}_users", db.table);
    let key_type = if db.is_pg() { "bigint" } else { "INTEGER" };
    db.exec(&format!(
        "CREATE TABLE {users} (id {key_type} PRIMARY KEY, name text, age integer);
         INSERT INTO {users} (id, name, age) VALUES (1, 'ann', 30);"
    ));
    let map = format!("user:={users}.id");
    let n = db.start("write-through", &["--backing-map", &map]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["HGET", "user:1", "name"]), bulk("ann"));
    assert_eq!(c.cmd_str(&["HGET", "user:1", "age"]), bulk("30"));
    assert_eq!(c.cmd_str(&["HSET", "user:1", "age", "31"]), b":0\r\n");
    assert_eq!(c.cmd_str(&["HSET", "user:2", "name", "bob"]), b":1\r\n");
    let reply = c.cmd_str(&["HSET", "user:3", "no_such_column", "x"]);
    assert!(
        reply.starts_with(b"-ERR backing store write failed"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(c.cmd_str(&["EXISTS", "user:3"]), b":0\r\n");
    drop(n);
    let n = db.start("write-through", &["--backing-map", &map]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["HGET", "user:1", "age"]), bulk("31"));
    assert_eq!(c.cmd_str(&["HGET", "user:2", "name"]), bulk("bob"));
    assert_eq!(c.cmd_str(&["DEL", "user:2"]), b":1\r\n");
    drop(n);
    let n = db.start("write-through", &["--backing-map", &map]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["EXISTS", "user:2"]), b":0\r\n");
});

both_stores!(
    write_back_drops_only_the_write_the_database_refuses,
    |db: &Db| {
        let users = format!("{}_users", db.table);
        let key_type = if db.is_pg() { "bigint" } else { "INTEGER" };
        db.exec(&format!(
            "CREATE TABLE {users} (id {key_type} PRIMARY KEY, name text);"
        ));
        let map = format!("user:={users}.id");
        let n = db.start(
            "write-back",
            &["--backing-map", &map, "--write-back-delay", "50"],
        );
        let mut c = n.raw();
        // One batch: a write no row can take, between two good ones.
        let mut batch = Vec::new();
        batch.extend(RawConn::encode(&[b"HSET", b"user:1", b"name", b"ann"]));
        batch.extend(RawConn::encode(&[
            b"HSET",
            b"user:2",
            b"no_such_column",
            b"x",
        ]));
        batch.extend(RawConn::encode(&[b"SET", b"plain", b"v"]));
        c.send(&batch);
        for _ in 0..3 {
            let r = c.read_reply();
            assert!(r == OK || r == b":1\r\n", "{}", String::from_utf8_lossy(&r));
        }
        wait_until("the flush", Duration::from_secs(10), || {
            info_n(&mut c, "backing_pending_writes") == 0
        });
        assert_eq!(info_n(&mut c, "backing_failed"), 1);
        assert!(!info(&mut c, "backing_last_error").is_empty());
        assert_eq!(db.string("plain").as_deref(), Some("v"));
        drop(n);
        let n = db.start("write-back", &["--backing-map", &map]);
        let mut c = n.raw();
        assert_eq!(c.cmd_str(&["HGET", "user:1", "name"]), bulk("ann"));
        assert_eq!(c.cmd_str(&["EXISTS", "user:2"]), b":0\r\n");
    }
);

/// PostgreSQL down when the node starts: a write-back node starts anyway, acknowledges writes
/// (journal), and they reach the database once it is back.
#[test]
fn write_back_node_starts_while_postgres_is_down() {
    let Some(db) = Db::postgres("write_back_node_starts_while_postgres_is_down") else {
        return;
    };
    let (forwarder, url) = Forwarder::to_postgres();
    forwarder.cut();
    let n = db.start_write_back_at(&url);
    let mut c = n.raw();
    for k in 0..10 {
        assert_eq!(c.cmd_str(&["SET", &format!("down{k}"), &k.to_string()]), OK);
    }
    // Served from memory; a miss needs the database and says so.
    assert_eq!(c.cmd_str(&["GET", "down3"]), bulk("3"));
    let miss = c.cmd_str(&["GET", "never-written"]);
    assert!(
        miss.starts_with(b"-ERR backing store read failed"),
        "{miss:?}"
    );
    assert!(info_n(&mut c, "backing_pending_writes") > 0);
    forwarder.restore();
    wait_until("the queue to drain", Duration::from_secs(20), || {
        info_n(&mut c, "backing_pending_writes") == 0
    });
    for k in 0..10 {
        assert_eq!(db.string(&format!("down{k}")), Some(k.to_string()));
    }
    assert_eq!(c.cmd_str(&["GET", "never-written"]), b"$-1\r\n");
}

#[test]
fn change_feed_invalidates_rows_changed_by_others() {
    let Some(db) = Db::postgres("change_feed_invalidates_rows_changed_by_others") else {
        return;
    };
    let users = format!("{}_users", db.table);
    db.exec(&format!(
        "CREATE TABLE {users} (id bigint PRIMARY KEY, name text);
         INSERT INTO {users} VALUES (7, 'before');"
    ));
    let map = format!("user:={users}.id");
    // The generic table must exist before its trigger: a first node creates it.
    drop(db.start("write-through", &[]));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_cache-node"))
        .args([
            "install-change-feed",
            "--backing-url",
            &db.url,
            "--backing-table",
            &db.table,
            "--backing-map",
            &map,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let n = db.start(
        "write-through",
        &["--backing-map", &map, "--backing-change-feed", "yes"],
    );
    let mut c = n.raw();
    wait_until("the feed", Duration::from_secs(10), || {
        info(&mut c, "backing_change_feed") == "up"
    });
    assert_eq!(c.cmd_str(&["SET", "k", "mine"]), OK);
    assert_eq!(c.cmd_str(&["HGET", "user:7", "name"]), bulk("before"));
    let before = info_n(&mut c, "backing_invalidations");
    db.exec(&format!(
        "UPDATE {} SET value = '\\x01'::bytea || 'theirs'::bytea WHERE key = 'k'::bytea;
         UPDATE {users} SET name = 'after' WHERE id = 7;",
        db.table
    ));
    wait_until("the invalidation", Duration::from_secs(5), || {
        c.cmd_str(&["GET", "k"]) == bulk("theirs")
    });
    wait_until("the mapped invalidation", Duration::from_secs(5), || {
        c.cmd_str(&["HGET", "user:7", "name"]) == bulk("after")
    });
    assert!(info_n(&mut c, "backing_invalidations") >= before + 2);
    // Our own writes do not invalidate what we just wrote.
    let before = info_n(&mut c, "backing_invalidations");
    assert_eq!(c.cmd_str(&["SET", "k", "again"]), OK);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(info_n(&mut c, "backing_invalidations"), before);
    // The feed's connection dies; a change made meanwhile notifies nobody. On reconnect the
    // node drops what it cached, so it still reads the new row.
    let Kind::Postgres { rt, client, .. } = &db.kind else {
        unreachable!()
    };
    let killed = rt
        .block_on(client.query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'ferrocache' AND (query LIKE 'LISTEN%' OR query = 'SELECT 1')",
            &[],
        ))
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(killed, 1, "the feed's connection");
    db.exec(&format!(
        "UPDATE {} SET value = '\\x01'::bytea || 'missed'::bytea WHERE key = 'k'::bytea",
        db.table
    ));
    wait_until(
        "the reconnect and full invalidation",
        Duration::from_secs(10),
        || c.cmd_str(&["GET", "k"]) == bulk("missed"),
    );
    assert_eq!(info(&mut c, "backing_change_feed"), "up");
    db.exec(&format!(
        "DROP TRIGGER IF EXISTS ferrocache_notify ON {users}"
    ));
}

#[test]
fn default_store_is_sqlite_in_dir() {
    let dir = std::env::temp_dir().join(unique("ferrocache-default"));
    let d = dir.display().to_string();
    let n = node(&["--backing-mode", "write-back", "--dir", &d]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["SET", "a", "1"]), OK);
    assert_eq!(info(&mut c, "backing_store"), "sqlite");
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "backing-mode"]),
        b"*2\r\n$12\r\nbacking-mode\r\n$10\r\nwrite-back\r\n"
    );
    let mut n = n;
    n.terminate();
    assert!(n.wait_exit(Duration::from_secs(20)));
    assert!(dir.join("ferrocache.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

both_stores!(pops_served_by_exec_and_scripts_are_written, |db: &Db| {
    // A client blocked on a list is served by a transaction's (and a script's) push: its pop
    // is part of that command's writes, so the next node reads the list without the popped
    // element. (Before, the push was written and the pop was not: `x` came back.)
    {
        let n = db.start("write-through", &[]);
        let mut waiter = n.raw();
        let mut second = n.raw();
        let blocked = std::thread::spawn(move || {
            let first = waiter.cmd_str(&["BLPOP", "q", "10"]);
            let second_pop = waiter.cmd_str(&["BLPOP", "q2", "10"]);
            (first, second_pop)
        });
        let mut c = n.raw();
        wait_until("the waiter blocks", Duration::from_secs(5), || {
            blocked_clients(&mut second) == 1
        });
        assert_eq!(c.cmd_str(&["MULTI"]), OK);
        assert_eq!(c.cmd_str(&["RPUSH", "q", "x", "y"]), b"+QUEUED\r\n");
        assert_eq!(c.cmd_str(&["EXEC"]), b"*1\r\n:2\r\n");
        wait_until("the waiter blocks again", Duration::from_secs(5), || {
            blocked_clients(&mut second) == 1
        });
        assert_eq!(
            c.cmd_str(&[
                "EVAL",
                "return redis.call('rpush', KEYS[1], 'a', 'b')",
                "1",
                "q2"
            ]),
            b":2\r\n"
        );
        let (first, second_pop) = blocked.join().unwrap();
        assert_eq!(first, b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
        assert_eq!(second_pop, b"*2\r\n$2\r\nq2\r\n$1\r\na\r\n");
    }
    let n = db.start("write-through", &[]);
    let mut c = n.raw();
    assert_eq!(c.cmd_str(&["LRANGE", "q", "0", "-1"]), b"*1\r\n$1\r\ny\r\n");
    assert_eq!(
        c.cmd_str(&["LRANGE", "q2", "0", "-1"]),
        b"*1\r\n$1\r\nb\r\n"
    );
});
