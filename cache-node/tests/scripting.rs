//! Scripting end to end: EVAL, EVALSHA, SCRIPT, FUNCTION and FCALL against the node and the
//! reference Redis (`FERROCACHE_REFERENCE_REDIS`, database 10, keys under `lua:`),
//! byte-identical replies expected, errors included.

mod common;

use std::sync::{Mutex, PoisonError};

use common::{compare, node, reference};

/// Tests here share reference database 10: one at a time.
static DB10: Mutex<()> = Mutex::new(());

const DB: u32 = 10;

/// Splits a line into arguments: words, or double-quoted strings where `\"`, `\\` and `\n`
/// are escapes (Lua code needs quotes and newlines).
fn words(line: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some(other) => word.push(other),
                        None => {}
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word.into_bytes());
    }
    out
}

fn run(test: &str, script: &str, cleanup: &[&[&str]]) {
    let _turn = DB10.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut theirs) = reference(test, DB) else {
        return;
    };
    for c in cleanup {
        theirs.cmd_str(c);
    }
    let node = node(&[]);
    let mut ours = node.raw();
    assert_eq!(ours.cmd_str(&["SELECT", &DB.to_string()]), b"+OK\r\n");
    let owned: Vec<Vec<Vec<u8>>> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(words)
        .collect();
    let lines: Vec<Vec<&[u8]>> = owned
        .iter()
        .map(|l| l.iter().map(Vec::as_slice).collect())
        .collect();
    compare(&mut ours, &mut theirs, &lines);
    for c in cleanup {
        theirs.cmd_str(c);
    }
    theirs.cmd_str(&["FLUSHDB"]);
}

#[test]
fn eval_replies_match_redis() {
    run(
        "eval_replies_match_redis",
        r##"
        EVAL "return 1" 0
        EVAL "return 3.99" 0
        EVAL "return -3.99" 0
        EVAL "return 'hello'" 0
        EVAL "return true" 0
        EVAL "return false" 0
        EVAL "return nil" 0
        EVAL "return {1,2,3,'ciao',{1,2}}" 0
        EVAL "return {1,2,nil,4}" 0
        EVAL "return {}" 0
        EVAL "return {err='My Error'}" 0
        EVAL "return {ok='FINE'}" 0
        EVAL "return redis.error_reply('My Error')" 0
        EVAL "return redis.error_reply('-CODE detail')" 0
        EVAL "return redis.status_reply('STATUS')" 0
        EVAL "return redis.error_reply(1)" 0
        EVAL "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}" 2 lua:a lua:b x y
        EVAL "return #KEYS + #ARGV" 0
        EVAL "return redis.sha1hex('')" 0
        EVAL "return redis.sha1hex('Pizza & Mandolino')" 0
        EVAL "return redis.REDIS_VERSION" 0
        EVAL "return redis.REDIS_VERSION_NUM" 0
        EVAL "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}" 0
        EVAL "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE, redis.REPL_ALL}" 0
        EVAL "redis.log(redis.LOG_WARNING, 'from a test') return 1" 0
        EVAL "return type(redis.replicate_commands())" 0
        EVAL "redis.set_repl(redis.REPL_ALL) return 1" 0
        EVAL "return 1" -1
        EVAL "return 1" 3 a
        EVAL "return 1" x
        "##,
        &[],
    );
}

