//! MONITOR: every command the node runs, as a status line to each monitoring connection,
//! in Redis 7.0's format and order.
//!
//! ```text
//!  MONITOR ─► the connection's queue joins `Monitors` ─► +OK
//!  any command, admitted, before it runs ─► feed(): "+<secs>.<usec> [<db> <addr>] "cmd" "arg"…"
//!      a script's commands ─► "[<db> lua]"        EXEC ─► after its queued commands
//!      @admin commands ─► not shown; AUTH / HELLO AUTH passwords ─► "(redacted)"
//! ```
//!
//! Cost while nobody monitors: one relaxed load per command.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use super::pubsub::{subscriptions, Outbox};
use super::{is, CmdResult, Ctx};

/// The monitoring connections' queues.
#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<(u64, Arc<Outbox>)>>,
}

impl Monitors {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<Outbox>)>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    fn add(&self, id: u64, outbox: Arc<Outbox>) {
        let mut list = self.lock();
        if !list.iter().any(|(i, _)| *i == id) {
            list.push((id, outbox));
            self.count.store(list.len(), Relaxed);
        }
    }

    /// Stops feeding connection `id` (RESET, or it closed).
    pub fn remove(&self, id: u64) {
        if !self.active() {
            return;
        }
        let mut list = self.lock();
        list.retain(|(i, _)| *i != id);
        self.count.store(list.len(), Relaxed);
    }

    fn send(&self, line: Bytes, from: u64) {
        let mut list = self.lock();
        // A connection does not see its own commands once it monitors (it sends none but
        // QUIT/RESET in practice); a queue whose connection is gone is dropped.
        list.retain(|(id, outbox)| *id == from || outbox.send(line.clone()));
        self.count.store(list.len(), Relaxed);
    }
}

/// MONITOR.
pub fn monitor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let outbox = subscriptions(ctx).outbox.clone();
    ctx.shared.monitors.add(ctx.conn.info.id, outbox);
    ctx.out.ok();
    Ok(())
}

/// Shows `args`, about to run on this connection, to every monitor.
pub fn feed(ctx: &Ctx<'_>, args: &[Bytes]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = String::with_capacity(64);
    let _ = write!(
        line,
        "+{}.{:06} [{} ",
        now.as_secs(),
        now.subsec_micros(),
        ctx.db()
    );
    if ctx.conn.in_script {
        line.push_str("lua] ");
    } else {
        let _ = write!(line, "{}] ", ctx.conn.info.peer);
    }
    let mut out = BytesMut::from(line.as_bytes());
    let redacted = redacted_from(args);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b" ");
        }
        if redacted.is_some_and(|from| i >= from.0 && i < from.1) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(arg, &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    ctx.shared.monitors.send(out.freeze(), ctx.conn.info.id);
}

/// The argument range `[from, to)` Redis hides: AUTH's, and HELLO's AUTH username/password.
fn redacted_from(args: &[Bytes]) -> Option<(usize, usize)> {
    if is(&args[0], "auth") {
        return Some((1, args.len()));
    }
    if is(&args[0], "hello") {
        let at = args.iter().position(|a| is(a, "auth"))?;
        return Some((at + 1, (at + 3).min(args.len())));
    }
    None
}

/// Redis's `sdscatrepr`: a double-quoted string with C escapes, other bytes as `\xHH`.
fn quote(arg: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(b"\"");
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.extend_from_slice(&[b]),
            b => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.extend_from_slice(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_as_sdscatrepr() {
        let mut out = BytesMut::new();
        quote(b"a \"b\"\\\n\x01\xff", &mut out);
        assert_eq!(&out[..], b"\"a \\\"b\\\"\\\\\\n\\x01\\xff\"");
    }

    #[test]
    fn passwords_are_redacted() {
        let args = |v: &[&str]| {
            v.iter()
                .map(|s| Bytes::from(s.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(redacted_from(&args(&["AUTH", "u", "p"])), Some((1, 3)));
        assert_eq!(
            redacted_from(&args(&["HELLO", "2", "AUTH", "u", "p", "SETNAME", "n"])),
            Some((3, 5))
        );
        assert_eq!(redacted_from(&args(&["SET", "k", "v"])), None);
    }
}
