//! The node's Prometheus page: the numbers INFO shows, as `ferrocache_*` metrics, plus a
//! latency histogram per command. Served by `cache_net::metrics` on `metrics-addr`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use cache_net::metrics::{Exposition, Render};
use cache_protocol::command::all_specs;

use crate::stats::sum;
use crate::Shared;

/// The render callback for the endpoint. It holds the node weakly: a scrape after the node
/// stopped gets an empty page, and the endpoint never keeps the node alive.
pub fn render_fn(shared: &Arc<Shared>) -> Render {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    Arc::new(move || weak.upgrade().map(|s| render(&s)).unwrap_or_default())
}

const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// One scrape's page.
pub fn render(shared: &Shared) -> String {
    let stats = &shared.stats;
    let mut m = Exposition::new();
    let (used, _) = crate::cmd::server::memory_stats();
    m.connections(
        "ferrocache",
        shared.clients.len() as u64,
        shared.admission.received(),
        shared.admission.rejected(),
    );
    #[rustfmt::skip]
    let scalars: [(&str, &str, &str, u64); 12] = [
        ("uptime_seconds", GAUGE, "Seconds since the node started.", shared.started.elapsed().as_secs()),
        ("blocked_clients", GAUGE, "Clients waiting in a blocking command.", shared.blocking.blocked_clients.load(Relaxed) as u64),
        ("net_input_bytes_total", COUNTER, "Bytes read from clients.", sum(stats, |s| &s.net_input_bytes)),
        ("net_output_bytes_total", COUNTER, "Bytes written to clients.", sum(stats, |s| &s.net_output_bytes)),
        ("keyspace_hits_total", COUNTER, "Key lookups that found the key.", sum(stats, |s| &s.keyspace_hits)),
        ("keyspace_misses_total", COUNTER, "Key lookups that did not find the key.", sum(stats, |s| &s.keyspace_misses)),
        ("expired_keys_total", COUNTER, "Keys removed because their TTL passed.", shared.store.expired_keys()),
        ("evicted_keys_total", COUNTER, "Keys evicted to stay under maxmemory.", shared.store.evicted_keys()),
        ("memory_used_bytes", GAUGE, "Heap bytes in use (INFO used_memory).", used),
        ("memory_max_bytes", GAUGE, "The maxmemory limit (0 = none).", shared.config.maxmemory.load(Relaxed)),
        ("slowlog_length", GAUGE, "Entries in the slow log.", shared.slowlog.len() as u64),
        ("commands_processed_total", COUNTER, "Commands run (INFO total_commands_processed).", stats.commands_processed()),
    ];
    for (name, kind, help, value) in scalars {
        m.single(&format!("ferrocache_{name}"), kind, help, value);
    }

    // Databases with keys.
    let dbs: Vec<(String, usize, usize)> = shared
        .store
        .keyspace_counts()
        .into_iter()
        .enumerate()
        .filter(|(_, (keys, _))| *keys > 0)
        .map(|(db, (keys, expires))| (db.to_string(), keys, expires))
        .collect();
    for (name, help, expiring) in [
        (
            "ferrocache_db_keys",
            "Keys in each non-empty database.",
            false,
        ),
        (
            "ferrocache_db_keys_expiring",
            "Keys with a TTL in each non-empty database.",
            true,
        ),
    ] {
        m.family(name, GAUGE, help);
        for (db, keys, expires) in &dbs {
            let n = if expiring { *expires } else { *keys };
            m.sample(name, &[("db", db)], n as u64);
        }
    }

    // Per command (subcommands as `config|get`, as INFO commandstats names them); only
    // commands that have been called, to keep the page short.
    let per_command: Vec<_> = all_specs()
        .enumerate()
        .map(|(i, spec)| (spec.name, stats.command(i)))
        .filter(|(_, (calls, _, rejected, _))| calls + rejected > 0)
        .collect();
    type Pick = fn(&(u64, u64, u64, u64)) -> u64;
    #[rustfmt::skip]
    let families: [(&str, &str, Pick); 3] = [
        ("ferrocache_command_calls_total", "Calls of each command.", |c| c.0),
        ("ferrocache_command_rejected_calls_total", "Calls refused before running (arity, authentication, out of memory).", |c| c.2),
        ("ferrocache_command_failed_calls_total", "Calls that ran and answered an error.", |c| c.3),
    ];
    for (name, help, pick) in families {
        m.family(name, COUNTER, help);
        for (cmd, counters) in &per_command {
            m.sample(name, &[("cmd", cmd)], pick(counters));
        }
    }
    let duration = "ferrocache_command_duration_seconds";
    m.family(duration, "histogram", "Time each command took to run.");
    for (i, spec) in all_specs().enumerate() {
        let h = stats.latency(i);
        if h.count() > 0 {
            m.histogram(duration, &[("cmd", spec.name)], &h);
        }
    }

    if let Some(engine) = &shared.backing {
        let s = engine.stats();
        #[rustfmt::skip]
        let backing: [(&str, &str, &str, u64); 8] = [
            ("pending_writes", GAUGE, "Writes queued for the backing store and not yet committed.", s.pending as u64),
            ("flushed_total", COUNTER, "Writes committed to the backing store.", s.flushed),
            ("failed_total", COUNTER, "Writes the backing store refused.", s.failed),
            ("retries_total", COUNTER, "Flushes retried after a backing-store error.", s.retries),
            ("journal_bytes", GAUGE, "Size of the write-back journal.", s.journal_bytes),
            ("loads_total", COUNTER, "Reads from the backing store on a miss.", s.loads),
            ("load_errors_total", COUNTER, "Reads from the backing store that failed.", s.load_errors),
            ("commits_total", COUNTER, "Transactions committed to the backing store.", s.commits),
        ];
        for (name, kind, help, value) in backing {
            m.single(&format!("ferrocache_backing_{name}"), kind, help, value);
        }
        m.single(
            "ferrocache_backing_oldest_pending_seconds",
            GAUGE,
            "Age of the oldest write not yet committed.",
            s.oldest_pending_ms as f64 / 1000.0,
        );
    }
    m.finish()
}
