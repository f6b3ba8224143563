//! The `struct` library as Redis bundles it (Roberto Ierusalimschy's lua_struct 0.2):
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])`, `struct.size(fmt)`.
//!
//! Format: `<` `>` `=` endianness, `!n` alignment, `x` a pad byte, `b B h H l L T i[n] I[n]`
//! integers (lower case signed), `f` `d` floats, `c[n]` fixed strings (`c0` takes its length
//! from the previous value on unpack), `s` zero-terminated strings, spaces ignored. Sizes come
//! from the format, never from the data beyond its length.

use mlua::{Lua, Table, Value, Variadic};

use super::engine::{fail, multi, ok};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

struct Format<'a> {
    f: &'a [u8],
    at: usize,
}

impl Format<'_> {
    fn num(&mut self, default: usize) -> Result<usize, String> {
        if !self.f.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: usize = 0;
        while let Some(&d) = self.f.get(self.at).filter(|d| d.is_ascii_digit()) {
            a = a
                .checked_mul(10)
                .and_then(|a| a.checked_add(usize::from(d - b'0')))
                .filter(|a| *a <= i32::MAX as usize)
                .ok_or("integral size overflow")?;
            self.at += 1;
        }
        Ok(a)
    }

    /// The size of option `opt`, reading its digits.
    fn size(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.num(1)?,
            b'i' | b'I' => {
                let n = self.num(4)?;
                if n > MAX_INT_SIZE {
                    return Err(format!(
                        "integral size {n} is larger than limit of {MAX_INT_SIZE}"
                    ));
                }
                n
            }
            _ => 0,
        })
    }

    /// Applies a control option; false when `opt` is not one.
    fn control(&mut self, opt: u8, h: &mut Header) -> Result<bool, String> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'=' => h.little = cfg!(target_endian = "little"),
            b'!' => {
                let a = self.num(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                h.align = a;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn number(v: Option<&Value>, i: usize) -> Result<f64, String> {
    match v {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| format!("bad argument #{i} to 'pack' (number expected, got string)")),
        other => Err(format!(
            "bad argument #{i} to 'pack' (number expected, got {})",
            other.map_or("no value", |v| v.type_name())
        )),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], little: bool) {
    if little {
        out.extend(bytes.iter().rev());
    } else {
        out.extend_from_slice(bytes);
    }
}

fn pack(args: &[Value]) -> Result<Vec<u8>, String> {
    let fmt = match args.first() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        _ => return Err("bad argument #1 to 'pack' (string expected)".into()),
    };
    let mut f = Format { f: &fmt, at: 0 };
    let mut h = Header {
        little: cfg!(target_endian = "little"),
        align: 1,
    };
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(&opt) = f.f.get(f.at) {
        f.at += 1;
        if f.control(opt, &mut h)? {
            continue;
        }
        let mut size = f.size(opt)?;
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number(args.get(arg), arg + 1)?;
                arg += 1;
                let value: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                // Big-endian bytes of the value, widened with zeros past 8 bytes.
                let mut bytes = vec![0u8; size];
                for (i, b) in bytes.iter_mut().rev().enumerate().take(8) {
                    *b = (value >> (8 * i)) as u8;
                }
                put_bytes(&mut out, &bytes, h.little);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = number(args.get(arg), arg + 1)? as f32;
                arg += 1;
                put_bytes(&mut out, &n.to_be_bytes(), h.little);
            }
            b'd' => {
                let n = number(args.get(arg), arg + 1)?;
                arg += 1;
                put_bytes(&mut out, &n.to_be_bytes(), h.little);
            }
            b'c' | b's' => {
                let s = match args.get(arg) {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(Value::Integer(n)) => n.to_string().into_bytes(),
                    Some(Value::Number(n)) => super::api::lua_number_text(*n).into_bytes(),
                    other => {
                        return Err(format!(
                            "bad argument #{} to 'pack' (string expected, got {})",
                            arg + 1,
                            other.map_or("no value", |v| v.type_name())
                        ))
                    }
                };
                arg += 1;
                if size == 0 || opt == b's' {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(format!(
                        "bad argument #{} to 'pack' (string too short)",
                        arg + 1
                    ));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => return Err(format!("invalid format option '{}'", opt as char)),
        }
    }
    Ok(out)
}

fn unpack(lua: &Lua, args: &[Value]) -> Result<Vec<Value>, String> {
    let (fmt, data) = match (args.first(), args.get(1)) {
        (Some(Value::String(f)), Some(Value::String(d))) => {
            (f.as_bytes().to_vec(), d.as_bytes().to_vec())
        }
        _ => return Err("bad argument #2 to 'unpack' (string expected)".into()),
    };
    let mut pos = match args.get(2) {
        None | Some(Value::Nil) => 0,
        Some(v) => (number(Some(v), 3)? as i64 - 1).max(0) as usize,
    };
    let mut f = Format { f: &fmt, at: 0 };
    let mut h = Header {
        little: cfg!(target_endian = "little"),
        align: 1,
    };
    let mut values: Vec<Value> = Vec::new();
    let short = || "bad argument #2 to 'unpack' (data string too short)".to_string();
    let text = |bytes: &[u8]| {
        lua.create_string(bytes)
            .map(Value::String)
            .map_err(|e| e.to_string())
    };
    while let Some(&opt) = f.f.get(f.at) {
        f.at += 1;
        if f.control(opt, &mut h)? {
            continue;
        }
        let mut size = f.size(opt)?;
        pos += to_align(pos, &h, opt, size);
        if pos.checked_add(size).is_none_or(|end| end > data.len()) {
            return Err(short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let mut bytes = data[pos..pos + size].to_vec();
                if h.little {
                    bytes.reverse();
                }
                let mut l: u64 = 0;
                for b in &bytes {
                    l = (l << 8) | u64::from(*b);
                }
                let v = if opt.is_ascii_lowercase() && size > 0 && size <= 8 {
                    let mask = u64::MAX << (size * 8 - 1);
                    if l & mask != 0 {
                        l |= mask;
                    }
                    l as i64 as f64
                } else {
                    l as f64
                };
                values.push(Value::Number(v));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                if h.little {
                    b.reverse();
                }
                values.push(Value::Number(f64::from(f32::from_be_bytes(b))));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                if h.little {
                    b.reverse();
                }
                values.push(Value::Number(f64::from_be_bytes(b)));
            }
            b'c' => {
                if size == 0 {
                    let Some(Value::Number(n)) = values.pop() else {
                        return Err("format `c0' needs a previous size".into());
                    };
                    size = n.max(0.0) as usize;
                    if pos.checked_add(size).is_none_or(|end| end > data.len()) {
                        return Err(short());
                    }
                }
                values.push(text(&data[pos..pos + size])?);
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&c| c == 0) else {
                    return Err("unfinished string in data".into());
                };
                values.push(text(&data[pos..pos + len])?);
                size = len + 1;
            }
            _ => return Err(format!("invalid format option '{}'", opt as char)),
        }
        pos += size;
    }
    values.push(Value::Number((pos + 1) as f64));
    Ok(values)
}

