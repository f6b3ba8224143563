//! Soak: 1,000 client connections through the proxy to three nodes under a pipelined mixed
//! load; one node is SIGKILLed midway and restarted on the same port.
//!
//! ```text
//!  1,000 tokio tasks ──raw RESP pipelines──► proxy ──► node 0, node 1 (killed, restarted), node 2
//!  main thread: kill, restart, watch PROXY NODES;  sampler: VmRSS of proxy and survivors
//! ```
//!
//! Checks: every reply is a complete, well-formed RESP frame of the type its command answers;
//! no connection hangs (every pipeline is answered within a timeout) or is dropped; error
//! replies appear only between the kill and shortly after the node's readmission; the proxy
//! readmits the node; the proxy's and the surviving nodes' RSS stops growing after warm-up.
//!
//! `FERROCACHE_SOAK_SECS` sets the load's length (default 20 s; the kill is at 40% of it).

mod common;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_protocol::ReplyScanner;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNS: usize = 1000;
/// Longest a pipeline may wait for its replies before the connection counts as hung. Failover
/// answers within the proxy's timeout (2 s here); the rest is slack for a loaded CI machine.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// After the readmission, replies already in flight may still carry the kill's errors.
const GRACE: Duration = Duration::from_secs(2);

/// Eject after 2 failures, probe every 200 ms. The request timeout is longer than the other
/// tests' 300 ms: a killed node refuses connections at once, so a short timeout only buys
/// false ejections of live nodes when 1,000 clients load a 2-core CI machine.
const FAILOVER: &[&str] = &[
    "--timeout",
    "2000",
    "--server-failure-limit",
    "2",
    "--server-retry-timeout",
    "200",
];

