//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST. An HLL is a string
//! holding Redis's exact representation ([`hll`]), so GET, SET, APPEND and SETRANGE see (and
//! may corrupt) the same bytes as on Redis.

pub mod hll;

use bytes::Bytes;
use cache_store::{Entry, Value};

use super::{is, CmdError, CmdResult, Ctx, Notify};

const INVALID: CmdError = CmdError::Msg("INVALIDOBJ Corrupted HLL object detected");
const NOT_HLL: CmdError = CmdError::Msg("WRONGTYPE Key is not a valid HyperLogLog string value.");

/// The bytes of a value that must be an HLL: WRONGTYPE for another type, Redis's
/// "not a valid HyperLogLog" for a string that is not one.
fn as_hll(value: &Value) -> Result<&[u8], CmdError> {
    let s = value.as_bytes().ok_or(CmdError::WrongType)?;
    hll::check(s).map_err(|_| NOT_HLL)?;
    Ok(s)
}

/// `hll-sparse-max-bytes`: past this size a sparse HLL turns dense.
fn sparse_max_bytes(ctx: &Ctx<'_>) -> u64 {
    ctx.shared
        .config
        .get("hll-sparse-max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn new_value(bytes: Vec<u8>) -> Value {
    let mut v = Value::raw_string();
    if let Some(b) = v.bytes_mut() {
        *b = bytes;
    }
    v
}

pub fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let regs: Vec<(usize, u8)> = args[2..].iter().map(|e| hll::pat_len(e)).collect();
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock(key);
    let changes = match locked.get(db, key, now) {
        None => None,
        Some(e) => {
            let s = as_hll(&e.value)?;
            let mut changes = false;
            for &(i, count) in &regs {
                if count > hll::register(s, i).map_err(|_| INVALID)? {
                    changes = true;
                    break;
                }
            }
            Some(changes)
        }
    };
    match changes {
        Some(false) => {
            drop(locked);
            ctx.out.int(0);
            return Ok(());
        }
        None => {
            let mut s = hll::new_sparse();
            hll::set_all(&mut s, &regs, sparse_max_bytes(ctx)).map_err(|_| INVALID)?;
            hll::invalidate(&mut s);
            locked.insert(db, key, Entry::new(new_value(s)), now);
        }
        Some(true) => {
            let Some(s) = locked
                .get_mut(db, key, now)
                .and_then(|e| e.value.bytes_mut())
            else {
                return Err(INVALID);
            };
            // Only a sparse value needs the limit (a config lock and parse: not for dense).
            let max_bytes = match hll::check(s) {
                Ok(hll::Encoding::Sparse) => sparse_max_bytes(ctx),
                _ => u64::MAX,
            };
            hll::set_all(s, &regs, max_bytes).map_err(|_| INVALID)?;
            hll::invalidate(s);
        }
    }
    drop(locked);
    ctx.notify(Notify::STRING, "pfadd", key);
    ctx.out.int(1);
    Ok(())
}

pub fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    if args.len() > 2 {
        let keys = &args[1..];
        let mut max = Box::new([0u8; hll::REGISTERS]);
        let mut locked = ctx.store().lock_keys(keys.iter().map(|k| &k[..]));
        for key in keys {
            if let Some(e) = locked.get(db, key, now) {
                hll::merge_into(&mut max, as_hll(&e.value)?).map_err(|_| INVALID)?;
            }
        }
        drop(locked);
        ctx.out.int(hll::count_raw(&max) as i64);
        return Ok(());
    }
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let card = match locked.get(db, key, now) {
        None => 0,
        Some(e) => {
            let s = as_hll(&e.value)?;
            match hll::cached(s) {
                Some(card) => card,
                None => {
                    let card = hll::count(s).map_err(|_| INVALID)?;
                    // Redis stores the estimate in the header: the value changes, as there.
                    if let Some(s) = locked
                        .get_mut(db, key, now)
                        .and_then(|e| e.value.bytes_mut())
                    {
                        hll::set_cached(s, card);
                    }
                    card
                }
            }
        }
    };
    drop(locked);
    ctx.out.int(card as i64);
    Ok(())
}

pub fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let max_bytes = sparse_max_bytes(ctx);
    let dst = &args[1][..];
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut use_dense = false;
    // The destination is a source too, as in Redis.
    let mut locked = ctx.store().lock_keys(args[1..].iter().map(|k| &k[..]));
    for key in &args[1..] {
        if let Some(e) = locked.get(db, key, now) {
            let s = as_hll(&e.value)?;
            use_dense |= hll::check(s) == Ok(hll::Encoding::Dense);
            hll::merge_into(&mut max, s).map_err(|_| INVALID)?;
        }
    }
    if !locked.contains(db, dst, now) {
        locked.insert(db, dst, Entry::new(new_value(hll::new_sparse())), now);
    }
    let Some(s) = locked
        .get_mut(db, dst, now)
        .and_then(|e| e.value.bytes_mut())
    else {
        return Err(INVALID);
    };
    if use_dense && hll::check(s) == Ok(hll::Encoding::Sparse) {
        *s = hll::sparse_to_dense(s).map_err(|_| INVALID)?;
    }
    let mut marks = hll::Marks::new(s);
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            // As Redis: a sparse destination that turns out corrupt is left as it is.
            let _ = hll::set_register(s, i, m, max_bytes, &mut marks);
        }
    }
    hll::invalidate(s);
    drop(locked);
    ctx.notify(Notify::STRING, "pfadd", dst);
    ctx.out.simple("OK");
    Ok(())
}

pub fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let sub = &args[1];
    let key = &args[2][..];
    let mut locked = ctx.store().lock(key);
    let Some(e) = locked.get(db, key, now) else {
        return Err(CmdError::Msg("ERR The specified key does not exist"));
    };
    let s = as_hll(&e.value)?;
    let sparse = hll::check(s) == Ok(hll::Encoding::Sparse);
    if is(sub, "encoding") {
        drop(locked);
        ctx.out.simple(if sparse { "sparse" } else { "dense" });
    } else if is(sub, "decode") {
        if !sparse {
            return Err(CmdError::Msg("ERR HLL encoding is not sparse"));
        }
        let text = hll::decode(s);
        drop(locked);
        ctx.out.bulk(text.as_bytes());
    } else if is(sub, "getreg") || is(sub, "todense") {
        if sparse {
            let dense = hll::sparse_to_dense(s).map_err(|_| INVALID)?;
            if let Some(slot) = locked
                .get_mut(db, key, now)
                .and_then(|e| e.value.bytes_mut())
            {
                *slot = dense;
            }
        }
        if is(sub, "todense") {
            drop(locked);
            ctx.out.int(i64::from(sparse));
            return Ok(());
        }
        let regs: Vec<u8> = match locked.get(db, key, now).and_then(|e| e.value.as_bytes()) {
            Some(s) => hll::dense_registers(s).collect(),
            None => return Err(INVALID),
        };
        drop(locked);
        ctx.out.array(regs.len());
        for r in regs {
            ctx.out.int(i64::from(r));
        }
    } else {
        return Err(CmdError::Owned(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

pub fn pfselftest(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let max_bytes = sparse_max_bytes(ctx);
    hll::selftest(|| fastrand::u64(..), max_bytes).map_err(CmdError::Owned)?;
    ctx.out.simple("OK");
    Ok(())
}
