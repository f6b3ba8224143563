//! Seeded random differential test: random command sequences over every data type (wrong
//! types and bad arguments included) go to cache-node and to the reference Redis
//! (`FERROCACHE_REFERENCE_REDIS`), and every reply is compared.
//!
//! ```text
//!  seed ──► Rng ──► Gen (10 shared keys, small alphabets) ──► Op { args, Cmp }
//!                                                            │
//!                      cache-node (db 13) ◄── same bytes ──► Redis 7.0 (db 13)
//!                                   └── parse ► normalise (Cmp) ► assert_eq ──┘
//! ```
//!
//! Replies are compared byte for byte after parsing, except where Redis leaves the order (or
//! the value) unspecified: set members and set-operation results are compared as multisets,
//! TTLs by class (-2, -1, or "has one"), random picks (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER,
//! RANDOMKEY) by shape only. Small hashes keep Redis's insertion order, so HKEYS/HVALS/HGETALL
//! are compared exactly. About 2% of the steps are MULTI ... EXEC (or DISCARD) batches.
//!
//! Left out on purpose, each with a comment where the generator avoids it:
//! - SPOP, the SCAN family, OBJECT and blocking commands (random, cursor-based or timed);
//! - lex ranges over sorted sets whose scores differ (Redis: unspecified): the reference is
//!   asked first and such an operation is skipped (and counted);
//! - INCRBYFLOAT/HINCRBYFLOAT on non-dyadic decimals or values near 2^63: Redis adds in 80-bit
//!   long double, we in f64 (so APPEND/SETRANGE write letters, increments are exact in binary);
//! - SET with an absolute time already past: Redis keeps the key until it is touched and
//!   DBSIZE counts it meanwhile; we drop it at once.
//!
//! Knobs: `FERROCACHE_DIFF_SEED` replays a run (the seed is printed at the start and in every
//! failure), `FERROCACHE_DIFF_OPS` sets the number of operations (default 3000). A run also
//! stops after 20 seconds of wall-clock time.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{node, reference, RawConn};

const DB: &str = "13";
const DEFAULT_OPS: usize = 3000;
const TIME_CAP: Duration = Duration::from_secs(20);
/// How many of the latest commands a failure message lists (a script to replay by hand).
const HISTORY: usize = 40;

/// Shared by every family: each family prefers two of them (strings k0,k1, hashes k2,k3,
/// lists k4,k5, sets k6,k7, sorted sets k8,k9, streams k10,k11) but picks any key at times,
/// so WRONGTYPE and cross-type RENAME/COPY happen often, and valid operations more often.
const KEYS: [&str; 12] = [
    "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11",
];
/// Stream IDs: small, so explicit and `ms-*` IDs collide with the top item often.
const STREAM_IDS: &[&str] = &["1", "2-1", "3", "5-*", "7", "9-*", "12", "0-1", "15-*"];
const STREAM_BOUNDS: &[&str] = &["-", "+", "0", "2", "(2-1", "5", "(7", "9-0", "20", "(0-0"];
const GROUPS: &[&str] = &["g1", "g2"];
const CONSUMERS: &[&str] = &["alice", "bob"];
const VALUES: &[&str] = &["a", "b", "c", "1", "2", "10", "-3", "1.5", "abc", ""];
const LETTERS: &[&str] = &["a", "b", "xyz", ""];
const FIELDS: &[&str] = &["f1", "f2", "f3", "f4", "f5"];
const MEMBERS: &[&str] = &["a", "b", "c", "d", "e", "1", "2"];
const SCORES: &[&str] = &["0", "0", "1", "2", "3", "-1", "1.5", "2.5", "-inf", "+inf"];
const SCORE_BOUNDS: &[&str] = &[
    "-inf", "+inf", "0", "1", "(1", "2", "(2", "1.5", "(1.5", "3", "(3", "-1", "(-inf", "(+inf",
];
const LEX_BOUNDS: &[&str] = &[
    "-", "+", "[a", "(a", "[c", "(c", "[e", "(e", "[1", "(2", "[", "(", "[b", "(d",
];
/// Float increments: exact in binary, so Redis's long double and our f64 agree. (Increments
/// like 0.1 are not generated: Redis's INCRBYFLOAT/HINCRBYFLOAT compute in 80-bit long double
/// and print `%.17Lg`, so 0.1+0.2 is "0.3" there and "0.30000000000000004" in f64.)
const FLOAT_INCRS: &[&str] = &["1.5", "-0.25", "2", "0.5", "-3", "1e2", "+inf", "x", "0x10"];
const WEIGHTS: &[&str] = &["1", "2", "0", "-1", "0.5", "inf"];

/// splitmix64: small, seedable, good enough to drive a generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Inclusive range.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }
}

/// How two replies are compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cmp {
    Exact,
    /// Top-level array elements as a multiset (SMEMBERS, SINTER, ...).
    Unordered,
    /// TTL/PTTL/EXPIRETIME: -2, -1, or any non-negative value.
    TtlClass,
    /// Random picks: same kinds and lengths, contents ignored.
    Shape,
}

struct Op {
    args: Vec<String>,
    cmp: Cmp,
    /// A lex-range command on this key: only meaningful (and only run) while every member has
    /// the same score, as Redis documents the result as unspecified otherwise.
    lex_key: Option<String>,
}

