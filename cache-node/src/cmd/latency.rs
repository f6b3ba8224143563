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
use cache_protocol::command::{all_specs, flags};
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
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "HISTOGRAM [<command> ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HELP",
    "    Prints this help.",
];

/// LATENCY HISTOGRAM [command ...]: per command (a container stands for its subcommands;
/// unknown names are skipped, as in Redis) with calls, `calls` and `histogram_usec`, the
/// cumulative count at each bucket bound up to the last used one. The bounds are this node's
/// (10 us, 25, 50, 100, ... 1 s, then i64::MAX for slower), not Redis's powers of two.
fn histogram(ctx: &mut Ctx<'_>, names: &[Bytes]) {
    let specs: Vec<(usize, &'static CommandSpec)> = all_specs().enumerate().collect();
    let wanted = |spec: &CommandSpec| -> bool {
        if names.is_empty() {
            return true;
        }
        names.iter().any(|n| {
            let n = &n[..];
            if spec.name.as_bytes().eq_ignore_ascii_case(n) {
                return spec.subcommands.is_empty();
            }
            // A container's name asks for each of its subcommands.
            spec.name
                .split_once('|')
                .is_some_and(|(parent, _)| parent.as_bytes().eq_ignore_ascii_case(n))
        })
    };
    let rows: Vec<(&'static str, u64, cache_net::metrics::HistogramSnapshot)> = specs
        .iter()
        .filter(|(_, spec)| wanted(spec))
        .filter_map(|&(i, spec)| {
            let calls = ctx.shared.stats.command(i).0;
            (calls > 0).then(|| (spec.name, calls, ctx.shared.stats.latency(i)))
        })
        .collect();
    ctx.out.map(rows.len());
    for (name, calls, h) in rows {
        ctx.out.bulk(name.as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.int(calls as i64);
        ctx.out.bulk(b"histogram_usec");
        let used = h.buckets.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
        ctx.out.map(used);
        let mut total = 0;
        for (i, &count) in h.buckets[..used].iter().enumerate() {
            total += count;
            let bound = cache_net::metrics::LATENCY_BOUNDS_US
                .get(i)
                .map_or(i64::MAX, |&b| b as i64);
            ctx.out.int(bound);
            ctx.out.int(total as i64);
        }
    }
}

/// LATENCY DOCTOR's report, in Redis's words (`createLatencyReport`): each event's spikes,
/// average, mean deviation, period and worst, and the slow-log advice for command events.
fn doctor(ctx: &Ctx<'_>) -> String {
    let threshold = ctx.shared.config.latency_threshold_ms.load(Relaxed);
    let events = ctx.shared.latency.lock();
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
    }
    let now = ctx.now / 1000;
    let mut report = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    let mut commands = false;
    for (n, (name, series)) in events.iter().enumerate() {
        let samples = series.samples.len().max(1) as u64;
        let sum: u64 = series.samples.iter().map(|s| s.1).sum();
        let avg = sum / samples;
        let mad = series
            .samples
            .iter()
            .map(|s| s.1.abs_diff(avg))
            .sum::<u64>()
            / samples;
        let oldest = series.samples.front().map_or(now, |s| s.0);
        let period = now.saturating_sub(oldest) as f64 / samples as f64;
        report.push_str(&format!(
            "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {mad}ms, period {period:.2} sec). Worst all time event {}ms.\n",
            n + 1,
            series.samples.len(),
            series.max
        ));
        commands |= name.contains("command");
    }
    drop(events);
    report.push_str("\nI have a few advices for you:\n\n");
    if commands {
        let slowlog = ctx.shared.config.slowlog_slower_than.load(Relaxed);
        if slowlog < 0 {
            report.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", threshold * 1000));
        } else if slowlog as u64 / 1000 > threshold {
            report.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", threshold * 1000));
        }
        report.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    } else {
        report.push_str("- While there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    }
    report
}

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
    } else if is(sub, "histogram") {
        histogram(ctx, &args[2..]);
    } else if is(sub, "doctor") {
        let text = doctor(ctx);
        ctx.out.verbatim("txt", text.as_bytes());
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
