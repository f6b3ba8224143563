//! Lua scripting: EVAL's script cache, FUNCTION's libraries, and running either atomically.
//!
//! ```text
//!  EVAL/FCALL handler ── checks, flags ──► Invocation in ConnState.script
//!  connection: drop the shared gate, take it exclusively ──► run(ctx, invocation)
//!      thread-local interpreter (one per worker; compiled once per SHA, per thread)
//!      redis.call ─► bridge: table lookup, NOSCRIPT, ACL, read-only, OOM ─► cmd::dispatch
//!                    (same handlers: notifications, tracking, WATCH see the writes)
//!                    reply bytes ─► Lua value (convert)
//!      result ─► the caller's reply (convert)
//! ```
//! Inside MULTI/EXEC the gate is already exclusive and the script runs in place.
//!
//! # Left out (Redis 7.0 behaviour not there yet, and why)
//! - `-BUSY`, SCRIPT KILL / FUNCTION KILL of a running script, `-UNKILLABLE`,
//!   `busy-reply-threshold`/`lua-time-limit`: each worker thread has its own single-threaded
//!   runtime and a script holds the gate (a `std::sync::RwLock`) exclusively, so no other
//!   connection can be answered while it runs. Instead a script that runs 5 s without writing
//!   is stopped with an error (one that wrote runs to its end, keeping atomicity); SCRIPT KILL
//!   and FUNCTION KILL answer `NOTBUSY`. Needs connections that park asynchronously on the gate.
//! - FUNCTION DUMP / RESTORE: they need the RDB codec (#14).
//! - SCRIPT DEBUG (the Lua debugger); `redis.breakpoint`/`redis.debug` are no-ops.
//! - With a backing store, only the declared keys (KEYS) are loaded before a script runs;
//!   an undeclared absent key reads as missing. (Its writes, declared or not, commit as one
//!   group before the reply under write-through, as a transaction's: `backing::run_script`.)
//! - INFO's `used_memory_lua`/`used_memory_vm_*` stay 0 (one interpreter per thread).
//! - Redis's `errorstats` for script errors (the node has no errorstats section yet).

pub mod api;
pub mod bit;
pub mod cjson;
pub mod convert;
pub mod engine;
pub mod functions;
pub mod msgpack;
pub mod structlib;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cache_protocol::command::flags as cmd_flags;
use cache_protocol::{Protocol, ReplyBuf};
use hashbrown::HashMap;
use mlua::{Function, Lua, MultiValue, Value};

use crate::cmd::Ctx;
use engine::Engine;

/// Script flags from a `#!lua flags=...` shebang or `redis.register_function`.
pub mod flag {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// No shebang: an EVAL script of before Redis 7 (no flag checks before it runs).
    pub const EVAL_COMPAT: u32 = 1 << 5;

    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

/// Lower-case hex SHA1 of `data`, as script names are.
pub fn sha1hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// One cached EVAL script.
pub struct Script {
    pub body: Bytes,
    pub flags: u32,
}

/// The node's script cache (SCRIPT LOAD / EXISTS / FLUSH) and function libraries.
#[derive(Default)]
pub struct Scripts {
    map: Mutex<HashMap<String, Arc<Script>>>,
    memory: AtomicUsize,
    pub functions: functions::Registry,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bumped by SCRIPT FLUSH: every thread drops its interpreter (and what it compiled).
static GENERATION: AtomicU64 = AtomicU64::new(0);

impl Scripts {
    pub fn get(&self, sha: &str) -> Option<Arc<Script>> {
        lock(&self.map).get(sha).cloned()
    }

    pub fn contains(&self, sha: &str) -> bool {
        lock(&self.map).contains_key(sha)
    }

    /// Caches `body` (already compiled successfully) under its SHA1.
    pub fn insert(&self, sha: String, body: Bytes, flags: u32) -> Arc<Script> {
        let mut map = lock(&self.map);
        if let Some(s) = map.get(&sha) {
            return s.clone();
        }
        self.memory.fetch_add(body.len() + sha.len() + 64, Relaxed);
        let script = Arc::new(Script { body, flags });
        map.insert(sha, script.clone());
        script
    }