#[test]
fn redis_call_matches_redis() {
    run(
        "redis_call_matches_redis",
        r##"
        EVAL "return redis.call('set', KEYS[1], ARGV[1])" 1 lua:s 5
        EVAL "return redis.call('get', KEYS[1])" 1 lua:s
        EVAL "return redis.call('incrby', KEYS[1], 10)" 1 lua:s
        EVAL "return redis.call('get', 'lua:nosuch')" 0
        EVAL "return redis.call('rpush', 'lua:l', 1, 2, 3.5)" 0
        EVAL "return redis.call('lrange', 'lua:l', 0, -1)" 0
        EVAL "return redis.call('hset', 'lua:h', 'f', 'v')" 0
        EVAL "return redis.call('hgetall', 'lua:h')" 0
        EVAL "return redis.call('ping')" 0
        EVAL "return redis.call('type', 'lua:l')" 0
        EVAL "return redis.call('incr', 'lua:l')" 0
        EVAL "return redis.pcall('incr', 'lua:l')" 0
        EVAL "local r = redis.pcall('incr', 'lua:l') return r['err']" 0
        EVAL "return redis.call('nosuch')" 0
        EVAL "return redis.pcall('nosuch')" 0
        EVAL "return redis.call('get')" 0
        EVAL "return redis.call()" 0
        EVAL "return redis.call('get', {})" 0
        EVAL "return redis.call('eval', 'return 1', 0)" 0
        EVAL "return redis.call('multi')" 0
        EVAL "return redis.call('client', 'nosuch')" 0
        EVAL "redis.call('select', 9) return redis.call('get', 'lua:s')" 0
        GET lua:s
        EVAL "return redis.call('exists', 'lua:s', 'lua:l', 'lua:nosuch')" 0
        EVAL "local ok, e = pcall(redis.call, 'nosuch') return e['err']" 0
        EVAL "local ok, e = pcall(function() error('raw') end) return e" 0
        EVAL "return redis.call('zadd', 'lua:z', 1.5, 'a', 2, 'b')" 0
        EVAL "return redis.call('zscore', 'lua:z', 'a')" 0
        EVAL "return redis.call('zrange', 'lua:z', 0, -1, 'withscores')" 0
        EVAL "redis.setresp(3) return redis.call('zscore', 'lua:z', 'a')" 0
        EVAL "redis.setresp(3) return redis.call('hgetall', 'lua:h')" 0
        EVAL "redis.setresp(3) return redis.call('get', 'lua:nosuch')" 0
        EVAL "redis.setresp(3) return redis.call('smembers', 'lua:nosuch')" 0
        EVAL "redis.setresp(4)" 0
        EVAL "redis.setresp()" 0
        EVAL "return redis.call('blpop', 'lua:nolist', 0)" 0
        EVAL "return redis.acl_check_cmd('set', 'lua:xx', 1)" 0
        EVAL "return redis.acl_check_cmd('invalid-cmd', 'arg')" 0
        EVAL "return redis.acl_check_cmd()" 0
        "##,
        &[],
    );
}

#[test]
fn sandbox_and_errors_match_redis() {
    run(
        "sandbox_and_errors_match_redis",
        r##"
        EVAL "return a" 0
        EVAL "x = 1" 0
        EVAL "string.x = 1" 0
        EVAL "redis.call = nil" 0
        EVAL "print(1)" 0
        EVAL "return os" 0
        EVAL "return loadfile" 0
        EVAL "return dofile" 0
        EVAL "error('boo')" 0
        EVAL "error({err='MY boo'})" 0
        EVAL "error()" 0
        EVAL "return ' 'x" 0
        EVAL "local t = nil return t.x" 0
        EVAL "local a = {} a.b.c = 1" 0
        EVAL "return {1, 2, x}" 0
        EVAL "return tostring(1/0)" 0
        EVAL "return type(_G)" 0
        EVAL "return _G.KEYS[1]" 1 lua:k
        EVAL "setmetatable(_G, {})" 0
        EVAL "local g = getmetatable(_G) g.__index = {}" 0
        EVAL "return loadstring(string.dump(function() return 1 end))()" 0
        EVAL "return loadstring('return 7')()" 0
        EVAL "rawset(_G, 'x', 1)" 0
        EVAL "local function f() return redis.call('nosuch') end return f()" 0
        EVAL "return math.random(0)" 0
        EVAL "return cjson.decode('{')" 0
        EVAL "return bit.band()" 0
        EVAL "#!lua\nreturn 1" 0
        EVAL "#!lua flags=no-writes\nreturn redis.call('set', 'lua:x', 1)" 0
        EVAL "#!lua flags=no-writes\nreturn redis.call('get', 'lua:x')" 0
        EVAL "#!lua flags=bogus\nreturn 1" 0
        EVAL "#!lua other=1\nreturn 1" 0
        EVAL "#!python\nreturn 1" 0
        EVAL "#!lua  flags=no-writes 'x\nreturn 1" 0
        EVAL "#!lua \"flags=no-writes\"\nreturn 1" 0
        EVAL "#!lua" 0
        EVAL_RO "return redis.call('set', 'lua:x', 1)" 0
        EVAL_RO "return redis.call('get', 'lua:x')" 0
        EVAL_RO "#!lua\nreturn 1" 0
        "##,
        &[],
    );
}

