//! redis.conf files start a node as they start redis-server: Debian's own file, a misspelled
//! directive refused with the file, line and name, every Redis 7.0 parameter known, refused
//! values refused loudly, and CONFIG REWRITE writing the running configuration back.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use common::{node, reference_redis, RawConn};

/// CONFIG GET's RESP2 reply (a flat array of bulk strings) as a map.
fn config_get(conn: &mut RawConn, pattern: &str) -> HashMap<String, String> {
    let reply = conn.cmd_str(&["CONFIG", "GET", pattern]);
    let mut lines = reply
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let header = lines.next().expect("array header");
    assert_eq!(
        header.first(),
        Some(&b'*'),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let mut words = Vec::new();
    while let Some(len) = lines.next().filter(|l| l.starts_with(b"$")) {
        let _ = len;
        words.push(String::from_utf8_lossy(lines.next().expect("bulk")).into_owned());
    }
    words
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ferrocache-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn debians_redis_conf_starts_a_node() {
    let path = "/etc/redis/redis.conf";
    if std::fs::read_to_string(path).is_err() {
        println!("SKIPPED debians_redis_conf_starts_a_node: no readable {path}");
        return;
    }
    let dir = TempDir::new("debian");
    let pidfile = dir.path("node.pid");
    // The file daemonizes and logs to /var/log/redis: the test keeps the node in the
    // foreground and its log on stdout (where the harness reads its address), as the
    // command line wins over the file.
    let node = node(&[
        "--config",
        path,
        "--daemonize",
        "no",
        "--logfile",
        "",
        "--pidfile",
        &pidfile,
        "--dir",
        &dir.0.to_string_lossy(),
    ]);
    let mut c = node.raw();
    let got = config_get(&mut c, "*");
    assert_eq!(got["tcp-keepalive"], "300");
    assert_eq!(got["hash-max-listpack-entries"], "512");
    assert_eq!(got["hash-max-ziplist-entries"], "512");
    assert_eq!(
        got["client-output-buffer-limit"],
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(
        got["proc-title-template"],
        "{title} {listen-addr} {server-mode}"
    );
    assert_eq!(got["oom-score-adj-values"], "0 200 800");
    assert_eq!(got["daemonize"], "no");
    assert_eq!(
        std::fs::read_to_string(&pidfile).expect("pidfile").trim(),
        node.pid().to_string()
    );
    assert_eq!(c.cmd_str(&["SET", "k", "v"]), b"+OK\r\n");
}

#[test]
fn every_redis_parameter_is_known() {
    let Some(addr) = reference_redis("every_redis_parameter_is_known") else {
        return;
    };
    let mut theirs = RawConn::connect(&addr);
    let node = node(&[]);
    let mut ours = node.raw();
    let redis: BTreeSet<String> = config_get(&mut theirs, "*").into_keys().collect();
    let known: BTreeSet<String> = config_get(&mut ours, "*").into_keys().collect();
    let missing: Vec<&String> = redis.difference(&known).collect();
    assert!(missing.is_empty(), "CONFIG GET * lacks {missing:?}");
    // The encoding knobs the suite sets take and show a value, under both names.
    assert_eq!(
        ours.cmd_str(&[
            "CONFIG",
            "SET",
            "zset-max-ziplist-entries",
            "0",
            "hash-max-ziplist-value",
            "1kb"
        ]),
        b"+OK\r\n"
    );
    let got = config_get(&mut ours, "*-max-*");
    assert_eq!(got["zset-max-listpack-entries"], "0");
    assert_eq!(got["hash-max-listpack-value"], "1024");
    // A value that would mislead is refused, at runtime as at start.
    let refused = String::from_utf8_lossy(&ours.cmd_str(&["CONFIG", "SET", "appendonly", "yes"]))
        .into_owned();
    assert!(
        refused.starts_with("-ERR CONFIG SET failed (possibly related to argument 'appendonly') - 'appendonly yes' is not supported"),
        "{refused}"
    );
    assert_eq!(
        ours.cmd_str(&["CONFIG", "SET", "appendonly", "no"]),
        b"+OK\r\n"
    );
}

fn run_node(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cache-node"))
        .args(args)
        .output()
        .expect("run cache-node")
}

#[test]
fn a_bad_directive_is_refused_with_file_line_and_name() {
    let dir = TempDir::new("bad-directive");
    let conf = dir.file("bad.conf", "# a node\nport 0\ntcp-keepalivee 300\n");
    let out = run_node(&[&conf]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Reading the configuration file {conf}, at line 3"))
            && stderr.contains(">>> 'tcp-keepalivee 300'")
            && stderr.contains("Bad directive or wrong number of arguments"),
        "{stderr}"
    );
    assert!(!stderr.contains("Error:"), "not a Debug dump: {stderr}");

    let conf = dir.file("aof.conf", "port 0\nappendonly yes\n");
    let stderr = String::from_utf8_lossy(&run_node(&[&conf]).stderr).into_owned();
    assert!(
        stderr.contains("at line 2") && stderr.contains("'appendonly yes' is not supported"),
        "{stderr}"
    );

    let conf = dir.file("rename.conf", "rename-command FLUSHALL \"\"\n");
    let stderr = String::from_utf8_lossy(&run_node(&[&conf]).stderr).into_owned();
    assert!(
        stderr.contains("rename-command") && stderr.contains("ACL"),
        "{stderr}"
    );

    let stderr = String::from_utf8_lossy(&run_node(&["--port", "0", "--maxmemory", "lots"]).stderr)
        .into_owned();
    assert!(
        stderr.contains("--maxmemory: argument must be a memory value"),
        "{stderr}"
    );
}

#[test]
fn config_rewrite_writes_back_to_the_file() {
    let dir = TempDir::new("rewrite");
    let conf = dir.file(
        "node.conf",
        "# keep this comment\nmaxmemory 1mb\ntcp-keepalive 100\nmaxmemory 2mb\n",
    );
    let first = node(&["--config", &conf]);
    let mut c = first.raw();
    assert_eq!(config_get(&mut c, "maxmemory")["maxmemory"], "2097152");
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "maxmemory", "3mb", "hz", "20"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd_str(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let text = std::fs::read_to_string(&conf).expect("read back");
    assert!(
        text.starts_with("# keep this comment\nmaxmemory 3145728\ntcp-keepalive 100\n"),
        "{text}"
    );
    assert_eq!(text.matches("maxmemory ").count(), 1, "{text}");
    assert!(text.contains("\nhz 20\n"), "{text}");
    // The rewritten file starts a node with the same values.
    let again = node(&["--config", &conf]);
    let mut d = again.raw();
    let got = config_get(&mut d, "*");
    assert_eq!(got["maxmemory"], "3145728");
    assert_eq!(got["hz"], "20");

    let plain = node(&[]);
    let e = String::from_utf8_lossy(&plain.raw().cmd_str(&["CONFIG", "REWRITE"])).into_owned();
    assert_eq!(e, "-ERR The server is running without a config file\r\n");
}
