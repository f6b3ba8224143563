//! Differential tests of the remaining data commands (#13) against the reference Redis
//! (`FERROCACHE_REFERENCE_REDIS`, database 11, keys `ty:*`): the same commands to both, replies
//! (and the stored bytes, read back with GET) compared byte for byte.

mod common;

use std::sync::{Mutex, PoisonError};

use common::{compare, node, reference, words, RawConn};

const DB: u32 = 11;

/// The tests share database 11 of the reference: one at a time, each flushing it first.
static TURN: Mutex<()> = Mutex::new(());

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Both connections (ours, the reference's), or None when the reference is not configured.
fn pair(test: &str) -> Option<(common::NodeProcess, RawConn, RawConn)> {
    let theirs = reference(test, DB)?;
    let node = node(&[]);
    let ours = node.raw();
    Some((node, ours, theirs))
}

fn same(ours: &mut RawConn, theirs: &mut RawConn, cmd: &[&[u8]]) {
    compare(ours, theirs, &[cmd.to_vec()]);
}

fn script(ours: &mut RawConn, theirs: &mut RawConn, text: &str) {
    let lines: Vec<Vec<&[u8]>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(words)
        .collect();
    compare(ours, theirs, &lines);
}

#[test]
fn hyperloglog_bytes_match_redis() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((_node, mut ours, mut theirs)) = pair("hyperloglog_bytes_match_redis") else {
        return;
    };
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // Batches of random sizes through the sparse -> dense switch (about 1000-1500 elements
    // with the default hll-sparse-max-bytes), GET and PFCOUNT after each.
    for key in ["ty:h1", "ty:h2", "ty:h3"] {
        let mut total = 0;
        while total < 4000 {
            let n = 1 + rng.below(if total < 1500 { 20 } else { 400 });
            let elements: Vec<String> = (0..n).map(|_| format!("e{}", rng.below(6000))).collect();
            let mut cmd: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
            cmd.extend(elements.iter().map(|e| e.as_bytes()));
            same(&mut ours, &mut theirs, &cmd);
            same(&mut ours, &mut theirs, &[b"GET", key.as_bytes()]);
            same(&mut ours, &mut theirs, &[b"PFCOUNT", key.as_bytes()]);
            // The cached cardinality is now in the header: the bytes must still agree.
            same(&mut ours, &mut theirs, &[b"GET", key.as_bytes()]);
            total += n;
        }
    }
    // Random merges of sparse and dense values into sparse, dense and new destinations.
    let keys = ["ty:h1", "ty:h2", "ty:h3", "ty:m0", "ty:m1", "ty:m2"];
    for round in 0..60 {
        let small = format!("ty:sp{}", round % 4);
        let n = 1 + rng.below(30);
        let elements: Vec<String> = (0..n).map(|_| format!("s{}", rng.below(100_000))).collect();
        let mut cmd: Vec<&[u8]> = vec![b"PFADD", small.as_bytes()];
        cmd.extend(elements.iter().map(|e| e.as_bytes()));
        same(&mut ours, &mut theirs, &cmd);
        let dst = keys[3 + rng.below(3) as usize];
        let mut merge: Vec<&[u8]> = vec![b"PFMERGE", dst.as_bytes(), small.as_bytes()];
        for _ in 0..rng.below(3) {
            merge.push(keys[rng.below(keys.len() as u64) as usize].as_bytes());
        }
        same(&mut ours, &mut theirs, &merge);
        same(&mut ours, &mut theirs, &[b"GET", dst.as_bytes()]);
        same(
            &mut ours,
            &mut theirs,
            &[b"PFCOUNT", dst.as_bytes(), small.as_bytes()],
        );
    }
    script(
        &mut ours,
        &mut theirs,
        r#"
        PFADD ty:s1 a b c d
        PFADD ty:s2 c d e f
        PFCOUNT ty:s1 ty:s2
        PFCOUNT ty:s1 ty:h1 ty:nosuch
        PFMERGE ty:m1 ty:s1 ty:s2
        GET ty:m1
        PFMERGE ty:m2 ty:s1 ty:h2
        GET ty:m2
        PFMERGE ty:s1 ty:s2
        GET ty:s1
        PFDEBUG ENCODING ty:s1
        PFDEBUG DECODE ty:s1
        PFDEBUG ENCODING ty:h1
        PFDEBUG DECODE ty:h1
        PFDEBUG TODENSE ty:s2
        GET ty:s2
        PFDEBUG TODENSE ty:s2
        PFDEBUG BOGUS ty:s2
        PFDEBUG ENCODING ty:nosuch
        PFADD ty:empty
        GET ty:empty
        PFCOUNT ty:empty
        SET ty:str hello
        PFADD ty:str a
        PFCOUNT ty:str
        PFMERGE ty:str ty:s1
        PFMERGE ty:s1 ty:str
        LPUSH ty:list a
        PFADD ty:list a
        PFCOUNT ty:list ty:s1
        PFADD ty:c a b c
        APPEND ty:c hello
        PFCOUNT ty:c
        PFADD ty:d a b c
        SETRANGE ty:d 4 x
        PFCOUNT ty:d
        PFADD
        PFCOUNT
        "#,
    );
    // A value copied from Redis keeps working here.
    let raw = get_bulk(&mut theirs, b"ty:h3");
    ours.cmd(&[b"SET", b"ty:copy", &raw]);
    theirs.cmd(&[b"SET", b"ty:copy", &raw]);
    script(
        &mut ours,
        &mut theirs,
        "PFADD ty:copy x y z\nGET ty:copy\nPFCOUNT ty:copy",
    );
    theirs.cmd_str(&["FLUSHDB"]);
}

