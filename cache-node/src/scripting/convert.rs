//! Conversions both ways, as Redis 7.0's `script_lua.c`: a command's RESP2/RESP3 reply into a
//! Lua value for `redis.call`, and a script's Lua result into the caller's reply.

use cache_protocol::ReplyBuf;
use mlua::{Lua, Table, Value};

/// Deeper replies are cut with "reached lua stack limit" (Redis stops where its Lua stack
/// does); recursing further would risk the worker thread's stack.
const MAX_DEPTH: usize = 200;

/// Parses one complete reply at the start of `buf` into a Lua value, as
/// `redisProtocolToLuaType` does. Returns the value and the bytes it took.
pub fn reply_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<Value> {
    let mut p = Parser { buf, at: 0 };
    p.value(lua, 0)
}

struct Parser<'a> {
    buf: &'a [u8],
    at: usize,
}

fn bad() -> mlua::Error {
    mlua::Error::RuntimeError("malformed reply from command".into())
}

impl Parser<'_> {
    fn line(&mut self) -> mlua::Result<&[u8]> {
        let rest = &self.buf[self.at..];
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let line = &rest[..end];
        self.at += end + 2;
        Ok(line)
    }

    fn int(line: &[u8]) -> mlua::Result<i64> {
        cache_protocol::parse_i64(line).ok_or_else(bad)
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > MAX_DEPTH {
            return Err(mlua::Error::RuntimeError(
                "reached lua stack limit".to_string(),
            ));
        }
        let kind = *self.buf.get(self.at).ok_or_else(bad)?;
        self.at += 1;
        let line = self.line()?.to_vec();
        Ok(match kind {
            b':' => Value::Number(Self::int(&line)? as f64),
            b'$' => {
                let n = Self::int(&line)?;
                if n < 0 {
                    return Ok(Value::Boolean(false));
                }
                let n = n as usize;
                let data = self.buf.get(self.at..self.at + n).ok_or_else(bad)?;
                self.at += n + 2;
                Value::String(lua.create_string(data)?)
            }
            b'+' => single(lua, "ok", Value::String(lua.create_string(&line)?))?,
            b'-' => single(lua, "err", Value::String(lua.create_string(&line)?))?,
            b'*' | b'~' | b'%' | b'>' => {
                let n = Self::int(&line)?;
                if n < 0 {
                    return Ok(Value::Boolean(false));
                }
                let n = n as usize;
                if n > self.buf.len() {
                    return Err(bad());
                }
                let t = lua.create_table()?;
                match kind {
                    b'%' => {
                        for _ in 0..n {
                            let k = self.value(lua, depth + 1)?;
                            let v = self.value(lua, depth + 1)?;
                            t.raw_set(k, v)?;
                        }
                        return single(lua, "map", Value::Table(t));
                    }
                    b'~' => {
                        for _ in 0..n {
                            let k = self.value(lua, depth + 1)?;
                            t.raw_set(k, true)?;
                        }
                        return single(lua, "set", Value::Table(t));
                    }
                    _ => {
                        for i in 0..n {
                            let v = self.value(lua, depth + 1)?;
                            t.raw_set(i + 1, v)?;
                        }
                    }
                }
                Value::Table(t)
            }
            b'_' => Value::Nil,
            b'#' => Value::Boolean(line == b"t"),
            b',' => {
                let text = String::from_utf8_lossy(&line);
                let d = match text.as_ref() {
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    t => t.parse().unwrap_or(f64::NAN),
                };
                single(lua, "double", Value::Number(d))?
            }
            b'(' => single(lua, "big_number", Value::String(lua.create_string(&line)?))?,
            b'=' => {
                let n = Self::int(&line)?.max(0) as usize;
                let data = self.buf.get(self.at..self.at + n).ok_or_else(bad)?;
                self.at += n + 2;
                let (format, text) = if data.len() >= 4 {
                    (&data[..3], &data[4..])
                } else {
                    (&b"txt"[..], data)
                };
                let inner = lua.create_table()?;
                inner.raw_set("string", lua.create_string(text)?)?;
                inner.raw_set("format", lua.create_string(format)?)?;
                single(lua, "verbatim_string", Value::Table(inner))?
            }
            b'|' => {
                // An attribute: skipped, the value follows.
                let n = Self::int(&line)?.max(0) as usize;
                for _ in 0..2 * n {
                    self.value(lua, depth + 1)?;
                }
                return self.value(lua, depth);
            }
            _ => return Err(bad()),
        })
    }
}