/// A parsed RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Resp {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

/// Parses one RESP2 reply from the start of `buf`; returns it and the bytes it took.
fn parse(buf: &[u8]) -> (Resp, usize) {
    let end = buf.windows(2).position(|w| w == b"\r\n").expect("line end");
    let line = &buf[1..end];
    let rest = end + 2;
    let int = || -> i64 {
        std::str::from_utf8(line)
            .expect("utf8 header")
            .parse()
            .expect("integer header")
    };
    match buf[0] {
        b'+' => (Resp::Simple(line.to_vec()), rest),
        b'-' => (Resp::Error(line.to_vec()), rest),
        b':' => (Resp::Int(int()), rest),
        b'$' => {
            let n = int();
            if n < 0 {
                return (Resp::Bulk(None), rest);
            }
            let n = n as usize;
            (Resp::Bulk(Some(buf[rest..rest + n].to_vec())), rest + n + 2)
        }
        b'*' => {
            let n = int();
            if n < 0 {
                return (Resp::Array(None), rest);
            }
            let mut pos = rest;
            let mut items = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let (item, used) = parse(&buf[pos..]);
                items.push(item);
                pos += used;
            }
            (Resp::Array(Some(items)), pos)
        }
        other => panic!("unexpected RESP type byte {:?}", other as char),
    }
}

fn shape(r: Resp) -> Resp {
    match r {
        Resp::Bulk(Some(_)) => Resp::Bulk(Some(Vec::new())),
        Resp::Array(Some(items)) => Resp::Array(Some(items.into_iter().map(shape).collect())),
        other => other,
    }
}