#[test]
fn libraries_match_redis() {
    run(
        "libraries_match_redis",
        r##"
        EVAL "return cjson.encode({1, 2, 3, 'x', {a = 1}})" 0
        EVAL "return cjson.encode({})" 0
        EVAL "return cjson.encode('a/b\"c')" 0
        EVAL "return cjson.encode(3.25)" 0
        EVAL "return cjson.encode({[1] = 1, [3] = 3})" 0
        EVAL "return cjson.decode('[1,2,{\"a\":3.5}]')[3].a" 0
        EVAL "return cjson.decode('\"\\\\u0041\\\\n\"')" 0
        EVAL "return cjson.decode('[1, null, 3]')[3]" 0
        EVAL "return cjson.decode('{\"k\": [true, false]}').k[1]" 0
        EVAL "return cjson.encode(cjson.decode('{\"a\":[1,2,3]}'))" 0
        EVAL "return cjson.decode('[1,2')" 0
        EVAL "return cjson.encode(function() end)" 0
        EVAL "return {bit.band(7, 3), bit.bor(1, 2), bit.bxor(3, 1), bit.bnot(0)}" 0
        EVAL "return {bit.lshift(1, 4), bit.rshift(-1, 28), bit.arshift(-16, 2)}" 0
        EVAL "return {bit.tohex(255), bit.tohex(255, -4), bit.tobit(2^32 + 5)}" 0
        EVAL "return {bit.rol(1, 33), bit.ror(1, 1), bit.bswap(1)}" 0
        EVAL "math.randomseed(42) return {math.random(100), math.random(1, 10), math.random() * 1000}" 0
        EVAL "return string.format('%d-%s', 5, 'x')" 0
        EVAL "return table.concat({'a', 'b'}, ',')" 0
        EVAL "return string.rep('x', 3)" 0
        EVAL "local e = cmsgpack.pack(0.1, -1099511627776, 1.5, {1, 2, 3}, {a = 1}, 'x', true, nil, 300, -200, 70000, string.rep('y', 40)) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h" 0
        EVAL "local a = {y = 5} local b = {x = a} a['x'] = b local e = cmsgpack.pack(a) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h" 0
        EVAL "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1, 2}, {k = 'v'}))}" 0
        EVAL "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 0)}" 0
        EVAL "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 0)}" 0
        EVAL "return cmsgpack.unpack(string.char(220))" 0
        EVAL "return cmsgpack.unpack(string.char(193))" 0
        EVAL "cmsgpack.pack = 1" 0
        EVAL "local e = struct.pack('>iHbd', -5, 513, 7, 1.5) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h" 0
        EVAL "local e = struct.pack('<!4bi', 1, 2) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h" 0
        EVAL "return {struct.unpack('>iHbd', struct.pack('>iHbd', -5, 513, 7, 1.5))}" 0
        EVAL "return {struct.unpack('<I2i8', struct.pack('<I2i8', 65535, -2))}" 0
        EVAL "return {struct.unpack('c3s', struct.pack('c3s', 'abcdef', 'zz'))}" 0
        EVAL "return {struct.unpack('bc0', struct.pack('bc3', 3, 'xyz'))}" 0
        EVAL "return {struct.size('>iHbd'), struct.size('!8bd'), struct.size('i16')}" 0
        EVAL "return struct.size('s')" 0
        EVAL "return struct.pack('i40', 1)" 0
        EVAL "return struct.pack('q', 1)" 0
        EVAL "return {struct.unpack('i', 'ab')}" 0
        EVAL "return {struct.unpack('s', 'abc')}" 0
        EVAL "return {struct.unpack('>h', struct.pack('>h', 3), 1)}" 0
        EVAL "return struct.pack('c5', 'ab')" 0
        EVAL "return {struct.unpack('B', 'abc', 2)}" 0
        EVAL "return struct.size('c0')" 0
        EVAL "return {struct.unpack('q', 'a')}" 0
        EVAL "return struct.size('q')" 0
        EVAL "return {struct.unpack('>d>f', struct.pack('>d>f', 0.1, 0.25))}" 0
        EVAL "return struct.pack('!3i', 1)" 0
        EVAL "struct.pack = 1" 0
        EVAL "cjson.encode_max_depth(1) local ok = pcall(cjson.encode, {{1}}) cjson.encode_max_depth(1000) return ok" 0
        EVAL "cjson.encode_invalid_numbers(true) local ok = pcall(cjson.encode, {0/0}) cjson.encode_invalid_numbers(false) return ok" 0
        "##,
        &[],
    );
}

