//! DUMP and RESTORE against the reference Redis: every type and encoding (small and over
//! the compact thresholds, values over 100 KB, TTLs) goes Redis → DUMP → RESTORE here → DUMP
//! here → RESTORE on Redis, and the value must be the same at every step.

mod common;

use common::{observe, run};
use redis::Connection;

/// The reference Redis database these tests use; keys carry a per-run prefix and are
/// deleted at the end, so other tests sharing the database are left alone.
const DB: u32 = 12;

fn reference_conn(test: &str) -> Option<Connection> {
    let addr = common::reference_redis(test)?;
    let client = redis::Client::open(format!("redis://{addr}/{DB}")).expect("reference url");
    Some(client.get_connection().expect("reference Redis"))
}

fn dump(c: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("DUMP")
        .arg(key)
        .query::<Option<Vec<u8>>>(c)
        .unwrap()
        .unwrap_or_else(|| panic!("{key} missing"))
}

fn restore(c: &mut Connection, key: &str, ttl: i64, payload: &[u8]) {
    let r: redis::RedisResult<String> = redis::cmd("RESTORE")
        .arg(key)
        .arg(ttl)
        .arg(payload)
        .arg("REPLACE")
        .query(c);
    assert_eq!(r.as_deref(), Ok("OK"), "RESTORE {key}");
}

fn build(r: &mut Connection, p: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut key = |name: &str| {
        let k = format!("{p}{name}");
        keys.push(k.clone());
        k
    };
    let big: Vec<u8> = (0..150_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let compressible = vec![b'z'; 120_000];
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut add = |parts: &[&[u8]]| cmds.push(parts.iter().map(|p| p.to_vec()).collect());
    let k = key("str:int");
    add(&[b"SET", k.as_bytes(), b"-12345"]);
    let k = key("str:bigint");
    add(&[b"SET", k.as_bytes(), b"9223372036854775807"]);
    let k = key("str:small");
    add(&[b"SET", k.as_bytes(), b"hello world"]);
    let k = key("str:big");
    add(&[b"SET", k.as_bytes(), &big]);
    let k = key("str:lzf");
    add(&[b"SET", k.as_bytes(), &compressible]);
    let k = key("str:ttl");
    add(&[b"SET", k.as_bytes(), b"expiring", b"PX", b"500000"]);
    let k = key("hll");
    add(&[b"PFADD", k.as_bytes(), b"a", b"b", b"c", b"d"]);
    let k = key("bits");
    add(&[b"SETBIT", k.as_bytes(), b"100000", b"1"]);
    let k = key("list:small");
    add(&[b"RPUSH", k.as_bytes(), b"a", b"1", b"-7", b"", b"hello"]);
    let k = key("list:big");
    for i in 0..2000 {
        add(&[b"RPUSH", k.as_bytes(), format!("element-{i}").as_bytes()]);
    }
    add(&[b"RPUSH", k.as_bytes(), &big]);
    let k = key("set:intset");
    add(&[
        b"SADD",
        k.as_bytes(),
        b"1",
        b"-2",
        b"300",
        b"70000",
        b"5000000000",
    ]);
    let k = key("set:bigints");
    for i in 0..600 {
        add(&[b"SADD", k.as_bytes(), (i * 3).to_string().as_bytes()]);
    }
    let k = key("set:strs");
    add(&[b"SADD", k.as_bytes(), b"x", b"y", b"zz"]);
    let k = key("set:big");
    for i in 0..300 {
        add(&[b"SADD", k.as_bytes(), format!("member:{i}").as_bytes()]);
    }
    let k = key("hash:small");
    add(&[b"HSET", k.as_bytes(), b"f1", b"v1", b"n", b"42", b"e", b""]);
    let k = key("hash:big");
    for i in 0..200 {
        add(&[
            b"HSET",
            k.as_bytes(),
            format!("field{i}").as_bytes(),
            format!("{i}").as_bytes(),
        ]);
    }
    let k = key("hash:longvalue");
    add(&[b"HSET", k.as_bytes(), b"f", &[b'v'; 100]]);
    let k = key("zset:small");
    add(&[
        b"ZADD",
        k.as_bytes(),
        b"1.5",
        b"a",
        b"-inf",
        b"b",
        b"3",
        b"c",
        b"0.1",
        b"d",
    ]);
    let k = key("zset:big");
    for i in 0..200 {
        add(&[
            b"ZADD",
            k.as_bytes(),
            format!("{}", i as f64 / 7.0).as_bytes(),
            format!("m{i}").as_bytes(),
        ]);
    }
    let k = key("zset:longmember");
    add(&[b"ZADD", k.as_bytes(), b"inf", &[b'q'; 80]]);
    let k = key("stream:small");
    add(&[b"XADD", k.as_bytes(), b"1-1", b"f", b"v"]);
    add(&[b"XADD", k.as_bytes(), b"1-2", b"f", b"w", b"g", b"12"]);
    let k = key("stream:big");
    for i in 1..=500 {
        let v = format!("value-{i}");
        if i % 5 == 0 {
            add(&[
                b"XADD",
                k.as_bytes(),
                format!("{i}-0").as_bytes(),
                b"other",
                v.as_bytes(),
            ]);
        } else {
            add(&[
                b"XADD",
                k.as_bytes(),
                format!("{i}-0").as_bytes(),
                b"temp",
                v.as_bytes(),
                b"n",
                b"1",
            ]);
        }
    }
    add(&[b"XDEL", k.as_bytes(), b"3-0", b"250-0"]);
    add(&[b"XGROUP", b"CREATE", k.as_bytes(), b"g1", b"0"]);
    add(&[b"XGROUP", b"CREATE", k.as_bytes(), b"g2", b"$"]);
    add(&[
        b"XREADGROUP",
        b"GROUP",
        b"g1",
        b"alice",
        b"COUNT",
        b"3",
        b"STREAMS",
        k.as_bytes(),
        b">",
    ]);
    add(&[
        b"XREADGROUP",
        b"GROUP",
        b"g1",
        b"bob",
        b"COUNT",
        b"2",
        b"STREAMS",
        k.as_bytes(),
        b">",
    ]);
    add(&[b"XACK", k.as_bytes(), b"g1", b"1-0"]);
    add(&[b"XGROUP", b"CREATECONSUMER", k.as_bytes(), b"g2", b"carol"]);
    let k = key("stream:empty");
    add(&[b"XADD", k.as_bytes(), b"5-5", b"a", b"b"]);
    add(&[b"XDEL", k.as_bytes(), b"5-5"]);
    add(&[b"XGROUP", b"CREATE", k.as_bytes(), b"g", b"$"]);
    for c in &cmds {
        let parts: Vec<&[u8]> = c.iter().map(|p| &p[..]).collect();
        run(r, &parts);
    }
    keys
}

#[test]
fn every_type_round_trips_redis_to_ferrocache_and_back() {
    let Some(mut r) = reference_conn("dump_restore") else {
        return;
    };
    let node = common::node(&[]);
    let mut ours = node.client();
    let prefix = format!("ferro-rdb-{}:", std::process::id());
    let keys = build(&mut r, &prefix);
    let mut identical = 0;
    for key in &keys {
        let theirs = dump(&mut r, key);
        let pttl: i64 = redis::cmd("PTTL").arg(key).query(&mut r).unwrap();
        let ttl = pttl.max(0);
        restore(&mut ours, key, ttl, &theirs);
        assert_eq!(observe(&mut ours, key), observe(&mut r, key), "{key} here");
        if ttl > 0 {
            let here: i64 = redis::cmd("PTTL").arg(key).query(&mut ours).unwrap();
            assert!((here - ttl).abs() < 5_000, "{key}: TTL {here} vs {ttl}");
        }
        let mine = dump(&mut ours, key);
        if mine == theirs {
            identical += 1;
        }
        let back = format!("{key}:back");
        restore(&mut r, &back, 0, &mine);
        assert_eq!(
            observe(&mut r, &back),
            observe(&mut r, key),
            "{key} back on Redis"
        );
    }
    eprintln!(
        "{identical} of {} DUMP payloads byte-identical to Redis's",
        keys.len()
    );
    for key in &keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .arg(format!("{key}:back"))
            .query(&mut r)
            .unwrap();
    }
}