fn soak_secs() -> u64 {
    std::env::var("FERROCACHE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(10)
}

/// `(soft, hard)` limit on open files, from /proc/self/limits.
fn nofile() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut numbers = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// Raises the soft open-file limit to the hard one when `needed` is more than the soft limit
/// (the proxy and nodes started afterwards inherit it). False when even the hard limit is short.
fn ensure_nofile(needed: u64) -> bool {
    let (soft, hard) = nofile();
    if soft >= needed {
        return true;
    }
    if hard < needed {
        return false;
    }
    let hard_text = if hard == u64::MAX {
        "unlimited".to_string()
    } else {
        hard.to_string()
    };
    let _ = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard_text}:{hard_text}"))
        .status();
    nofile().0 >= needed
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// What a command's successful reply starts with.
#[derive(Clone, Copy)]
enum Expect {
    Ok,
    Int,
    Bulk,
    Array,
}

/// A small deterministic generator per connection.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One random command of the mix. Each type has its own key prefix, so no WRONGTYPE; the key
/// space is fixed and lists are trimmed, so memory reaches a plateau.
fn command(rng: &mut Rng, out: &mut Vec<u8>) -> Expect {
    let value = vec![b'v'; rng.below(400) as usize];
    let s = |rng: &mut Rng| format!("s:{}", rng.below(2000));
    match rng.below(12) {
        0 | 1 => {
            let key = s(rng);
            encode(out, &[b"SET", key.as_bytes(), &value]);
            Expect::Ok
        }
        2 => {
            let key = s(rng);
            encode(out, &[b"SET", key.as_bytes(), &value, b"EX", b"3"]);
            Expect::Ok
        }
        3 | 4 => {
            let key = s(rng);
            encode(out, &[b"GET", key.as_bytes()]);
            Expect::Bulk
        }
        5 => {
            let keys: Vec<String> = (0..1 + rng.below(8)).map(|_| s(rng)).collect();
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(keys.iter().map(|k| k.as_bytes()));
            encode(out, &args);
            Expect::Array
        }
        6 => {
            let key = format!("c:{}", rng.below(500));
            encode(out, &[b"INCR", key.as_bytes()]);
            Expect::Int
        }
        7 => {
            let key = format!("h:{}", rng.below(500));
            let field = format!("f{}", rng.below(20));
            encode(out, &[b"HSET", key.as_bytes(), field.as_bytes(), &value]);
            Expect::Int
        }
        8 => {
            let key = format!("h:{}", rng.below(500));
            encode(out, &[b"HGETALL", key.as_bytes()]);
            Expect::Array
        }
        9 => {
            let key = format!("l:{}", rng.below(500));
            encode(out, &[b"LPUSH", key.as_bytes(), &value]);
            Expect::Int
        }
        10 => {
            let key = format!("l:{}", rng.below(500));
            encode(out, &[b"LTRIM", key.as_bytes(), b"0", b"30"]);
            Expect::Ok
        }
        _ => {
            let key = match rng.below(4) {
                0 => s(rng),
                1 => format!("c:{}", rng.below(500)),
                2 => format!("h:{}", rng.below(500)),
                _ => format!("l:{}", rng.below(500)),
            };
            let secs = (1 + rng.below(5)).to_string();
            encode(out, &[b"EXPIRE", key.as_bytes(), secs.as_bytes()]);
            Expect::Int
        }
    }
}

#[derive(Default)]
struct Counters {
    pipelines: AtomicU64,
    replies: AtomicU64,
    /// Error replies, with when they arrived (first few hundred kept).
    errors: AtomicU64,
    error_log: Mutex<Vec<(Instant, String)>>,
}

/// One client connection: pipelines of 1..=6 commands until `until`, a pause of 50–250 ms
/// between them. Returns a description of the first failure.
async fn client(
    id: u64,
    mut stream: TcpStream,
    until: Instant,
    counters: Arc<Counters>,
) -> Result<(), String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0x1234_5678_9ABC_DEF1));
    let mut request = Vec::new();
    let mut input = Vec::with_capacity(16 * 1024);
    let mut expects = Vec::new();
    while Instant::now() < until {
        request.clear();
        expects.clear();
        for _ in 0..1 + rng.below(6) {
            expects.push(command(&mut rng, &mut request));
        }
        stream
            .write_all(&request)
            .await
            .map_err(|e| format!("conn {id}: write: {e}"))?;
        let mut scanner = ReplyScanner::new();
        let mut answered = 0;
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        while answered < expects.len() {
            let frame = scanner
                .scan(&input)
                .map_err(|e| format!("conn {id}: malformed reply ({e}): {:?}", lossy(&input)))?;
            let Some(len) = frame else {
                let read = tokio::time::timeout_at(deadline, stream.read_buf(&mut input)).await;
                match read {
                    Err(_) => return Err(format!("conn {id}: no reply within {REPLY_TIMEOUT:?}")),
                    Ok(Err(e)) => return Err(format!("conn {id}: read: {e}")),
                    Ok(Ok(0)) => return Err(format!("conn {id}: closed by the proxy")),
                    Ok(Ok(_)) => continue,
                }
            };
            let reply: Vec<u8> = input.drain(..len).collect();
            let ok = match (expects[answered], reply[0]) {
                (_, b'-') => {
                    counters.errors.fetch_add(1, Relaxed);
                    let mut log = counters.error_log.lock().unwrap();
                    if log.len() < 500 {
                        log.push((Instant::now(), lossy(&reply)));
                    }
                    true
                }
                (Expect::Ok, _) => reply == b"+OK\r\n",
                (Expect::Int, b) => b == b':',
                (Expect::Bulk, b) => b == b'$',
                (Expect::Array, b) => b == b'*',
            };
            if !ok {
                return Err(format!("conn {id}: unexpected reply {:?}", lossy(&reply)));
            }
            answered += 1;
        }
        counters.pipelines.fetch_add(1, Relaxed);
        counters.replies.fetch_add(expects.len() as u64, Relaxed);
        tokio::time::sleep(Duration::from_millis(50 + rng.below(200))).await;
    }
    Ok(())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

/// RSS must stop growing: after warm-up, the largest sample of the last third of the run may
/// exceed the largest of the first third by at most 20% plus 8 MiB. Maxima rather than means
/// because the allocator hands memory back in steps (jemalloc's 1 s decay) and a single low
/// sample must not make a steady process look like it grew; the absolute slack covers
/// processes of a few tens of MiB where a handful of arena pages is already 20%. A leak of
/// ~100 bytes per request (hundreds of thousands of requests here) fails it.
fn assert_flat(name: &str, samples: &[u64]) {
    assert!(
        samples.len() >= 9,
        "{name}: too few RSS samples: {samples:?}"
    );
    let third = samples.len() / 3;
    let first = *samples[..third].iter().max().unwrap();
    let last = *samples[samples.len() - third..].iter().max().unwrap();
    let allowed = first + first / 5 + 8 * 1024;
    eprintln!("{name}: RSS first third max {first} KiB, last third max {last} KiB");
    assert!(
        last <= allowed,
        "{name}: RSS kept growing: first third max {first} KiB, last third max {last} KiB \
         (allowed {allowed}); samples {samples:?}"
    );
}

