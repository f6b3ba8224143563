//! Client scripts under `tests/clients/` run against a node or a proxy: the target they talk
//! to, a bounded run, and the skip rule for a missing runtime or library.
//!
//! A script that finds its runtime or library missing exits 3 and says `SKIPPED`; the test
//! then passes with that line, unless `FERROCACHE_REQUIRE_CLIENTS=1` (set by `.ci/run`, which
//! installs them) makes it a failure.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{node, Cluster, NodeProcess};

/// Where the scripts live: `tests/clients/` at the workspace root.
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients")
}

/// Which server a client talks to.
pub enum Target {
    Node(NodeProcess),
    Proxy(Cluster),
}

impl Target {
    pub fn node() -> Target {
        Target::Node(node(&[]))
    }

    /// A proxy in front of three nodes.
    pub fn proxy() -> Target {
        Target::Proxy(Cluster::start(&[]))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Node(_) => "node",
            Target::Proxy(_) => "proxy",
        }
    }

    pub fn addr(&self) -> String {
        match self {
            Target::Node(n) => n.addr.to_string(),
            Target::Proxy(c) => c.proxy.addr.to_string(),
        }
    }

    pub fn url(&self, resp3: bool) -> String {
        let protocol = if resp3 { "?protocol=resp3" } else { "" };
        format!("redis://{}/{protocol}", self.addr())
    }
}

/// How long one script may run before it and everything it started are killed.
pub const SCRIPT_LIMIT: Duration = Duration::from_secs(90);

/// Runs `program args… ADDR TARGET` from the workspace root and asserts it exits 0 within
/// [`SCRIPT_LIMIT`]. Exit 3 (or a missing program) is a skip. The script runs in a process
/// group of its own, so the workers it starts (rq, Celery) die with it on a timeout.
pub fn run_script(program: &str, args: &[&str], target: &Target) {
    let what = format!("{program} {} against the {}", args.join(" "), target.name());
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .arg(target.addr())
        .arg(target.name())
        .current_dir(clients_dir().join("../.."))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return skip(&format!("SKIPPED {what}: {program} is not installed"));
        }
        Err(e) => panic!("cannot run {what}: {e}"),
    };
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The whole group, on a timeout and after a normal exit alike: whatever the script
    // started and left behind must not outlive the test (nor hold its pipes open).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let Some(status) = status else {
        panic!("{what} did not finish in {SCRIPT_LIMIT:?}:\n{stdout}\n--- stderr ---\n{stderr}");
    };
    if status.code() == Some(3) {
        return skip(stdout.trim());
    }
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n--- stderr ---\n{stderr}"
    );
    // Known failures stay visible in the test log.
    for line in stdout.lines().filter(|l| l.starts_with("KNOWN-FAILURE")) {
        eprintln!("{what}: {line}");
    }
    eprintln!(
        "{what}: passed in {:.1}s ({} checks)",
        started.elapsed().as_secs_f64(),
        stdout.lines().filter(|l| l.starts_with("ok ")).count()
    );
}

/// Reads a pipe to its end on a thread of its own, so a chatty script never blocks on it.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

pub fn skip(message: &str) {
    if std::env::var("FERROCACHE_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!("{message} (FERROCACHE_REQUIRE_CLIENTS=1: .ci/run installs the clients)");
    }
    eprintln!("{message}");
}