/// The payload of a bulk reply.
fn get_bulk(conn: &mut RawConn, key: &[u8]) -> Vec<u8> {
    let reply = conn.cmd(&[b"GET", key]);
    let header_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a bulk reply");
    reply[header_end + 2..reply.len() - 2].to_vec()
}

#[test]
fn bitop_and_bitfield_match_redis() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((_node, mut ours, mut theirs)) = pair("bitop_and_bitfield_match_redis") else {
        return;
    };
    script(
        &mut ours,
        &mut theirs,
        r#"
        SET ty:a abcdef
        SET ty:b "x y"
        BITOP AND ty:d ty:a ty:b
        GET ty:d
        BITOP OR ty:d ty:a ty:b ty:nosuch
        GET ty:d
        BITOP XOR ty:d ty:a ty:b
        GET ty:d
        BITOP NOT ty:d ty:a
        GET ty:d
        BITOP NOT ty:d ty:a ty:b
        BITOP NAND ty:d ty:a
        BITOP AND ty:d ty:nosuch ty:nosuch2
        EXISTS ty:d
        LPUSH ty:l x
        BITOP OR ty:d ty:a ty:l
        BITFIELD ty:l GET u8 0
        BITFIELD ty:f
        BITFIELD ty:f GET u8 0
        EXISTS ty:f
        BITFIELD ty:f GET u64 0
        BITFIELD ty:f GET i65 0
        BITFIELD ty:f GET i0 0
        BITFIELD ty:f GET x8 0
        BITFIELD ty:f GET u8 -1
        BITFIELD ty:f GET u8 4294967296
        BITFIELD ty:f GET u8 #-1
        BITFIELD ty:f SET u8 0 abc
        BITFIELD ty:f OVERFLOW bogus GET u8 0
        BITFIELD ty:f BOGUS
        BITFIELD ty:f GET u8
        BITFIELD_RO ty:f SET u8 0 1
        BITFIELD_RO ty:f GET u8 0
        BITFIELD ty:f SET i8 #3 -100 GET i8 #3 GET u8 #3 INCRBY i8 #3 -100
        BITFIELD ty:f OVERFLOW SAT INCRBY i8 #3 -100 OVERFLOW FAIL INCRBY i8 #3 -1 GET i8 #3
        BITFIELD ty:f SET u63 5 9223372036854775807 INCRBY u63 5 1 GET i64 5
        BITFIELD ty:f SET i64 100 -9223372036854775808 INCRBY i64 100 -1 OVERFLOW SAT INCRBY i64 100 -1
        GET ty:f
        "#,
    );
    let mut rng = Rng(0xb17f_1e1d_0000_0001);
    let overflows = ["WRAP", "SAT", "FAIL"];
    for _ in 0..300 {
        let mut cmd: Vec<String> = vec!["BITFIELD".into(), "ty:r".into()];
        for _ in 0..1 + rng.below(4) {
            let signed = rng.below(2) == 0;
            let bits = 1 + rng.below(if signed { 64 } else { 63 });
            let ty = format!("{}{bits}", if signed { 'i' } else { 'u' });
            let offset = if rng.below(3) == 0 {
                format!("#{}", rng.below(8))
            } else {
                rng.below(200).to_string()
            };
            let value = (rng.next() as i64 >> rng.below(64)).to_string();
            match rng.below(4) {
                0 => cmd.extend(["GET".into(), ty, offset]),
                1 => cmd.extend(["SET".into(), ty, offset, value]),
                2 => cmd.extend(["INCRBY".into(), ty, offset, value]),
                _ => cmd.extend(["OVERFLOW".into(), overflows[rng.below(3) as usize].into()]),
            }
        }
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        same(&mut ours, &mut theirs, &args);
        same(&mut ours, &mut theirs, &[b"GET", b"ty:r"]);
    }
    same(&mut ours, &mut theirs, &[b"GET", b"ty:r"]);
    theirs.cmd_str(&["FLUSHDB"]);
}

