//! LATENCY LATEST | HISTORY event | RESET [event ...] | HELP: Redis's latency monitor. With
//! `latency-monitor-threshold` > 0, a command that takes at least that many milliseconds is
//! a sample of the `command` event (`fast-command` for commands flagged fast), as in Redis.
//!
//! Each event keeps its last 160 samples, one per second (a second's worst wins), and its
//! all-time maximum.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use bytes::Bytes;
use cache_protocol::command::flags;
use cache_protocol::CommandSpec;

use super::connection::help;
use super::{is, CmdResult, Ctx};

/// Redis's `LATENCY_TS_LEN`.
const SAMPLES: usize = 160;

#[derive(Default)]
struct Series {
    /// (unix seconds, milliseconds), oldest first.
    samples: std::collections::VecDeque<(u64, u64)>,
    max: u64,
}

#[derive(Default)]
pub struct Latency {
    events: Mutex<BTreeMap<&'static str, Series>>,
}

impl Latency {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Series>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a sample of `ms` milliseconds to `event` at `now_secs`.
    pub fn add(&self, event: &'static str, now_secs: u64, ms: u64) {
        let mut events = self.lock();
        let series = events.entry(event).or_default();
        series.max = series.max.max(ms);
        if let Some(last) = series.samples.back_mut() {
            if last.0 == now_secs {
                last.1 = last.1.max(ms);
                return;
            }
        }
        if series.samples.len() == SAMPLES {
            series.samples.pop_front();
        }
        series.samples.push_back((now_secs, ms));
    }
}

/// Records the command just run if the monitor is on and it was slow enough: one relaxed
/// load and a compare otherwise.
#[inline]
pub fn observe(ctx: &Ctx<'_>, spec: &CommandSpec, usec: u64) {
    let threshold = ctx.shared.config.latency_threshold_ms.load(Relaxed);
    if threshold > 0 && usec / 1000 >= threshold {
        let event = if spec.has(flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        ctx.shared.latency.add(event, ctx.now / 1000, usec / 1000);
    }
}

const HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HELP",
    "    Prints this help.",
];

pub fn latency(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "latest") {
        let events = ctx.shared.latency.lock();
        let latest: Vec<_> = events
            .iter()
            .filter_map(|(name, s)| s.samples.back().map(|last| (*name, *last, s.max)))
            .collect();
        drop(events);
        ctx.out.array(latest.len());
        for (name, (time, ms), max) in latest {
            ctx.out.array(4);
            ctx.out.bulk(name.as_bytes());
            ctx.out.int(time as i64);
            ctx.out.int(ms as i64);
            ctx.out.int(max as i64);
        }
    } else if is(sub, "history") {
        let events = ctx.shared.latency.lock();
        let samples: Vec<(u64, u64)> = events
            .iter()
            .find(|(name, _)| args[2] == name.as_bytes())
            .map(|(_, s)| s.samples.iter().copied().collect())
            .unwrap_or_default();
        drop(events);
        ctx.out.array(samples.len());
        for (time, ms) in samples {
            ctx.out.array(2);
            ctx.out.int(time as i64);
            ctx.out.int(ms as i64);
        }
    } else if is(sub, "reset") {
        let mut events = ctx.shared.latency.lock();
        let reset = if args.len() == 2 {
            let n = events.len();
            events.clear();
            n
        } else {
            let before = events.len();
            // Event names are case-sensitive, as in Redis.
            events.retain(|name, _| !args[2..].iter().any(|a| a == name.as_bytes()));
            before - events.len()
        };
        drop(events);
        ctx.out.int(reset as i64);
    } else {
        help(ctx, HELP);
    }
    Ok(())
}
