//! Command execution: dispatch from the shared table to one handler per command, by family.
//!
//! Handlers get a [`Ctx`] (the shared state, the connection's state, its output buffer and the
//! time of this command) and the arguments, write their reply into the buffer, and return
//! `Err` for an error reply so argument parsing can use `?`.

pub mod bitops;
pub mod blocking;
pub mod cluster;
pub mod cluster_view;
pub mod connection;
pub mod dump;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod latency;
pub mod lcs;
pub mod lists;
pub mod long_double;
pub mod memory;
pub mod monitor;
pub mod multi;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod slowlog;
pub mod sort;
pub mod stream_groups;
pub mod stream_info;
pub mod streams;
pub mod strings;
pub mod tracking;
pub mod zsets;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cache_protocol::admit::{admit, Admission, Resolved};
use cache_protocol::command::Role;
use cache_protocol::{parse_i64, Cmd, ReplyBuf};
use cache_store::{ChangeLog, Keyspace};

use crate::client::ClientInfo;
use crate::Shared;

/// CLIENT REPLY: whether this connection's replies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// SKIP: the next command's reply is not sent.
    SkipNext,
}

/// Per-connection state that commands read and change.
pub struct ConnState {
    /// CLIENT REPLY ON / OFF / SKIP.
    pub reply: ReplyMode,
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub authenticated: bool,
    /// The ACL user this connection runs as (`default` until AUTH says otherwise).
    pub user: Arc<cache_acl::UserCell>,
    /// Set by QUIT and protocol errors: write what is buffered, then close.
    pub close: bool,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command was refused while queueing: EXEC must abort.
    pub multi_failed: bool,
    /// Running the queue of EXEC: blocking commands do not block, nothing is queued.
    pub in_exec: bool,
    /// EXEC accepted this queue: the connection runs it holding the gate exclusively.
    pub exec_queue: Option<Vec<Vec<Bytes>>>,
    /// Set when a watched key changes.
    pub watch_dirty: Arc<std::sync::atomic::AtomicBool>,
    pub watched: Vec<(usize, Bytes)>,
    /// A blocking command parked this connection: the waiter and its timeout.
    pub blocked: Option<(Arc<blocking::Waiter>, Option<std::time::Duration>)>,
    pub subs: Option<pubsub::Subscriptions>,
    /// The backing store's view of this connection (waits, write-through snapshots).
    pub backing: crate::backing::ConnBacking,
    /// EVAL/FCALL accepted a script: the connection runs it holding the gate exclusively.
    pub script: Option<Box<crate::scripting::Invocation>>,
    /// A script is running on this connection: its commands skip the OOM check and eviction
    /// (Redis decides OOM once, when the script starts).
    pub in_script: bool,
    /// The running script called a read command (its declared keys are then tracked).
    pub script_read: bool,
    /// Cluster mode: READONLY was sent (reads may be served by a replica; there are none
    /// yet, so it changes no redirection).
    pub readonly: bool,
    /// The replica's link to its master: its writes pass READONLY, ACL and maxmemory, as
    /// Redis obeys its master.
    pub from_master: bool,
}

impl ConnState {
    pub fn new(info: Arc<ClientInfo>, user: Arc<cache_acl::UserCell>, authenticated: bool) -> Self {
        ConnState {
            reply: ReplyMode::On,
            info,
            db: 0,
            authenticated,
            user,
            close: false,
            multi: None,
            multi_failed: false,
            in_exec: false,
            exec_queue: None,
            watch_dirty: Arc::default(),
            watched: Vec::new(),
            blocked: None,
            subs: None,
            backing: Default::default(),
            script: None,
            in_script: false,
            script_read: false,
            readonly: false,
            from_master: false,
        }
    }

    /// RESP2 clients with subscriptions may only (un)subscribe, PING, QUIT and RESET.
    pub fn subscribed(&self) -> bool {
        self.subs.as_ref().is_some_and(|s| s.count() > 0)
    }
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
    /// Where this connection's commands note what they change (armed while a write runs
    /// with a backing store on: `backing::run_frame`).
    pub changes: &'a ChangeLog,
}

impl<'a> Ctx<'a> {
    /// The keyspace, with this command's changes noted. Every write goes through it.
    pub fn store(&self) -> Keyspace<'a> {
        Keyspace::new(&self.shared.store, self.changes)
    }
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

/// Parses a float argument: no spaces, no NaN. (Where Redis reads a long double, as for
/// INCRBYFLOAT, `1e400` or `1e-400` are in its range but refused here: a documented f64 limit.)
pub fn float_arg(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NotFloat)
}