    pub fn flush(&self) {
        lock(&self.map).clear();
        self.memory.store(0, Relaxed);
        GENERATION.fetch_add(1, Relaxed);
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// INFO's `used_memory_scripts_eval`.
    pub fn memory(&self) -> usize {
        self.memory.load(Relaxed)
    }
}

/// Splits a shebang line as Redis's `sdssplitargs`: words, with `"..."` (backslash escapes)
/// and `'...'` quoting anywhere in a word; `None` when a quote is unbalanced or a closing
/// quote is not followed by a space.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                c if c.is_ascii_whitespace() => break,
                '"' => loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            'n' => word.push('\n'),
                            'r' => word.push('\r'),
                            't' => word.push('\t'),
                            'b' => word.push('\u{8}'),
                            'a' => word.push('\u{7}'),
                            other => word.push(other),
                        },
                        other => word.push(other),
                    }
                },
                '\'' => loop {
                    match chars.next()? {
                        '\'' => break,
                        '\\' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            word.push('\'');
                        }
                        other => word.push(other),
                    }
                },
                other => {
                    word.push(other);
                    continue;
                }
            }
            // After a closing quote: a space or the end.
            if chars.peek().is_some_and(|c| !c.is_ascii_whitespace()) {
                return None;
            }
        }
        out.push(word);
    }
}

/// Parses a `#!lua flags=a,b` first line: the flags and the shebang's length (the script
/// compiles from there, keeping the newline so line numbers stay right).
///
/// # Errors
/// Redis's message for a malformed shebang (without the `ERR` code).
pub fn shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flag::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let parts = split_args(&line).unwrap_or_default();
    let mut parts = parts.iter().map(String::as_str);
    let Some(engine) = parts.next() else {
        return Err("Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        if list.is_empty() {
            continue;
        }
        for f in list.split(',') {
            match flag::NAMES.iter().find(|(_, n)| *n == f) {
                Some((bit, _)) => flags |= bit,
                None => return Err(format!("Unexpected flag in script shebang: {f}")),
            }
        }
    }
    Ok((flags, end))
}

/// What a script's run needs: set by EVAL/FCALL, run by the connection under the exclusive
/// gate (or in place inside EXEC).
pub struct Invocation {
    pub kind: Kind,
    pub keys: Vec<Bytes>,
    pub argv: Vec<Bytes>,
    pub flags: u32,
    /// EVAL_RO/FCALL_RO, or a `no-writes` script: write commands are refused.
    pub read_only: bool,
    /// The server was over maxmemory when the script was admitted.
    pub oom: bool,
}

pub enum Kind {
    Eval { sha: String, body: Bytes },
    Function { name: String },
}

/// A per-thread interpreter and what it compiled.
struct Local {
    engine: Engine,
    compiled: HashMap<String, Function>,
    generation: u64,
}

thread_local! {
    static EVAL_ENGINE: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Most compiled scripts a thread keeps before starting over (the node's cache is bounded by
/// SCRIPT FLUSH, as Redis's; this bounds the per-thread copies).
const MAX_COMPILED: usize = 10_000;

fn with_eval_engine<R>(f: impl FnOnce(&mut Local) -> R) -> Result<R, String> {
    EVAL_ENGINE.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "ERR script engine is busy".to_string())?;
        let generation = GENERATION.load(Relaxed);
        if slot
            .as_ref()
            .is_none_or(|l| l.generation != generation || l.compiled.len() > MAX_COMPILED)
        {
            let engine = Engine::new().map_err(|e| format!("ERR Lua engine failed: {e}"))?;
            *slot = Some(Local {
                engine,
                compiled: HashMap::new(),
                generation,
            });
        }
        match slot.as_mut() {
            Some(local) => Ok(f(local)),
            None => Err("ERR Lua engine failed".to_string()),
        }
    })
}

/// Compiles `body` (checking its shebang) in this thread's interpreter, as SCRIPT LOAD and
/// EVAL do before caching it. Returns the script's flags.
///
/// # Errors
/// The error reply text: a bad shebang or `Error compiling script (new function): ...`.
pub fn compile(sha: &str, body: &[u8]) -> Result<u32, String> {
    let (flags, skip) = shebang(body).map_err(|e| format!("ERR {e}"))?;
    with_eval_engine(|local| {
        if local.compiled.contains_key(sha) {
            return Ok(flags);
        }
        let f = local
            .engine
            .compile(&body[skip..], "@user_script")
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
        local.compiled.insert(sha.to_string(), f);
        Ok(flags)
    })?
}