#[test]
fn lcs_matches_redis() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((_node, mut ours, mut theirs)) = pair("lcs_matches_redis") else {
        return;
    };
    script(
        &mut ours,
        &mut theirs,
        r#"
        SET ty:a ohmytext
        SET ty:b mynewtext
        LCS ty:a ty:b
        LCS ty:a ty:b LEN
        LCS ty:a ty:b IDX
        LCS ty:a ty:b IDX MINMATCHLEN 4
        LCS ty:a ty:b IDX MINMATCHLEN -4 WITHMATCHLEN
        LCS ty:a ty:b IDX LEN
        LCS ty:a ty:b MINMATCHLEN x
        LCS ty:a ty:b MINMATCHLEN
        LCS ty:a ty:b BOGUS
        LCS ty:a ty:nosuch
        LCS ty:nosuch ty:nosuch IDX
        LPUSH ty:l x
        LCS ty:a ty:l
        LCS ty:l ty:a BOGUS
        "#,
    );
    let mut rng = Rng(0x1c5_0000_0000_0001);
    for _ in 0..50 {
        let mut word = |n: u64| -> String {
            (0..n)
                .map(|_| (b'a' + rng.below(4) as u8) as char)
                .collect()
        };
        let (a, b) = (word(30), word(40));
        script(
            &mut ours,
            &mut theirs,
            &format!("SET ty:x {a}\nSET ty:y {b}\nLCS ty:x ty:y\nLCS ty:x ty:y IDX WITHMATCHLEN MINMATCHLEN 2"),
        );
    }
    theirs.cmd_str(&["FLUSHDB"]);
}