#[test]
fn restore_errors_are_redis_s() {
    let Some(mut r) = common::reference("restore_errors", 13) else {
        return;
    };
    let node = common::node(&[]);
    let mut ours = node.raw();
    let script = common::script(
        r#"
        SET k v
        RESTORE k 0 garbage
        RESTORE nokey 0 garbage
        RESTORE nokey -1 garbage
        RESTORE nokey abc garbage
        RESTORE nokey 0 garbage FREQ 300
        RESTORE nokey 0 garbage IDLETIME -1
        RESTORE nokey 0 garbage BOGUS
        DUMP nokey
        "#,
    );
    common::compare(&mut ours, &mut r, &script);
    // A valid payload whose value is garbage, and a valid one with a lying checksum.
    let mut valid = r.cmd(&[b"DUMP", b"k"]);
    let start = valid.iter().position(|&b| b == b'\n').unwrap() + 1;
    let payload: Vec<u8> = valid.drain(start..valid.len() - 2).collect();
    let mut lying = payload.clone();
    *lying.last_mut().unwrap() ^= 0xff;
    let mut bad_value = vec![0x00, 0x3f];
    bad_value.extend_from_slice(&[10, 0]);
    let crc = cache_rdb::crc64::crc64(&bad_value);
    bad_value.extend_from_slice(&crc.to_le_bytes());
    let cmds: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"k2", b"0", &payload],
        vec![b"RESTORE", b"k3", b"0", &lying],
        vec![b"RESTORE", b"k4", b"0", &bad_value],
        vec![b"RESTORE", b"k2", b"0", &payload],
        vec![b"RESTORE", b"k2", b"0", &payload, b"REPLACE", b"ABSTTL"],
        vec![b"RESTORE", b"k5", b"1", &payload, b"ABSTTL"],
        vec![b"EXISTS", b"k5"],
        vec![b"RESTORE", b"k2", b"1", &payload, b"REPLACE", b"ABSTTL"],
        vec![b"EXISTS", b"k2"],
        vec![b"RESTORE", b"k6", b"0", &payload, b"IDLETIME", b"1000"],
        vec![b"OBJECT", b"IDLETIME", b"k6"],
    ];
    common::compare(&mut ours, &mut r, &cmds);
}
