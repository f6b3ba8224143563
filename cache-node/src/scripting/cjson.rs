//! The `cjson` library as Redis bundles it (lua-cjson 2.1 defaults): `encode`, `decode`, `null`.
//!
//! Encoding follows lua-cjson: a table whose keys are all positive integers is an array
//! (`{}` is an object), numbers use `%.14g`, `/` is escaped, nesting deeper than 1000 and
//! excessively sparse arrays are refused. `cjson.null` is a light userdata NULL, as there.

use std::cell::Cell;

use mlua::{LightUserData, Lua, Table, Value, Variadic};

use super::engine::{fail, ok};

thread_local! {
    /// lua-cjson's settings (`encode_max_depth`, `decode_max_depth`, `encode_invalid_numbers`),
    /// per interpreter thread as they are per Lua state in Redis.
    static ENCODE_DEPTH: Cell<usize> = const { Cell::new(1000) };
    static DECODE_DEPTH: Cell<usize> = const { Cell::new(1000) };
    static INVALID_NUMBERS: Cell<bool> = const { Cell::new(false) };
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// A setter that returns the setting, as lua-cjson's configuration functions do.
fn depth_setter(
    lua: &Lua,
    cell: &'static std::thread::LocalKey<Cell<usize>>,
) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: Variadic<Value>| {
        let v = match args.first() {
            Some(Value::Integer(i)) => Some(*i as f64),
            Some(Value::Number(n)) => Some(*n),
            _ => None,
        };
        if let Some(v) = v {
            if v < 1.0 {
                return fail(lua, "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)");
            }
            cell.set(v as usize);
        }
        ok(lua, cell.get() as f64)
    })
}

pub fn install(lua: &Lua, table: &Table, raw: &Table) -> mlua::Result<()> {
    table.raw_set("null", null())?;
    raw.raw_set("encode_max_depth", depth_setter(lua, &ENCODE_DEPTH)?)?;
    raw.raw_set("decode_max_depth", depth_setter(lua, &DECODE_DEPTH)?)?;
    raw.raw_set(
        "encode_invalid_numbers",
        lua.create_function(|lua, args: Variadic<Value>| {
            if let Some(v) = args.first() {
                INVALID_NUMBERS.set(
                    matches!(v, Value::Boolean(true))
                        || matches!(v, Value::String(s) if s.as_bytes().as_ref() == b"on"),
                );
            }
            ok(lua, INVALID_NUMBERS.get())
        })?,
    )?;
    // Buffer reuse, number precision and sparse-array handling are accepted; encoding keeps
    // lua-cjson's defaults for them.
    for name in [
        "encode_keep_buffer",
        "encode_number_precision",
        "encode_sparse_array",
        "decode_invalid_numbers",
    ] {
        raw.raw_set(
            name,
            lua.create_function(|lua, _: Variadic<Value>| ok(lua, Value::Nil))?,
        )?;
    }
    raw.raw_set(
        "encode",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return fail(lua, "bad argument #1 to 'encode' (expected 1 argument)");
            }
            let mut out = Vec::new();
            match encode(&args[0], &mut out, 0) {
                Ok(()) => ok(lua, lua.create_string(&out)?),
                Err(e) => fail(lua, &e),
            }
        })?,
    )?;
    raw.raw_set(
        "decode",
        lua.create_function(|lua, args: Variadic<Value>| {
            let text = match args.first() {
                Some(Value::String(s)) if args.len() == 1 => s.as_bytes().to_vec(),
                _ => return fail(lua, "bad argument #1 to 'decode' (expected 1 argument)"),
            };
            let mut d = Decoder {
                s: &text,
                at: 0,
                lua,
            };
            match d.document() {
                Ok(v) => ok(lua, v),
                Err(e) => fail(lua, &e),
            }
        })?,
    )?;
    Ok(())
}

fn number_text(n: f64) -> Result<String, String> {
    if (n.is_nan() || n.is_infinite()) && INVALID_NUMBERS.get() {
        return Ok(if n.is_nan() {
            "nan".into()
        } else if n > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        });
    }
    if n.is_nan() || n.is_infinite() {
        return Err("Cannot serialise number: must not be NaN or Inf".to_string());
    }
    Ok(super::api::lua_number_text(n))
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(number_text(*i as f64)?.as_bytes()),
        Value::Number(n) => out.extend_from_slice(number_text(*n)?.as_bytes()),
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > ENCODE_DEPTH.get() {
                return Err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 2
                ));
            }
            encode_table(t, out, depth + 1)?;
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

/// How many pairs a table has, and its largest key when every key is a positive integer
/// (`None` otherwise): how lua-cjson and lua-cmsgpack tell arrays from maps. One entry is
/// held at a time (mlua keeps live handles on a stack of 8000 slots).
pub(super) fn shape(t: &Table) -> Result<(usize, Option<usize>), String> {
    let mut count = 0;
    let mut max = Some(0usize);
    for kv in t.pairs::<Value, Value>() {
        let (k, _) = kv.map_err(|e| e.to_string())?;
        count += 1;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => f64::NAN,
        };
        if n.is_nan() || n < 1.0 || n != n.floor() {
            max = None;
        } else if let Some(m) = max.as_mut() {
            *m = (*m).max(n as usize);
        }
    }
    Ok((count, max))
}