#[test]
fn script_cache_matches_redis() {
    run(
        "script_cache_matches_redis",
        r##"
        SCRIPT LOAD "return 'loaded-by-lua-test'"
        EVALSHA 7c3c5e0adc00e0c5a8e8e7c4b7e1dd3fa4a4cfd3 0
        EVALSHA short 0
        SCRIPT LOAD "return ' 'x"
        SCRIPT EXISTS 0000000000000000000000000000000000000000
        SCRIPT FLUSH BOGUS
        SCRIPT BOGUS
        SCRIPT KILL
        SCRIPT HELP
        EVAL "return 'lua-test-eval-cached'" 0
        "##,
        &[],
    );
    // The SHA of what SCRIPT LOAD cached runs under EVALSHA and EVALSHA_RO on both.
    let _turn = DB10.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut theirs) = reference("script_cache_matches_redis", DB) else {
        return;
    };
    let node = node(&[]);
    let mut ours = node.raw();
    let body = "return {KEYS[1], ARGV[1], 'lua-test-sha'}";
    let load = ours.cmd_str(&["SCRIPT", "LOAD", body]);
    assert_eq!(load, theirs.cmd_str(&["SCRIPT", "LOAD", body]));
    let sha = String::from_utf8_lossy(&load[5..45]).to_string();
    let upper = sha.to_ascii_uppercase();
    let lines: Vec<Vec<&[u8]>> = vec![
        vec![b"EVALSHA", sha.as_bytes(), b"1", b"lua:k", b"v"],
        vec![b"EVALSHA", upper.as_bytes(), b"0"],
        vec![b"EVALSHA_RO", sha.as_bytes(), b"0", b"x"],
        vec![
            b"SCRIPT",
            b"EXISTS",
            sha.as_bytes(),
            upper.as_bytes(),
            b"nope",
        ],
    ];
    compare(&mut ours, &mut theirs, &lines);
}

#[test]
fn functions_match_redis() {
    let lib = "#!lua name=luatestlib\n\
        redis.register_function('luatest_get', function(keys, args) return redis.call('get', keys[1]) end)\n\
        redis.register_function{function_name='luatest_set', callback=function(keys, args) return redis.call('set', keys[1], args[1]) end, description='sets'}\n\
        redis.register_function{function_name='luatest_ro', callback=function(keys, args) return #keys + #args end, flags={'no-writes'}}";
    let one = "#!lua name=luatestone\n\
        redis.register_function{function_name='luatest_one', callback=function() return 1 end, flags={'no-writes', 'allow-oom'}, description='one'}";
    let _turn = DB10.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut theirs) = reference("functions_match_redis", DB) else {
        return;
    };
    theirs.cmd_str(&["FUNCTION", "DELETE", "luatestlib"]);
    theirs.cmd_str(&["FUNCTION", "DELETE", "luatestone"]);
    let node = node(&[]);
    let mut ours = node.raw();
    assert_eq!(ours.cmd_str(&["SELECT", "10"]), b"+OK\r\n");
    let lines: Vec<Vec<&[u8]>> = vec![
        vec![b"FCALL", b"luatest_get", b"1", b"lua:f"],
        vec![b"FUNCTION", b"LOAD", lib.as_bytes()],
        vec![b"FUNCTION", b"LOAD", lib.as_bytes()],
        vec![b"FCALL", b"luatest_set", b"1", b"lua:f", b"value"],
        vec![b"FCALL", b"luatest_get", b"1", b"lua:f"],
        vec![b"FCALL", b"luatest_ro", b"2", b"lua:a", b"lua:b", b"x"],
        vec![b"FCALL_RO", b"luatest_set", b"1", b"lua:f", b"v"],
        vec![b"FCALL_RO", b"luatest_ro", b"0"],
        vec![b"FCALL", b"luatest_get", b"x", b"lua:f"],
        vec![b"FCALL", b"luatest_get", b"5", b"lua:f"],
        // One function per library listed: Redis lists a library's functions in hash order.
        vec![b"FUNCTION", b"LOAD", one.as_bytes()],
        vec![b"FUNCTION", b"LIST", b"LIBRARYNAME", b"luatestone*"],
        vec![b"FUNCTION", b"LIST", b"WITHCODE", b"LIBRARYNAME", b"luatestone"],
        vec![b"FUNCTION", b"DELETE", b"luatestone"],
        vec![b"FUNCTION", b"LIST", b"BOGUS"],
        vec![b"FUNCTION", b"LOAD", b"return 1"],
        vec![b"FUNCTION", b"LOAD", b"#!lua\nreturn 1"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=luatest2 x=y\nreturn 1"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=luatest2\nreturn 1"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=luatest2\nerror('boom')"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=luatest2\n' 'x"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=bad-name\nreturn 1"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=luatest2\nredis.register_function('luatest_get', function() return 1 end)"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=luatest2\nredis.register_function('x', 1)"],
        vec![b"FUNCTION", b"LOAD", b"#!lua name=luatest2\nredis.register_function{function_name='x', callback=function() end, flags={'bogus'}}"],
        vec![b"FUNCTION", b"LOAD", b"#!nolua name=luatest2\nreturn 1"],
        vec![b"FUNCTION", b"LOAD", b"BOGUS", b"x"],
        vec![b"FUNCTION", b"DELETE", b"luatestlib"],
        vec![b"FUNCTION", b"DELETE", b"luatestlib"],
        vec![b"FCALL", b"luatest_get", b"1", b"lua:f"],
    ];
    compare(&mut ours, &mut theirs, &lines);
    theirs.cmd_str(&["FUNCTION", "DELETE", "luatestlib"]);
    theirs.cmd_str(&["FLUSHDB"]);
}