fn normalise(r: Resp, cmp: Cmp) -> Resp {
    match (cmp, r) {
        (Cmp::Unordered, Resp::Array(Some(mut items))) => {
            items.sort();
            Resp::Array(Some(items))
        }
        (Cmp::TtlClass, Resp::Int(n)) if n >= 0 => Resp::Int(0),
        (Cmp::Shape, r) => shape(r),
        (_, r) => r,
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

/// A command as a line of a `differential.rs` script.
fn script_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Gen {
    rng: Rng,
}

impl Gen {
    /// A key, usually one of the family's two (see [`KEYS`]).
    fn key(&mut self, family: usize) -> String {
        let own = match family {
            0..=4 => Some(2 * family),
            6 => Some(10),
            _ => None,
        };
        if let Some(first) = own.filter(|_| self.rng.chance(85)) {
            s(KEYS[first + self.rng.below(2)])
        } else {
            s(KEYS[self.rng.below(KEYS.len())])
        }
    }

    fn val(&mut self) -> String {
        s(self.rng.pick(VALUES))
    }

    fn index(&mut self) -> String {
        if self.rng.chance(5) {
            s(self.rng.pick(&["100", "-100", "9223372036854775807", "x"]))
        } else {
            s(self.rng.int(-4, 6))
        }
    }

    fn ttl(&mut self) -> String {
        // Large and spread out: nothing expires during a run, and GT/LT never compare equal.
        s(1000 + self.rng.below(10_000_000))
    }

    /// A GETEX EXAT/PXAT value: usually far ahead (in seconds; after PXAT that is a time in
    /// 1970, which deletes the key), sometimes in the past.
    fn unix_time(&mut self) -> String {
        if self.rng.chance(20) {
            s(self.rng.pick(&["1", "0", "-1"]))
        } else {
            s(4_000_000_000u64 + self.rng.below(1_000_000) as u64)
        }
    }

    fn op(&mut self) -> Op {
        let family = self.rng.below(7);
        let mut op = match family {
            6 => self.streams(),
            0 => self.strings(),
            1 => self.hashes(),
            2 => self.lists(),
            3 => self.sets(),
            4 => self.zsets(),
            _ => self.keyspace(),
        };
        if self.rng.chance(3) {
            self.spoil(&mut op.args);
        }
        op
    }

    /// Bad arguments at a low rate: drop the last one (wrong arity or a dangling option),
    /// replace one with junk (not an integer, not a float, unknown option) or add one.
    fn spoil(&mut self, args: &mut Vec<String>) {
        let junk = s(self.rng.pick(&["x", "", "1.5x", "BOGUS", "-"]));
        match self.rng.below(3) {
            // (An empty request gets no reply at all; keep the name.)
            0 if args.len() > 1 => {
                args.pop();
            }
            1 if args.len() > 2 => {
                let i = 2 + self.rng.below(args.len() - 2);
                args[i] = junk;
            }
            _ => args.push(junk),
        }
    }

    fn exact(args: Vec<String>) -> Op {
        Op {
            args,
            cmp: Cmp::Exact,
            lex_key: None,
        }
    }

    fn with(args: Vec<String>, cmp: Cmp) -> Op {
        Op {
            args,
            cmp,
            lex_key: None,
        }
    }

    fn strings(&mut self) -> Op {
        let k = self.key(0);
        let r = &mut self.rng;
        let a = match r.below(21) {
            0 | 1 => {
                let mut a = vec![s("SET"), k, self.val()];
                let r = &mut self.rng;
                if r.chance(20) {
                    a.push(s(r.pick(&["NX", "XX"])));
                }
                if r.chance(20) {
                    a.push(s("GET"));
                }
                match r.below(8) {
                    0 => a.extend([s("EX"), self.ttl()]),
                    1 => a.extend([s("PX"), s(self.ttl() + "000")]),
                    2 => a.push(s("KEEPTTL")),
                    // Only future times here: SET with a time already past leaves an expired
                    // key that Redis reclaims lazily (DBSIZE still counts it), where we delete
                    // it at once. (GETEX and EXPIREAT delete at once in Redis too.)
                    3 => {
                        let at = s(4_000_000_000u64 + self.rng.below(1_000_000) as u64);
                        if self.rng.chance(50) {
                            a.extend([s("EXAT"), at]);
                        } else {
                            a.extend([s("PXAT"), at + "000"]);
                        }
                    }
                    _ => {}
                }
                a
            }
            2 => vec![s("GET"), k],
            3 => vec![s(r.pick(&["INCR", "DECR"])), k],
            4 => vec![
                s(r.pick(&["INCRBY", "DECRBY"])),
                k,
                // No huge deltas: a value near 2^63 would then meet INCRBYFLOAT, where Redis
                // adds in 80-bit long double and we in f64 (a documented precision difference;
                // overflow is covered by the scripts in differential.rs).
                s(r.pick(&["1", "5", "-7", "0", "x", "1000"])),
            ],
            // APPEND and SETRANGE write letters only: digits would make decimals like "1.52",
            // which INCRBYFLOAT rounds differently in Redis's 80-bit long double than in f64
            // (a known, documented precision difference). Dyadic values agree exactly.
            5 => vec![s("APPEND"), k, s(r.pick(LETTERS))],
            6 => vec![s("GETRANGE"), k, self.index(), self.index()],
            7 => vec![s("SETRANGE"), k, s(r.int(0, 6)), s(r.pick(LETTERS))],
            8 => vec![s("STRLEN"), k],
            9 => vec![s("GETDEL"), k],
            10 => {
                let (k2, v1, v2) = (self.key(0), self.val(), self.val());
                vec![s("MSET"), k, v1, k2, v2]
            }
            11 => vec![s("MGET"), k, self.key(0), self.key(0)],
            12 => vec![s("INCRBYFLOAT"), k, s(r.pick(FLOAT_INCRS))],
            13 => vec![s(r.pick(&["SETNX", "GETSET"])), k, self.val()],
            14 => {
                let mut a = vec![s("GETEX"), k];
                match self.rng.below(4) {
                    0 => a.extend([s("EX"), self.ttl()]),
                    1 => a.push(s("PERSIST")),
                    2 => {
                        let at = self.unix_time();
                        a.extend([s(self.rng.pick(&["EXAT", "PXAT"])), at]);
                    }
                    _ => {}
                }
                a
            }
            15 => {
                let (ttl, v) = (self.ttl(), self.val());
                if self.rng.chance(50) {
                    vec![s("SETEX"), k, ttl, v]
                } else {
                    vec![s("PSETEX"), k, ttl + "000", v]
                }
            }
            17 => vec![s("SETBIT"), k, s(r.int(0, 40)), s(r.pick(&["0", "1", "1"]))],
            18 => vec![s("GETBIT"), k, s(r.int(0, 48))],
            19 => {
                let mut a = vec![s("BITCOUNT"), k];
                if self.rng.chance(60) {
                    a.extend([self.index(), self.index()]);
                    if self.rng.chance(40) {
                        a.push(s(self.rng.pick(&["BYTE", "BIT"])));
                    }
                }
                a
            }
            20 => {
                let mut a = vec![s("BITPOS"), k, s(r.pick(&["0", "1"]))];
                let n = self.rng.below(4);
                if n >= 1 {
                    a.push(self.index());
                }
                if n >= 2 {
                    a.push(self.index());
                }
                if n >= 3 {
                    a.push(s(self.rng.pick(&["BYTE", "BIT"])));
                }
                a
            }
            _ => {
                let (k2, v1, v2) = (self.key(0), self.val(), self.val());
                vec![s("MSETNX"), k, v1, k2, v2]
            }
        };
        Self::exact(a)
    }

    /// Stream commands with explicit IDs (`*` would differ); none that report times
    /// (XPENDING's extended form, XINFO CONSUMERS) or block.
    fn streams(&mut self) -> Op {
        let k = self.key(6);
        let g = s(self.rng.pick(GROUPS));
        let c = s(self.rng.pick(CONSUMERS));
        let r = &mut self.rng;
        let id = s(r.pick(STREAM_IDS));
        let bound = |r: &mut Rng| s(r.pick(STREAM_BOUNDS));
        let a = match r.below(20) {
            0..=3 => {
                let mut a = vec![s("XADD"), k];
                if r.chance(10) {
                    a.push(s("NOMKSTREAM"));
                }
                if r.chance(25) {
                    let (what, arg) = if r.chance(50) {
                        ("MAXLEN", s(r.int(0, 4)))
                    } else {
                        ("MINID", bound(r))
                    };
                    a.extend([s(what), s(r.pick(&["=", "~", "="])), arg]);
                }
                a.extend([id, s(r.pick(FIELDS)), s(r.pick(VALUES))]);
                if r.chance(30) {
                    a.extend([s(r.pick(FIELDS)), s(r.pick(VALUES))]);
                }
                a
            }
            4 => vec![s("XLEN"), k],
            5 => vec![
                s("XRANGE"),
                k,
                bound(r),
                bound(r),
                s("COUNT"),
                s(r.int(-1, 4)),
            ],
            6 => vec![s("XREVRANGE"), k, bound(r), bound(r)],
            7 => vec![s("XDEL"), k, bound(r), id],
            8 => {
                let (what, arg) = if r.chance(50) {
                    ("MAXLEN", s(r.int(0, 4)))
                } else {
                    ("MINID", bound(r))
                };
                vec![s("XTRIM"), k, s(what), arg]
            }
            9 => {
                let mut a = vec![s("XGROUP"), s("CREATE"), k, g, s(r.pick(&["$", "0", "3"]))];
                if r.chance(50) {
                    a.push(s("MKSTREAM"));
                }
                a
            }
            10 => match r.below(4) {
                0 => vec![s("XGROUP"), s("DESTROY"), k, g],
                1 => vec![s("XGROUP"), s("CREATECONSUMER"), k, g, c],
                2 => vec![s("XGROUP"), s("DELCONSUMER"), k, g, c],
                _ => vec![s("XGROUP"), s("SETID"), k, g, s(r.pick(&["$", "0", "5"]))],
            },
            11..=13 => {
                let mut a = vec![s("XREADGROUP"), s("GROUP"), g, c];
                if r.chance(40) {
                    a.extend([s("COUNT"), s(r.int(0, 3))]);
                }
                if r.chance(15) {
                    a.push(s("NOACK"));
                }
                a.extend([s("STREAMS"), k, s(r.pick(&[">", ">", "0", "5"]))]);
                a
            }
            14 => vec![s("XACK"), k, g, bound(r), id],
            15 => vec![s("XPENDING"), k, g],
            16 => vec![s("XCLAIM"), k, g, c, s("0"), bound(r), id, s("JUSTID")],
            17 => vec![
                s("XAUTOCLAIM"),
                k,
                g,
                c,
                s("0"),
                bound(r),
                s("COUNT"),
                s(r.int(1, 3)),
            ],
            18 => vec![
                s("XREAD"),
                s("COUNT"),
                s(r.int(1, 3)),
                s("STREAMS"),
                k,
                bound(r),
            ],
            _ => match r.below(3) {
                0 => vec![s("XINFO"), s("GROUPS"), k],
                1 => vec![s("XINFO"), s("STREAM"), k],
                _ => vec![s("XSETID"), k, s(r.pick(&["9", "20", "1"]))],
            },
        };
        Self::exact(a)
    }

    fn keyspace(&mut self) -> Op {
        let k = self.key(5);
        let k2 = self.key(5);
        let r = &mut self.rng;
        match r.below(15) {
            // Deletes often enough that keys taken over by another type come back.
            0 | 13 | 14 => Self::exact(vec![s(r.pick(&["DEL", "UNLINK"])), k, k2]),
            1 => Self::exact(vec![s("EXISTS"), k, k2, s("k0")]),
            2 => Self::exact(vec![s("TYPE"), k]),
            3 => Self::exact(vec![s(r.pick(&["RENAME", "RENAMENX"])), k, k2]),
            4 => {
                let mut a = vec![s("COPY"), k, k2];
                if r.chance(50) {
                    a.push(s("REPLACE"));
                }
                Self::exact(a)
            }
            5 | 6 => {
                let ms = r.chance(30);
                let mut ttl = self.ttl();
                if ms {
                    ttl += "000";
                }
                let r = &mut self.rng;
                let mut a = vec![s(if ms { "PEXPIRE" } else { "EXPIRE" }), k, ttl];
                if r.chance(40) {
                    a.push(s(r.pick(&["NX", "XX", "GT", "LT"])));
                }
                Self::exact(a)
            }
            7 => {
                // A timestamp in the past deletes the key; one far ahead sets a TTL.
                let at = if r.chance(30) {
                    s(1)
                } else {
                    s(4_000_000_000u64 + r.below(1_000_000) as u64)
                };
                Self::exact(vec![s("EXPIREAT"), k, at])
            }
            8 => Self::exact(vec![s("PERSIST"), k]),
            9 => Self::with(
                vec![s(r.pick(&["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"])), k],
                Cmp::TtlClass,
            ),
            10 => Self::exact(vec![s("DBSIZE")]),
            11 => Self::with(vec![s("RANDOMKEY")], Cmp::Shape),
            _ => Self::exact(vec![s("TYPE"), k]),
        }
    }

    fn hashes(&mut self) -> Op {
        let k = self.key(1);
        let r = &mut self.rng;
        let f = s(r.pick(FIELDS));
        let a = match r.below(16) {
            0..=2 => {
                let mut a = vec![s(r.pick(&["HSET", "HSET", "HMSET"])), k, f, self.val()];
                if self.rng.chance(40) {
                    a.extend([s(self.rng.pick(FIELDS)), self.val()]);
                }
                a
            }
            3 => vec![s("HSETNX"), k, f, self.val()],
            4 => vec![s("HGET"), k, f],
            5 => vec![s("HMGET"), k, f, s(r.pick(FIELDS)), s(r.pick(FIELDS))],
            6 => vec![s("HDEL"), k, f, s(r.pick(FIELDS))],
            7 => vec![s("HLEN"), k],
            8 => vec![s("HEXISTS"), k, f],
            9 => vec![
                s("HINCRBY"),
                k,
                f,
                s(r.pick(&["1", "3", "-2", "x", "1000"])),
            ],
            10 => vec![s("HINCRBYFLOAT"), k, f, s(r.pick(FLOAT_INCRS))],
            11 => vec![s("HSTRLEN"), k, f],
            12 => vec![s("HKEYS"), k],
            13 => vec![s("HVALS"), k],
            14 => vec![s("HGETALL"), k],
            _ => {
                let mut a = vec![s("HRANDFIELD"), k];
                if r.chance(70) {
                    a.push(s(r.int(-4, 7)));
                    if r.chance(50) {
                        a.push(s("WITHVALUES"));
                    }
                }
                return Self::with(a, Cmp::Shape);
            }
        };
        Self::exact(a)
    }

    fn side(&mut self) -> String {
        s(self.rng.pick(&["LEFT", "RIGHT"]))
    }

    fn lists(&mut self) -> Op {
        let k = self.key(2);
        let r = &mut self.rng;
        let a = match r.below(18) {
            0..=2 => {
                let mut a = vec![s(r.pick(&["LPUSH", "RPUSH"])), k];
                let n = 1 + self.rng.below(3);
                for _ in 0..n {
                    a.push(self.val());
                }
                a
            }
            3 => vec![s(r.pick(&["LPUSHX", "RPUSHX"])), k, self.val()],
            4 | 5 => {
                let mut a = vec![s(r.pick(&["LPOP", "RPOP"])), k];
                if r.chance(40) {
                    a.push(s(r.int(-1, 4)));
                }
                a
            }
            6 => vec![s("LLEN"), k],
            7 => vec![s("LRANGE"), k, self.index(), self.index()],
            8 => vec![s("LINDEX"), k, self.index()],
            9 => vec![s("LSET"), k, self.index(), self.val()],
            10 => vec![s("LREM"), k, s(r.int(-2, 2)), self.val()],
            11 => {
                // Mostly keeps most of the list.
                let start = s(self.rng.int(-1, 1));
                let end = s(self.rng.pick(&["-1", "-2", "5", "0", "10"]));
                vec![s("LTRIM"), k, start, end]
            }
            12 => vec![
                s("LINSERT"),
                k,
                s(r.pick(&["BEFORE", "AFTER"])),
                self.val(),
                self.val(),
            ],
            13 => {
                let mut a = vec![s("LPOS"), k, self.val()];
                let r = &mut self.rng;
                if r.chance(40) {
                    a.extend([s("RANK"), s(r.pick(&["1", "2", "-1", "-2", "0"]))]);
                }
                if r.chance(40) {
                    a.extend([s("COUNT"), s(r.int(-1, 3))]);
                }
                if r.chance(30) {
                    a.extend([s("MAXLEN"), s(r.int(-1, 4))]);
                }
                a
            }
            14 => {
                let k2 = self.key(2);
                vec![s("LMOVE"), k, k2, self.side(), self.side()]
            }
            15 => vec![s("RPOPLPUSH"), k, self.key(2)],
            16 => {
                let n = 1 + self.rng.below(2);
                let mut a = vec![s("LMPOP"), s(n), k];
                if n == 2 {
                    a.push(self.key(2));
                }
                a.push(self.side());
                if self.rng.chance(50) {
                    a.extend([s("COUNT"), s(self.rng.int(0, 3))]);
                }
                a
            }
            _ => vec![s("LRANGE"), k, s("0"), s("-1")],
        };
        Self::exact(a)
    }

    fn members(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| s(self.rng.pick(MEMBERS))).collect()
    }

    fn keys(&mut self, family: usize, n: usize) -> Vec<String> {
        (0..n).map(|_| self.key(family)).collect()
    }

    fn sets(&mut self) -> Op {
        let k = self.key(3);
        let r = &mut self.rng;
        let choice = r.below(14);
        let n = 1 + r.below(3);
        match choice {
            0..=2 => {
                let mut a = vec![s("SADD"), k];
                a.extend(self.members(n));
                Self::exact(a)
            }
            3 => {
                let mut a = vec![s("SREM"), k];
                a.extend(self.members(n));
                Self::exact(a)
            }
            4 => Self::exact(vec![s("SISMEMBER"), k, s(r.pick(MEMBERS))]),
            5 => {
                let mut a = vec![s("SMISMEMBER"), k];
                a.extend(self.members(n));
                Self::exact(a)
            }
            6 => Self::exact(vec![s("SCARD"), k]),
            7 => Self::with(vec![s("SMEMBERS"), k], Cmp::Unordered),
            8 => {
                let mut a = vec![s(r.pick(&["SINTER", "SUNION", "SDIFF"])), k];
                a.extend(self.keys(3, n));
                Self::with(a, Cmp::Unordered)
            }
            9 => {
                let mut a = vec![s(r.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])), k];
                a.extend(self.keys(3, n));
                Self::exact(a)
            }
            10 => {
                let mut a = vec![s("SINTERCARD"), s(n)];
                a.extend(self.keys(3, n));
                if self.rng.chance(40) {
                    a.extend([s("LIMIT"), s(self.rng.int(-1, 3))]);
                }
                Self::exact(a)
            }
            11 => {
                let (k2, m) = (self.key(3), s(self.rng.pick(MEMBERS)));
                Self::exact(vec![s("SMOVE"), k, k2, m])
            }
            12 => {
                let mut a = vec![s("SRANDMEMBER"), k];
                if r.chance(70) {
                    a.push(s(r.int(-4, 9)));
                }
                Self::with(a, Cmp::Shape)
            }
            _ => Self::with(vec![s("SMEMBERS"), k], Cmp::Unordered),
        }
    }

    fn score(&mut self) -> String {
        if self.rng.chance(2) {
            s(self.rng.pick(&["nan", "x", "(1"]))
        } else if self.rng.chance(4) {
            // Formatting and parsing corners: %.17g output, hex and out-of-range input.
            s(self.rng.pick(&[
                "0.1",
                "1e300",
                "-2.5e-7",
                "123456789.123456789",
                "3.0",
                "0x10",
                "1e400",
                "-0",
                "+1",
                ".5",
                "5.",
                " 1",
            ]))
        } else {
            s(self.rng.pick(SCORES))
        }
    }

    fn sbound(&mut self) -> String {
        s(self.rng.pick(SCORE_BOUNDS))
    }

    fn lbound(&mut self) -> String {
        if self.rng.chance(3) {
            s("a")
        } else {
            s(self.rng.pick(LEX_BOUNDS))
        }
    }

    fn limit(&mut self, a: &mut Vec<String>) {
        a.extend([s("LIMIT"), s(self.rng.int(-1, 3)), s(self.rng.int(-1, 3))]);
    }

    /// `ZRANGE`'s grammar after the key: range, BYSCORE/BYLEX, REV, LIMIT, WITHSCORES.
    /// Returns the arguments and whether it is a lex range.
    fn zrange_tail(&mut self, store: bool) -> (Vec<String>, bool) {
        let by = self.rng.below(3);
        let rev = self.rng.chance(30);
        let (lo, hi) = match by {
            0 => (self.index(), self.index()),
            1 => (self.sbound(), self.sbound()),
            _ => (self.lbound(), self.lbound()),
        };
        let mut a = vec![lo, hi];
        match by {
            1 => a.push(s("BYSCORE")),
            2 => a.push(s("BYLEX")),
            _ => {}
        }
        if rev {
            a.push(s("REV"));
        }
        // LIMIT with a rank range is an error; keep it rare there.
        if (by != 0 && self.rng.chance(40)) || self.rng.chance(3) {
            self.limit(&mut a);
        }
        if !store && self.rng.chance(40) {
            a.push(s("WITHSCORES"));
        }
        (a, by == 2)
    }

    fn zsets(&mut self) -> Op {
        let k = self.key(4);
        let r = &mut self.rng;
        let choice = r.below(30);
        let mut lex_key = None;
        let mut cmp = Cmp::Exact;
        let a = match choice {
            0..=3 => {
                let mut a = vec![s("ZADD"), k];
                let r = &mut self.rng;
                if r.chance(35) {
                    for opt in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                        if r.chance(25) {
                            a.push(s(opt));
                        }
                    }
                }
                // Sometimes every member at score 0, so lex ranges have something to show.
                let zero = self.rng.chance(30);
                let n = 1 + self.rng.below(3);
                for _ in 0..n {
                    let sc = if zero { s("0") } else { self.score() };
                    a.extend([sc, s(self.rng.pick(MEMBERS))]);
                }
                a
            }
            4 => vec![
                s("ZINCRBY"),
                k,
                s(r.pick(&["1", "-1", "2.5", "+inf", "-inf", "x"])),
                s(r.pick(MEMBERS)),
            ],
            5 => {
                let mut a = vec![s("ZREM"), k];
                a.extend(self.members(2));
                a
            }
            6 => vec![s("ZSCORE"), k, s(r.pick(MEMBERS))],
            7 => {
                let mut a = vec![s("ZMSCORE"), k];
                a.extend(self.members(3));
                a
            }
            8 => vec![s("ZCARD"), k],
            9 => vec![s("ZCOUNT"), k, self.sbound(), self.sbound()],
            10 => {
                lex_key = Some(k.clone());
                vec![s("ZLEXCOUNT"), k, self.lbound(), self.lbound()]
            }
            11..=13 => {
                let (tail, lex) = self.zrange_tail(false);
                if lex {
                    lex_key = Some(k.clone());
                }
                let mut a = vec![s("ZRANGE"), k];
                a.extend(tail);
                a
            }
            14 => {
                let name = s(r.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]));
                let mut a = vec![name, k, self.sbound(), self.sbound()];
                if self.rng.chance(40) {
                    a.push(s("WITHSCORES"));
                }
                if self.rng.chance(40) {
                    self.limit(&mut a);
                }
                a
            }
            15 => {
                lex_key = Some(k.clone());
                let name = s(r.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]));
                let mut a = vec![name, k, self.lbound(), self.lbound()];
                if self.rng.chance(40) {
                    self.limit(&mut a);
                }
                a
            }
            16 => {
                let mut a = vec![s("ZREVRANGE"), k, self.index(), self.index()];
                if self.rng.chance(40) {
                    a.push(s("WITHSCORES"));
                }
                a
            }
            17 => vec![s(r.pick(&["ZRANK", "ZREVRANK"])), k, s(r.pick(MEMBERS))],
            18 => {
                let dst = self.key(4);
                let (tail, lex) = self.zrange_tail(true);
                if lex {
                    lex_key = Some(k.clone());
                }
                let mut a = vec![s("ZRANGESTORE"), dst, k];
                a.extend(tail);
                a
            }
            19 => {
                let mut a = vec![s(r.pick(&["ZPOPMIN", "ZPOPMAX"])), k];
                if r.chance(50) {
                    a.push(s(r.int(-1, 3)));
                }
                a
            }
            20 => {
                let n = 1 + r.below(2);
                let mut a = vec![s("ZMPOP"), s(n), k];
                if n == 2 {
                    a.push(self.key(4));
                }
                a.push(s(self.rng.pick(&["MIN", "MAX"])));
                if self.rng.chance(50) {
                    a.extend([s("COUNT"), s(self.rng.int(0, 3))]);
                }
                a
            }
            21 => vec![s("ZREMRANGEBYRANK"), k, self.index(), self.index()],
            22 => vec![s("ZREMRANGEBYSCORE"), k, self.sbound(), self.sbound()],
            23 => {
                lex_key = Some(k.clone());
                vec![s("ZREMRANGEBYLEX"), k, self.lbound(), self.lbound()]
            }
            24..=27 => {
                let store = r.chance(40);
                let kind = r.below(3);
                let name = ["ZUNION", "ZINTER", "ZDIFF"][kind];
                let n = 1 + r.below(3);
                let mut a = if store {
                    vec![s(format!("{name}STORE")), self.key(4)]
                } else {
                    vec![s(name)]
                };
                a.push(s(n));
                a.push(k);
                // Plain sets take part too (their members score 1).
                for _ in 1..n {
                    let other = if self.rng.chance(20) {
                        self.key(3)
                    } else {
                        self.key(4)
                    };
                    a.push(other);
                }
                if kind != 2 {
                    if self.rng.chance(40) {
                        a.push(s("WEIGHTS"));
                        for _ in 0..n {
                            a.push(s(self.rng.pick(WEIGHTS)));
                        }
                    }
                    if self.rng.chance(40) {
                        a.extend([s("AGGREGATE"), s(self.rng.pick(&["SUM", "MIN", "MAX"]))]);
                    }
                }
                if !store && self.rng.chance(50) {
                    a.push(s("WITHSCORES"));
                }
                a
            }
            28 => {
                let n = 1 + r.below(3);
                let mut a = vec![s("ZINTERCARD"), s(n), k];
                for _ in 1..n {
                    a.push(self.key(4));
                }
                if self.rng.chance(40) {
                    a.extend([s("LIMIT"), s(self.rng.int(-1, 3))]);
                }
                a
            }
            _ => {
                cmp = Cmp::Shape;
                let mut a = vec![s("ZRANDMEMBER"), k];
                if r.chance(70) {
                    a.push(s(r.int(-4, 9)));
                    if r.chance(50) {
                        a.push(s("WITHSCORES"));
                    }
                }
                a
            }
        };
        Op {
            args: a,
            cmp,
            lex_key,
        }
    }
}