fn single(lua: &Lua, field: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Value::Table(t))
}

/// Writes a script's result as Redis's `luaReplyToRedisReply` does. `script_resp` is the
/// protocol the script chose with `redis.setresp` (it decides how booleans reply).
pub fn lua_to_reply(out: &mut ReplyBuf, v: &Value, script_resp: u8) -> mlua::Result<()> {
    write(out, v, script_resp, 0)
}

fn write(out: &mut ReplyBuf, v: &Value, resp: u8, depth: usize) -> mlua::Result<()> {
    if depth > MAX_DEPTH {
        out.error("ERR reached lua stack limit");
        return Ok(());
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp == 2 {
                if *b {
                    out.int(1);
                } else {
                    out.null();
                }
            } else {
                out.boolean(*b);
            }
        }
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(lua_number_to_integer(*n)),
        Value::Table(t) => write_table(out, t, resp, depth)?,
        _ => out.null(),
    }
    Ok(())
}

fn write_table(out: &mut ReplyBuf, t: &Table, resp: u8, depth: usize) -> mlua::Result<()> {
    if let Value::String(e) = t.raw_get::<Value>("err")? {
        out.error(&String::from_utf8_lossy(&e.as_bytes()));
        return Ok(());
    }
    if let Value::String(s) = t.raw_get::<Value>("ok")? {
        out.simple(&String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " "));
        return Ok(());
    }
    if let Value::Number(d) = t.raw_get::<Value>("double")? {
        out.double(d);
        return Ok(());
    }
    if let Value::Integer(d) = t.raw_get::<Value>("double")? {
        out.double(d as f64);
        return Ok(());
    }
    if let Value::String(s) = t.raw_get::<Value>("big_number")? {
        let text = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        if out.resp3() {
            out.buf.extend_from_slice(b"(");
            out.buf.extend_from_slice(text.as_bytes());
            out.buf.extend_from_slice(b"\r\n");
        } else {
            out.bulk(text.as_bytes());
        }
        return Ok(());
    }
    if let Value::Table(v) = t.raw_get::<Value>("verbatim_string")? {
        if let (Value::String(f), Value::String(s)) =
            (v.raw_get::<Value>("format")?, v.raw_get::<Value>("string")?)
        {
            out.verbatim(&String::from_utf8_lossy(&f.as_bytes()), &s.as_bytes());
            return Ok(());
        }
    }
    if let Value::Table(m) = t.raw_get::<Value>("map")? {
        // Two passes, holding one entry at a time: mlua keeps every live string or table
        // handle on a Lua stack of 8000 slots, so collecting a big reply would overflow it.
        out.map(count_pairs(&m)?);
        for kv in m.pairs::<Value, Value>() {
            let (k, v) = kv?;
            write(out, &k, resp, depth + 1)?;
            write(out, &v, resp, depth + 1)?;
        }
        return Ok(());
    }
    if let Value::Table(s) = t.raw_get::<Value>("set")? {
        out.set(count_pairs(&s)?);
        for kv in s.pairs::<Value, Value>() {
            let (k, _) = kv?;
            write(out, &k, resp, depth + 1)?;
        }
        return Ok(());
    }
    // An array: up to the first nil.
    let mut len = 0;
    while !t.raw_get::<Value>(len + 1)?.is_nil() {
        len += 1;
    }
    out.array(len);
    for i in 1..=len {
        write(out, &t.raw_get::<Value>(i)?, resp, depth + 1)?;
    }
    Ok(())
}

fn count_pairs(t: &Table) -> mlua::Result<usize> {
    let mut n = 0;
    for kv in t.pairs::<Value, Value>() {
        kv?;
        n += 1;
    }
    Ok(n)
}

/// A Lua number as an integer reply, as Redis's C cast `(long long)n` comes out on x86: the
/// fraction truncated, and a NaN or anything outside the 64-bit range as `i64::MIN` (Rust's
/// `as` would saturate and make a NaN 0).
fn lua_number_to_integer(n: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_POW_63..TWO_POW_63).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}