#[test]
fn scripts_inside_multi_match_redis() {
    run(
        "scripts_inside_multi_match_redis",
        r##"
        MULTI
        EVAL "return redis.call('incr', 'lua:m')" 0
        EVAL "return redis.call('incr', 'lua:m')" 0
        EXEC
        "##,
        &[],
    );
}

/// redis-py's `Lock` (acquire, contention, extend, reacquire, release, not-owned, NOSCRIPT
/// fallback) against the node, under RESP2 and RESP3: `tests/clients/redis_py_lock.py`. A
/// missing python3 or redis module (exit 3) is a skip, unless `FERROCACHE_REQUIRE_CLIENTS=1`.
#[test]
fn redis_py_lock_works() {
    let node = node(&[]);
    common::python_client("redis_py_lock.py", &node.addr.to_string());
}

/// A script's write reaches WATCH like a client's: another connection's EXEC aborts.
#[test]
fn script_writes_abort_watchers_like_redis() {
    let _turn = DB10.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut theirs) = reference("script_writes_abort_watchers_like_redis", DB) else {
        return;
    };
    let addr = common::reference_redis("script_writes_abort_watchers_like_redis")
        .expect("reference address");
    let mut theirs2 = common::RawConn::connect(&addr);
    assert_eq!(theirs2.cmd_str(&["SELECT", "10"]), b"+OK\r\n");
    let node = node(&[]);
    let mut ours = node.raw();
    let mut ours2 = node.raw();
    for (a, b) in [(&mut ours, &mut theirs), (&mut ours2, &mut theirs2)] {
        assert_eq!(a.cmd_str(&["SELECT", "10"]), b.cmd_str(&["SELECT", "10"]));
    }
    let steps: &[(bool, &[&str])] = &[
        (false, &["SET", "lua:w", "1"]),
        (false, &["WATCH", "lua:w"]),
        (
            true,
            &["EVAL", "return redis.call('incr', KEYS[1])", "1", "lua:w"],
        ),
        (false, &["MULTI"]),
        (false, &["GET", "lua:w"]),
        (false, &["EXEC"]),
        (false, &["GET", "lua:w"]),
    ];
    for (second, args) in steps {
        let (a, b) = if *second {
            (ours2.cmd_str(args), theirs2.cmd_str(args))
        } else {
            (ours.cmd_str(args), theirs.cmd_str(args))
        };
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "reply differs for {args:?}"
        );
    }
    theirs.cmd_str(&["FLUSHDB"]);
}

/// A script's writes reach the backing store like a client's: after a restart on the same
/// SQLite file the node reads them back (write-through and write-back).
#[test]
fn script_writes_reach_the_backing_store() {
    for mode in ["write-through", "write-back"] {
        let dir = std::env::temp_dir().join(format!(
            "ferrocache-lua-{mode}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let d = dir.display().to_string();
        let args = ["--backing-mode", mode, "--dir", &d];
        let mut first = node(&args);
        let mut c = first.raw();
        let script = "redis.call('set', KEYS[1], ARGV[1]) redis.call('hset', 'lua:undeclared', 'f', ARGV[1]) return redis.call('get', KEYS[1])";
        assert_eq!(
            c.cmd_str(&["EVAL", script, "1", "lua:declared", mode]),
            format!("${}\r\n{mode}\r\n", mode.len()).into_bytes()
        );
        first.terminate();
        assert!(first.wait_exit(std::time::Duration::from_secs(20)));
        let second = node(&args);
        let mut c = second.raw();
        assert_eq!(
            c.cmd_str(&["GET", "lua:declared"]),
            format!("${}\r\n{mode}\r\n", mode.len()).into_bytes(),
            "{mode}"
        );
        assert_eq!(
            c.cmd_str(&["HGET", "lua:undeclared", "f"]),
            format!("${}\r\n{mode}\r\n", mode.len()).into_bytes(),
            "{mode}"
        );
        drop(second);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
