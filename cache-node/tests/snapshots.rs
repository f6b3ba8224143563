//! Snapshots both ways with a real redis-server (its own port and temp dir): our dump.rdb
//! passes redis-check-rdb and loads in Redis with the same keys, values and TTLs; Redis's
//! loads here. Then crash safety (kill -9 mid-BGSAVE) and consistency (a BGSAVE under a
//! writer holds exactly a prefix of what it wrote).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cache_testkit::{have_redis_server, RedisServer, TempDir};
use common::observe;
use redis::Connection;

fn select(c: &mut Connection, db: u32) {
    let _: () = redis::cmd("SELECT").arg(db).query(c).unwrap();
}

/// Keys of every type in databases 0, 3 and 15, some with TTLs; returns (db, key).
fn populate(c: &mut Connection) -> Vec<(u32, String)> {
    let mut keys = Vec::new();
    let big = "x".repeat(150_000);
    let script: &[(u32, &str, Vec<Vec<String>>)] = &[
        (0, "s", vec![vec!["SET".into(), "s".into(), "hello".into()]]),
        (0, "n", vec![vec!["SET".into(), "n".into(), "-42".into()]]),
        (
            0,
            "big",
            vec![vec!["SET".into(), "big".into(), big.clone()]],
        ),
        (
            0,
            "ttl",
            vec![vec![
                "SET".into(),
                "ttl".into(),
                "v".into(),
                "PX".into(),
                "800000".into(),
            ]],
        ),
        (
            0,
            "l",
            vec![(0..300).fold(vec!["RPUSH".into(), "l".into()], |mut v, i| {
                v.push(format!("item{i}"));
                v
            })],
        ),
        (
            3,
            "h",
            vec![(0..200).fold(vec!["HSET".into(), "h".into()], |mut v, i| {
                v.push(format!("f{i}"));
                v.push(format!("{i}"));
                v
            })],
        ),
        (
            3,
            "hs",
            vec![vec!["HSET".into(), "hs".into(), "a".into(), "1".into()]],
        ),
        (
            3,
            "is",
            vec![vec![
                "SADD".into(),
                "is".into(),
                "1".into(),
                "2".into(),
                "99999".into(),
            ]],
        ),
        (
            3,
            "ss",
            vec![(0..150).fold(vec!["SADD".into(), "ss".into()], |mut v, i| {
                v.push(format!("m{i}"));
                v
            })],
        ),
        (
            15,
            "z",
            vec![(0..200).fold(vec!["ZADD".into(), "z".into()], |mut v, i| {
                v.push(format!("{}", f64::from(i) / 3.0));
                v.push(format!("m{i}"));
                v
            })],
        ),
        (
            15,
            "zs",
            vec![vec!["ZADD".into(), "zs".into(), "1.5".into(), "a".into()]],
        ),
        (
            15,
            "x",
            vec![
                vec![
                    "XADD".into(),
                    "x".into(),
                    "1-1".into(),
                    "f".into(),
                    "v".into(),
                ],
                vec![
                    "XADD".into(),
                    "x".into(),
                    "1-2".into(),
                    "g".into(),
                    "w".into(),
                ],
                vec![
                    "XGROUP".into(),
                    "CREATE".into(),
                    "x".into(),
                    "g".into(),
                    "0".into(),
                ],
                vec![
                    "XREADGROUP".into(),
                    "GROUP".into(),
                    "g".into(),
                    "c".into(),
                    "COUNT".into(),
                    "1".into(),
                    "STREAMS".into(),
                    "x".into(),
                    ">".into(),
                ],
            ],
        ),
        (
            15,
            "hll",
            vec![vec!["PFADD".into(), "hll".into(), "a".into(), "b".into()]],
        ),
    ];
    for (db, key, cmds) in script {
        select(c, *db);
        for cmd in cmds {
            let parts: Vec<&[u8]> = cmd.iter().map(|p| p.as_bytes()).collect();
            common::run(c, &parts);
        }
        keys.push((*db, key.to_string()));
    }
    select(c, 0);
    keys
}

fn assert_same(a: &mut Connection, b: &mut Connection, keys: &[(u32, String)]) {
    for (db, key) in keys {
        select(a, *db);
        select(b, *db);
        assert_eq!(observe(a, key), observe(b, key), "db {db} key {key}");
        let ta: i64 = redis::cmd("PTTL").arg(key).query(a).unwrap();
        let tb: i64 = redis::cmd("PTTL").arg(key).query(b).unwrap();
        assert!((ta - tb).abs() < 60_000, "{key}: TTL {ta} vs {tb}");
        assert_eq!(ta < 0, tb < 0, "{key}: TTL {ta} vs {tb}");
    }
    for db in [0, 3, 15] {
        select(a, db);
        select(b, db);
        let na: u64 = redis::cmd("DBSIZE").query(a).unwrap();
        let nb: u64 = redis::cmd("DBSIZE").query(b).unwrap();
        assert_eq!(na, nb, "DBSIZE of db {db}");
    }
}

