//! The `redis` table (everything but `call`/`pcall`, which need the running command's
//! context; see `super::run`) and Redis's `math.random`.
//!
//! Errors are raised with `engine::fail` (a located message, as Redis's `luaL_error`s) or
//! `raise_table` (Redis's error table).

use std::cell::Cell;

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use super::engine::{fail, ok};

/// Redis 7.0.15, as `redis.REDIS_VERSION` and `REDIS_VERSION_NUM` report it.
pub const VERSION: &str = "7.0.15";
pub const VERSION_NUM: i64 = 0x07_00_0f;

thread_local! {
    /// The protocol `redis.call` replies are parsed in (2 or 3): `redis.setresp`.
    pub static RESP: Cell<u8> = const { Cell::new(2) };
    /// A script is running on this thread (redis.setresp & co. are refused otherwise).
    pub static RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Raises Redis's error table `{err = "ERR msg"}` (no line is added to a table).
pub fn raise_table(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    super::engine::raise(Value::Table(err_table(lua, msg)?))
}

/// Redis's `luaPushError` table: `-CODE msg` keeps the code, a bare message gets `ERR`.
pub fn err_table(lua: &Lua, msg: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", error_text(msg))?;
    Ok(t)
}

/// The error string of `luaPushErrorBuff`.
pub fn error_text(msg: &str) -> String {
    let (code, rest) = match msg.strip_prefix('-') {
        Some(m) => match m.split_once(' ') {
            Some((code, rest)) => (code, rest),
            None => ("ERR", m),
        },
        None => ("ERR", msg),
    };
    format!("{code} {}", rest.trim_matches(|c| c == '\r' || c == '\n'))
}

fn string_arg(args: &[Value]) -> Option<Vec<u8>> {
    match args {
        [Value::String(s)] => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

pub fn install(lua: &Lua, redis: &Table, raw: &Table) -> mlua::Result<()> {
    for name in ["call", "pcall", "acl_check_cmd"] {
        raw.raw_set(
            name,
            lua.create_function(|lua, _: Variadic<Value>| -> mlua::Result<MultiValue> {
                raise_table(
                    lua,
                    "redis.call/pcall can only be called inside a script invocation",
                )
            })?,
        )?;
    }
    redis.raw_set("REDIS_VERSION", VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", VERSION_NUM)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.raw_set(name, level)?;
    }
    for (name, flags) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, flags)?;
    }
    raw.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return raise_table(lua, "wrong number of arguments");
            }
            let text = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(i) => i.to_string().into_bytes(),
                Value::Number(n) => lua_number_text(*n).into_bytes(),
                _ => Vec::new(),
            };
            ok(lua, super::sha1hex(&text))
        })?,
    )?;
    raw.raw_set(
        "error_reply",
        lua.create_function(|lua, args: Variadic<Value>| {
            let Some(msg) = string_arg(&args) else {
                return ok(lua, err_table(lua, "wrong number or type of arguments")?);
            };
            let msg = String::from_utf8_lossy(&msg);
            let msg = if msg.starts_with('-') {
                msg.to_string()
            } else {
                format!("-{msg}")
            };
            ok(lua, err_table(lua, &msg)?)
        })?,
    )?;
    raw.raw_set(
        "status_reply",
        lua.create_function(|lua, args: Variadic<Value>| {
            let Some(msg) = string_arg(&args) else {
                return ok(lua, err_table(lua, "wrong number or type of arguments")?);
            };
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(&msg)?)?;
            ok(lua, t)
        })?,
    )?;
    raw.raw_set(
        "log",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() < 2 {
                return raise_table(lua, "redis.log() requires two arguments or more.");
            }
            let level = match &args[0] {
                Value::Integer(i) => *i as f64,
                Value::Number(n) => *n,
                Value::String(s) => match s.to_str().ok().and_then(|t| t.trim().parse().ok()) {
                    Some(n) => n,
                    None => {
                        return raise_table(lua, "First argument must be a number (log level).")
                    }
                },
                _ => return raise_table(lua, "First argument must be a number (log level)."),
            } as i64;
            if !(0..=3).contains(&level) {
                return raise_table(lua, "Invalid debug level.");
            }
            let mut line = Vec::new();
            for (i, a) in args.iter().skip(1).enumerate() {
                let text = match a {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(n) => n.to_string().into_bytes(),
                    Value::Number(n) => lua_number_text(*n).into_bytes(),
                    _ => continue,
                };
                if i > 0 {
                    line.push(b' ');
                }
                line.extend_from_slice(&text);
            }
            let line = String::from_utf8_lossy(&line);
            match level {
                0 => tracing::debug!(target: "script", "{line}"),
                1 => tracing::debug!(target: "script", "{line}"),
                2 => tracing::info!(target: "script", "{line}"),
                _ => tracing::warn!(target: "script", "{line}"),
            }
            ok(lua, Value::Nil)
        })?,
    )?;
    raw.raw_set(
        "setresp",
        lua.create_function(|lua, args: Variadic<Value>| {
            if !RUNNING.get() {
                return raise_table(
                    lua,
                    "redis.setresp can only be called inside a script invocation",
                );
            }
            if args.len() != 1 {
                return raise_table(lua, "redis.setresp() requires one argument.");
            }
            let v = number(&args[0]).unwrap_or(0.0) as i64;
            if v != 2 && v != 3 {
                return raise_table(lua, "RESP version must be 2 or 3.");
            }
            RESP.set(v as u8);
            ok(lua, Value::Nil)
        })?,
    )?;
    raw.raw_set(
        "set_repl",
        lua.create_function(|lua, args: Variadic<Value>| {
            if !RUNNING.get() {
                return raise_table(
                    lua,
                    "redis.set_repl can only be called inside a script invocation",
                );
            }
            if args.len() != 1 {
                return raise_table(lua, "redis.set_repl() requires two arguments.");
            }
            let flags = number(&args[0]).unwrap_or(0.0) as i64;
            if flags & !3 != 0 {
                return raise_table(
                    lua,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                );
            }
            ok(lua, Value::Nil)
        })?,
    )?;
    // Effects replication is the only mode since Redis 7.0: accepted, returns true.
    raw.raw_set(
        "replicate_commands",
        lua.create_function(|lua, ()| ok(lua, true))?,
    )?;
    // The debugger (SCRIPT DEBUG) is not supported: outside it these do nothing.
    raw.raw_set("breakpoint", lua.create_function(|lua, ()| ok(lua, false))?)?;
    raw.raw_set(
        "debug",
        lua.create_function(|lua, _: Variadic<Value>| ok(lua, Value::Nil))?,
    )?;
    Ok(())
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => s.to_str().ok().and_then(|t| t.trim().parse().ok()),
        _ => None,
    }
}