/// Redis's checks before a script with flags runs (`scriptPrepareForRun`), in its order.
///
/// # Errors
/// The error reply.
pub fn admit(ctx: &Ctx<'_>, flags: u32, ro_command: bool) -> Result<bool, String> {
    let oom = crate::memory::over_limit(ctx);
    if flags & flag::EVAL_COMPAT != 0 {
        return Ok(oom);
    }
    if flags & flag::NO_WRITES == 0 {
        if ro_command {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        if oom && flags & flag::ALLOW_OOM == 0 {
            return Err(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'"
                    .into(),
            );
        }
    }
    Ok(oom)
}

/// Runs a script to its end and appends its reply. The caller holds the gate exclusively.
pub fn run(ctx: &mut Ctx<'_>, inv: Invocation) {
    match &inv.kind {
        Kind::Eval { sha, body } => {
            let sha = sha.clone();
            let body = body.clone();
            let result = with_eval_engine(|local| {
                let f = match local.compiled.get(&sha) {
                    Some(f) => f.clone(),
                    None => {
                        let (_, skip) = shebang(&body).unwrap_or((0, 0));
                        match local.engine.compile(&body[skip..], "@user_script") {
                            Ok(f) => {
                                local.compiled.insert(sha.clone(), f.clone());
                                f
                            }
                            Err(e) => {
                                ctx.out.error(&format!(
                                    "ERR Error compiling script (new function): {e}"
                                ));
                                return;
                            }
                        }
                    }
                };
                execute(ctx, &local.engine, f, &inv, &sha, true);
            });
            if let Err(e) = result {
                ctx.out.error(&e);
            }
        }
        Kind::Function { name } => {
            let name = name.clone();
            functions::run(ctx, &inv, &name);
        }
    }
}

/// What `redis.call` reads and changes during one run.
struct CallState<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    read_only: bool,
    allow_oom: bool,
    oom: bool,
    wrote: bool,
}

/// Calls `f` with KEYS/ARGV and converts its result (or error) into the caller's reply.
pub(crate) fn execute(
    ctx: &mut Ctx<'_>,
    engine: &Engine,
    f: Function,
    inv: &Invocation,
    name: &str,
    eval_mode: bool,
) {
    let lua = &engine.lua;
    let arrays = (|| -> mlua::Result<(mlua::Table, mlua::Table)> {
        let keys = strings(lua, &inv.keys)?;
        let argv = strings(lua, &inv.argv)?;
        if eval_mode {
            engine.globals.raw_set("KEYS", keys.clone())?;
            engine.globals.raw_set("ARGV", argv.clone())?;
        }
        Ok((keys, argv))
    })();
    let (keys, argv) = match arrays {
        Ok(a) => a,
        Err(e) => {
            ctx.out.error(&format!("ERR {e}"));
            return;
        }
    };
    api::RUNNING.set(true);
    api::RESP.set(2);
    engine::arm(engine::TIME_LIMIT, engine::STOPPED_MSG);
    let saved_db = ctx.conn.db;
    let saved_in_exec = ctx.conn.in_exec;
    ctx.conn.in_exec = true;
    ctx.conn.in_script = true;
    let state = RefCell::new(CallState {
        ctx: &mut *ctx,
        read_only: inv.read_only,
        allow_oom: inv.flags & flag::ALLOW_OOM != 0 && inv.flags & flag::EVAL_COMPAT == 0,
        oom: inv.oom,
        wrote: false,
    });
    // Outside a run these raise "can only be called inside a script invocation".
    let saved: (Value, Value) = (
        engine.redis.raw_get("call").unwrap_or(Value::Nil),
        engine.redis.raw_get("acl_check_cmd").unwrap_or(Value::Nil),
    );
    let result = lua.scope(|scope| {
        let call = scope.create_function(|lua, args: MultiValue| {
            let mut st = state
                .try_borrow_mut()
                .map_err(|_| mlua::Error::RuntimeError("recursive redis.call".into()))?;
            let (is_err, v) = bridge(lua, &mut st, args)?;
            drop(st);
            if is_err {
                return engine::raise(v);
            }
            Ok(v)
        })?;
        let pcall = scope.create_function(|lua, args: MultiValue| {
            let mut st = state
                .try_borrow_mut()
                .map_err(|_| mlua::Error::RuntimeError("recursive redis.call".into()))?;
            Ok(bridge(lua, &mut st, args)?.1)
        })?;
        let acl = scope.create_function(|lua, args: MultiValue| {
            let st = state
                .try_borrow()
                .map_err(|_| mlua::Error::RuntimeError("recursive redis.call".into()))?;
            acl_check(lua, &st, args)
        })?;
        engine.redis.raw_set("call", call)?;
        engine.redis.raw_set("pcall", pcall)?;
        engine.redis.raw_set("acl_check_cmd", acl)?;
        engine
            .runner
            .call::<(bool, Value)>((f, keys.clone(), argv.clone()))
    });
    let _ = engine.redis.raw_set("call", saved.0.clone());
    let _ = engine.redis.raw_set("pcall", saved.0);
    let _ = engine.redis.raw_set("acl_check_cmd", saved.1);
    // `state` holds the caller's context; it is no longer used below.
    let _ = state.into_inner();
    ctx.conn.db = saved_db;
    ctx.conn.in_exec = saved_in_exec;
    ctx.conn.in_script = false;
    api::RUNNING.set(false);
    engine::disarm();
    let resp = api::RESP.get();
    if eval_mode {
        let _ = engine.globals.raw_set("KEYS", Value::Nil);
        let _ = engine.globals.raw_set("ARGV", Value::Nil);
    }
    match result {
        Ok((true, v)) => {
            let before = ctx.out.len();
            if let Err(e) = convert::lua_to_reply(ctx.out, &v, resp) {
                ctx.out.truncate(before);
                ctx.out.error(&format!("ERR {e}"));
            }
        }
        Ok((false, Value::Table(err))) => {
            let msg: String = err
                .raw_get::<Option<mlua::String>>("err")
                .ok()
                .flatten()
                .map(|s| s.to_string_lossy())
                .unwrap_or_else(|| "ERR unknown error".into());
            let source: Option<String> = err
                .raw_get::<Option<mlua::String>>("source")
                .ok()
                .flatten()
                .map(|s| s.to_string_lossy());
            let line: Option<i64> = err.raw_get::<Option<i64>>("line").ok().flatten();
            let mut text = msg;
            if let (Some(source), Some(line)) = (source, line) {
                text.push_str(&format!(" script: {name}, on {source}:{line}."));
            }
            ctx.out.error(&text);
        }
        Ok((false, other)) => {
            let msg = match other {
                Value::String(s) => s.to_string_lossy(),
                _ => "execution failure".to_string(),
            };
            let msg: String = msg.chars().take(100).collect();
            ctx.out
                .error(&format!("ERR Error running script {name}, {msg}"));
        }
        Err(e) => {
            let msg: String = engine::lua_error_text(&e).chars().take(100).collect();
            ctx.out
                .error(&format!("ERR Error running script {name}, {msg}"));
        }
    }
    // A step of garbage collection per run keeps the heap from growing between full cycles.
    let _ = lua.gc_step();
}

