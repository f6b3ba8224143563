//! One Lua 5.1 interpreter, sandboxed as Redis 7.0 sandboxes its own: the libraries Redis
//! loads (base, table, string, math, cjson, cmsgpack, bit, struct), no `os`/`io`/`print`/
//! `loadfile`/`dofile`, globals that raise on a read of a nonexistent name and refuse writes,
//! library tables that refuse writes, and `math.random` on Redis's own generator.
//!
//! Redis patches its Lua with read-only tables; stock Lua has none, so each protected table is
//! an empty proxy whose metatable reads through to the real table and raises Redis's
//! "Attempt to modify a readonly table" on a write.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

/// Chunk name of the engine's own Lua code: frames from it are skipped when an error is
/// located, so errors point at the user's line as Redis's do.
pub const INTERNAL: &str = "=ferrocache";

/// A sandboxed interpreter and the handles the invocation code needs.
pub struct Engine {
    pub lua: Lua,
    /// The real global table (library tables, KEYS, ARGV); scripts see it through `env`.
    pub globals: Table,
    /// What scripts see as `_G`: reads through to `globals`, refuses writes.
    pub env: Table,
    /// `run(raw, f, keys, argv)`: sets the call bridge, runs `f` under the error handler,
    /// returns `ok, value`.
    pub runner: Function,
    /// The `redis` table itself (not its proxy), for the functions engine's extra API.
    pub redis: Table,
}

/// Lua code that completes the sandbox (it runs once per interpreter, before protection).
/// Errors raised by Rust functions travel as mlua's wrapped errors; `take` turns one back into
/// the value the function meant to raise (Redis's error table or a located message), which is
/// what `pcall` returns to the script, as Redis's own `pcall` replacement does.
const PRELUDE: &str = r#"
local globals, handler, take = ...
local builtin_pcall, xpcall = pcall, xpcall
local builtin_setmetatable, builtin_getmetatable = setmetatable, getmetatable
local builtin_loadstring, error, type = loadstring, error, type

-- Protected tables: setmetatable refuses them, getmetatable shows a read-only view of their
-- metatable, as on Redis's read-only tables.
local protected = builtin_setmetatable({}, {__mode = 'k'})
local function ro_error() error('Attempt to modify a readonly table', 2) end
local function protect(t, meta)
  protected[t] = builtin_setmetatable({}, {__index = meta, __newindex = ro_error, __metatable = false})
end
globals.setmetatable = function(t, m)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return builtin_setmetatable(t, m)
end
local builtin_rawset = rawset
globals.rawset = function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return builtin_rawset(t, k, v)
end
globals.getmetatable = function(t)
  local view = protected[t]
  if view then return view end
  return builtin_getmetatable(t)
end
-- Redis's Lua refuses precompiled chunks.
globals.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'binary chunks are not allowed'
  end
  return builtin_loadstring(s, name)
end
local type = type
local function caught(ok, ...)
  if ok then return ok, ... end
  local e = take((...))
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' then e = m end
  end
  return false, e
end
globals.pcall = function(...) return caught(builtin_pcall(...)) end
return function(f, keys, argv)
  return xpcall(function() return f(keys, argv) end, handler)
end, protect
"#;

/// Fills a library: constants into its table, Rust functions into the second (the same
/// table today; kept apart so a library may hide helpers).
pub type Installer = fn(&Lua, &Table, &Table) -> mlua::Result<()>;

impl Engine {
    /// A fresh interpreter. `functions` selects the FUNCTION engine's flavour (no KEYS/ARGV
    /// globals; libraries register functions instead).
    pub fn new() -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        let globals = lua.globals();
        for name in [
            "dofile", "loadfile", "print", "require", "module", "package",
        ] {
            globals.raw_set(name, Value::Nil)?;
        }
        let redis = lua.create_table()?;
        super::api::install(&lua, &redis, &redis)?;
        globals.raw_set("redis", redis.clone())?;
        let math: Table = globals.raw_get("math")?;
        super::api::install_math(&lua, &math)?;
        for (name, install) in [
            ("cjson", super::cjson::install as Installer),
            ("bit", super::bit::install),
            ("cmsgpack", super::msgpack::install),
            ("struct", super::structlib::install),
        ] {
            let table = lua.create_table()?;
            install(&lua, &table, &table)?;
            globals.raw_set(name, table)?;
        }