fn size(args: &[Value]) -> Result<usize, String> {
    let fmt = match args.first() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        _ => return Err("bad argument #1 to 'size' (string expected)".into()),
    };
    let mut f = Format { f: &fmt, at: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut total = 0usize;
    while let Some(&opt) = f.f.get(f.at) {
        f.at += 1;
        if f.control(opt, &mut h)? {
            continue;
        }
        let size = f.size(opt)?;
        if opt == b's' {
            return Err("bad argument #1 to 'size' (option 's' has no fixed size)".into());
        }
        if opt == b'c' && size == 0 {
            return Err("bad argument #1 to 'size' (option 'c0' has no fixed size)".into());
        }
        total += to_align(total, &h, opt, size) + size;
    }
    Ok(total)
}

/// lua_struct raises a bad format option as an argument error of the function called.
fn located(name: &str, e: String) -> String {
    if e.starts_with("invalid format option") {
        format!("bad argument #1 to '{name}' ({e})")
    } else {
        e
    }
}

pub fn install(lua: &Lua, _table: &Table, raw: &Table) -> mlua::Result<()> {
    raw.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| match pack(&args) {
            Ok(bytes) => ok(lua, lua.create_string(&bytes)?),
            Err(e) => fail(lua, &located("pack", e)),
        })?,
    )?;
    raw.raw_set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| match unpack(lua, &args) {
            Ok(values) => multi(lua, values),
            Err(e) => fail(lua, &located("unpack", e)),
        })?,
    )?;
    raw.raw_set(
        "size",
        lua.create_function(|lua, args: Variadic<Value>| match size(&args) {
            Ok(n) => ok(lua, n as f64),
            Err(e) => fail(lua, &located("size", e)),
        })?,
    )?;
    Ok(())
}
