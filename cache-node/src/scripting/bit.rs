//! The `bit` library (LuaBitOp's API, as Redis bundles it): 32-bit operations on Lua numbers.

use mlua::{Lua, Table, Value, Variadic};

use super::engine::{fail, ok};

/// LuaBitOp's normalisation: round to an integer, keep the low 32 bits, signed.
fn tobit(v: &Value) -> Option<i32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s.to_str().ok()?.trim().parse().ok()?,
        _ => return None,
    };
    let r = n.round_ties_even();
    Some((r.rem_euclid(4_294_967_296.0) as u64 as u32) as i32)
}

fn arg(args: &[Value], i: usize, name: &str) -> Result<i32, String> {
    match args.get(i) {
        Some(v) => tobit(v).ok_or_else(|| {
            format!(
                "bad argument #{} to '{name}' (number expected, got {})",
                i + 1,
                v.type_name()
            )
        }),
        None => Err(format!(
            "bad argument #{} to '{name}' (number expected, got no value)",
            i + 1
        )),
    }
}

type Op = fn(&[Value]) -> Result<f64, String>;

fn fold(args: &[Value], name: &str, f: fn(i32, i32) -> i32) -> Result<f64, String> {
    let mut acc = arg(args, 0, name)?;
    for i in 1..args.len() {
        acc = f(acc, arg(args, i, name)?);
    }
    Ok(f64::from(acc))
}

fn shift(args: &[Value], name: &str, f: fn(i32, u32) -> i32) -> Result<f64, String> {
    let x = arg(args, 0, name)?;
    let n = arg(args, 1, name)? as u32 & 31;
    Ok(f64::from(f(x, n)))
}

pub fn install(lua: &Lua, _table: &Table, raw: &Table) -> mlua::Result<()> {
    let ops: [(&str, Op); 11] = [
        ("tobit", |a| arg(a, 0, "tobit").map(f64::from)),
        ("bnot", |a| arg(a, 0, "bnot").map(|x| f64::from(!x))),
        ("band", |a| fold(a, "band", |x, y| x & y)),
        ("bor", |a| fold(a, "bor", |x, y| x | y)),
        ("bxor", |a| fold(a, "bxor", |x, y| x ^ y)),
        ("lshift", |a| {
            shift(a, "lshift", |x, n| ((x as u32) << n) as i32)
        }),
        ("rshift", |a| {
            shift(a, "rshift", |x, n| ((x as u32) >> n) as i32)
        }),
        ("arshift", |a| shift(a, "arshift", |x, n| x >> n)),
        ("rol", |a| {
            shift(a, "rol", |x, n| (x as u32).rotate_left(n) as i32)
        }),
        ("ror", |a| {
            shift(a, "ror", |x, n| (x as u32).rotate_right(n) as i32)
        }),
        ("bswap", |a| {
            arg(a, 0, "bswap").map(|x| f64::from(x.swap_bytes()))
        }),
    ];
    for (name, op) in ops {
        raw.raw_set(
            name,
            lua.create_function(move |lua, args: Variadic<Value>| match op(&args) {
                Ok(v) => ok(lua, v),
                Err(e) => fail(lua, &e),
            })?,
        )?;
    }
    raw.raw_set(
        "tohex",
        lua.create_function(|lua, args: Variadic<Value>| {
            let x = match arg(&args, 0, "tohex") {
                Ok(x) => x as u32,
                Err(e) => return fail(lua, &e),
            };
            let mut n = match args.get(1) {
                Some(v) => match tobit(v) {
                    Some(n) => n,
                    None => return fail(lua, "bad argument #2 to 'tohex' (number expected)"),
                },
                None => 8,
            };
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = (n as usize).min(8);
            let hex = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            ok(lua, hex[8 - n..].to_string())
        })?,
    )?;
    Ok(())
}
