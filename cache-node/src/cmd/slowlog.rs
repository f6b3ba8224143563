//! SLOWLOG GET [count] | LEN | RESET | HELP: the commands that took at least
//! `slowlog-log-slower-than` microseconds, newest first, in Redis 7's entry shape.
//!
//! The hot path pays one relaxed load and a compare (the duration is already measured for
//! INFO commandstats); only a slow command takes the lock and copies its arguments.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use bytes::Bytes;
use cache_protocol::Cmd;

use super::connection::help;
use super::{int_arg, is, CmdError, CmdResult, Ctx};

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC` and `SLOWLOG_ENTRY_MAX_STRING`.
const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

pub struct Entry {
    id: u64,
    /// Unix seconds.
    time: u64,
    usec: u64,
    argv: Vec<Bytes>,
    peer: String,
    name: String,
}

#[derive(Default)]
pub struct SlowLog {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Newest first.
    entries: VecDeque<Entry>,
}

impl SlowLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Records the command just run if it was slow enough. Called with its duration after every
/// command; returns at once unless the command is to be logged.
#[inline]
pub fn observe(ctx: &Ctx<'_>, cmd: Cmd, args: &[Bytes], usec: u64) {
    let slower_than = ctx.shared.config.slowlog_slower_than.load(Relaxed);
    // EXEC is Redis's one `skip_slowlog` command here: the commands it ran are logged instead.
    if slower_than >= 0 && usec >= slower_than as u64 && cmd != Cmd::Exec {
        record(ctx, cmd, args, usec);
    }
}

#[cold]
fn record(ctx: &Ctx<'_>, cmd: Cmd, args: &[Bytes], usec: u64) {
    let max_len = ctx.shared.config.slowlog_max_len.load(Relaxed) as usize;
    if max_len == 0 {
        return;
    }
    let entry = Entry {
        id: 0,
        time: ctx.now / 1000,
        usec,
        argv: truncated_argv(cmd, args),
        peer: ctx.conn.info.peer.to_string(),
        name: ctx.conn.info.name(),
    };
    let mut log = ctx.shared.slowlog.lock();
    let id = log.next_id;
    log.next_id += 1;
    log.entries.push_front(Entry { id, ..entry });
    log.entries.truncate(max_len);
}

/// The arguments as Redis keeps them: at most 32 (the last saying how many more there were),
/// each cut at 128 bytes, and passwords redacted.
fn truncated_argv(cmd: Cmd, args: &[Bytes]) -> Vec<Bytes> {
    let mut redacted = vec![false; args.len()];
    match cmd {
        Cmd::Auth => redacted[1..].fill(true),
        // HELLO [protover [AUTH user pass] [SETNAME name]]: the two words after AUTH, as
        // Redis's helloCommand redacts them while parsing.
        Cmd::Hello => {
            let mut j = 2;
            while j < args.len() {
                let more = args.len() - 1 - j;
                if is(&args[j], "auth") && more >= 2 {
                    redacted[j + 1] = true;
                    redacted[j + 2] = true;
                    j += 3;
                } else if is(&args[j], "setname") && more >= 1 {
                    j += 2;
                } else {
                    break;
                }
            }
        }
        _ => {}
    }
    let kept = args.len().min(MAX_ARGC);
    (0..kept)
        .map(|i| {
            if kept != args.len() && i == kept - 1 {
                let more = args.len() - kept + 1;
                Bytes::from(format!("... ({more} more arguments)"))
            } else if redacted[i] {
                Bytes::from_static(b"(redacted)")
            } else if args[i].len() > MAX_STRING {
                let mut cut = args[i][..MAX_STRING].to_vec();
                cut.extend_from_slice(
                    format!("... ({} more bytes)", args[i].len() - MAX_STRING).as_bytes(),
                );
                Bytes::from(cut)
            } else {
                args[i].clone()
            }
        })
        .collect()
}

const HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

pub fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "get") {
        let count = match args.get(2) {
            None => 10,
            Some(a) => match int_arg(a) {
                Ok(-1) => usize::MAX,
                Ok(n) if n >= 0 => n as usize,
                _ => {
                    return Err(CmdError::Msg(
                        "ERR count should be greater than or equal to -1",
                    ))
                }
            },
        };
        let log = ctx.shared.slowlog.lock();
        let n = count.min(log.entries.len());
        let out = &mut *ctx.out;
        out.array(n);
        for e in log.entries.iter().take(n) {
            out.array(6);
            out.int(e.id as i64);
            out.int(e.time as i64);
            out.int(e.usec as i64);
            out.array(e.argv.len());
            for a in &e.argv {
                out.bulk(a);
            }
            out.bulk(e.peer.as_bytes());
            out.bulk(e.name.as_bytes());
        }
    } else if is(sub, "len") {
        let n = ctx.shared.slowlog.lock().entries.len();
        ctx.out.int(n as i64);
    } else if is(sub, "reset") {
        ctx.shared.slowlog.lock().entries.clear();
        ctx.out.ok();
    } else {
        help(ctx, HELP);
    }
    Ok(())
}