#[test]
fn sort_matches_redis() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((_node, mut ours, mut theirs)) = pair("sort_matches_redis") else {
        return;
    };
    script(
        &mut ours,
        &mut theirs,
        r#"
        RPUSH ty:l 3 1 2 10 -5 2.5
        SADD ty:s 5 3 9 1
        ZADD ty:z 3 c 1 a 2 b 0 zz
        RPUSH ty:w b a c
        SET ty:w_a 3
        SET ty:w_b 1
        SET ty:w_c 2
        HSET ty:h_a f 30 g x
        HSET ty:h_b f 10 g y
        HSET ty:h_c f 20
        SORT ty:l
        SORT ty:l DESC
        SORT ty:l LIMIT 1 3
        SORT ty:l LIMIT -1 2
        SORT ty:l LIMIT 10 2
        SORT ty:l LIMIT 0 0
        SORT ty:l LIMIT 2 -1
        SORT ty:l LIMIT x 1
        SORT ty:l ALPHA
        SORT ty:l ALPHA DESC LIMIT 0 2
        SORT ty:s
        SORT ty:z
        SORT ty:z ALPHA
        SORT ty:z BY nosort
        SORT ty:z BY nosort DESC LIMIT 1 2
        SORT ty:l BY nosort
        SORT ty:l BY nosort DESC LIMIT 1 2
        SORT ty:w
        SORT ty:w ALPHA
        SORT ty:w BY ty:w_*
        SORT ty:w BY ty:w_* DESC
        SORT ty:w BY ty:w_* GET # GET ty:w_* GET ty:h_*->f GET ty:h_*->g GET ty:nosuch_*
        SORT ty:w BY ty:h_*->f
        SORT ty:w BY ty:h_*->g ALPHA
        SORT ty:w BY ty:h_*->g
        SORT ty:w BY ty:missing_* GET #
        SORT ty:w GET nostar
        SORT ty:w BY ty:w_* STORE ty:out
        LRANGE ty:out 0 -1
        SORT ty:w BY ty:w_* GET ty:h_*->g STORE ty:out
        LRANGE ty:out 0 -1
        SORT ty:s BY nosort STORE ty:out
        LRANGE ty:out 0 -1
        SORT ty:nosuch STORE ty:out
        EXISTS ty:out
        SORT ty:w STORE
        SORT_RO ty:l DESC
        SORT_RO ty:l STORE ty:out
        SORT ty:nosuch
        SET ty:str x
        SORT ty:str
        HSET ty:hash a 1
        SORT ty:hash
        SORT ty:l BOGUS
        SORT ty:l LIMIT 1
        "#,
    );
    let mut rng = Rng(0x5047_0000_0000_0001);
    for i in 0..200 {
        ours.cmd_str(&["DEL", "ty:r"]);
        theirs.cmd_str(&["DEL", "ty:r"]);
        for _ in 0..rng.below(if i % 2 == 0 { 12 } else { 80 }) {
            let v = rng.below(20).to_string();
            script(
                &mut ours,
                &mut theirs,
                &format!("RPUSH ty:r {v}\nSET ty:k_{v} {}", rng.below(5)),
            );
        }
        let mut cmd = String::from("SORT ty:r");
        let by = rng.below(2) == 0;
        let alpha = rng.below(3) == 0;
        if by {
            cmd.push_str(" BY ty:k_*");
        }
        if alpha {
            cmd.push_str(" ALPHA");
        }
        if rng.below(2) == 0 {
            cmd.push_str(" DESC");
        }
        // BY with ALPHA leaves ties equal; with LIMIT Redis orders them with its partial
        // quicksort (pqsort.c), reproduced.
        if rng.below(2) == 0 {
            let (a, b) = (rng.below(8) as i64 - 2, rng.below(8) as i64 - 2);
            cmd.push_str(&format!(" LIMIT {a} {b}"));
        }
        if rng.below(2) == 0 {
            cmd.push_str(" GET # GET ty:k_*");
        }
        if i % 3 == 0 {
            cmd.push_str(" STORE ty:o\nLRANGE ty:o 0 -1");
        }
        script(&mut ours, &mut theirs, &cmd);
    }
    theirs.cmd_str(&["FLUSHDB"]);
}