fn send(conn: &mut RawConn, args: &[String]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    conn.cmd(&args)
}

/// Whether a lex-range command on `key` has a specified result: the key is missing, not a
/// sorted set, or all its members share one score. Asked of the reference only (read-only).
fn lex_ok(theirs: &mut RawConn, key: &str) -> bool {
    let reply = send(
        theirs,
        &[s("ZRANGE"), s(key), s("0"), s("-1"), s("WITHSCORES")],
    );
    match parse(&reply).0 {
        Resp::Array(Some(items)) => {
            let scores: Vec<&Resp> = items.iter().skip(1).step_by(2).collect();
            scores.windows(2).all(|w| w[0] == w[1])
        }
        _ => true,
    }
}

/// What kinds of replies a run saw, to tell whether the generator exercises real data.
#[derive(Default)]
struct Tally {
    wrongtype: usize,
    errors: usize,
    empty: usize,
    data: usize,
}

impl Tally {
    fn count(&mut self, reply: &[u8]) {
        match reply {
            [b'-', b'W', b'R', b'O', b'N', b'G', b'T', b'Y', b'P', b'E', ..] => self.wrongtype += 1,
            [b'-', ..] => self.errors += 1,
            b"$-1\r\n" | b"*-1\r\n" | b"*0\r\n" | b":0\r\n" => self.empty += 1,
            _ => self.data += 1,
        }
    }
}