        let env = lua.create_table()?;
        let handler = lua.create_function(error_handler)?;
        let take = lua.create_function(|lua, e: Value| {
            if STOPPED.get() {
                // A stopped script cannot catch its way out of it.
                return Err(mlua::Error::RuntimeError(STOP_MSG.get().into()));
            }
            raised_value(lua, e)
        })?;
        lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(100_000),
            |lua, _| {
                if DEADLINE
                    .get()
                    .is_some_and(|d| std::time::Instant::now() > d)
                {
                    STOPPED.set(true);
                    let t = lua.create_table()?;
                    t.raw_set("err", STOP_MSG.get())?;
                    return raise(Value::Table(t));
                }
                Ok(mlua::VmState::Continue)
            },
        );
        let (runner, protect): (Function, Function) = lua
            .load(PRELUDE)
            .set_name(INTERNAL)
            .call((globals.clone(), handler, take))?;

        // Library tables become read-only proxies; _G is the proxy of the globals.
        for name in [
            "redis",
            "cjson",
            "bit",
            "cmsgpack",
            "struct",
            "math",
            "string",
            "table",
            "coroutine",
        ] {
            let real: Value = globals.raw_get(name)?;
            if let Value::Table(real) = real {
                let proxy = readonly_proxy(&lua, &real, false)?;
                if let Some(meta) = proxy.metatable() {
                    protect.call::<()>((proxy.clone(), meta))?;
                }
                globals.raw_set(name, proxy)?;
            }
        }
        let meta = lua.create_table()?;
        meta.raw_set("__index", globals.clone())?;
        meta.raw_set("__newindex", readonly_error(&lua)?)?;
        meta.raw_set("__metatable", false)?;
        env.set_metatable(Some(meta.clone()));
        protect.call::<()>((env.clone(), meta))?;
        // A read of a name the globals lack raises, as Redis's protected globals do.
        let gmeta = lua.create_table()?;
        let missing = lua
            .load(
                "return function(_, k) error(\"Script attempted to access nonexistent global variable '\" .. tostring(k) .. \"'\", 2) end",
            )
            .set_name(INTERNAL)
            .eval::<Function>()?;
        gmeta.raw_set("__index", missing)?;
        gmeta.raw_set("__newindex", readonly_error(&lua)?)?;
        globals.set_metatable(Some(gmeta));
        globals.raw_set("_G", env.clone())?;
        // Chunks compiled later (loadstring inside a script) see the proxy too.
        let setfenv: Function = globals.raw_get("setfenv")?;
        setfenv.call::<()>((0, env.clone()))?;
        Ok(Engine {
            lua,
            globals,
            env,
            runner,
            redis,
        })
    }

    /// Compiles a script body as Redis does (`@user_script`), in the sandbox.
    ///
    /// # Errors
    /// The Lua compiler's message (`user_script:1: ...`).
    pub fn compile(&self, body: &[u8], name: &str) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name(name)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }
}

fn readonly_error(lua: &Lua) -> mlua::Result<Function> {
    lua.load("return function() error('Attempt to modify a readonly table', 2) end")
        .set_name(INTERNAL)
        .eval()
}

/// An empty table that reads through to `real` and refuses writes.
pub fn readonly_proxy(lua: &Lua, real: &Table, _deep: bool) -> mlua::Result<Table> {
    let proxy = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.raw_set("__index", real.clone())?;
    meta.raw_set("__newindex", readonly_error(lua)?)?;
    meta.raw_set("__metatable", false)?;
    proxy.set_metatable(Some(meta));
    Ok(proxy)
}

/// The xpcall message handler: turns any error into Redis's error table
/// `{err=..., source=..., line=...}`, locating it at the innermost user frame.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    if STOPPED.get() {
        let t = lua.create_table()?;
        t.raw_set("err", STOP_MSG.get())?;
        return Ok(t);
    }
    let table = match raised_value(lua, err)? {
        Value::Table(t) => t,
        other => {
            let t = lua.create_table()?;
            let text = match &other {
                Value::String(s) => s.to_string_lossy(),
                Value::Error(e) => lua_error_text(e),
                Value::Nil => "nil".to_string(),
                Value::Boolean(b) => b.to_string(),
                Value::Integer(i) => i.to_string(),
                Value::Number(n) => n.to_string(),
                v => format!("{}: {:p}", v.type_name(), v.to_pointer()),
            };
            t.raw_set("err", format!("ERR {text}"))?;
            t
        }
    };
    for level in 1..64 {
        let Some(frame) = lua.inspect_stack(level) else {
            break;
        };
        let source = frame.source();
        if source.what == "C" {
            continue;
        }
        let Some(src) = source.source else { continue };
        if src == INTERNAL {
            continue;
        }
        table.raw_set("source", src.as_ref())?;
        table.raw_set("line", frame.curr_line())?;
        break;
    }
    Ok(table)
}