/// Redis's `getDoubleFromObject`: the whole text is one strtod number (hex included), with
/// no leading blank, not NaN, and within double range (`1e400` and `1e-400` are refused).
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg.len() > 5 * 1024 || is_c_space(arg[0]) {
        return None;
    }
    let (v, used, range_error) = strtod(arg);
    (used == arg.len() && !range_error && !v.is_nan()).then_some(v)
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `strtod` on `arg`: the value, how many bytes it took (0 when no number starts the
/// text, and then the value is 0) and whether errno would be ERANGE (a finite number that
/// overflows, or a non-zero one that underflows to 0). Leading whitespace, a sign,
/// `inf`/`infinity`/`nan` and hexadecimal (`0x1.8p3`) are accepted as glibc does. Redis's
/// score ranges (`zslParseRange`) use strtod directly, so there `""` and `"("` mean 0 and
/// `" 1"` is 1.
pub fn strtod(arg: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    while i < arg.len() && is_c_space(arg[i]) {
        i += 1;
    }
    let negative = arg.get(i) == Some(&b'-');
    if matches!(arg.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    let rest = &arg[i..];
    let starts = |word: &str| {
        rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes())
    };
    if starts("infinity") {
        return (sign * f64::INFINITY, i + 8, false);
    }
    if starts("inf") {
        return (sign * f64::INFINITY, i + 3, false);
    }
    if starts("nan") {
        return (f64::NAN, i + 3, false);
    }
    let digits = |from: usize, hex: bool| {
        arg[from..]
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count()
    };
    let hex = (starts("0x")) && {
        let j = i + 2;
        let int = digits(j, true);
        int > 0 || (arg.get(j + int) == Some(&b'.') && digits(j + int + 1, true) > 0)
    };
    if hex {
        let mut j = i + 2;
        let (mut mantissa, mut exp2) = (0f64, 0i32);
        let mut seen_point = false;
        while let Some(&c) = arg.get(j) {
            if c == b'.' && !seen_point {
                seen_point = true;
            } else if let Some(d) = (c as char).to_digit(16) {
                mantissa = mantissa * 16.0 + f64::from(d);
                if seen_point {
                    exp2 -= 4;
                }
            } else {
                break;
            }
            j += 1;
        }
        if matches!(arg.get(j), Some(b'p' | b'P')) {
            let mut k = j + 1;
            let neg = arg.get(k) == Some(&b'-');
            if matches!(arg.get(k), Some(b'+' | b'-')) {
                k += 1;
            }
            let n = digits(k, false);
            if n > 0 {
                let e: i32 = std::str::from_utf8(&arg[k..k + n])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(i32::MAX / 2);
                exp2 = exp2.saturating_add(if neg { -e } else { e });
                j = k + n;
            }
        }
        let v = mantissa * 2f64.powi(exp2);
        let range_error = v.is_infinite() || (v == 0.0 && mantissa != 0.0);
        return (sign * v, j, range_error);
    }
    let ascii =
        |from: usize, len: usize| std::str::from_utf8(&arg[from..from + len]).expect("digits");
    let int_digits = digits(i, false);
    let int = ascii(i, int_digits);
    let mut j = i + int_digits;
    let mut frac = "";
    if arg.get(j) == Some(&b'.') {
        let n = digits(j + 1, false);
        frac = ascii(j + 1, n);
        if int_digits + n > 0 {
            j += 1 + n;
        }
    }
    if int.is_empty() && frac.is_empty() {
        return (0.0, 0, false);
    }
    let mut exp = String::from("0");
    if matches!(arg.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        let neg = arg.get(k) == Some(&b'-');
        if matches!(arg.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let n = digits(k, false);
        if n > 0 {
            exp = format!("{}{}", if neg { "-" } else { "" }, ascii(k, n));
            j = k + n;
        }
    }
    let v: f64 = format!("0{int}.{frac}0e{exp}").parse().unwrap_or(0.0);
    let nonzero = int.bytes().chain(frac.bytes()).any(|c| c != b'0');
    let range_error = v.is_infinite() || (v == 0.0 && nonzero);
    (sign * v, j, range_error)
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

    /// Publishes a keyspace notification (when enabled for `class`).
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.shared.notify(self.db(), class, event, key);
    }
}

pub use pubsub::notify as Notify;

/// SCAN-family options: cursor, COUNT, MATCH (and TYPE, for SCAN only).
pub struct ScanArgs<'a> {
    pub cursor: u64,
    pub count: usize,
    pub pattern: Option<&'a [u8]>,
}

impl ScanArgs<'_> {
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .is_none_or(|p| cache_protocol::glob::glob_match(p, item, false))
    }
}

/// A SCAN cursor as Redis reads it (`strtoul`): no leading blank, an optional sign (`-1` is
/// the largest cursor, as C's unsigned negation gives), digits that fit 64 bits; "" is 0.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = CmdError::Msg("ERR invalid cursor");
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return if arg.is_empty() { Ok(0) } else { Err(invalid) };
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(invalid);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(CmdError::Msg("ERR invalid cursor"))?;
    }
    Ok(if negative { n.wrapping_neg() } else { n })
}