#[test]
fn geo_matches_redis() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((_node, mut ours, mut theirs)) = pair("geo_matches_redis") else {
        return;
    };
    script(
        &mut ours,
        &mut theirs,
        r#"
        GEOADD ty:g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
        GEOADD ty:g NX 13.361389 38.115556 Palermo 2.349014 48.864716 Paris
        GEOADD ty:g XX CH 13.4 38.2 Palermo 0 0 Nowhere
        GEOADD ty:g NX XX 1 1 a
        GEOADD ty:g 1 1
        GEOADD ty:g 181 0 bad
        GEOADD ty:g 0 86 bad
        GEOADD ty:g x 0 bad
        ZRANGE ty:g 0 -1 WITHSCORES
        GEODIST ty:g Palermo Catania
        GEODIST ty:g Palermo Catania km
        GEODIST ty:g Palermo Catania MI
        GEODIST ty:g Palermo Catania parsec
        GEODIST ty:g Palermo nosuch
        GEODIST ty:nosuch a b
        GEODIST ty:g Palermo Catania km extra
        GEOHASH ty:g Palermo Catania nosuch
        GEOHASH ty:nosuch a
        GEOPOS ty:g Palermo nosuch Paris
        GEOPOS ty:nosuch a
        GEOSEARCH ty:g FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHCOORD WITHDIST WITHHASH
        GEOSEARCH ty:g FROMMEMBER Palermo BYBOX 400 400 km DESC WITHDIST
        GEOSEARCH ty:g FROMMEMBER Palermo BYRADIUS 2000 km COUNT 2 WITHDIST
        GEOSEARCH ty:g FROMMEMBER Palermo BYRADIUS 2000 km COUNT 0
        GEOSEARCH ty:g FROMMEMBER nosuch BYRADIUS 20 km
        GEOSEARCH ty:g BYRADIUS 20 km
        GEOSEARCH ty:g FROMMEMBER Palermo
        GEOSEARCH ty:g FROMMEMBER Palermo FROMLONLAT 1 1 BYRADIUS 1 km
        GEOSEARCH ty:g FROMLONLAT 15 37 BYRADIUS -1 km
        GEOSEARCH ty:g FROMLONLAT 15 37 BYRADIUS x km
        GEOSEARCH ty:g FROMLONLAT 15 37 BYBOX 1 -1 km
        GEOSEARCH ty:g FROMLONLAT 15 37 BYRADIUS 1 km ANY
        GEOSEARCH ty:nosuch FROMLONLAT 15 37 BYRADIUS 1 km
        GEOSEARCHSTORE ty:dst ty:g FROMLONLAT 15 37 BYRADIUS 2000 km STOREDIST
        ZRANGE ty:dst 0 -1 WITHSCORES
        GEOSEARCHSTORE ty:dst ty:g FROMLONLAT 15 37 BYRADIUS 2000 km COUNT 1
        ZRANGE ty:dst 0 -1 WITHSCORES
        GEOSEARCHSTORE ty:dst ty:g FROMLONLAT 15 37 BYRADIUS 2000 km WITHDIST
        GEOSEARCHSTORE ty:dst ty:nosuch FROMLONLAT 15 37 BYRADIUS 2000 km
        EXISTS ty:dst
        GEORADIUS ty:g 15 37 200 km WITHDIST ASC
        GEORADIUS ty:g 15 37 2000 km STORE ty:dst2
        ZRANGE ty:dst2 0 -1 WITHSCORES
        GEORADIUS ty:g 15 37 2000 km STORE ty:dst2 WITHDIST
        GEORADIUS_RO ty:g 15 37 2000 km STORE ty:dst2
        GEORADIUSBYMEMBER ty:g Palermo 200 km WITHCOORD ASC
        GEORADIUSBYMEMBER ty:g nosuch 200 km
        GEORADIUSBYMEMBER ty:nosuch nosuch 200 km
        GEORADIUSBYMEMBER_RO ty:g Palermo 200 km DESC COUNT 1
        SET ty:str x
        GEOADD ty:str 1 1 a
        GEOPOS ty:str a
        GEOSEARCH ty:str FROMLONLAT 1 1 BYRADIUS 1 km
        "#,
    );
    let mut rng = Rng(0x6e0_0000_0000_0001);
    for i in 0..300 {
        let lon = rng.below(360_000_000) as f64 / 1e6 - 180.0;
        let lat = rng.below(170_000_000) as f64 / 1e6 - 85.0;
        script(
            &mut ours,
            &mut theirs,
            &format!("GEOADD ty:w {lon} {lat} p{i}"),
        );
    }
    script(&mut ours, &mut theirs, "ZRANGE ty:w 0 -1 WITHSCORES");
    for _ in 0..100 {
        let lon = rng.below(360_000_000) as f64 / 1e6 - 180.0;
        let lat = rng.below(170_000_000) as f64 / 1e6 - 85.0;
        let r = 1 + rng.below(3000);
        let (w, h) = (1 + rng.below(4000), 1 + rng.below(4000));
        script(
            &mut ours,
            &mut theirs,
            &format!(
                "GEOSEARCH ty:w FROMLONLAT {lon} {lat} BYRADIUS {r} km ASC WITHDIST WITHCOORD WITHHASH\n\
                 GEOSEARCH ty:w FROMLONLAT {lon} {lat} BYBOX {w} {h} km DESC WITHDIST\n\
                 GEOSEARCH ty:w FROMMEMBER p{} BYRADIUS {r} mi COUNT 3 WITHDIST\n\
                 GEODIST ty:w p{} p{} ft\n\
                 GEOPOS ty:w p{}\n\
                 GEOHASH ty:w p{}",
                rng.below(300),
                rng.below(300),
                rng.below(300),
                rng.below(300),
                rng.below(300)
            ),
        );
    }
    theirs.cmd_str(&["FLUSHDB"]);
}

