//! A seeded, bounded checker: one client writes and reads keys through the proxy while nodes
//! are frozen and thawed (ejection, fallback, readmission). Every acknowledged write is
//! recorded; every read must return a miss (it is a cache) or a value that may be current —
//! never one older than the last acknowledged write.
//!
//! `FERROCACHE_STALE_SEED=N` replays a run; `FERROCACHE_STALE_OPS=N` sizes it.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a read of a key may return: the last acknowledged value, plus any value written
/// after it whose acknowledgement was lost (an error: it may or may not have been applied).
#[derive(Default, Clone)]
struct Allowed {
    acked: Option<u64>,
    maybe: Vec<u64>,
}

#[test]
fn no_read_is_older_than_the_last_acknowledged_write() {
    let seed: u64 = std::env::var("FERROCACHE_STALE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let ops: usize = std::env::var("FERROCACHE_STALE_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15000);
    eprintln!("stale-read checker: FERROCACHE_STALE_SEED={seed} FERROCACHE_STALE_OPS={ops}");
    let cluster = Cluster::start(FAST_FAILOVER);
    let mut conn = cluster.client();
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));

    // Chaos: freeze one node at a time for a while, then thaw it.
    let stop = Arc::new(AtomicBool::new(false));
    let pids: Vec<u32> = cluster.nodes.iter().map(|n| n.pid()).collect();
    let chaos = {
        let stop = stop.clone();
        let pids = pids.clone();
        let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        std::thread::spawn(move || {
            let mut freezes = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200 + rng.below(400)));
                let victim = pids[rng.below(pids.len() as u64) as usize];
                signal(victim, "STOP");
                std::thread::sleep(Duration::from_millis(300 + rng.below(1200)));
                signal(victim, "CONT");
                freezes += 1;
            }
            freezes
        })
    };

    let mut rng = Rng(seed);
    let mut allowed: HashMap<u64, Allowed> = HashMap::new();
    let mut next_value = 1u64;
    let (mut reads, mut hits, mut errors) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..ops {
        if Instant::now() > deadline {
            break;
        }
        let key = rng.below(64);
        let name = format!("chk:{key}");
        let entry = allowed.entry(key).or_default();
        if rng.below(2) == 0 {
            let value = next_value;
            next_value += 1;
            match redis::cmd("SET")
                .arg(&name)
                .arg(value)
                .query::<()>(&mut conn)
            {
                Ok(()) => {
                    entry.acked = Some(value);
                    entry.maybe.clear();
                }
                Err(_) => {
                    errors += 1;
                    entry.maybe.push(value);
                }
            }
        } else {
            reads += 1;
            match redis::cmd("GET").arg(&name).query::<Option<u64>>(&mut conn) {
                Ok(None) => {}
                Ok(Some(v)) => {
                    hits += 1;
                    let fine = entry.acked == Some(v) || entry.maybe.contains(&v);
                    assert!(
                        fine,
                        "stale read of {name}: got {v}, last acknowledged {:?}, unacknowledged {:?} \
                         (replay with FERROCACHE_STALE_SEED={seed})",
                        entry.acked, entry.maybe
                    );
                }
                Err(_) => errors += 1,
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let freezes = chaos.join().unwrap();
    for pid in &pids {
        signal(*pid, "CONT");
    }
    eprintln!("{reads} reads ({hits} hits), {errors} errors, {freezes} freezes");
    assert!(freezes > 0, "the chaos thread never froze a node");
    assert!(hits > 0, "no read ever hit: the checker checked nothing");
}

fn signal(pid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}