/// The message of an error raised inside mlua (a Rust callback's failure).
pub fn lua_error_text(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::CallbackError { cause, .. } => return lua_error_text(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        other => other.to_string(),
    };
    // mlua appends a traceback to errors it catches; Redis's messages have none.
    match text.find("\nstack traceback:") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// How long a script may run before it is stopped, unless it already wrote (Redis's
/// `busy-reply-threshold` default). Redis instead answers other clients `-BUSY` and waits for
/// SCRIPT KILL; this node runs scripts under its exclusive gate, so a script that never ends
/// would stall every client for good.
pub const TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(5000);

/// FUNCTION LOAD's limit for running a library's code, as Redis's.
pub const LOAD_TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);
pub const LOAD_TIMEOUT_MSG: &str = "ERR FUNCTION LOAD timeout";

pub const STOPPED_MSG: &str =
    "ERR Script exceeded the 5000 ms time limit before any write and was stopped";

thread_local! {
    /// When the running script is to be stopped: set while it has made no write.
    pub static DEADLINE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    /// The running script passed its deadline: every error handler re-raises.
    pub static STOPPED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// What a stopped run reports.
    pub static STOP_MSG: std::cell::Cell<&'static str> = const { std::cell::Cell::new(STOPPED_MSG) };
    /// The value a Rust function is raising (its wrapped mlua error stands for it in Lua).
    static PENDING: std::cell::RefCell<Option<Value>> = const { std::cell::RefCell::new(None) };
}

/// The value an error stands for: what a Rust function raised, or the error itself.
fn raised_value(lua: &Lua, e: Value) -> mlua::Result<Value> {
    match e {
        Value::Error(err) => match PENDING.with(|p| p.borrow_mut().take()) {
            Some(v) => Ok(v),
            None => Ok(Value::String(lua.create_string(lua_error_text(&err))?)),
        },
        other => Ok(other),
    }
}

/// The text Redis's `luaExtractErrorInformation` gives an error caught without a handler:
/// an error table's `err`, or `ERR` and the message.
pub fn error_message(lua: &Lua, e: mlua::Error) -> String {
    let v = raised_value(lua, Value::Error(Box::new(e.clone())));
    match v {
        Ok(Value::Table(t)) => t
            .raw_get::<Option<mlua::String>>("err")
            .ok()
            .flatten()
            .map_or_else(
                || format!("ERR {}", lua_error_text(&e)),
                |s| s.to_string_lossy(),
            ),
        Ok(Value::String(s)) => format!("ERR {}", s.to_string_lossy()),
        _ => format!("ERR {}", lua_error_text(&e)),
    }
}

/// Arms the time limit for one run: `limit` from now, reported as `msg` when it is hit.
pub fn arm(limit: std::time::Duration, msg: &'static str) {
    clear_pending();
    STOPPED.set(false);
    STOP_MSG.set(msg);
    DEADLINE.set(Some(std::time::Instant::now() + limit));
}

/// Disarms the time limit after a run.
pub fn disarm() {
    DEADLINE.set(None);
    STOPPED.set(false);
}

/// Forgets a raised value nobody collected (a script may catch errors in ways that do not
/// go through `pcall`).
pub fn clear_pending() {
    PENDING.with(|p| p.borrow_mut().take());
}

/// Raises `v` from a Rust function, as `lua_error` with that value would.
pub fn raise<T>(v: Value) -> mlua::Result<T> {
    PENDING.with(|p| *p.borrow_mut() = Some(v));
    Err(mlua::Error::RuntimeError("script error".into()))
}

/// What a library function returns on success.
pub fn ok(lua: &Lua, v: impl mlua::IntoLua) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![v.into_lua(lua)?]))
}

/// Raises `msg` located at the calling line (`user_script:1: msg`), as `luaL_error` does.
pub fn fail(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    let mut text = String::new();
    if let Some(frame) = lua.inspect_stack(1) {
        let line = frame.curr_line();
        if line > 0 {
            if let Some(src) = frame.source().short_src {
                text = format!("{src}:{line}: ");
            }
        }
    }
    text.push_str(msg);
    raise(Value::String(lua.create_string(&text)?))
}

/// Several return values from a library function.
pub fn multi(_lua: &Lua, values: Vec<Value>) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(values))
}

/// Redis's `redisLrand48` state: the 48-bit generator of drand48, process-wide as in Redis.
static RAND48: AtomicU64 = AtomicU64::new(0x1234_ABCD_330E);

/// The next `redisLrand48()` value (31 bits).
pub fn lrand48() -> i32 {
    const A: u64 = 0x5_DEEC_E66D;
    let mask = (1u64 << 48) - 1;
    let mut next = 0;
    let _ = RAND48.fetch_update(Relaxed, Relaxed, |x| {
        next = (x.wrapping_mul(A).wrapping_add(0xB)) & mask;
        Some(next)
    });
    (next >> 17) as i32
}

/// `redisSrand48(seed)`.
pub fn srand48(seed: i32) {
    let s = seed as u32 as u64;
    RAND48.store(((s >> 16) << 32) | ((s & 0xffff) << 16) | 0x330E, Relaxed);
}
