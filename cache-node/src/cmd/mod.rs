//! Command execution: dispatch from the shared table to one handler per command, by family.
//!
//! Handlers get a [`Ctx`] (the shared state, the connection's state, its output buffer and the
//! time of this command) and the arguments, write their reply into the buffer, and return
//! `Err` for an error reply so argument parsing can use `?`.

pub mod connection;
pub mod keys;
pub mod server;
pub mod strings;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use cache_protocol::command::{all_specs, flags};
use cache_protocol::{parse_i64, Cmd, CommandSpec, ReplyBuf};

use crate::client::ClientInfo;
use crate::Shared;

/// Per-connection state that commands read and change.
pub struct ConnState {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub authenticated: bool,
    /// Set by QUIT and protocol errors: write what is buffered, then close.
    pub close: bool,
}

/// What a handler works with.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub conn: &'a mut ConnState,
    pub out: &'a mut ReplyBuf,
    /// Unix milliseconds, read once per batch of pipelined requests (they run within
    /// microseconds of each other; a clock read per command cost 10% of a GET).
    pub now: u64,
    /// When the previous command of this batch ended: the start of this one.
    pub clock: &'a mut Instant,
}

/// An error reply. `Display` gives Redis's exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    WrongType,
    NotInteger,
    NotFloat,
    Syntax,
    Overflow,
    NoSuchKey,
    DbIndex,
    /// A complete message, code included (`ERR ...`, `NOAUTH ...`).
    Msg(&'static str),
    Owned(String),
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CmdError::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value"
            }
            CmdError::NotInteger => "ERR value is not an integer or out of range",
            CmdError::NotFloat => "ERR value is not a valid float",
            CmdError::Syntax => "ERR syntax error",
            CmdError::Overflow => "ERR increment or decrement would overflow",
            CmdError::NoSuchKey => "ERR no such key",
            CmdError::DbIndex => "ERR DB index is out of range",
            CmdError::Msg(m) => m,
            CmdError::Owned(m) => m,
        })
    }
}

pub type CmdResult = Result<(), CmdError>;

/// Parses an integer argument strictly, as Redis's `getLongLongFromObject`.
pub fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a float argument as Redis's `getLongDoubleFromObject`: no spaces, no NaN.
pub fn float_arg(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NotFloat)
}

pub fn parse_float(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg.len() > 5 * 1024 || arg[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(arg).ok()?;
    let lower = text.to_ascii_lowercase();
    let v = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => text.parse::<f64>().ok()?,
        t if t.starts_with(|c: char| c.is_ascii_digit() || c == '.') => text.parse::<f64>().ok()?,
        _ => return None,
    };
    (!v.is_nan()).then_some(v)
}

/// Lower-case comparison of an option word.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

impl Ctx<'_> {
    pub fn db(&self) -> usize {
        self.conn.db
    }

    /// Counts a keyspace hit or miss for INFO.
    pub fn hit(&self, hit: bool) {
        self.shared.stats.hit(hit);
    }
}

/// Index of each top-level command in `all_specs()` order (subcommands follow their parent).
fn stat_offsets() -> &'static [usize] {
    static OFFSETS: OnceLock<Vec<usize>> = OnceLock::new();
    OFFSETS.get_or_init(|| {
        let mut offsets = Vec::new();
        let mut i = 0;
        for cmd in Cmd::ALL {
            offsets.push(i);
            i += 1 + cmd.spec().subcommands.len();
        }
        offsets
    })
}

fn stat_index(cmd: Cmd, sub: Option<&'static CommandSpec>) -> usize {
    let base = stat_offsets()[cmd.index()];
    match sub {
        Some(s) => {
            base + 1
                + cmd
                    .spec()
                    .subcommands
                    .iter()
                    .position(|c| std::ptr::eq(c, s))
                    .unwrap_or(0)
        }
        None => base,
    }
}

/// The name used in `cmdstat_...` and CLIENT LIST for a stat index.
pub fn stat_name(index: usize) -> Option<&'static str> {
    all_specs().nth(index).map(|s| s.name)
}

fn unknown_command(args: &[Bytes]) -> String {
    let mut rest = String::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let text = String::from_utf8_lossy(a);
        let cut: String = text.chars().take(room).collect();
        rest.push_str(&format!("'{cut}' "));
    }
    let name = String::from_utf8_lossy(&args[0]);
    let name: String = name.chars().take(128).collect();
    format!("ERR unknown command '{name}', with args beginning with: {rest}")
}