/// A Lua array of binary-safe strings.
fn strings(lua: &Lua, items: &[Bytes]) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// A command's arguments from Lua values: strings, and numbers as `%.17g` (Lua's own
/// conversion would lose precision); `None` for any other type.
fn command_args(args: &MultiValue) -> Option<Vec<Bytes>> {
    let mut argv: Vec<Bytes> = Vec::with_capacity(args.len());
    for a in args.iter() {
        match a {
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => argv.push(Bytes::from(i.to_string())),
            Value::Number(n) => argv.push(Bytes::from(cache_protocol::format_score(*n))),
            _ => return None,
        }
    }
    Some(argv)
}

/// `redis.acl_check_cmd(cmd, args...)`: whether the caller's user may run that command.
fn acl_check(lua: &Lua, st: &CallState<'_, '_>, args: MultiValue) -> mlua::Result<Value> {
    if args.is_empty() {
        return api::raise_table(
            lua,
            "Please specify at least one argument for this redis lib call",
        )
        .map(|_| Value::Nil);
    }
    let Some(argv) = command_args(&args) else {
        return api::raise_table(
            lua,
            "Lua redis lib command arguments must be strings or integers",
        )
        .map(|_| Value::Nil);
    };
    let Ok((cmd, sub)) = cache_protocol::command::resolve(&argv) else {
        return api::raise_table(lua, "Invalid command passed to redis.acl_check_cmd()")
            .map(|_| Value::Nil);
    };
    let ctx = &*st.ctx;
    let allowed = !ctx.shared.acl.restricted() || ctx.conn.user.check(cmd, sub, &argv).is_ok();
    Ok(Value::Boolean(allowed))
}