#[test]
fn memory_and_latency_doctor() {
    // Sizes are this node's own estimates: checked for shape here, errors against Redis.
    let node = node(&[]);
    let mut ours = node.raw();
    ours.cmd_str(&["SET", "k", &"v".repeat(100)]);
    let usage = String::from_utf8(ours.cmd_str(&["MEMORY", "USAGE", "k"])).expect("text");
    let bytes: i64 = usage
        .trim_start_matches(':')
        .trim_end()
        .parse()
        .expect("an integer reply");
    assert!(bytes > 100, "{usage}");
    let stats = String::from_utf8_lossy(&ours.cmd_str(&["MEMORY", "STATS"])).into_owned();
    assert!(stats.starts_with("*56\r\n"), "27 fields and db.0: {stats}");
    assert!(stats.contains("keys.count\r\n:1\r\n"), "{stats}");
    let doctor = ours.cmd_str(&["LATENCY", "DOCTOR"]);
    assert!(
        String::from_utf8_lossy(&doctor).contains("Latency monitoring is disabled"),
        "{doctor:?}"
    );
    ours.cmd_str(&["CONFIG", "SET", "latency-monitor-threshold", "100"]);
    let doctor = ours.cmd_str(&["LATENCY", "DOCTOR"]);
    assert!(
        String::from_utf8_lossy(&doctor).contains("no latency spike was observed"),
        "{doctor:?}"
    );
    // LATENCY HISTOGRAM: per command calls and cumulative bucket counts; a container stands
    // for its subcommands, unknown names are skipped.
    ours.cmd_str(&["CONFIG", "RESETSTAT"]);
    ours.cmd_str(&["SET", "a", "b"]);
    ours.cmd_str(&["SET", "a", "c"]);
    ours.cmd_str(&["CLIENT", "ID"]);
    let h = String::from_utf8_lossy(&ours.cmd_str(&[
        "LATENCY",
        "HISTOGRAM",
        "set",
        "client",
        "nosuch",
    ]))
    .into_owned();
    assert!(
        h.starts_with("*4\r\n$9\r\nclient|id\r\n*4\r\n$5\r\ncalls\r\n:1\r\n"),
        "{h}"
    );
    assert!(
        h.contains("$3\r\nset\r\n*4\r\n$5\r\ncalls\r\n:2\r\n$14\r\nhistogram_usec"),
        "{h}"
    );
    assert_eq!(ours.cmd_str(&["LATENCY", "HISTOGRAM", "nosuch"]), b"*0\r\n");
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut theirs) = reference("memory_and_latency_doctor", DB) else {
        return;
    };
    script(
        &mut ours,
        &mut theirs,
        r#"
        MEMORY USAGE ty:nosuch
        MEMORY USAGE ty:nosuch SAMPLES -1
        MEMORY USAGE ty:nosuch SAMPLES x
        MEMORY USAGE ty:nosuch BOGUS
        MEMORY USAGE
        MEMORY BOGUS
        MEMORY PURGE
        LATENCY DOCTOR extra
        "#,
    );
}