/// Parses `cursor [MATCH p] [COUNT n]` with the cursor at `args[at - 1]`... for HSCAN, SSCAN
/// and ZSCAN the cursor is `args[2]` and options start at 3.
pub fn scan_args(args: &[Bytes], at: usize) -> Result<ScanArgs<'_>, CmdError> {
    let cursor = parse_cursor(&args[at])?;
    let mut scan = ScanArgs {
        cursor,
        count: 10,
        pattern: None,
    };
    let mut i = at + 1;
    while i < args.len() {
        if is(&args[i], "count") && i + 1 < args.len() {
            let n = int_arg(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            scan.count = n as usize;
        } else if is(&args[i], "match") && i + 1 < args.len() {
            scan.pattern = Some(&args[i + 1][..]).filter(|p| *p != b"*");
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(scan)
}

/// One step over a collection stored in an `IndexMap`, with the same downward cursor as the
/// keyspace SCAN (cursor = positions still to visit + 1; 0 = start). Small collections come
/// back whole in one call, as Redis does for its compact encodings.
pub fn scan_indexmap(
    len: usize,
    cursor: u64,
    count: usize,
    mut item: impl FnMut(usize) -> Option<Vec<Vec<u8>>>,
) -> (u64, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    if cursor == 0 && len <= 128 {
        for i in 0..len {
            if let Some(parts) = item(i) {
                out.extend(parts);
            }
        }
        return (0, out);
    }
    let mut pos = if cursor == 0 {
        len
    } else {
        ((cursor - 1) as usize).min(len)
    };
    let mut visited = 0;
    while pos > 0 && visited < count {
        pos -= 1;
        visited += 1;
        if let Some(parts) = item(pos) {
            out.extend(parts);
        }
    }
    let next = if pos == 0 { 0 } else { pos as u64 + 1 };
    (next, out)
}

pub fn reply_scan(ctx: &mut Ctx<'_>, (cursor, items): (u64, Vec<Vec<u8>>)) {
    ctx.out.array(2);
    ctx.out.bulk(cursor.to_string().as_bytes());
    ctx.out.array(items.len());
    for i in items {
        ctx.out.bulk(&i);
    }
}

/// Runs `f` on the value at `key` viewed as one type (`Value::as_list`, `as_hash`...), for
/// reading; `None` when the key is absent, WRONGTYPE when it holds another type.
pub fn read_value<T: ?Sized, R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    as_type: impl Fn(&cache_store::Value) -> Option<&T>,
    f: impl FnOnce(&T) -> R,
) -> Result<Option<R>, CmdError> {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(key);
    match locked.get(db, key, now) {
        Some(e) => Ok(Some(f(as_type(&e.value).ok_or(CmdError::WrongType)?))),
        None => Ok(None),
    }
}

/// Parses LMPOP/ZMPOP's `numkeys key... WORD [COUNT n]` starting at `args[at]`, where WORD
/// is one of `words` (LEFT/RIGHT, MIN/MAX). Returns the keys, whether WORD was the first of
/// the two, and the count.
pub fn mpop_args(
    args: &[Bytes],
    at: usize,
    words: (&str, &str),
) -> Result<(Vec<Bytes>, bool, usize), CmdError> {
    // getRangeLongFromObjectOrReply: junk gets the same message as 0.
    let numkeys =
        int_arg(&args[at]).map_err(|_| CmdError::Msg("ERR numkeys should be greater than 0"))?;
    if numkeys <= 0 {
        return Err(CmdError::Msg("ERR numkeys should be greater than 0"));
    }
    let numkeys = numkeys as usize;
    let first = at + 1;
    if numkeys > args.len().saturating_sub(first) {
        return Err(CmdError::Syntax);
    }
    let keys = args[first..first + numkeys].to_vec();
    let Some(word) = args.get(first + numkeys) else {
        return Err(CmdError::Syntax);
    };
    let first_word = if is(word, words.0) {
        true
    } else if is(word, words.1) {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = 1usize;
    let mut i = first + numkeys + 1;
    let mut seen_count = false;
    while i < args.len() {
        if is(&args[i], "count") && i + 1 < args.len() && !seen_count {
            let c = int_arg(&args[i + 1])
                .map_err(|_| CmdError::Msg("ERR count should be greater than 0"))?;
            if c <= 0 {
                return Err(CmdError::Msg("ERR count should be greater than 0"));
            }
            count = c as usize;
            seen_count = true;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((keys, first_word, count))
}

/// Replies to a command that removed `removed` members of the collection at `key`: the
/// member event when something went, `del` when the collection went with it, and the count.
pub fn reply_removed(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    removed: usize,
    deleted: bool,
    class: u32,
    event: &str,
) {
    if removed > 0 {
        ctx.notify(class, event, key);
    }
    if deleted {
        ctx.notify(Notify::GENERIC, "del", key);
    }
    ctx.out.int(removed as i64);
}

/// Stores the result of a *STORE command at `dst` and replies with its size: an empty result
/// deletes `dst` instead, as Redis never keeps an empty collection. Notifies `event` (or `del`).
pub fn store_result(
    ctx: &mut Ctx<'_>,
    dst: &[u8],
    len: usize,
    value: cache_store::Value,
    class: u32,
    event: &str,
) {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(dst);
    if len == 0 {
        let existed = locked.remove(db, dst, now).is_some();
        drop(locked);
        if existed {
            ctx.notify(Notify::GENERIC, "del", dst);
        }
    } else {
        locked.insert(db, dst, cache_store::Entry::new(value), now);
        drop(locked);
        ctx.notify(class, event, dst);
    }
    ctx.out.int(len as i64);
}

/// A random number below `n` (n > 0), from the per-thread generator.
pub fn random_below(n: usize) -> usize {
    fastrand::usize(..n)
}

/// Most members a negative HRANDFIELD/SRANDMEMBER/ZRANDMEMBER count may ask for. Redis
/// streams such a reply for any count; we build it, so a count from the wire is bounded
/// first (`SRANDMEMBER s -100000000000` once killed the node).
pub const MAX_RANDOM_REPEATS: u64 = 1 << 24;

/// Parses the `count` of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER with Redis 7.0's range checks
/// (`paired`: WITHVALUES/WITHSCORES, whose reply is twice as long) and our bound on repeats.
pub fn random_count(arg: &[u8], paired: bool) -> Result<i64, CmdError> {
    let n = int_arg(arg)?;
    if n == i64::MIN {
        return Err(CmdError::Msg("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    }
    if paired && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return Err(CmdError::Msg("ERR value is out of range"));
    }
    if n < 0 && n.unsigned_abs() > MAX_RANDOM_REPEATS {
        return Err(CmdError::Owned(format!(
            "ERR value is out of range: a negative count asks for at most {MAX_RANDOM_REPEATS} members"
        )));
    }
    Ok(n)
}

/// Indices for HRANDFIELD/SRANDMEMBER/ZRANDMEMBER `count`: distinct when positive (all of
/// them, in order, when count covers the collection), with repeats when negative.
pub fn random_indices(len: usize, count: i64) -> Vec<usize> {
    if len == 0 || count == 0 {
        return Vec::new();
    }
    if count < 0 {
        return (0..count.unsigned_abs())
            .map(|_| random_below(len))
            .collect();
    }
    let count = count as usize;
    if count >= len {
        return (0..len).collect();
    }
    // Partial Fisher-Yates over a list of indices: distinct picks in O(len).
    let mut all: Vec<usize> = (0..len).collect();
    for i in 0..count {
        let j = i + random_below(len - i);
        all.swap(i, j);
    }
    all.truncate(count);
    all
}

/// The node's side of admission: its connection state, ACL user and memory.
struct NodeSession<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl cache_protocol::admit::Session for NodeSession<'_, '_> {
    fn authenticated(&self) -> bool {
        self.ctx.conn.authenticated
    }

    fn acl_check(&mut self, call: Resolved, args: &[Bytes]) -> Result<(), String> {
        // One relaxed load while the only user is an unrestricted `default`.
        if !self.ctx.shared.acl.restricted() || self.ctx.conn.from_master {
            return Ok(());
        }
        self.ctx
            .conn
            .user
            .check(call.cmd, call.sub, args)
            .map_err(|denied| denied.noperm(call.name()))
    }

    fn resp2_subscribed(&self) -> bool {
        self.ctx.conn.subscribed() && !self.ctx.out.resp3()
    }

    fn queueing(&self) -> bool {
        self.ctx.conn.multi.is_some() && !self.ctx.conn.in_exec
    }

    fn queued_denyoom(&self) -> bool {
        self.ctx.conn.multi.as_ref().is_some_and(|queue| {
            queue.iter().any(|args| {
                Cmd::lookup(&args[0])
                    .is_some_and(|c| c.spec().has(cache_protocol::command::flags::DENYOOM))
            })
        })
    }

    fn cluster_redirect(&mut self, call: Resolved, args: &[Bytes]) -> Result<(), String> {
        crate::cluster::redirect(self.ctx.shared, self.ctx.conn, call, args)
    }

    fn out_of_memory(&mut self, call: Resolved, _args: &[Bytes]) -> bool {
        // A command that runs now is admitted by `memory::before_command` (which also evicts
        // for every command); queueing, and EXEC of a queue that may grow
        // memory, are decided here.
        (self.queueing() || call.cmd == Cmd::Exec)
            && crate::memory::out_of_memory(self.ctx.shared, self.ctx.now)
    }
}

/// Runs one request and appends its reply (unless CLIENT REPLY silenced it).
pub fn dispatch(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let mode = ctx.conn.reply;
    // (Un)subscribe confirmations are pushes, which Redis sends whatever CLIENT REPLY says.
    let pushes = || {
        Cmd::lookup(&args[0]).is_some_and(|c| {
            matches!(
                c,
                Cmd::Subscribe | Cmd::Psubscribe | Cmd::Unsubscribe | Cmd::Punsubscribe
            )
        })
    };
    if mode == ReplyMode::On || pushes() {
        run_admitted(ctx, args);
        return deliver_own_invalidations(ctx);
    }
    let before = ctx.out.len();
    if mode == ReplyMode::SkipNext {
        // This command consumes the skip (it may set a new mode itself).
        ctx.conn.reply = ReplyMode::On;
    }
    run_admitted(ctx, args);
    // CLIENT REPLY ON clears OFF and a pending SKIP alike: its OK is sent.
    let turned_on = ctx.conn.reply == ReplyMode::On
        && args.len() == 3
        && is(&args[0], "client")
        && is(&args[1], "reply")
        && is(&args[2], "on");
    if !turned_on {
        ctx.out.truncate(before);
    }
    deliver_own_invalidations(ctx);
}

/// Invalidations of keys this connection's own command changed follow its reply, as Redis
/// sends them (pushes, so whatever CLIENT REPLY says).
fn deliver_own_invalidations(ctx: &mut Ctx<'_>) {
    if ctx.shared.tracking.active() {
        crate::tracking::deliver_own(ctx);
    }
}

/// Keeps a request for EXEC.
fn queue(ctx: &mut Ctx<'_>, call: Resolved, args: &[Bytes]) {
    tracing::debug!(cmd = call.name(), args = args.len(), "queued");
    if let Some(queue) = ctx.conn.multi.as_mut() {
        queue.push(args.to_vec());
    }
    ctx.out.simple("QUEUED");
}

/// Admits one request and runs it.
fn run_admitted(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let stats = &ctx.shared.stats;
    let stripe = stats.local();
    let queueing = ctx.conn.multi.is_some() && !ctx.conn.in_exec;
    let admission = admit(Role::Node, args, &mut NodeSession { ctx: &mut *ctx });
    let call = match admission {
        Admission::Run(call) | Admission::Queue(call)
            if ctx.shared.replica.active() && !ctx.conn.from_master =>
        {
            match crate::replica::refusal(ctx.shared, call.spec(), call.cmd.spec()) {
                None if queueing => return queue(ctx, call, args),
                None => call,
                Some(error) => {
                    ctx.conn.multi_failed |= queueing;
                    stripe.per_command[call.id()].rejected.fetch_add(1, Relaxed);
                    ctx.out.error(error);
                    return;
                }
            }
        }
        Admission::Run(call) => call,
        Admission::Queue(call) => return queue(ctx, call, args),
        Admission::Refuse { error, call } => {
            // Redis's flagTransaction: any refusal while queueing fails the EXEC; a refused
            // EXEC ends the transaction.
            ctx.conn.multi_failed |= queueing;
            if cache_protocol::admit::aborts_transaction(call, queueing) {
                ctx.conn.multi = None;
                ctx.conn.multi_failed = false;
                multi::unwatch_all(ctx);
            }
            if let Some(call) = call {
                stripe.per_command[call.id()].rejected.fetch_add(1, Relaxed);
            }
            ctx.out.error(&error);
            return;
        }
    };
    let (cmd, sub, spec) = (call.cmd, call.sub, call.cmd.spec());
    let stat = call.id();
    // One relaxed load unless debug logging is on; the client's span adds id and address.
    tracing::debug!(
        cmd = call.name(),
        args = args.len(),
        db = ctx.conn.db,
        "command"
    );
    ctx.conn.info.set_last_command(stat);
    if spec.is_write() && !ctx.conn.from_master && crate::persist::writes_stopped(ctx.shared) {
        stripe.per_command[stat].rejected.fetch_add(1, Relaxed);
        ctx.out.error(crate::persist::MISCONF);
        return;
    }
    // Over maxmemory, every command evicts first (Redis's processCommand); only a
    // `denyoom` one is refused when nothing can be evicted.
    let admission = match crate::memory::before_command(ctx, cmd, spec, args) {
        Ok(a) => a,
        Err(e) => {
            stripe.per_command[stat].rejected.fetch_add(1, Relaxed);
            ctx.out.error(&e.to_string());
            return;
        }
    };
    let tracking = ctx.shared.tracking.active();
    if tracking {
        // Keys evicted for this command: their invalidations precede its reply.
        crate::tracking::deliver_own(ctx);
    }
    // With a backing store: load the command's absent keys first (after eviction, so the
    // loaded keys are not what gets evicted), or wait for a write-through commit of them.
    if ctx.shared.backing.is_some()
        && !ctx.conn.in_exec
        && !crate::backing::before_run(ctx, cmd, args)
    {
        return;
    }
    let before = ctx.out.len();
    if tracking {
        crate::tracking::before_command(ctx, cmd, spec, args);
    }
    // Keyspace `new` events (class `n`): keys this write creates. Redis raises them in
    // dbAdd, before the command's own event; here they follow it.
    let absent: Vec<usize> =
        if spec.is_write() && ctx.shared.config.notify_flags.load(Relaxed) & Notify::NEW != 0 {
            let (db, now) = (ctx.db(), ctx.now);
            cmd.keys(args)
                .into_iter()
                .filter(|&i| !ctx.store().lock(&args[i]).contains(db, &args[i], now))
                .collect()
        } else {
            Vec::new()
        };
    // @admin commands (CONFIG GET, a subcommand's flags) are not shown.
    let monitored = ctx.shared.monitors.active()
        && !sub
            .unwrap_or(spec)
            .has(cache_protocol::command::flags::ADMIN);
    if monitored && spec.has(cache_protocol::command::flags::SKIP_MONITOR) {
        monitor::feed(ctx, args);
    }
    let result = run(ctx, cmd, args);
    // Shown once it ran (Redis 7.0's call()); an accepted EXEC once its queue ran (conn.rs).
    if monitored
        && !spec.has(cache_protocol::command::flags::SKIP_MONITOR)
        && ctx.conn.exec_queue.is_none()
    {
        monitor::feed(ctx, args);
    }
    for i in absent {
        let (db, now) = (ctx.db(), ctx.now);
        if ctx.store().lock(&args[i]).contains(db, &args[i], now) {
            ctx.notify(Notify::NEW, "new", &args[i]);
        }
    }
    if tracking {
        crate::tracking::after_command(ctx, cmd);
    }
    crate::memory::after_write(ctx, admission);
    let ended = Instant::now();
    let usec = ended.duration_since(*ctx.clock).as_micros() as u64;
    *ctx.clock = ended;
    let counters = &stripe.per_command[stat];
    counters.calls.fetch_add(1, Relaxed);
    counters.usec.fetch_add(usec, Relaxed);
    // Each a relaxed load and a compare unless its feature is on.
    if let Some(histogram) = stripe.latency.get(stat) {
        histogram.get_or_init(Box::default).record(usec);
    }
    slowlog::observe(ctx, cmd, args, usec);
    latency::observe(ctx, sub.unwrap_or(spec), usec);
    match result {
        Ok(()) => {
            if ctx.out.buf.get(before) == Some(&b'-') {
                counters.failed.fetch_add(1, Relaxed);
            } else if spec.is_write() {
                // rdb_changes_since_last_save counts write commands (Redis counts changes).
                stripe.writes.fetch_add(1, Relaxed);
            }
        }
        Err(e) => {
            counters.failed.fetch_add(1, Relaxed);
            ctx.out.truncate(before);
            ctx.out.error(&e.to_string());
        }
    }
    if !ctx.conn.in_exec {
        blocking::serve_ready(ctx.shared, ctx.store(), ctx.now);
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
        Lastsave => persistence::lastsave(ctx, args),
        Replicaof | Slaveof => replication::replicaof(ctx, args),
        Role => replication::role(ctx, args),
        Save => persistence::save(ctx, args),
        Bgsave => persistence::bgsave(ctx, args),
        Monitor => monitor::monitor(ctx, args),
        Shutdown => server::shutdown(ctx, args),
        Command => server::command(ctx, args),
        Acl => server::acl(ctx, args),
        Slowlog => slowlog::slowlog(ctx, args),
        Latency => latency::latency(ctx, args),
        Del | Unlink => keys::del(ctx, args),
        Exists => keys::exists(ctx, args),
        Type => keys::type_(ctx, args),
        Touch => keys::touch(ctx, args),
        Rename => keys::rename(ctx, args, false),
        Renamenx => keys::rename(ctx, args, true),
        Copy => keys::copy(ctx, args),
        Dump => dump::dump(ctx, args),
        Restore => dump::restore(ctx, args),
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
        Cluster => cluster::cluster(ctx, args),
        Asking | Readonly | Readwrite => cluster::connection_mode(ctx, cmd),
        Cache => cluster::cache(ctx, args),
        // Admission refuses the proxy's commands on a node (`Role::Node`).
        Proxy => Err(CmdError::Owned(cache_protocol::command::unknown_command(
            args,
        ))),
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
        Hset => hashes::hset(ctx, args, false),
        Hmset => hashes::hset(ctx, args, true),
        Hsetnx => hashes::hsetnx(ctx, args),
        Hget => hashes::hget(ctx, args),
        Hmget => hashes::hmget(ctx, args),
        Hdel => hashes::hdel(ctx, args),
        Hexists => hashes::hexists(ctx, args),
        Hlen => hashes::hlen(ctx, args),
        Hstrlen => hashes::hstrlen(ctx, args),
        Hkeys => hashes::hgetall(ctx, args, true, false),
        Hvals => hashes::hgetall(ctx, args, false, true),
        Hgetall => hashes::hgetall(ctx, args, true, true),
        Hincrby => hashes::hincrby(ctx, args),
        Hincrbyfloat => hashes::hincrbyfloat(ctx, args),
        Hrandfield => hashes::hrandfield(ctx, args),
        Hscan => hashes::hscan(ctx, args),
        Lpush => lists::push(ctx, args, true, false),
        Rpush => lists::push(ctx, args, false, false),
        Lpushx => lists::push(ctx, args, true, true),
        Rpushx => lists::push(ctx, args, false, true),
        Lpop => lists::pop(ctx, args, true),
        Rpop => lists::pop(ctx, args, false),
        Llen => lists::llen(ctx, args),
        Lrange => lists::lrange(ctx, args),
        Lindex => lists::lindex(ctx, args),
        Lset => lists::lset(ctx, args),
        Lrem => lists::lrem(ctx, args),
        Ltrim => lists::ltrim(ctx, args),
        Linsert => lists::linsert(ctx, args),
        Lpos => lists::lpos(ctx, args),
        Lmove => lists::lmove(ctx, args, None),
        Rpoplpush => lists::lmove(ctx, args, Some((false, true))),
        Lmpop => lists::lmpop(ctx, args),
        Blpop => lists::bpop(ctx, args, true),
        Brpop => lists::bpop(ctx, args, false),
        Blmove => lists::blmove(ctx, args, None),
        Brpoplpush => lists::blmove(ctx, args, Some((false, true))),
        Blmpop => lists::blmpop(ctx, args),
        Sadd => sets::sadd(ctx, args),
        Srem => sets::srem(ctx, args),
        Smembers => sets::smembers(ctx, args),
        Sismember => sets::sismember(ctx, args),
        Smismember => sets::smismember(ctx, args),
        Scard => sets::scard(ctx, args),
        Spop => sets::spop(ctx, args),
        Srandmember => sets::srandmember(ctx, args),
        Smove => sets::smove(ctx, args),
        Sinter => sets::setop(ctx, args, sets::SetOp::Inter),
        Sunion => sets::setop(ctx, args, sets::SetOp::Union),
        Sdiff => sets::setop(ctx, args, sets::SetOp::Diff),
        Sinterstore => sets::setop_store(ctx, args, sets::SetOp::Inter),
        Sunionstore => sets::setop_store(ctx, args, sets::SetOp::Union),
        Sdiffstore => sets::setop_store(ctx, args, sets::SetOp::Diff),
        Sintercard => sets::sintercard(ctx, args),
        Sscan => sets::sscan(ctx, args),
        Zadd => zsets::zadd(ctx, args, false),
        Zincrby => zsets::zincrby(ctx, args),
        Zrem => zsets::zrem(ctx, args),
        Zscore => zsets::zscore(ctx, args),
        Zmscore => zsets::zmscore(ctx, args),
        Zcard => zsets::zcard(ctx, args),
        Zcount => zsets::zcount(ctx, args, false),
        Zlexcount => zsets::zcount(ctx, args, true),
        Zrange => zsets::zrange(ctx, args, zsets::By::Rank, false, false),
        Zrangebyscore => zsets::zrange(ctx, args, zsets::By::Score, false, true),
        Zrevrangebyscore => zsets::zrange(ctx, args, zsets::By::Score, true, true),
        Zrangebylex => zsets::zrange(ctx, args, zsets::By::Lex, false, true),
        Zrevrangebylex => zsets::zrange(ctx, args, zsets::By::Lex, true, true),
        Zrevrange => zsets::zrange(ctx, args, zsets::By::Rank, true, true),
        Zrank => zsets::zrank(ctx, args, false),
        Zrevrank => zsets::zrank(ctx, args, true),
        Zrangestore => zsets::zrangestore(ctx, args),
        Zpopmin => zsets::zpop(ctx, args, false),
        Zpopmax => zsets::zpop(ctx, args, true),
        Bzpopmin => zsets::bzpop(ctx, args, false),
        Bzpopmax => zsets::bzpop(ctx, args, true),
        Zmpop => zsets::zmpop(ctx, args),
        Bzmpop => zsets::bzmpop(ctx, args),
        Zremrangebyrank => zsets::zremrange(ctx, args, zsets::By::Rank),
        Zremrangebyscore => zsets::zremrange(ctx, args, zsets::By::Score),
        Zremrangebylex => zsets::zremrange(ctx, args, zsets::By::Lex),
        Zunion => zsets::zsetop(ctx, args, zsets::ZOp::Union),
        Zinter => zsets::zsetop(ctx, args, zsets::ZOp::Inter),
        Zdiff => zsets::zsetop(ctx, args, zsets::ZOp::Diff),
        Zunionstore => zsets::zsetop_store(ctx, args, zsets::ZOp::Union),
        Zinterstore => zsets::zsetop_store(ctx, args, zsets::ZOp::Inter),
        Zdiffstore => zsets::zsetop_store(ctx, args, zsets::ZOp::Diff),
        Zintercard => zsets::zintercard(ctx, args),
        Zrandmember => zsets::zrandmember(ctx, args),
        Zscan => zsets::zscan(ctx, args),
        Multi => multi::multi(ctx, args),
        Exec => multi::exec(ctx, args),
        Discard => multi::discard(ctx, args),
        Watch => multi::watch(ctx, args),
        Unwatch => multi::unwatch(ctx, args),
        Subscribe => pubsub::subscribe(ctx, args, false),
        Psubscribe => pubsub::subscribe(ctx, args, true),
        Unsubscribe => pubsub::unsubscribe(ctx, args, false),
        Punsubscribe => pubsub::unsubscribe(ctx, args, true),
        Publish => pubsub::publish(ctx, args),
        Pubsub => pubsub::pubsub(ctx, args),
        Pfadd => hyperloglog::pfadd(ctx, args),
        Pfcount => hyperloglog::pfcount(ctx, args),
        Pfmerge => hyperloglog::pfmerge(ctx, args),
        Pfdebug => hyperloglog::pfdebug(ctx, args),
        Pfselftest => hyperloglog::pfselftest(ctx, args),
        Bitop => bitops::bitop(ctx, args),
        Bitfield => bitops::bitfield(ctx, args, false),
        BitfieldRo => bitops::bitfield(ctx, args, true),
        Lcs => lcs::lcs(ctx, args),
        Sort => sort::sort(ctx, args, false),
        SortRo => sort::sort(ctx, args, true),
        Geoadd => geo::geoadd(ctx, args),
        Geodist => geo::geodist(ctx, args),
        Geohash => geo::geohash(ctx, args),
        Geopos => geo::geopos(ctx, args),
        Georadius => geo::search(ctx, args, geo::Variant::Radius { ro: false }),
        GeoradiusRo => geo::search(ctx, args, geo::Variant::Radius { ro: true }),
        Georadiusbymember => geo::search(ctx, args, geo::Variant::RadiusByMember { ro: false }),
        GeoradiusbymemberRo => geo::search(ctx, args, geo::Variant::RadiusByMember { ro: true }),
        Geosearch => geo::search(ctx, args, geo::Variant::Search),
        Geosearchstore => geo::search(ctx, args, geo::Variant::SearchStore),
        Memory => memory::memory(ctx, args),
        Eval | EvalRo => scripting::eval(ctx, args, false),
        Evalsha | EvalshaRo => scripting::eval(ctx, args, true),
        Script => scripting::script(ctx, args),
        Fcall | FcallRo => scripting::fcall(ctx, args),
        Function => scripting::function(ctx, args),
        Xadd => streams::xadd(ctx, args),
        Xrange => streams::xrange(ctx, args, false),
        Xrevrange => streams::xrange(ctx, args, true),
        Xlen => streams::xlen(ctx, args),
        Xdel => streams::xdel(ctx, args),
        Xtrim => streams::xtrim(ctx, args),
        Xsetid => streams::xsetid(ctx, args),
        Xread => streams::xread(ctx, args, false),
        Xreadgroup => streams::xread(ctx, args, true),
        Xgroup => stream_groups::xgroup(ctx, args),
        Xack => stream_groups::xack(ctx, args),
        Xpending => stream_groups::xpending(ctx, args),
        Xclaim => stream_groups::xclaim(ctx, args),
        Xautoclaim => stream_groups::xautoclaim(ctx, args),
        Xinfo => stream_info::xinfo(ctx, args),
    }
}

#[cfg(test)]
mod strtod_tests {
    use super::strtod;

    #[test]
    fn parses_like_c_strtod() {
        let t = |s: &[u8]| {
            let (v, used, _) = strtod(s);
            (v, used)
        };
        assert_eq!(t(b""), (0.0, 0));
        assert_eq!(t(b"("), (0.0, 0));
        assert_eq!(t(b" 1.5x"), (1.5, 4));
        assert_eq!(t(b"-inf"), (f64::NEG_INFINITY, 4));
        assert_eq!(t(b"+Infinity"), (f64::INFINITY, 9));
        assert_eq!(t(b"1e"), (1.0, 1));
        assert_eq!(t(b"1e-2"), (0.01, 4));
        assert_eq!(t(b"-.5"), (-0.5, 3));
        assert_eq!(t(b"5."), (5.0, 2));
        assert_eq!(t(b"."), (0.0, 0));
        assert_eq!(t(b"0x10"), (16.0, 4));
        assert_eq!(t(b"0x1.8p1"), (3.0, 7));
        assert_eq!(t(b"0x"), (0.0, 1));
        let (nan, used, _) = strtod(b"nan");
        assert!(nan.is_nan() && used == 3);
        assert!(strtod(b"1e400").2 && strtod(b"-1e-400").2 && strtod(b"0x1p99999").2);
        assert!(!strtod(b"0e-400").2 && !strtod(b"inf").2 && !strtod(b"1e300").2);
    }

    #[test]
    fn parse_float_is_get_double_from_object() {
        assert_eq!(super::parse_float(b"0x10"), Some(16.0));
        assert_eq!(super::parse_float(b"1."), Some(1.0));
        assert_eq!(super::parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"1e400",
            b"1e-400",
            b"nan",
            b"1x",
            b"+-1",
            b"--1",
        ] {
            assert_eq!(
                super::parse_float(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
