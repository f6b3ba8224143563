//! Shared by the end-to-end test files: start the real binary, reach the reference Redis.
#![allow(dead_code)]

pub use cache_testkit::{reference_redis, NodeProcess, RawConn};

pub fn node(args: &[&str]) -> NodeProcess {
    NodeProcess::start(env!("CARGO_BIN_EXE_cache-node"), args)
}

/// A connection to the reference Redis on a database of our own, flushed first, or None (the
/// test is skipped) when `FERROCACHE_REFERENCE_REDIS` is unset.
pub fn reference(test: &str, db: u32) -> Option<RawConn> {
    let addr = reference_redis(test)?;
    let mut conn = RawConn::connect(&addr);
    assert_eq!(conn.cmd_str(&["SELECT", &db.to_string()]), b"+OK\r\n");
    assert_eq!(conn.cmd_str(&["FLUSHDB"]), b"+OK\r\n");
    Some(conn)
}

/// Sends each command to both servers and asserts byte-identical replies.
pub fn compare(ours: &mut RawConn, theirs: &mut RawConn, script: &[Vec<&[u8]>]) {
    for cmd in script {
        let a = ours.cmd(cmd);
        let b = theirs.cmd(cmd);
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "reply differs for {:?}",
            cmd.iter()
                .map(|x| String::from_utf8_lossy(x))
                .collect::<Vec<_>>()
        );
    }
}

/// Splits a line like `SET k "a b"` into arguments (inline-command rules, without escapes).
pub fn words(line: &str) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix('"') {
            let end = stripped.find('"').expect("closing quote");
            out.push(&stripped.as_bytes()[..end]);
            rest = stripped[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(&rest.as_bytes()[..end]);
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// The commands of a test script: one per line, blank lines and `#` comments skipped.
pub fn script(text: &str) -> Vec<Vec<&[u8]>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(words)
        .collect()
}

/// Runs one command on a `redis` connection, panicking with the key on an error reply.
pub fn run(c: &mut redis::Connection, args: &[&[u8]]) -> redis::Value {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| {
        panic!(
            "{:?}: {e}",
            String::from_utf8_lossy(args.get(1).copied().unwrap_or_default())
        )
    })
}

/// Everything a client can read of a key, in a comparable form.
pub fn observe(c: &mut redis::Connection, key: &str) -> Vec<redis::Value> {
    let t: String = redis::cmd("TYPE").arg(key).query(c).unwrap();
    let k = key.as_bytes();
    let mut out = vec![redis::Value::SimpleString(t.clone())];
    let sorted = |v: redis::Value| match v {
        redis::Value::Array(mut items) => {
            items.sort_by_key(|i| format!("{i:?}"));
            redis::Value::Array(items)
        }
        other => other,
    };
    match t.as_str() {
        "string" => out.push(run(c, &[b"GET", k])),
        "list" => out.push(run(c, &[b"LRANGE", k, b"0", b"-1"])),
        "set" => out.push(sorted(run(c, &[b"SMEMBERS", k]))),
        "hash" => out.push(run(c, &[b"HGETALL", k])),
        "zset" => out.push(run(c, &[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"])),
        "stream" => {
            out.push(run(c, &[b"XRANGE", k, b"-", b"+"]));
            out.push(run(c, &[b"XINFO", b"STREAM", k, b"FULL"]));
        }
        other => panic!("type {other}"),
    }
    out
}

/// Runs `python3 tests/clients/SCRIPT ADDR` from the workspace root and asserts it passed
/// (its last line `N passed, 0 failed`). A missing python3 or redis module (exit 3) is a
/// skip, unless `FERROCACHE_REQUIRE_CLIENTS=1`. The script bounds its own run time.
pub fn python_client(script: &str, addr: &str) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = std::process::Command::new("python3")
        .arg(format!("tests/clients/{script}"))
        .arg(addr)
        .current_dir(root)
        .output();
    let required = std::env::var("FERROCACHE_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            eprintln!("SKIPPED {script}: python3 is not installed");
            return;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(3) && !required {
        eprintln!("{}", stdout.trim());
        return;
    }
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