#[test]
fn our_snapshot_passes_redis_check_rdb_and_loads_in_redis() {
    if !have_redis_server("our_snapshot_loads_in_redis") {
        return;
    }
    let dir = TempDir::new("ours");
    let node = common::node(&["--dir", dir.path()]);
    let mut ours = node.client();
    let keys = populate(&mut ours);
    let r: String = redis::cmd("SAVE").query(&mut ours).unwrap();
    assert_eq!(r, "OK");
    let check = Command::new("redis-check-rdb")
        .arg(dir.file("dump.rdb"))
        .output()
        .expect("redis-check-rdb");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("RDB looks OK"), "{report}");
    let redis = RedisServer::start(dir.path(), &[]);
    let mut theirs = redis.client();
    assert_same(&mut ours, &mut theirs, &keys);
}

#[test]
fn a_snapshot_redis_wrote_loads_here() {
    if !have_redis_server("redis_snapshot_loads_here") {
        return;
    }
    let dir = TempDir::new("theirs");
    let redis = RedisServer::start(dir.path(), &[]);
    let mut theirs = redis.client();
    let keys = populate(&mut theirs);
    let _: String = redis::cmd("SAVE").query(&mut theirs).unwrap();
    let node = common::node(&["--dir", dir.path()]);
    let mut ours = node.client();
    assert_same(&mut ours, &mut theirs, &keys);
    let loaded: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut ours)
        .unwrap();
    assert!(
        loaded.contains(&format!("rdb_last_load_keys_loaded:{}", keys.len())),
        "{loaded}"
    );
}

fn fill(c: &mut Connection, prefix: &str, n: usize, size: usize) {
    let value = "v".repeat(size);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET")
                .arg(format!("{prefix}{i}"))
                .arg(&value)
                .ignore();
        }
        let _: () = pipe.query(c).unwrap();
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn bgsave_done(c: &mut Connection) -> bool {
    let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
    info.contains("rdb_bgsave_in_progress:0")
}

#[test]
fn kill_9_during_bgsave_leaves_the_previous_snapshot() {
    let dir = TempDir::new("kill");
    let node = common::node(&["--dir", dir.path()]);
    let mut c = node.client();
    fill(&mut c, "first:", 1000, 10);
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    let before = std::fs::read(dir.file("dump.rdb")).unwrap();
    fill(&mut c, "second:", 200_000, 200);
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    // Kill once the temp file exists: the save is under way.
    wait_for("the temp file", Duration::from_secs(20), || {
        std::fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("temp-")
        })
    });
    node.signal("KILL");
    drop(c);
    drop(node);
    assert_eq!(
        std::fs::read(dir.file("dump.rdb")).unwrap(),
        before,
        "dump.rdb changed"
    );
    let node = common::node(&["--dir", dir.path()]);
    let mut c = node.client();
    let n: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1000);
}

#[test]
fn a_bgsave_under_writes_holds_a_prefix_of_them() {
    let dir = TempDir::new("prefix");
    let node = common::node(&["--dir", dir.path()]);
    let mut c = node.client();
    // Enough data that the save takes a while, so the writer overlaps it.
    fill(&mut c, "pad:", 200_000, 100);
    let mut writer = node.client();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut i = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            // Each key hashes to its own shard; each SET is acknowledged before the next.
            let _: () = redis::cmd("SET")
                .arg(format!("seq:{i}"))
                .arg(i)
                .query(&mut writer)
                .unwrap();
            i += 1;
        }
        i
    });
    std::thread::sleep(Duration::from_millis(50));
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    wait_for("BGSAVE", Duration::from_secs(60), || bgsave_done(&mut c));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = handle.join().unwrap();
    drop(node);
    let node = common::node(&["--dir", dir.path()]);
    let mut c = node.client();
    let found: Vec<String> = redis::cmd("KEYS").arg("seq:*").query(&mut c).unwrap();
    let mut ids: Vec<u64> = found
        .iter()
        .map(|k| k["seq:".len()..].parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert!(
        !ids.is_empty() && (ids.len() as u64) < written,
        "no overlap: {} of {written}",
        ids.len()
    );
    assert_eq!(
        ids,
        (0..ids.len() as u64).collect::<Vec<_>>(),
        "not a prefix"
    );
}

#[test]
fn shutdown_save_and_restart_keeps_the_data() {
    let dir = TempDir::new("shutdown");
    let mut node = common::node(&["--dir", dir.path()]);
    let mut c = node.client();
    fill(&mut c, "k:", 500, 20);
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("SAVE").query(&mut c);
    assert!(node.wait_exit(Duration::from_secs(20)), "node did not exit");
    assert!(Path::new(&dir.file("dump.rdb")).exists());
    let node = common::node(&["--dir", dir.path(), "--save", "60 1000"]);
    let mut c = node.client();
    let n: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 500);
    let lastsave: u64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    assert!(lastsave > 1_700_000_000);
    let save: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut c)
        .unwrap();
    assert_eq!(save[1], "60 1000");
    let bad: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("60")
        .query(&mut c);
    assert!(bad.is_err());
}