/// Lua 5.1's number to string conversion (`%.14g`).
pub fn lua_number_text(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if n == n.trunc() && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    let sci = format!("{n:.13e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..14).contains(&exp) {
        let m = mantissa.trim_end_matches('0').trim_end_matches('.');
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (13 - exp).max(0) as usize;
    let text = format!("{n:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `math.random` and `math.randomseed` on Redis's generator, so a seeded script gives the
/// same numbers on every platform.
pub fn install_math(lua: &Lua, raw: &Table) -> mlua::Result<()> {
    raw.raw_set(
        "random",
        lua.create_function(|lua, args: Variadic<Value>| {
            const MAX: i64 = i32::MAX as i64;
            let r = (i64::from(super::engine::lrand48()) % MAX) as f64 / MAX as f64;
            let int = |i: usize| -> Result<i64, String> {
                number(&args[i]).map(|n| n as i64).ok_or_else(|| {
                    format!(
                        "bad argument #{} to 'random' (number expected, got {})",
                        i + 1,
                        args[i].type_name()
                    )
                })
            };
            match args.len() {
                0 => ok(lua, r),
                1 => {
                    let u = match int(0) {
                        Ok(u) => u,
                        Err(e) => return fail(lua, &e),
                    };
                    if u < 1 {
                        return fail(lua, "bad argument #1 to 'random' (interval is empty)");
                    }
                    ok(lua, (r * u as f64).floor() + 1.0)
                }
                2 => {
                    let (l, u) = match (int(0), int(1)) {
                        (Ok(l), Ok(u)) => (l, u),
                        (Err(e), _) | (_, Err(e)) => return fail(lua, &e),
                    };
                    if l > u {
                        return fail(lua, "bad argument #2 to 'random' (interval is empty)");
                    }
                    ok(lua, (r * (u - l + 1) as f64).floor() + l as f64)
                }
                _ => fail(lua, "wrong number of arguments"),
            }
        })?,
    )?;
    raw.raw_set(
        "randomseed",
        lua.create_function(|lua, args: Variadic<Value>| {
            let Some(seed) = args.first().and_then(number) else {
                return fail(
                    lua,
                    "bad argument #1 to 'randomseed' (number expected, got no value)",
                );
            };
            super::engine::srand48(seed as i64 as i32);
            ok(lua, Value::Nil)
        })?,
    )?;
    Ok(())
}