/// Runs one request and appends its reply.
pub fn dispatch(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let stats = &ctx.shared.stats;
    let Some(cmd) = Cmd::lookup(&args[0]) else {
        ctx.out.error(&unknown_command(args));
        return;
    };
    let spec = cmd.spec();
    let mut sub = None;
    let stripe = stats.local();
    if !spec.arity_ok(args.len()) {
        stripe.per_command[stat_index(cmd, None)]
            .rejected
            .fetch_add(1, Relaxed);
        ctx.out.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        ));
        return;
    }
    // COMMAND has subcommands yet is valid alone (arity -1): without this length check a
    // bare `COMMAND` indexed past the arguments and panicked the connection task.
    if !spec.subcommands.is_empty() && args.len() > 1 {
        match spec.subcommand(&args[1]) {
            Some(s) if s.arity_ok(args.len()) => sub = Some(s),
            Some(s) => {
                stripe.per_command[stat_index(cmd, Some(s))]
                    .rejected
                    .fetch_add(1, Relaxed);
                ctx.out.error(&format!(
                    "ERR wrong number of arguments for '{}' command",
                    s.name
                ));
                return;
            }
            None => {
                let name: String = String::from_utf8_lossy(&args[1])
                    .chars()
                    .take(128)
                    .collect();
                ctx.out.error(&format!(
                    "ERR unknown subcommand '{name}'. Try {} HELP.",
                    spec.name.to_ascii_uppercase()
                ));
                return;
            }
        }
    }
    let stat = stat_index(cmd, sub);
    if !ctx.conn.authenticated && !spec.has(flags::NO_AUTH) {
        stripe.per_command[stat].rejected.fetch_add(1, Relaxed);
        ctx.out.error("NOAUTH Authentication required.");
        return;
    }
    ctx.conn.info.set_last_command(stat);
    let before = ctx.out.len();
    let result = run(ctx, cmd, args);
    let ended = Instant::now();
    let usec = ended.duration_since(*ctx.clock).as_micros() as u64;
    *ctx.clock = ended;
    let counters = &stripe.per_command[stat];
    counters.calls.fetch_add(1, Relaxed);
    counters.usec.fetch_add(usec, Relaxed);
    match result {
        Ok(()) => {
            if ctx.out.buf.get(before) == Some(&b'-') {
                counters.failed.fetch_add(1, Relaxed);
            }
        }
        Err(e) => {
            counters.failed.fetch_add(1, Relaxed);
            ctx.out.truncate(before);
            ctx.out.error(&e.to_string());
        }
    }
}

fn run(ctx: &mut Ctx<'_>, cmd: Cmd, args: &[Bytes]) -> CmdResult {
    use Cmd::*;
    match cmd {
        Ping => connection::ping(ctx, args),
        Echo => connection::echo(ctx, args),
        Quit => connection::quit(ctx, args),
        Reset => connection::reset(ctx, args),
        Select => connection::select(ctx, args),
        Auth => connection::auth(ctx, args),
        Hello => connection::hello(ctx, args),
        Client => connection::client(ctx, args),
        Info => server::info(ctx, args),
        Dbsize => server::dbsize(ctx, args),
        Flushdb => server::flushdb(ctx, args),
        Flushall => server::flushall(ctx, args),
        Swapdb => server::swapdb(ctx, args),
        Config => server::config(ctx, args),
        Time => server::time(ctx, args),
        Lastsave => server::lastsave(ctx, args),
        Shutdown => server::shutdown(ctx, args),
        Command => server::command(ctx, args),
        Del | Unlink => keys::del(ctx, args),
        Exists => keys::exists(ctx, args),
        Type => keys::type_(ctx, args),
        Touch => keys::touch(ctx, args),
        Rename => keys::rename(ctx, args, false),
        Renamenx => keys::rename(ctx, args, true),
        Copy => keys::copy(ctx, args),
        Move => keys::move_(ctx, args),
        Keys => keys::keys(ctx, args),
        Scan => keys::scan(ctx, args),
        Randomkey => keys::randomkey(ctx, args),
        Expire => keys::expire(ctx, args, 1000, false),
        Pexpire => keys::expire(ctx, args, 1, false),
        Expireat => keys::expire(ctx, args, 1000, true),
        Pexpireat => keys::expire(ctx, args, 1, true),
        Ttl => keys::ttl(ctx, args, false, false),
        Pttl => keys::ttl(ctx, args, true, false),
        Expiretime => keys::ttl(ctx, args, false, true),
        Pexpiretime => keys::ttl(ctx, args, true, true),
        Persist => keys::persist(ctx, args),
        Object => keys::object(ctx, args),
        Get => strings::get(ctx, args),
        Set => strings::set(ctx, args),
        Setnx => strings::setnx(ctx, args),
        Setex => strings::setex(ctx, args, 1000),
        Psetex => strings::setex(ctx, args, 1),
        Getset => strings::getset(ctx, args),
        Getdel => strings::getdel(ctx, args),
        Getex => strings::getex(ctx, args),
        Mget => strings::mget(ctx, args),
        Mset => strings::mset(ctx, args, false),
        Msetnx => strings::mset(ctx, args, true),
        Incr => strings::incr_by(ctx, &args[1], Ok(1)),
        Decr => strings::incr_by(ctx, &args[1], Ok(-1)),
        Incrby => strings::incr_by(ctx, &args[1], int_arg(&args[2])),
        Decrby => strings::incr_by(
            ctx,
            &args[1],
            int_arg(&args[2]).and_then(|v| {
                v.checked_neg()
                    .ok_or(CmdError::Msg("ERR decrement would overflow"))
            }),
        ),
        Incrbyfloat => strings::incrbyfloat(ctx, args),
        Append => strings::append(ctx, args),
        Strlen => strings::strlen(ctx, args),
        Getrange | Substr => strings::getrange(ctx, args),
        Setrange => strings::setrange(ctx, args),
        Setbit => strings::setbit(ctx, args),
        Getbit => strings::getbit(ctx, args),
        Bitcount => strings::bitcount(ctx, args),
        Bitpos => strings::bitpos(ctx, args),
    }
}

/// Writes one RESP reply for a list of byte strings.
pub fn reply_bulks<'a>(out: &mut ReplyBuf, items: impl ExactSizeIterator<Item = &'a [u8]>) {
    out.array(items.len());
    for item in items {
        out.bulk(item);
    }
}
