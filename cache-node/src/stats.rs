//! Counters for INFO. Each worker thread writes its own stripe, so two cores counting
//! commands never fight over one cache line; INFO sums the stripes.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use cache_protocol::command::all_specs;

const STRIPES: usize = 8;

/// Per-command counters, in `all_specs()` order.
#[derive(Default)]
pub struct CommandCounters {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

/// One thread's counters.
#[repr(align(128))]
pub struct Stripe {
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub per_command: Box<[CommandCounters]>,
}

impl Stripe {
    fn new(n: usize) -> Self {
        Stripe {
            keyspace_hits: AtomicU64::new(0),
            keyspace_misses: AtomicU64::new(0),
            net_input_bytes: AtomicU64::new(0),
            net_output_bytes: AtomicU64::new(0),
            per_command: (0..n).map(|_| CommandCounters::default()).collect(),
        }
    }
}

/// Server-wide statistics.
pub struct Stats {
    stripes: Box<[Stripe]>,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connected_clients: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        let n = all_specs().count();
        Stats {
            stripes: (0..STRIPES).map(|_| Stripe::new(n)).collect(),
            connections_received: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            connected_clients: AtomicU64::new(0),
        }
    }
}

pub(crate) fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        if i.get() == usize::MAX {
            i.set(NEXT.fetch_add(1, Relaxed) % STRIPES);
        }
        i.get()
    })
}

/// Sum of one counter over all stripes.
pub fn sum(stats: &Stats, f: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
    stats.stripes.iter().map(|s| f(s).load(Relaxed)).sum()
}

impl Stats {
    /// This thread's stripe.
    pub fn local(&self) -> &Stripe {
        &self.stripes[stripe_index()]
    }

    pub fn hit(&self, hit: bool) {
        let s = self.local();
        if hit {
            s.keyspace_hits.fetch_add(1, Relaxed);
        } else {
            s.keyspace_misses.fetch_add(1, Relaxed);
        }
    }

    /// (calls, usec, rejected, failed) of the command at `index` in `all_specs()` order.
    pub fn command(&self, index: usize) -> (u64, u64, u64, u64) {
        self.stripes.iter().fold((0, 0, 0, 0), |acc, s| {
            let c = &s.per_command[index];
            (
                acc.0 + c.calls.load(Relaxed),
                acc.1 + c.usec.load(Relaxed),
                acc.2 + c.rejected.load(Relaxed),
                acc.3 + c.failed.load(Relaxed),
            )
        })
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for s in self.stripes.iter() {
            for c in [
                &s.keyspace_hits,
                &s.keyspace_misses,
                &s.net_input_bytes,
                &s.net_output_bytes,
            ] {
                c.store(0, Relaxed);
            }
            for c in s.per_command.iter() {
                c.calls.store(0, Relaxed);
                c.usec.store(0, Relaxed);
                c.rejected.store(0, Relaxed);
                c.failed.store(0, Relaxed);
            }
        }
        self.connections_received.store(0, Relaxed);
        self.rejected_connections.store(0, Relaxed);
    }
}
