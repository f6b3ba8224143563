//! Lua numbers leaving a script, as Redis 7.0 converts them: an integer reply is C's
//! `(long long)` cast (so a NaN or a number past ±2^63 is the most negative integer, not a
//! saturated or zero one), and a double, in `{double=…}` or as a `redis.call` argument, is
//! `%.17g` (so `0/0` is `-nan`). Found by a differential sweep of script idioms that job
//! queues and rate limiters use; compared with the reference Redis where it is there.

mod common;

use common::*;

/// (script, RESP2 reply, RESP3 reply)
const CASES: &[(&str, &str, &str)] = &[
    (
        "return 0/0",
        ":-9223372036854775808\r\n",
        ":-9223372036854775808\r\n",
    ),
    (
        "return 2^63",
        ":-9223372036854775808\r\n",
        ":-9223372036854775808\r\n",
    ),
    (
        "return math.huge",
        ":-9223372036854775808\r\n",
        ":-9223372036854775808\r\n",
    ),
    (
        "return -math.huge",
        ":-9223372036854775808\r\n",
        ":-9223372036854775808\r\n",
    ),
    (
        "return -2^63",
        ":-9223372036854775808\r\n",
        ":-9223372036854775808\r\n",
    ),
    (
        "return 2^62 + 0.5",
        ":4611686018427387904\r\n",
        ":4611686018427387904\r\n",
    ),
    ("return -3.99", ":-3\r\n", ":-3\r\n"),
    (
        "return {1e19, -1e19, 0/0, 7.5}",
        "*4\r\n:-9223372036854775808\r\n:-9223372036854775808\r\n:-9223372036854775808\r\n:7\r\n",
        "*4\r\n:-9223372036854775808\r\n:-9223372036854775808\r\n:-9223372036854775808\r\n:7\r\n",
    ),
    ("return {double=0/0}", "$4\r\n-nan\r\n", ",-nan\r\n"),
    (
        "return {double=1/3}",
        "$19\r\n0.33333333333333331\r\n",
        ",0.33333333333333331\r\n",
    ),
    (
        "redis.call('SET', KEYS[1], 0/0) return redis.call('GET', KEYS[1])",
        "$4\r\n-nan\r\n",
        "$4\r\n-nan\r\n",
    ),
    (
        "redis.call('SET', KEYS[1], 2^63) return redis.call('GET', KEYS[1])",
        "$22\r\n9.2233720368547758e+18\r\n",
        "$22\r\n9.2233720368547758e+18\r\n",
    ),
];

fn eval(conn: &mut RawConn, script: &str) -> String {
    let reply = conn.cmd(&[b"EVAL", script.as_bytes(), b"1", b"luanum:k"]);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn lua_numbers_convert_as_redis_does() {
    let node = node(&[]);
    for (resp3, pick) in [(false, 1), (true, 2)] {
        let mut ours = node.raw();
        if resp3 {
            ours.cmd_str(&["HELLO", "3"]);
        }
        for case in CASES {
            let want = if pick == 1 { case.1 } else { case.2 };
            assert_eq!(eval(&mut ours, case.0), want, "{} (resp3={resp3})", case.0);
        }
    }
}

#[test]
fn lua_numbers_match_reference_redis() {
    let Some(mut theirs) = reference("lua_numbers_match_reference_redis", 13) else {
        return;
    };
    let node = node(&[]);
    for resp3 in [false, true] {
        let mut ours = node.raw();
        if resp3 {
            ours.cmd_str(&["HELLO", "3"]);
            theirs.cmd_str(&["HELLO", "3"]);
        }
        for (script, _, _) in CASES {
            assert_eq!(
                eval(&mut ours, script),
                eval(&mut theirs, script),
                "{script} (resp3={resp3})"
            );
        }
    }
    theirs.cmd_str(&["DEL", "luanum:k"]);
}
