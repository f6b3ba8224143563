//! Differential tests: the same commands to cache-node and to the reference Redis
//! (`FERROCACHE_REFERENCE_REDIS`), byte-identical replies expected.

mod common;

use common::{compare, node, reference, words};

fn run_script(test: &str, db: u32, script: &str) {
    let Some(mut theirs) = reference(test, db) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    let lines: Vec<Vec<&[u8]>> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(words)
        .collect();
    compare(&mut ours, &mut theirs, &lines);
    theirs.cmd_str(&["FLUSHDB"]);
}

#[test]
fn strings_match_redis() {
    run_script(
        "strings_match_redis",
        9,
        r#"
        GET nosuch
        SET s hello
        GET s
        SET s world NX
        SET s world XX GET
        SET s v EX 0
        SET s v EX -5
        SET s v PX abc
        SET s v EX 10 PX 10
        SET s v KEEPTTL EX 10
        SET s v BOGUS
        SETNX s x
        SETNX t x
        GETSET s new
        GETDEL s
        GETDEL s
        APPEND a abc
        APPEND a def
        STRLEN a
        STRLEN nosuch
        GETRANGE a 0 2
        GETRANGE a -2 -1
        GETRANGE a -1 -2
        GETRANGE a 10 20
        GETRANGE a 2 100
        GETRANGE nosuch 0 1
        SUBSTR a 1 3
        SETRANGE a 1 XY
        GET a
        SETRANGE a -1 x
        SETRANGE b 3 zz
        GET b
        SETRANGE c 0 ""
        EXISTS c
        INCR n
        INCRBY n 10
        DECR n
        DECRBY n 3
        DECRBY n -9223372036854775808
        INCRBY n 9223372036854775807
        INCR a
        INCRBY n abc
        SET n 9223372036854775807
        INCR n
        SET f 10.5
        INCRBYFLOAT f 0.1
        INCRBYFLOAT f -5
        INCRBYFLOAT f 1e2
        INCRBYFLOAT f abc
        INCRBYFLOAT a 1
        INCRBYFLOAT nf 3
        MSET x 1 y 2
        MSET x 1 y
        MGET x y nosuch
        MSETNX x 1 z 3
        MSETNX z 3 w 4
        MGET z w
        SET sp " 1"
        INCR sp
        INCRBYFLOAT sp 1
        SET lz 01
        INCR lz
        GET
        GET a b
        SETEX e 100 v
        TTL e
        SETEX e 0 v
        SETEX e abc v
        PSETEX pe 100000 v
        PTTL nosuch
        GETEX e PERSIST
        TTL e
        GETEX e EX 50
        TTL e
        GETEX e EX 50 PX 20
        GETEX nosuch EX 10
        GETEX e BOGUS
        SETBIT bits 7 1
        SETBIT bits 7 0
        SETBIT bits 100 1
        SETBIT bits -1 1
        SETBIT bits 1 2
        GETBIT bits 100
        GETBIT bits 1000
        GETBIT nosuch 1
        GET bits
        SET bc foobar
        BITCOUNT bc
        BITCOUNT bc 0 0
        BITCOUNT bc 1 1
        BITCOUNT bc -2 -1
        BITCOUNT bc 5 30 BIT
        BITCOUNT bc 0 -1 BYTE
        BITCOUNT bc 0
        BITCOUNT bc 0 1 WORD
        BITCOUNT nosuch
        SET bp "\xff\xf0\x00"
        BITPOS bp 0
        BITPOS bp 1
        SET bp2 abc
        BITPOS bp2 1
        BITPOS bp2 0
        BITPOS bp2 1 1
        BITPOS bp2 0 1 2
        BITPOS bp2 1 2 -1 BIT
        BITPOS bp2 2
        BITPOS nosuch 1
        BITPOS nosuch 0
        "#,
    );
}

#[test]
fn keys_and_ttls_match_redis() {
    run_script(
        "keys_and_ttls_match_redis",
        10,
        r#"
        SELECT 11
        FLUSHDB
        SELECT 10
        SET a 1
        SET b 2
        EXISTS a b c a
        DEL a c
        UNLINK b
        DEL
        TYPE nosuch
        SET s v
        TYPE s
        TOUCH s nosuch
        RENAME nosuch x
        RENAME s t
        GET t
        RENAME t t
        SET u 1
        RENAMENX t u
        RENAMENX t v
        COPY v w
        COPY v w
        COPY v w REPLACE
        COPY v v
        COPY v w DB 99
        COPY v w BOGUS
        MOVE w 11
        MOVE w 11
        MOVE u 10
        MOVE u 999
        EXPIRE u 100
        TTL u
        EXPIRE u 100 NX
        EXPIRE u 200 XX
        EXPIRE u 50 GT
        EXPIRE u 500 GT
        EXPIRE u 50 LT
        TTL u
        EXPIRE u 10 NX XX
        EXPIRE u 10 GT LT
        EXPIRE u 10 FOO
        EXPIRE u abc
        EXPIRE nosuch 10
        PERSIST u
        PERSIST u
        TTL u
        EXPIRE u 10 GT
        EXPIRE u 10 LT
        PERSIST u
        PEXPIRE u 100000
        TTL u
        EXPIREAT u 1
        EXISTS u
        SET z 1
        PEXPIREAT z 99999999999999
        PEXPIRETIME z
        EXPIRETIME z
        EXPIRETIME nosuch
        SET nz 1
        EXPIRETIME nz
        EXPIRE z 9223372036854775807
        OBJECT ENCODING nosuch
        SET i 12345
        OBJECT ENCODING i
        OBJECT ENCODING v
        OBJECT REFCOUNT i
        OBJECT FOO i
        SCAN abc
        SCAN 0 COUNT 0
        SCAN 0 BOGUS 1
        KEYS nomatch*
        SELECT 11
        DBSIZE
        FLUSHDB
        SELECT 10
        SELECT 99
        SELECT abc
        SWAPDB 0 abc
        SWAPDB 0 99
        FLUSHDB
        RANDOMKEY
        DBSIZE
        FLUSHDB BOGUS
        ECHO hi
        PING
        PING hello
        PING a b
        NOSUCHCOMMAND a b
        CONFIG GET nosuchparam
        CONFIG SET nosuchparam 1
        CLIENT NOSUCH
        "#,
    );
}