#[test]
fn a_thousand_clients_survive_a_node_kill_without_leaks() {
    // Our 1,000 client sockets and the proxy's 1,000 accepted ones, plus room for the rest.
    let needed = CONNS as u64 + 200;
    if !ensure_nofile(needed) {
        eprintln!(
            "SKIPPED soak: the open-file hard limit {} is below the {needed} needed",
            nofile().1
        );
        return;
    }
    let secs = soak_secs();
    let mut nodes: Vec<NodeProcess> = (0..3).map(|_| node(&[])).collect();
    let proxy = proxy_for(&nodes, FAILOVER);
    let mut control = proxy.client();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let counters = Arc::new(Counters::default());
    let proxy_addr = proxy.addr;
    let streams: Vec<TcpStream> = runtime.block_on(async {
        let mut streams = Vec::with_capacity(CONNS);
        for _ in 0..CONNS {
            let stream = TcpStream::connect(proxy_addr)
                .await
                .expect("connect to proxy");
            let _ = stream.set_nodelay(true);
            streams.push(stream);
        }
        streams
    });
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| runtime.spawn(client(i as u64, s, until, counters.clone())))
        .collect();

    // RSS of the proxy and the two nodes that stay up, every 250 ms after a warm-up of a
    // quarter of the run (connections open, key space filled, buffers at their size).
    let watched = vec![
        ("proxy", proxy.pid()),
        ("node 0", nodes[0].pid()),
        ("node 2", nodes[2].pid()),
    ];
    let warm = started + Duration::from_secs(secs) / 4;
    let sampler = std::thread::spawn(move || {
        let mut samples: Vec<Vec<u64>> = vec![Vec::new(); watched.len()];
        while Instant::now() < until {
            if Instant::now() >= warm {
                for (i, (_, pid)) in watched.iter().enumerate() {
                    if let Some(kib) = rss_kib(*pid) {
                        samples[i].push(kib);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        watched
            .into_iter()
            .map(|(name, _)| name)
            .zip(samples)
            .collect::<Vec<_>>()
    });

    // Midway: SIGKILL node 1, bring it back on the same port, wait for the readmission.
    std::thread::sleep(Duration::from_secs(secs) * 2 / 5);
    let port = nodes[1].addr.port().to_string();
    let before_kill = counters.replies.load(Relaxed);
    let killed_at = Instant::now();
    nodes[1].signal("KILL");
    assert!(
        nodes[1].wait_exit(Duration::from_secs(5)),
        "node 1 did not die"
    );
    let ejected = eventually(Duration::from_secs(10), || {
        proxy_nodes(&mut control)[1].contains("state=ejected")
    });
    assert!(
        ejected,
        "node 1 never ejected: {:?}",
        proxy_nodes(&mut control)
    );
    std::thread::sleep(Duration::from_secs(1));
    nodes[1] = node(&["--port", &port]);
    let readmitted = eventually(Duration::from_secs(10), || {
        proxy_nodes(&mut control)[1].contains("state=up")
    });
    let readmitted_at = Instant::now();
    assert!(
        readmitted,
        "node 1 not readmitted: {:?}",
        proxy_nodes(&mut control)
    );
    eprintln!(
        "killed at {:?}, readmitted at {:?}",
        killed_at - started,
        readmitted_at - started
    );
    assert!(
        readmitted_at + GRACE + Duration::from_secs(2) < until,
        "the run is too short to see traffic after the readmission"
    );

    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("client task panicked"));
        }
        results
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {CONNS} connections failed; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let replies = counters.replies.load(Relaxed);
    let errors = counters.errors.load(Relaxed);
    eprintln!(
        "{} pipelines, {replies} replies, {errors} errors over {secs} s",
        counters.pipelines.load(Relaxed)
    );
    assert!(before_kill > CONNS as u64, "little traffic before the kill");
    assert!(
        replies > before_kill * 2,
        "traffic did not go on after the kill"
    );
    // Errors only while node 1 was down or being readmitted.
    let log = counters.error_log.lock().unwrap();
    for (at, text) in log.iter().take(3) {
        eprintln!("error reply at {:?}: {}", *at - started, text.trim_end());
    }
    let stray: Vec<_> = log
        .iter()
        .filter(|(at, _)| *at < killed_at || *at > readmitted_at + GRACE)
        .map(|(at, text)| (*at - started, text.clone()))
        .collect();
    assert!(
        stray.is_empty(),
        "error replies outside the kill window: {stray:?}"
    );
    // Writes to the restarted node's keys land on it again.
    let mut direct = nodes[1].client();
    let landed = eventually(Duration::from_secs(5), || {
        redis::cmd("DBSIZE").query::<i64>(&mut direct).unwrap_or(0) > 0
    });
    assert!(landed, "the restarted node takes no traffic");

    for (name, samples) in sampler.join().unwrap() {
        assert_flat(name, &samples);
    }
    drop(runtime);
}