fn encode_table(t: &Table, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    let (count, array_len) = shape(t)?;
    // An array when every key is a positive integer ({} is an object).
    let is_array = array_len.is_some() && count > 0;
    let max = array_len.unwrap_or(0);
    if is_array && max > count * 2 && max > 10 {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    if is_array {
        out.push(b'[');
        for i in 1..=max {
            if i > 1 {
                out.push(b',');
            }
            let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
            encode(&v, out, depth)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    for (i, kv) in t.pairs::<Value, Value>().enumerate() {
        let (k, v) = kv.map_err(|e| e.to_string())?;
        if i > 0 {
            out.push(b',');
        }
        match k {
            Value::String(s) => encode_string(&s.as_bytes(), out),
            Value::Integer(n) => encode_string(number_text(n as f64)?.as_bytes(), out),
            Value::Number(n) => encode_string(number_text(n)?.as_bytes(), out),
            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
        }
        out.push(b':');
        encode(&v, out, depth)?;
    }
    out.push(b'}');
    Ok(())
}

struct Decoder<'a> {
    s: &'a [u8],
    at: usize,
    lua: &'a Lua,
}

impl Decoder<'_> {
    fn ws(&mut self) {
        while self.at < self.s.len() && matches!(self.s[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        // lua-cjson names the token it found.
        let rest = &self.s[self.at.min(self.s.len())..];
        let found = match rest.first() {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b'"') => "T_STRING",
            Some(b'}') => "T_OBJ_END",
            Some(b']') => "T_ARR_END",
            Some(b',') => "T_COMMA",
            Some(b':') => "T_COLON",
            Some(c) if *c == b'-' || c.is_ascii_digit() => "T_NUMBER",
            Some(_) if rest.starts_with(b"true") || rest.starts_with(b"false") => "T_BOOLEAN",
            Some(_) if rest.starts_with(b"null") => "T_NULL",
            Some(_) => "invalid token",
        };
        format!(
            "Expected {what} but found {found} at character {}",
            self.at + 1
        )
    }

    fn document(&mut self) -> Result<Value, String> {
        self.ws();
        let v = self.value(0)?;
        self.ws();
        if self.at < self.s.len() {
            return Err(self.err("the end"));
        }
        Ok(v)
    }

    fn lit(&mut self, word: &[u8]) -> bool {
        if self.s[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// Enters an object or array (refusing too deep a nesting): its table, and whether it
    /// closed at once with `close`.
    fn open(&mut self, depth: usize, close: u8) -> Result<(Table, bool), String> {
        if depth + 1 > DECODE_DEPTH.get() {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                depth + 1,
                self.at + 1
            ));
        }
        self.at += 1;
        let t = self.lua.create_table().map_err(|e| e.to_string())?;
        self.ws();
        let empty = self.s.get(self.at) == Some(&close);
        if empty {
            self.at += 1;
        }
        Ok((t, empty))
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        let lua = self.lua;
        match self.s.get(self.at) {
            Some(b'{') => {
                let (t, empty) = self.open(depth, b'}')?;
                if empty {
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.s.get(self.at) != Some(&b'"') {
                        return Err(self.err("object key string"));
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.at) != Some(&b':') {
                        return Err(self.err("colon"));
                    }
                    self.at += 1;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    let k = lua.create_string(&k).map_err(|e| e.to_string())?;
                    t.raw_set(k, v).map_err(|e| e.to_string())?;
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.err("comma or object end")),
                    }
                }
            }
            Some(b'[') => {
                let (t, empty) = self.open(depth, b']')?;
                if empty {
                    return Ok(Value::Table(t));
                }
                let mut i = 1;
                loop {
                    self.ws();
                    let v = self.value(depth + 1)?;
                    t.raw_set(i, v).map_err(|e| e.to_string())?;
                    i += 1;
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.err("comma or array end")),
                    }
                }
            }
            Some(b'"') => {
                let s = self.string()?;
                Ok(Value::String(
                    lua.create_string(&s).map_err(|e| e.to_string())?,
                ))
            }
            Some(b't') if self.lit(b"true") => Ok(Value::Boolean(true)),
            Some(b'f') if self.lit(b"false") => Ok(Value::Boolean(false)),
            Some(b'n') if self.lit(b"null") => Ok(null()),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.at;
                while self.at < self.s.len()
                    && matches!(
                        self.s[self.at],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.at = start;
                        Err(self.err("value"))
                    }
                }
            }
            _ => Err(self.err("value")),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.at) else {
                self.at = start;
                return Err(self.err("string"));
            };
            self.at += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else {
                        self.at = start;
                        return Err(self.err("string"));
                    };
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.s[self.at..].starts_with(b"\\u")
                            {
                                self.at += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3ff);
                            }
                            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            self.at = start;
                            return Err(self.err("string"));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.err("string"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("string"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("string"))?;
        self.at += 4;
        Ok(v)
    }
}
