//! Differential tests: the same commands to cache-node and to the reference Redis
//! (`FERROCACHE_REFERENCE_REDIS`), byte-identical replies expected.

mod common;

use std::sync::{Mutex, PoisonError};

use common::{compare, node, reference, words};

/// One lock per reference database: tests sharing a database (the family scripts use 14 and
/// 15) take turns, as each flushes it.
static DB_LOCKS: [Mutex<()>; 16] = [const { Mutex::new(()) }; 16];

fn run_script(test: &str, db: u32, script: &str) {
    let _turn = DB_LOCKS[db as usize]
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
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
        BITCOUNT bc -1 -3 x
        BITCOUNT bc -1 -3 BIT
        BITCOUNT bc -3 -1 x
        BITCOUNT nosuch 0 1 x
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
        INCRBYFLOAT hexf 0x10
        # the key's type and value are checked before the increment or the expire time
        RPUSH lst x
        INCRBYFLOAT lst x
        INCRBYFLOAT bc x
        GETEX lst EX abc
        GETEX nosuch EX abc
        GETEX nosuch PX -1
        GETEX bc EX abc
        GETEX bc EX
        GETEX bc EX 10 PERSIST
        GETEX bc PERSIST PERSIST
        # options may repeat (the last expire time wins) but not conflict
        GETEX bc EX 10 EX 2000
        TTL bc
        GETEX bc PX 100 EX 10
        GETEX bc EX 10 EXAT 1
        GETEX bc PERSIST EX 10
        GETEX bc EX abc EX 10
        SET rep v EX 10 EX 3000
        TTL rep
        SET rep v EX abc EX 10
        SET rep v EX 10 EX abc
        SET rep v NX NX
        SET rep v XX XX GET GET
        SET rep v KEEPTTL KEEPTTL
        TTL rep
        SET rep v KEEPTTL PX 10
        SET rep v PXAT 1 EXAT 1
        SET rep v NX XX
        SET rep v PERSIST
        GETEX rep KEEPTTL
        GETEX rep NX
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

#[test]
fn hashes_match_redis() {
    run_script(
        "hashes_match_redis",
        14,
        r#"
        HSET h f1 v1 f2 v2
        HSET h f1 x
        HSET h f3
        HSET h
        HMSET h f1 a f2
        HMSET h f4 v4
        HSETNX h f1 z
        HSETNX h f9 z
        HSETNX h f9
        HGET h f1
        HGET h nosuch
        HGET nosuch f1
        HMGET h f1 nosuch f2
        HMGET nosuch a b
        HMGET h
        HDEL h nosuch1 nosuch2
        HDEL h
        HLEN h
        HLEN nosuch
        HEXISTS h f1
        HEXISTS h nosuch
        HEXISTS nosuch f1
        HSTRLEN h f1
        HSTRLEN h nosuch
        HSTRLEN nosuch f1
        HKEYS h
        HVALS h
        HGETALL h
        HKEYS nosuch
        HVALS nosuch
        HGETALL nosuch
        # small hashes keep insertion order across deletes and updates
        HDEL h f2
        HGETALL h
        HSET h f2 again f1 updated
        HGETALL h
        HINCRBY h n 5
        HINCRBY h n -10
        HINCRBY h n x
        HINCRBY h n 1.5
        HINCRBY h f1 1
        HINCRBY h big 9223372036854775807
        HINCRBY h big 1
        HINCRBY h neg -9223372036854775808
        HINCRBY h neg -1
        HINCRBY nosuch f 3
        HINCRBYFLOAT h fl 1.5
        HINCRBYFLOAT h fl -0.25
        HINCRBYFLOAT h fl 1e2
        HINCRBYFLOAT h fl x
        HINCRBYFLOAT h fl nan
        HINCRBYFLOAT h fl inf
        HINCRBYFLOAT h fl -inf
        HINCRBYFLOAT h f1 1
        HINCRBYFLOAT h n 1.5
        HINCRBYFLOAT h n 0
        HSET h sp " 1"
        HINCRBY h sp 1
        HINCRBYFLOAT h sp 1
        HINCRBYFLOAT h hex 0x10
        HINCRBYFLOAT h hex 0x
        HINCRBYFLOAT h hex " 1"
        HSET h inf inf
        HINCRBYFLOAT h inf 1
        HINCRBYFLOAT h inf -1
        HGET h fl
        HGETALL h
        HRANDFIELD h 0
        HRANDFIELD h x
        HRANDFIELD h 1 WITHVALUES x
        HRANDFIELD h 1 BOGUS
        HRANDFIELD nosuch
        HRANDFIELD nosuch 3
        HRANDFIELD nosuch -3 WITHVALUES
        HSCAN nosuch 0
        # wrong types; an infinite HINCRBYFLOAT increment is refused before the key is read
        SET str v
        HSET str f v
        HSETNX str f v
        HGET str f
        HMGET str f
        HGETALL str
        HKEYS str
        HLEN str
        HEXISTS str f
        HSTRLEN str f
        HDEL str f
        HINCRBY str f 1
        HINCRBY str f x
        HINCRBYFLOAT str f 1
        HINCRBYFLOAT str f x
        HINCRBYFLOAT str f inf
        HINCRBYFLOAT nosuch f +inf
        HRANDFIELD str
        # deleting the last field deletes the key
        HSET gone a 1 b 2
        HDEL gone a b c
        EXISTS gone
        HSETNX gone a 1
        TYPE gone
        "#,
    );
}

#[test]
fn lists_match_redis() {
    run_script(
        "lists_match_redis",
        14,
        r#"
        LPUSH l a b c
        RPUSH l d e
        LPUSH l
        LRANGE l 0 -1
        LRANGE l -2 -1
        LRANGE l -100 100
        LRANGE l 3 1
        LRANGE l 5 10
        LRANGE l -1 -2
        LRANGE l x 1
        LRANGE nosuch 0 -1
        LINDEX l 0
        LINDEX l -1
        LINDEX l 5
        LINDEX l -6
        LINDEX l x
        LINDEX nosuch 0
        LINDEX nosuch x
        LSET l 0 A
        LSET l -1 E
        LSET l 5 z
        LSET l -6 z
        LSET l x z
        LSET nosuch 0 z
        LSET nosuch x z
        LRANGE l 0 -1
        LLEN l
        LLEN nosuch
        LPUSHX nosuch a
        RPUSHX nosuch a
        EXISTS nosuch
        LPUSHX l x y
        RPUSHX l z
        LPOP l
        RPOP l
        LPOP l 2
        RPOP l 0
        LPOP l -1
        LPOP l x
        RPOP l 1 2
        LPOP nosuch
        LPOP nosuch 2
        LPOP nosuch 0
        RPOP nosuch -1
        LRANGE l 0 -1
        RPOP l 100
        EXISTS l
        RPUSH r a b a c a
        LREM r 0 zz
        LREM r 1 a
        LREM r -1 a
        LRANGE r 0 -1
        LREM r 0 a
        LREM r x a
        RPUSH m a b a c a d a a e a
        LREM m -2 a
        LRANGE m 0 -1
        LREM m 2 a
        LRANGE m 0 -1
        LREM m -100 a
        LRANGE m 0 -1
        LREM m 1 nosuch
        LREM nosuch 0 a
        LTRIM r 0 0
        LRANGE r 0 -1
        LTRIM r 5 10
        EXISTS r
        LTRIM nosuch 0 1
        LTRIM r x 1
        RPUSH p a b c b a
        LINSERT p BEFORE b X
        LINSERT p AFTER a Y
        LINSERT p after c Z
        LINSERT p AFTER nosuch Y
        LINSERT p MIDDLE a Y
        LINSERT nosuch BEFORE a b
        LINSERT nosuch MIDDLE a b
        LRANGE p 0 -1
        LPOS p b
        LPOS p b RANK 2
        LPOS p b RANK 3
        LPOS p b RANK -1
        LPOS p b RANK -2 COUNT 0
        LPOS p b COUNT 0
        LPOS p b COUNT 1 MAXLEN 2
        LPOS p b COUNT 0 MAXLEN 4
        LPOS p b RANK -1 MAXLEN 2
        LPOS p zz
        LPOS p zz COUNT 0
        LPOS p b RANK 0
        LPOS p b RANK x
        LPOS p b COUNT -1
        LPOS p b COUNT x
        LPOS p b MAXLEN -1
        LPOS p b MAXLEN x
        LPOS p b BOGUS 1
        LPOS p b RANK
        LPOS nosuch a
        LPOS nosuch a COUNT 0
        RPUSH m1 1 2 3
        LMOVE m1 m2 LEFT RIGHT
        LMOVE m1 m2 RIGHT LEFT
        LRANGE m2 0 -1
        LMOVE m1 m1 LEFT RIGHT
        LMOVE m1 m2 UP LEFT
        LMOVE nosuch m2 LEFT LEFT
        LMOVE nosuch m2 UP LEFT
        RPOPLPUSH m2 m1
        RPOPLPUSH nosuch m1
        LRANGE m1 0 -1
        # moving the only element of a list onto itself keeps the key and its TTL
        RPUSH one x
        EXPIRE one 1000
        RPOPLPUSH one one
        LMOVE one one LEFT RIGHT
        PERSIST one
        LMOVE one other LEFT LEFT
        EXISTS one
        LMPOP 2 nosuch m1 LEFT
        LMPOP 1 m1 RIGHT COUNT 10
        LMPOP 1 m1 LEFT
        LMPOP 1 nosuch LEFT COUNT 2
        LMPOP 0 m1 LEFT
        LMPOP -1 m1 LEFT
        LMPOP x m1 LEFT
        LMPOP 2 m1 LEFT
        LMPOP 1 m1 MIDDLE
        LMPOP 1 m1 LEFT COUNT 0
        LMPOP 1 m1 LEFT COUNT x
        LMPOP 1 m1 LEFT COUNT
        LMPOP 1 m1 LEFT COUNT 1 COUNT 2
        # wrong types
        SET s v
        LPUSH s a
        RPUSHX s a
        LPUSHX s a
        LRANGE s 0 -1
        LRANGE s x 0
        LINDEX s 0
        LINDEX s x
        LSET s 0 v
        LSET s x v
        LLEN s
        LPOP s
        LPOP s 2
        LPOP s x
        LPOS s a
        LPOS s a COUNT x
        LMOVE s other LEFT LEFT
        LMOVE other s LEFT LEFT
        RPUSH m3 a
        LMOVE m3 s LEFT LEFT
        LRANGE m3 0 -1
        LMPOP 2 nosuch s LEFT
        LINSERT s BEFORE a b
        LREM s 0 a
        LTRIM s 0 1
        "#,
    );
}

#[test]
fn sets_match_redis() {
    run_script(
        "sets_match_redis",
        15,
        r#"
        # Multi-member SMEMBERS/SINTER/... orders are unspecified: those are checked through
        # SCARD and SMISMEMBER (and in random_differential.rs, as multisets).
        SADD s a b c
        SADD s a d
        SADD s
        SREM s a zz
        SREM s
        SREM nosuch a
        SISMEMBER s b
        SISMEMBER s zz
        SISMEMBER nosuch a
        SMISMEMBER s b zz c
        SMISMEMBER nosuch a b
        SMISMEMBER s
        SCARD s
        SCARD nosuch
        SMEMBERS nosuch
        SADD one x
        SMEMBERS one
        SADD t c d e
        SINTERSTORE d1 s t
        SCARD d1
        SMISMEMBER d1 c d b e
        SUNIONSTORE d2 s t nosuch
        SCARD d2
        SMISMEMBER d2 b c d e zz
        SDIFFSTORE d3 s t
        SMEMBERS d3
        SDIFFSTORE d3 s s
        EXISTS d3
        SINTERSTORE d1 s nosuch
        EXISTS d1
        SINTER s nosuch
        SINTER nosuch s
        SDIFF nosuch s
        SDIFF s s
        SUNION nosuch
        SINTER one
        SINTERCARD 2 s t
        SINTERCARD 2 s t LIMIT 1
        SINTERCARD 2 s t LIMIT 0
        SINTERCARD 2 s t LIMIT 10
        SINTERCARD 2 s t LIMIT -1
        SINTERCARD 2 s t LIMIT x
        SINTERCARD 0 s
        SINTERCARD -1 s
        SINTERCARD x s
        SINTERCARD 3 s t
        SINTERCARD 1 s BOGUS
        SINTERCARD 1 s LIMIT
        SINTERCARD 1 nosuch
        SMOVE s t b
        SMOVE s t b
        SMOVE s s c
        SMOVE s s zz
        SMOVE nosuch t a
        SMOVE one elsewhere x
        EXISTS one
        SMEMBERS elsewhere
        # wrong types: a missing source answers 0 before the destination is checked
        SET str v
        SMOVE nosuch str a
        SMOVE s str c
        SMOVE str s a
        SADD str a
        SREM str a
        SISMEMBER str a
        SMISMEMBER str a
        SCARD str
        SMEMBERS str
        SINTER s str
        SINTER nosuch str
        SUNION s str
        SDIFF str s
        SDIFF nosuch str
        SINTERSTORE d4 s str
        SINTERCARD 2 s str
        SINTERCARD 2 nosuch str
        SINTERCARD 2 s str LIMIT -1
        SRANDMEMBER str
        SPOP str
        SRANDMEMBER nosuch
        SRANDMEMBER nosuch 5
        SRANDMEMBER s 0
        SRANDMEMBER s x
        SRANDMEMBER s 1 2
        SPOP nosuch
        SPOP nosuch 3
        SPOP s 0
        SPOP s x
        SPOP s -1
        SPOP s 1 2
        # storing over another type replaces it
        SUNIONSTORE str t
        TYPE str
        SREM s c d zz
        EXISTS s
        SSCAN nosuch 0
        "#,
    );
}

#[test]
fn zsets_match_redis() {
    run_script(
        "zsets_match_redis",
        15,
        r#"
        ZADD z 1 a 2 b 3 c
        ZADD z 1.5 d -inf e +inf f
        ZADD z NX 10 a 4 g
        ZADD z XX 10 a 5 h
        ZADD z XX CH 11 a 5 h
        ZADD z GT 0 a
        ZADD z GT CH 20 a
        ZADD z LT CH 30 a 1 b
        ZADD z GT XX CH 25 a 0 b
        ZADD z NX XX 1 a
        ZADD z NX GT 1 a
        ZADD z GT LT 1 a
        ZADD z NX LT 1 a
        ZADD z INCR 1 a 2 b
        ZADD z INCR 5 a
        ZADD z INCR NX 5 a
        ZADD z INCR XX 5 nosuchm
        ZADD z INCR GT -100 a
        ZADD z INCR LT -1 a
        ZADD z 1
        ZADD z
        ZADD z x a
        ZADD z nan a
        ZADD z "" a
        ZADD z 1 a 2
        ZADD z BOGUS 1 a
        ZADD z INCR +inf e
        ZINCRBY z -inf f
        ZADD z -0 zero
        ZSCORE z zero
        ZADD z INCR -0 zero2
        ZSCORE z zero2
        ZINCRBY z 1 a
        ZINCRBY z x a
        ZINCRBY nosuchz 2 m
        ZINCRBY z 1.5 newm
        ZSCORE z a
        ZSCORE z e
        ZSCORE z nosuch
        ZSCORE nosuch a
        ZMSCORE z a nosuch e f
        ZMSCORE nosuch a b
        ZMSCORE z
        ZCARD z
        ZCARD nosuch
        ZRANGE z 0 -1 WITHSCORES
        ZCOUNT z -inf +inf
        ZCOUNT z (1 3
        ZCOUNT z 1 (3
        ZCOUNT z (1 (1
        ZCOUNT z 3 1
        ZCOUNT z (-inf (+inf
        # range ends are parsed with strtod: "" and "(" are 0, leading blanks are fine
        ZCOUNT z "" (
        ZCOUNT z " 1" 2
        ZCOUNT z 1e0 3.0
        ZCOUNT z x 1
        ZCOUNT z (x 1
        ZCOUNT z 1x 2
        ZCOUNT z nan 1
        ZCOUNT nosuch -inf +inf
        ZRANGE z -3 -1
        ZRANGE z 5 1
        ZRANGE z -100 100
        ZRANGE z 0 -1 REV WITHSCORES
        ZRANGE z -2 -1 REV
        ZRANGE z -inf +inf BYSCORE WITHSCORES
        ZRANGE z (1 3 BYSCORE
        ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES
        ZRANGE z -inf +inf BYSCORE REV
        ZRANGE z -inf +inf BYSCORE LIMIT -1 2
        ZRANGE z -inf +inf BYSCORE LIMIT 2 -1
        ZRANGE z -inf +inf BYSCORE LIMIT 2 -5
        ZRANGE z -inf +inf BYSCORE LIMIT 0 0
        ZRANGE z "" (3 BYSCORE
        # LIMIT with a rank range: only a count of -1 is accepted (and the offset ignored)
        ZRANGE z 0 -1 LIMIT 1 2
        ZRANGE z 0 2 LIMIT 1 -1
        ZRANGE z 0 -1 LIMIT 1 -2
        ZRANGE z 0 -1 BYLEX
        ZRANGE z - + BYLEX WITHSCORES
        ZRANGE z 0 -1 BYSCORE BYLEX
        ZRANGE z 0 -1 BOGUS
        ZRANGE z x 1
        ZRANGE z 0 1 LIMIT
        ZRANGE z 0 1 LIMIT 0 x
        ZRANGE nosuch 0 -1
        ZRANGE nosuch 0 -1 BYSCORE
        ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 1 2
        ZRANGEBYSCORE z (1 +inf LIMIT 0 1 WITHSCORES
        ZRANGEBYSCORE z -inf +inf REV
        ZRANGEBYSCORE z -inf
        ZREVRANGEBYSCORE z +inf -inf WITHSCORES
        ZREVRANGEBYSCORE z 2 (1
        ZREVRANGEBYSCORE z -inf +inf
        ZREVRANGEBYSCORE z +inf -inf LIMIT 1 1
        ZREVRANGE z 0 1 WITHSCORES
        ZREVRANGE z -1 -1
        ZREVRANGE z 0 1 BYSCORE
        ZRANK z a
        ZRANK z e
        ZRANK z nosuch
        ZRANK nosuch a
        ZREVRANK z a
        ZREVRANK z e
        ZRANGESTORE dst z 0 1
        ZRANGE dst 0 -1 WITHSCORES
        ZRANGESTORE dst z 5 1
        EXISTS dst
        ZRANGESTORE dst z (1 +inf BYSCORE LIMIT 0 2
        ZRANGE dst 0 -1 WITHSCORES
        ZRANGESTORE dst z +inf -inf BYSCORE REV LIMIT 0 1
        ZRANGE dst 0 -1 WITHSCORES
        ZRANGESTORE dst z 0 -1 WITHSCORES
        ZRANGESTORE dst nosuch 0 -1
        EXISTS dst
        ZPOPMIN z
        ZPOPMAX z
        ZPOPMIN z 2
        ZPOPMAX z 0
        ZPOPMIN z -1
        ZPOPMIN z x
        ZPOPMIN nosuch
        ZPOPMIN nosuch 2
        ZPOPMIN z 1 2
        ZMPOP 1 z MIN
        ZMPOP 2 nosuch z MAX COUNT 2
        ZMPOP 1 nosuch MIN
        ZMPOP 0 z MIN
        ZMPOP x z MIN
        ZMPOP 2 z MIN
        ZMPOP 1 z BOGUS
        ZMPOP 1 z MIN COUNT 0
        ZMPOP 1 z MIN COUNT x
        ZMPOP 1 z MIN COUNT 1 COUNT 1
        ZRANGE z 0 -1 WITHSCORES
        # scores and weights parse as getDoubleFromObject: strtod (hex too), no leading blank,
        # within double range
        ZADD fl 0x10 hex 1e300 big -2.5e-7 tiny 5. dot .5 dot2 +1 plus 0X1P-2 hexp
        ZADD fl 1e400 a
        ZADD fl 1e-400 a
        ZADD fl " 1" a
        ZADD fl "1 " a
        ZADD fl 0x a
        ZADD fl infinity a -Infinity b
        ZRANGE fl 0 -1 WITHSCORES
        ZINCRBY fl 0.1 tiny
        ZINCRBY fl 0.1 tiny
        ZSCORE fl tiny
        ZINCRBY fl 1e400 tiny
        ZUNION 1 fl WEIGHTS 0x2 WITHSCORES
        ZUNION 1 fl WEIGHTS 1e400
        # lex ranges (all scores equal)
        ZADD lex 0 a 0 b 0 c 0 d 0 e
        ZRANGEBYLEX lex - +
        ZRANGEBYLEX lex [b (d
        ZRANGEBYLEX lex (b [d
        ZRANGEBYLEX lex (a (a
        ZRANGEBYLEX lex [a [a
        ZRANGEBYLEX lex [c [a
        ZRANGEBYLEX lex + -
        ZRANGEBYLEX lex - (c
        ZRANGEBYLEX lex [ +
        ZRANGEBYLEX lex ( +
        ZRANGEBYLEX lex - + LIMIT 1 2
        ZRANGEBYLEX lex - + LIMIT 1 -1
        ZRANGEBYLEX lex - + LIMIT -1 1
        ZRANGEBYLEX lex a c
        ZRANGEBYLEX lex [a c
        ZRANGEBYLEX lex - + WITHSCORES
        ZRANGEBYLEX nosuch - +
        ZREVRANGEBYLEX lex + -
        ZREVRANGEBYLEX lex (d [b
        ZREVRANGEBYLEX lex - +
        ZREVRANGEBYLEX lex + - LIMIT 0 2
        ZRANGE lex [b [d BYLEX
        ZRANGE lex [b [d BYLEX REV
        ZRANGE lex [d [b BYLEX REV
        ZRANGE lex + - BYLEX REV LIMIT 1 2
        ZLEXCOUNT lex - +
        ZLEXCOUNT lex (a [c
        ZLEXCOUNT lex [c (a
        ZLEXCOUNT lex x +
        ZLEXCOUNT nosuch - +
        ZRANGESTORE dst lex [b + BYLEX LIMIT 1 5
        ZRANGE dst 0 -1
        ZREMRANGEBYLEX lex (d +
        ZREMRANGEBYLEX lex x +
        ZREMRANGEBYLEX nosuch - +
        ZRANGE lex 0 -1
        ZADD rr 1 a 2 b 3 c 4 d 5 e 6 f
        ZREMRANGEBYRANK rr 0 0
        ZREMRANGEBYRANK rr -1 -1
        ZREMRANGEBYRANK rr 5 1
        ZREMRANGEBYRANK rr x 1
        ZREMRANGEBYSCORE rr (2 3
        ZREMRANGEBYSCORE rr x 1
        ZREMRANGEBYSCORE nosuch -inf +inf
        ZRANGE rr 0 -1 WITHSCORES
        ZREMRANGEBYSCORE rr -inf +inf
        EXISTS rr
        # combining
        ZADD z1 1 a 2 b 3 c
        ZADD z2 10 b 20 c 30 d
        SADD s1 a d
        ZUNION 2 z1 z2 WITHSCORES
        ZUNION 2 z1 z2 WEIGHTS 2 -1 WITHSCORES
        ZUNION 2 z1 z2 AGGREGATE MIN WITHSCORES
        ZUNION 2 z1 z2 AGGREGATE max WITHSCORES
        ZUNION 3 z1 z2 s1 WITHSCORES
        ZUNION 2 z1 nosuch
        ZINTER 2 z1 z2 WITHSCORES
        ZINTER 2 z1 s1 WITHSCORES
        ZINTER 2 z1 nosuch
        ZDIFF 2 z1 z2 WITHSCORES
        ZDIFF 2 z1 s1
        ZDIFF 1 nosuch
        ZDIFF 2 z1 z2 WEIGHTS 1 1
        ZDIFF 2 z1 z2 AGGREGATE SUM
        ZUNION 0 z1
        ZINTER -1 z1
        ZUNION x z1
        ZUNION 3 z1 z2
        ZUNION 2 z1 z2 WEIGHTS 1
        ZUNION 2 z1 z2 WEIGHTS 1 x
        ZUNION 2 z1 z2 AGGREGATE AVG
        ZUNION 2 z1 z2 AGGREGATE
        ZUNION 2 z1 z2 BOGUS
        # input keys are type-checked before the options after them are parsed
        SET str v
        ZUNION 2 z1 str
        ZUNION 2 z1 str BOGUS
        ZINTER 2 str nosuch WEIGHTS 1 x
        ZDIFF 2 z1 str
        ZUNIONSTORE out 2 z1 str AGGREGATE AVG
        ZINTERCARD 2 z1 str LIMIT -1
        ZINTERCARD 2 z1 nosuch
        ZUNIONSTORE out 2 z1 z2 WEIGHTS 1 2
        ZRANGE out 0 -1 WITHSCORES
        ZINTERSTORE out 2 z1 z2 AGGREGATE MAX
        ZRANGE out 0 -1 WITHSCORES
        ZDIFFSTORE out 2 z1 z2
        ZRANGE out 0 -1 WITHSCORES
        ZDIFFSTORE out 2 z1 z1
        EXISTS out
        ZUNIONSTORE out 2 z1 z2 WITHSCORES
        ZUNIONSTORE out 0 z1
        ZINTERCARD 2 z1 z2
        ZINTERCARD 2 z1 z2 LIMIT 1
        ZINTERCARD 2 z1 z2 LIMIT 0
        ZINTERCARD 2 z1 z2 LIMIT x
        ZINTERCARD 2 z1 s1
        ZINTERCARD 0 z1
        ZINTERCARD x z1
        ZINTERCARD 3 z1
        ZINTERCARD 1 z1 WITHSCORES
        ZINTERCARD 1 z1 WEIGHTS 1
        # infinities: inf + -inf sums to 0, inf * 0 is 0 for the smallest input only, and a
        # stored -0 reads back as 0
        ZADD inf1 +inf a -inf b 0 c -1 n
        ZADD inf2 -inf a +inf b 5 c
        ZADD inf3 1 a
        ZUNION 2 inf1 inf2 WITHSCORES
        ZINTER 2 inf1 inf2 WEIGHTS 0 1 WITHSCORES
        ZINTER 2 inf1 inf1 WEIGHTS 2 0 WITHSCORES
        ZINTER 2 inf2 inf1 WEIGHTS 0 0 AGGREGATE MIN WITHSCORES
        ZINTER 2 inf1 inf3 WEIGHTS 1 0 WITHSCORES
        ZINTER 2 inf3 inf1 WEIGHTS 0 0 WITHSCORES
        ZUNION 2 inf1 inf3 WEIGHTS -1 inf WITHSCORES
        ZINTER 2 inf1 inf3 WEIGHTS 0 1 WITHSCORES
        ZINTER 2 inf1 inf3 WEIGHTS 0 1 AGGREGATE MIN WITHSCORES
        ZINTER 2 inf1 inf3 WEIGHTS 0 1 AGGREGATE MAX WITHSCORES
        ZADD neg -1 a
        ZUNION 2 neg s1 WEIGHTS 0 0 WITHSCORES
        ZUNION 2 s1 neg WEIGHTS 0 0 WITHSCORES
        ZUNION 1 inf1 WEIGHTS 0 WITHSCORES
        ZUNIONSTORE out 1 inf1 WEIGHTS 0
        ZRANGE out 0 -1 WITHSCORES
        ZSCORE out n
        ZUNION 2 inf1 s1 WEIGHTS 0 0 WITHSCORES
        # wrong types
        ZADD str 1 a
        ZINCRBY str 1 a
        ZSCORE str a
        ZMSCORE str a
        ZRANGE str 0 -1
        ZRANGE str x 1
        ZRANGE str 0 1 BYSCORE LIMIT 0 1
        ZRANGEBYLEX str - +
        ZCARD str
        ZCOUNT str -inf +inf
        ZLEXCOUNT str - +
        ZRANK str a
        ZREM str a
        ZPOPMIN str
        ZPOPMIN str x
        ZMPOP 2 nosuch str MIN
        ZRANGESTORE dst str 0 -1
        ZREMRANGEBYRANK str 0 -1
        ZRANDMEMBER str
        ZRANDMEMBER nosuch
        ZRANDMEMBER nosuch 2
        ZRANDMEMBER z1 0
        ZRANDMEMBER z1 x
        ZRANDMEMBER z1 1 WITHSCORES x
        ZREM z1 a b c zz
        EXISTS z1
        "#,
    );
}

/// INCRBYFLOAT and HINCRBYFLOAT in C long double, bit for bit as Redis on x86-64: seeded
/// increments over every magnitude a long double holds (near 2^63, 17+ significant digits,
/// 1e±300, 1e±4000, denormals, hexadecimal), compared reply by reply.
#[test]
fn float_increments_match_redis_in_long_double() {
    let _turn = DB_LOCKS[12].lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut theirs) = reference("float_increments_match_redis_in_long_double", 12) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut script: Vec<Vec<String>> = Vec::new();
    for i in 0..3000 {
        let r = next();
        let mantissa = next() % 1_000_000_000_000_000_000;
        let increment = match r % 9 {
            0 => format!("{}", (next() % 2000) as i64 - 1000),
            1 => format!(
                "{}.{:017}",
                (next() % 100) as i64 - 50,
                mantissa % 100_000_000_000_000_000
            ),
            2 => format!("9223372036854775{:03}", next() % 1000),
            3 => format!("-{mantissa}e{}", (next() % 600) as i64 - 300),
            4 => format!("{mantissa}e{}", (next() % 8000) as i64 - 4000),
            5 => format!("1e-49{}", 40 + next() % 10),
            6 => format!("0x1.{:x}p{}", next() % 0xfffff, (next() % 100) as i64 - 50),
            7 => format!("{}.5", (next() % 10) as i64 - 5),
            _ => format!("{}e-{}", mantissa % 1000, next() % 30),
        };
        let key = format!("ld:{}", r % 4);
        if i % 2 == 0 {
            script.push(vec!["INCRBYFLOAT".into(), key, increment]);
        } else {
            script.push(vec![
                "HINCRBYFLOAT".into(),
                format!("h{key}"),
                "f".into(),
                increment,
            ]);
        }
        if r % 97 == 0 {
            script.push(vec![
                "DEL".into(),
                format!("ld:{}", r % 4),
                format!("hld:{}", r % 4),
            ]);
        }
    }
    let lines: Vec<Vec<&[u8]>> = script
        .iter()
        .map(|c| c.iter().map(|a| a.as_bytes()).collect())
        .collect();
    compare(&mut ours, &mut theirs, &lines);
    theirs.cmd_str(&["FLUSHDB"]);
}

/// Extreme counts, cursors and DB indexes get Redis 7.0.15's replies (found by a hostile
/// client: each used to differ).
#[test]
fn extreme_arguments_match_redis() {
    run_script(
        "extreme_arguments_match_redis",
        11,
        r#"
        HSET h a 1 b 2
        HRANDFIELD h 9223372036854775807
        HRANDFIELD h 9223372036854775807 WITHVALUES
        HRANDFIELD h -9223372036854775807 WITHVALUES
        SCAN 18446744073709551616
        SCAN 1x
        SCAN " 1"
        SCAN -
        SELECT 99999999999
        SELECT -1
        SELECT x
        MOVE h 9223372036854775807
        MOVE h -1
        SWAPDB 0 99999999999
        SWAPDB x 0
        SWAPDB 0 100
        COPY h h2 DB 99999999999
        COPY h h2 DB -1
        "#,
    );
}