/// `redis.call`/`redis.pcall`'s Rust half: returns `(is_error, value)`.
fn bridge(lua: &Lua, st: &mut CallState<'_, '_>, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let fail = |msg: &str| -> mlua::Result<(bool, Value)> {
        Ok((true, Value::Table(api::err_table(lua, msg)?)))
    };
    if args.is_empty() {
        return fail("Please specify at least one argument for this redis lib call");
    }
    let Some(argv) = command_args(&args) else {
        return fail("Lua redis lib command arguments must be strings or integers");
    };
    let (cmd, sub) = match cache_protocol::command::resolve(&argv) {
        Ok(found) => found,
        Err(e) if e.starts_with("ERR wrong number") => {
            return fail("Wrong number of args calling Redis command from script")
        }
        Err(_) => return fail("Unknown Redis command called from script"),
    };
    let spec = sub.unwrap_or(cmd.spec());
    if spec.has(cmd_flags::NOSCRIPT) || cmd.spec().has(cmd_flags::NOSCRIPT) {
        return fail("This Redis command is not allowed from script");
    }
    let ctx = &mut *st.ctx;
    if ctx.shared.acl.restricted() {
        if let Err(denied) = ctx.conn.user.check(cmd, sub, &argv) {
            let why = match denied {
                cache_acl::Denied::Command => "can't run this command or subcommand",
                cache_acl::Denied::Key(_) => {
                    "can't access at least one of the keys mentioned in the command arguments"
                }
                cache_acl::Denied::Channel(_) => {
                    "can't publish to the channel mentioned in the command"
                }
            };
            return fail(&format!("The user executing the script {why}"));
        }
    }
    let write = spec.is_write();
    if st.read_only && write {
        return fail("Write commands are not allowed from read-only scripts.");
    }
    if !st.allow_oom && st.oom && !st.wrote && spec.has(cmd_flags::DENYOOM) {
        return fail("-OOM command not allowed when used memory > 'maxmemory'.");
    }
    if write {
        st.wrote = true;
        // Once it wrote, a script runs to its end: stopping it would break its atomicity.
        engine::DEADLINE.set(None);
    }
    let mut out = ReplyBuf {
        buf: bytes::BytesMut::with_capacity(256),
        protocol: if api::RESP.get() == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        },
    };
    {
        let mut inner = Ctx {
            shared: ctx.shared,
            conn: &mut *ctx.conn,
            out: &mut out,
            now: ctx.now,
            clock: &mut *ctx.clock,
            changes: ctx.changes,
        };
        crate::cmd::dispatch(&mut inner, &argv);
    }
    let is_err = out.buf.first() == Some(&b'-');
    let v = convert::reply_to_lua(lua, &out.buf)?;
    if is_err {
        // `-ERR msg` → {err = "ERR msg"}, as luaPushError keeps the code.
        if let Value::Table(t) = &v {
            let e: Option<mlua::String> = t.raw_get("err")?;
            if let Some(e) = e {
                let text = e.to_string_lossy();
                t.raw_set("err", api::error_text(&format!("-{text}")))?;
            }
        }
    }
    Ok((is_err, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_flags() {
        assert_eq!(shebang(b"return 1"), Ok((flag::EVAL_COMPAT, 0)));
        assert_eq!(
            shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok((flag::NO_WRITES | flag::ALLOW_OOM, 31))
        );
        assert_eq!(shebang(b"#!lua flags=\nx"), Ok((0, 12)));
        assert!(shebang(b"#!lua").is_err());
        assert!(shebang(b"#!lua flags=bogus\n").is_err());
        assert!(shebang(b"#!lua x=1\n").is_err());
    }

    #[test]
    fn split_args_quotes_as_sdssplitargs() {
        let words = |s: &str| split_args(s);
        assert_eq!(
            words(r#"#!lua name="foo""#),
            Some(vec!["#!lua".into(), "name=foo".into()])
        );
        assert_eq!(
            words("a  'b c' d"),
            Some(vec!["a".into(), "b c".into(), "d".into()])
        );
        assert_eq!(words(r#"a "b\"c""#), Some(vec!["a".into(), "b\"c".into()]));
        assert_eq!(words(r#""unbalanced"#), None);
        assert_eq!(words(r#""a"b"#), None);
        assert_eq!(words(""), Some(vec![]));
    }

    #[test]
    fn error_text_keeps_codes() {
        assert_eq!(
            api::error_text("-WRONGTYPE Operation"),
            "WRONGTYPE Operation"
        );
        assert_eq!(api::error_text("plain message"), "ERR plain message");
        assert_eq!(api::error_text("-NOCODE"), "ERR NOCODE");
    }
}
