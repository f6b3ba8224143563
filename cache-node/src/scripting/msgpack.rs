//! The `cmsgpack` library as Redis bundles it (lua-cmsgpack 0.4): `pack`, `unpack`,
//! `unpack_one`, `unpack_limit`.
//!
//! Encoding follows lua-cmsgpack: integral numbers as the smallest integer form, others as a
//! float32 when that is exact, else a double; a table whose keys are exactly 1..n is an array,
//! any other a map; tables nested deeper than 16 encode as nil (so cycles terminate).

use mlua::{Lua, Table, Value, Variadic};

use super::engine::{fail, multi, ok};

const MAX_NESTING: usize = 16;

pub fn install(lua: &Lua, _table: &Table, raw: &Table) -> mlua::Result<()> {
    raw.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return fail(
                    lua,
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                );
            }
            let mut out = Vec::new();
            for a in args.iter() {
                encode(a, &mut out, 0).map_err(mlua::Error::RuntimeError)?;
            }
            ok(lua, lua.create_string(&out)?)
        })?,
    )?;
    raw.raw_set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| unpack(lua, &args, 0, 0, false))?,
    )?;
    raw.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: Variadic<Value>| {
            let offset = int_arg(args.get(1)).unwrap_or(0);
            unpack(lua, &args, 1, offset, true)
        })?,
    )?;
    raw.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: Variadic<Value>| {
            let limit = int_arg(args.get(1)).unwrap_or(0);
            let offset = int_arg(args.get(2)).unwrap_or(0);
            unpack(lua, &args, limit, offset, true)
        })?,
    )?;
    Ok(())
}

fn int_arg(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Integer(i) => Some(*i),
        Value::Number(n) => Some(*n as i64),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    if !n.is_infinite() && (n as i64) as f64 == n {
        encode_int(n as i64, out);
    } else if f64::from(n as f32) == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn header(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, b16: u8, b32: u8) {
    if len < fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn encode(v: &Value, out: &mut Vec<u8>, level: usize) -> Result<(), String> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(*i, out),
        Value::Number(n) => encode_number(*n, out),
        Value::String(s) => {
            let bytes = s.as_bytes();
            let len = bytes.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.extend_from_slice(&[0xd9, len as u8]);
            } else {
                header(out, len, 0, 0, 0xda, 0xdb);
            }
            out.extend_from_slice(&bytes);
        }
        Value::Table(t) if level < MAX_NESTING => {
            let (count, array_len) = super::cjson::shape(t)?;
            let max = array_len.unwrap_or(0);
            let array = array_len.is_some();
            if array && max == count {
                header(out, max, 0x90, 16, 0xdc, 0xdd);
                for i in 1..=max {
                    let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                    encode(&v, out, level + 1)?;
                }
            } else {
                header(out, count, 0x80, 16, 0xde, 0xdf);
                for kv in t.pairs::<Value, Value>() {
                    let (k, v) = kv.map_err(|e| e.to_string())?;
                    encode(&k, out, level + 1)?;
                    encode(&v, out, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

struct Decoder<'a> {
    s: &'a [u8],
    at: usize,
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        let end = self.at.checked_add(n).ok_or(MISSING)?;
        let bytes = self.s.get(self.at..end).ok_or(MISSING)?;
        self.at = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, &'static str> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, String> {
        if depth > 1000 {
            return Err(BAD.into());
        }
        let c = self.take(1)?[0];
        let number = |n: f64| Ok(Value::Number(n));
        match c {
            0x00..=0x7f => number(f64::from(c)),
            0xe0..=0xff => number(f64::from(c as i8)),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xcc => number(self.uint(1)? as f64),
            0xcd => number(self.uint(2)? as f64),
            0xce => number(self.uint(4)? as f64),
            0xcf => number(self.uint(8)? as f64),
            0xd0 => number(f64::from(self.uint(1)? as u8 as i8)),
            0xd1 => number(f64::from(self.uint(2)? as u16 as i16)),
            0xd2 => number(f64::from(self.uint(4)? as u32 as i32)),
            0xd3 => number(self.uint(8)? as i64 as f64),
            0xca => number(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => number(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf => self.string(lua, usize::from(c & 0x1f)),
            0xd9 | 0xc4 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)
            }
            0xda | 0xc5 => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)
            }
            0xdb | 0xc6 => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)
            }
            0x90..=0x9f => self.array(lua, usize::from(c & 0x0f), depth),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n, depth)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n, depth)
            }
            0x80..=0x8f => self.map(lua, usize::from(c & 0x0f), depth),
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n, depth)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n, depth)
            }
            _ => Err(BAD.into()),
        }
    }

    fn string(&mut self, lua: &Lua, n: usize) -> Result<Value, String> {
        let bytes = self.take(n)?;
        Ok(Value::String(
            lua.create_string(bytes).map_err(|e| e.to_string())?,
        ))
    }

    fn array(&mut self, lua: &Lua, n: usize, depth: usize) -> Result<Value, String> {
        // Every element takes at least a byte: a count beyond the input is a lie.
        if n > self.s.len() - self.at {
            return Err(MISSING.into());
        }
        let t = lua.create_table().map_err(|e| e.to_string())?;
        for i in 1..=n {
            let v = self.value(lua, depth + 1)?;
            t.raw_set(i, v).map_err(|e| e.to_string())?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> Result<Value, String> {
        if n > (self.s.len() - self.at) / 2 {
            return Err(MISSING.into());
        }
        let t = lua.create_table().map_err(|e| e.to_string())?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            if !k.is_nil() {
                t.raw_set(k, v).map_err(|e| e.to_string())?;
            }
        }
        Ok(Value::Table(t))
    }
}

/// Decodes up to `limit` values (0: all) from `offset`; with `with_offset`, the next offset
/// (-1 at the end) comes first, as `unpack_one`/`unpack_limit` return it.
fn unpack(
    lua: &Lua,
    args: &[Value],
    limit: i64,
    offset: i64,
    with_offset: bool,
) -> mlua::Result<mlua::MultiValue> {
    let data = match args.first() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        _ => {
            return fail(
                lua,
                "bad argument #1 to 'unpack' (MessagePack unpack needs input.)",
            )
        }
    };
    if offset < 0 || offset as usize > data.len() {
        return fail(
            lua,
            &format!(
                "Start offset {offset} greater than input length {}.",
                data.len()
            ),
        );
    }
    let mut d = Decoder {
        s: &data,
        at: offset as usize,
    };
    let mut values = Vec::new();
    while d.at < data.len() && (limit <= 0 || (values.len() as i64) < limit) {
        match d.value(lua, 0) {
            Ok(v) => values.push(v),
            Err(e) => return fail(lua, &e),
        }
    }
    if with_offset {
        let next = if d.at < data.len() { d.at as i64 } else { -1 };
        values.insert(0, Value::Number(next as f64));
    }
    multi(lua, values)
}
