//! BITOP, BITFIELD and BITFIELD_RO (SETBIT, GETBIT, BITCOUNT and BITPOS are with the
//! strings). Offsets are bounded by `proto-max-bulk-len` before anything grows.

pub mod bitfield;

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use cache_store::{Entry, Value};

use super::{is, CmdError, CmdResult, Ctx, Notify};

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

pub fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let op = if is(&args[1], "and") {
        BitOp::And
    } else if is(&args[1], "or") {
        BitOp::Or
    } else if is(&args[1], "xor") {
        BitOp::Xor
    } else if is(&args[1], "not") {
        BitOp::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::Msg(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let (db, now) = (ctx.db(), ctx.now);
    let dst = &args[2][..];
    let mut locked = ctx.store().lock_keys(args[2..].iter().map(|k| &k[..]));
    let mut sources: Vec<Option<Vec<u8>>> = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        sources.push(match locked.get(db, key, now) {
            Some(e) => Some(e.value.as_bytes().ok_or(CmdError::WrongType)?.to_vec()),
            None => None,
        });
    }
    let maxlen = sources.iter().flatten().map(Vec::len).max().unwrap_or(0);
    let byte = |src: &Option<Vec<u8>>, i: usize| src.as_ref().and_then(|s| s.get(i).copied());
    let result: Vec<u8> = (0..maxlen)
        .map(|i| {
            let mut it = sources.iter().map(|s| byte(s, i).unwrap_or(0));
            let first = it.next().unwrap_or(0);
            match op {
                BitOp::Not => !first,
                BitOp::And => it.fold(first, |a, b| a & b),
                BitOp::Or => it.fold(first, |a, b| a | b),
                BitOp::Xor => it.fold(first, |a, b| a ^ b),
            }
        })
        .collect();
    if maxlen > 0 {
        locked.insert(db, dst, Entry::new(Value::string(result)), now);
        drop(locked);
        ctx.notify(Notify::STRING, "set", dst);
    } else {
        let existed = locked.remove(db, dst, now).is_some();
        drop(locked);
        if existed {
            ctx.notify(Notify::GENERIC, "del", dst);
        }
    }
    ctx.out.int(maxlen as i64);
    Ok(())
}

/// BITFIELD (`readonly` false) and BITFIELD_RO.
pub fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes], readonly: bool) -> CmdResult {
    let max = ctx.shared.config.proto_max_bulk_len.load(Relaxed);
    let parsed = bitfield::parse(&args[2..], max)?;
    let (db, now) = (ctx.db(), ctx.now);
    let key = &args[1][..];
    let mut locked = ctx.store().lock(key);
    let Some(highest) = parsed.highest_write else {
        let replies: Vec<i64> = match locked.get(db, key, now) {
            Some(e) => {
                let s = e.value.as_bytes().ok_or(CmdError::WrongType)?;
                parsed.ops.iter().map(|op| bitfield::get(s, op)).collect()
            }
            None => parsed.ops.iter().map(|op| bitfield::get(&[], op)).collect(),
        };
        drop(locked);
        ctx.out.array(replies.len());
        for r in replies {
            ctx.out.int(r);
        }
        return Ok(());
    };
    if readonly {
        return Err(CmdError::Msg(
            "ERR BITFIELD_RO only supports the GET subcommand",
        ));
    }
    if let Some(e) = locked.peek(db, key, now) {
        e.value.as_bytes().ok_or(CmdError::WrongType)?;
    }
    let need = (highest >> 3) as usize + 1;
    let created = !locked.contains(db, key, now);
    if created {
        locked.insert(db, key, Entry::new(Value::raw_string()), now);
    }
    let Some(s) = locked
        .get_mut(db, key, now)
        .and_then(|e| e.value.bytes_mut())
    else {
        return Err(CmdError::WrongType);
    };
    let grown = s.len() < need;
    if grown {
        s.resize(need, 0);
    }
    let mut changes = 0;
    let mut replies = Vec::with_capacity(parsed.ops.len());
    for op in &parsed.ops {
        if op.kind == bitfield::OpKind::Get {
            replies.push(Some(bitfield::get(s, op)));
            continue;
        }
        let (reply, write) = bitfield::apply(s, op);
        if let Some((bits, differs)) = write {
            bitfield::set_bits(s, op.offset, op.bits, bits);
            if created || grown || differs {
                changes += 1;
            }
        }
        replies.push(reply);
    }
    drop(locked);
    if changes > 0 {
        ctx.notify(Notify::STRING, "setbit", key);
    }
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}
