//! Counters for INFO. Each worker thread writes its own stripe, so two cores counting
//! commands never fight over one cache line; INFO sums the stripes.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cache_net::metrics::{Histogram, HistogramSnapshot};
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
    /// Write commands that succeeded (INFO's rdb_changes_since_last_save).
    pub writes: AtomicU64,
    pub per_command: Box<[CommandCounters]>,
    /// Per-command latency histograms, in `all_specs()` order; empty unless the metrics
    /// endpoint is on (they are what it exports, and cost an increment per command). Each is
    /// made on its command's first call: most of the ~240 commands never run, and eight
    /// stripes of all of them took about 0.4 MB of a fresh node's 2 MB.
    pub latency: Box<[OnceLock<Box<Histogram>>]>,
}

impl Stripe {
    fn new(n: usize, histograms: bool) -> Self {
        Stripe {
            keyspace_hits: AtomicU64::new(0),
            keyspace_misses: AtomicU64::new(0),
            net_input_bytes: AtomicU64::new(0),
            net_output_bytes: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            per_command: (0..n).map(|_| CommandCounters::default()).collect(),
            latency: (0..if histograms { n } else { 0 })
                .map(|_| OnceLock::new())
                .collect(),
        }
    }
}

/// Server-wide statistics.
pub struct Stats {
    stripes: Box<[Stripe]>,
    /// INFO's `instantaneous_*` rates, sampled by the cron.
    pub instantaneous: Mutex<Instantaneous>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new(false)
    }
}

/// Redis's `trackInstantaneousMetric`: every 100 ms the cron turns the growth of a counter
/// into a per-second rate; INFO shows the mean of the last 16 rates.
#[derive(Default)]
pub struct Instantaneous {
    last: Option<(Instant, [u64; 3])>,
    rates: [[f64; 3]; SAMPLES],
    next: usize,
}

const SAMPLES: usize = 16;

impl Instantaneous {
    /// Records (commands, input bytes, output bytes) totals seen at `now`.
    pub fn sample(&mut self, now: Instant, totals: [u64; 3]) {
        match self.last {
            Some((at, _)) if now.duration_since(at) < Duration::from_millis(100) => {}
            Some((at, before)) => {
                let secs = now.duration_since(at).as_secs_f64();
                for (i, rate) in self.rates[self.next].iter_mut().enumerate() {
                    *rate = totals[i].saturating_sub(before[i]) as f64 / secs;
                }
                self.next = (self.next + 1) % SAMPLES;
                self.last = Some((now, totals));
            }
            None => self.last = Some((now, totals)),
        }
    }

    /// Mean per-second rates of (commands, input bytes, output bytes).
    pub fn rates(&self) -> [f64; 3] {
        let mut mean = [0.0; 3];
        for r in &self.rates {
            for i in 0..3 {
                mean[i] += r[i] / SAMPLES as f64;
            }
        }
        mean
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
    /// `histograms`: keep per-command latency histograms (the metrics endpoint is on).
    pub fn new(histograms: bool) -> Self {
        let n = all_specs().count();
        Stats {
            stripes: (0..STRIPES).map(|_| Stripe::new(n, histograms)).collect(),
            instantaneous: Mutex::default(),
        }
    }

    /// The latency histogram of the command at `index`, summed over the stripes (empty when
    /// histograms are off).
    pub fn latency(&self, index: usize) -> HistogramSnapshot {
        let mut total = HistogramSnapshot::default();
        for s in self.stripes.iter() {
            if let Some(h) = s.latency.get(index).and_then(OnceLock::get) {
                total.add(&h.snapshot());
            }
        }
        total
    }

    /// Total commands processed (INFO's `total_commands_processed`).
    pub fn commands_processed(&self) -> u64 {
        (0..all_specs().count()).map(|i| self.command(i).0).sum()
    }

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
            for h in s.latency.iter().filter_map(OnceLock::get) {
                h.reset();
            }
        }
    }
}