/// Both connections, and what a failure report needs.
struct Runner {
    seed: u64,
    ours: RawConn,
    theirs: RawConn,
    /// The latest commands, as script lines.
    history: VecDeque<String>,
    tally: Tally,
}

impl Runner {
    fn fail(&mut self, i: usize, what: &str, args: &[String], a: &[u8], b: &[u8]) -> ! {
        let _ = self.theirs.cmd_str(&["FLUSHDB"]);
        let seed = self.seed;
        panic!(
            "seed {seed}: operation {i} ({what}) differs\n  command: {}\n  ours:   {:?}\n  \
             redis:  {:?}\nreplay with FERROCACHE_DIFF_SEED={seed}; the last {} commands:\n{}",
            script_line(args),
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            self.history.len(),
            self.history.iter().cloned().collect::<Vec<_>>().join("\n"),
        );
    }

    /// Sends `args` to both servers and returns both replies.
    fn exchange(&mut self, i: usize, args: &[String]) -> (Vec<u8>, Vec<u8>) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(script_line(args));
        // A hung or closed connection panics inside RawConn: report it with the seed and the
        // commands that led there, like a mismatch.
        let replies = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (send(&mut self.ours, args), send(&mut self.theirs, args))
        }));
        let Ok((a, b)) = replies else {
            let seed = self.seed;
            panic!(
                "seed {seed}: operation {i} got no reply (see the panic above)\n  command: {}\n\
                 replay with FERROCACHE_DIFF_SEED={seed}; the last {} commands:\n{}",
                script_line(args),
                self.history.len(),
                self.history.iter().cloned().collect::<Vec<_>>().join("\n"),
            );
        };
        self.tally.count(&b);
        (a, b)
    }

    /// Sends one operation and compares the replies as it asks.
    fn check(&mut self, i: usize, op: &Op) {
        let (a, b) = self.exchange(i, &op.args);
        if a != b && normalise(parse(&a).0, op.cmp) != normalise(parse(&b).0, op.cmp) {
            self.fail(i, &format!("{:?} compare", op.cmp), &op.args, &a, &b);
        }
    }

    /// MULTI, the operations, then EXEC (or DISCARD). Queueing replies (QUEUED, or an error
    /// that makes EXEC abort) are compared exactly, EXEC's replies one by one as each
    /// operation asks.
    fn transaction(&mut self, i: usize, batch: &[Op], exec: bool) {
        self.check(i, &Gen::exact(vec![s("MULTI")]));
        let mut queued = Vec::new();
        for op in batch {
            let (a, b) = self.exchange(i, &op.args);
            if a != b {
                self.fail(i, "queueing in MULTI", &op.args, &a, &b);
            }
            if a == b"+QUEUED\r\n" {
                queued.push(op.cmp);
            }
        }
        let end = vec![s(if exec { "EXEC" } else { "DISCARD" })];
        let (a, b) = self.exchange(i, &end);
        if a == b {
            return;
        }
        let same = match (parse(&a).0, parse(&b).0) {
            (Resp::Array(Some(x)), Resp::Array(Some(y)))
                if x.len() == y.len() && x.len() == queued.len() =>
            {
                x.into_iter()
                    .zip(y)
                    .zip(&queued)
                    .all(|((x, y), cmp)| normalise(x, *cmp) == normalise(y, *cmp))
            }
            _ => false,
        };
        if !same {
            self.fail(i, "transaction", &end, &a, &b);
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn random_commands_match_redis() {
    let Some(theirs) = reference("random_commands_match_redis", 13) else {
        return;
    };
    let seed = env_u64("FERROCACHE_DIFF_SEED").unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970");
        t.as_secs() ^ u64::from(t.subsec_nanos()) ^ (u64::from(std::process::id()) << 32)
    });
    let ops = env_u64("FERROCACHE_DIFF_OPS").map_or(DEFAULT_OPS, |n| n as usize);
    eprintln!("random differential: FERROCACHE_DIFF_SEED={seed} FERROCACHE_DIFF_OPS={ops}");

    let node = node(&[]);
    let mut ours = node.raw();
    assert_eq!(ours.cmd_str(&["SELECT", DB]), b"+OK\r\n");

    let mut gen = Gen { rng: Rng(seed) };
    let mut run = Runner {
        seed,
        ours,
        theirs,
        history: VecDeque::new(),
        tally: Tally::default(),
    };
    let started = Instant::now();
    let (mut done, mut skipped_lex, mut transactions) = (0usize, 0usize, 0usize);
    while done < ops {
        if started.elapsed() > TIME_CAP {
            eprintln!("random differential: time cap reached after {done} operations");
            break;
        }
        if gen.rng.chance(2) {
            // A transaction: lex ranges left out, as their check would be queued too.
            let n = 1 + gen.rng.below(3);
            let mut batch = Vec::with_capacity(n);
            while batch.len() < n {
                let op = gen.op();
                if op.lex_key.is_none() {
                    batch.push(op);
                }
            }
            let exec = gen.rng.chance(90);
            run.transaction(done, &batch, exec);
            transactions += 1;
            done += n;
            continue;
        }
        let op = gen.op();
        if let Some(key) = &op.lex_key {
            if !lex_ok(&mut run.theirs, key) {
                skipped_lex += 1;
                continue;
            }
        }
        run.check(done, &op);
        done += 1;
    }
    let (mut theirs, tally) = (run.theirs, run.tally);
    assert_eq!(
        theirs.cmd_str(&["FLUSHDB"]),
        b"+OK\r\n",
        "seed {seed}: flush reference"
    );
    eprintln!(
        "random differential: seed {seed}: {done} operations matched ({transactions} \
         transactions, {skipped_lex} lex ranges skipped on mixed scores) in {:?}; replies: {} \
         WRONGTYPE, {} other errors, {} nil or empty, {} with data",
        started.elapsed(),
        tally.wrongtype,
        tally.errors,
        tally.empty,
        tally.data
    );
}
