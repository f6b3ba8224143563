//! BITFIELD's parts that need no keyspace: the argument parse (Redis's checks and messages,
//! in Redis's order), reading and writing an integer of 1..=64 bits at any bit offset, and
//! the WRAP / SAT / FAIL overflow rules of bitops.c.

use super::super::{is, CmdError};

pub const OFFSET_ERR: CmdError = CmdError::Msg("ERR bit offset is not an integer or out of range");
const TYPE_ERR: CmdError = CmdError::Msg(
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Get,
    Set,
    Incrby,
}

/// One GET / SET / INCRBY, with the OVERFLOW in force where it appeared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub signed: bool,
    pub bits: u32,
    pub offset: u64,
    pub value: i64,
    pub overflow: Overflow,
}

/// The parsed operations, and the last bit a write touches (None for reads only).
#[derive(Debug)]
pub struct Ops {
    pub ops: Vec<Op>,
    pub highest_write: Option<u64>,
}

fn parse_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(TYPE_ERR),
    };
    let bits = cache_protocol::parse_i64(&arg[1..]).ok_or(TYPE_ERR)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(TYPE_ERR);
    }
    Ok((signed, bits as u32))
}

/// A bit offset, `#n` meaning n times the width; below `max_bytes * 8`.
pub fn parse_offset(arg: &[u8], hash_bits: Option<u32>, max_bytes: u64) -> Result<u64, CmdError> {
    let (digits, times) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    let v = cache_protocol::parse_i64(digits)
        .ok_or(OFFSET_ERR)?
        .checked_mul(times)
        .ok_or(OFFSET_ERR)?;
    if v < 0 || (v as u64 >> 3) >= max_bytes {
        return Err(OFFSET_ERR);
    }
    Ok(v as u64)
}

/// Parses `args` (the words after the key) as Redis's `bitfieldGeneric` does.
pub fn parse(args: &[bytes::Bytes], max_bytes: u64) -> Result<Ops, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest_write: Option<u64> = None;
    let mut j = 0;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let word = &args[j];
        let kind = if is(word, "get") && rem >= 2 {
            OpKind::Get
        } else if is(word, "set") && rem >= 3 {
            OpKind::Set
        } else if is(word, "incrby") && rem >= 3 {
            OpKind::Incrby
        } else if is(word, "overflow") && rem >= 1 {
            let w = &args[j + 1];
            overflow = if is(w, "wrap") {
                Overflow::Wrap
            } else if is(w, "sat") {
                Overflow::Sat
            } else if is(w, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::Msg("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = parse_type(&args[j + 1])?;
        let offset = parse_offset(&args[j + 2], Some(bits), max_bytes)?;
        let mut value = 0;
        if kind != OpKind::Get {
            let last = offset + u64::from(bits) - 1;
            highest_write = Some(highest_write.map_or(last, |h| h.max(last)));
            value = super::super::int_arg(&args[j + 3])?;
        }
        ops.push(Op {
            kind,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if kind == OpKind::Get { 3 } else { 4 };
    }
    Ok(Ops { ops, highest_write })
}

/// The unsigned integer of `bits` bits at bit `offset` (bits past the end read as 0).
pub fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..u64::from(bits) {
        let o = offset + i;
        let bit = s
            .get((o >> 3) as usize)
            .map_or(0, |b| (b >> (7 - (o & 7))) & 1);
        v = (v << 1) | u64::from(bit);
    }
    v
}

pub fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits) as i64;
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        v | (-1i64 << bits)
    } else {
        v
    }
}

/// Writes the low `bits` bits of `value` at bit `offset`; `s` must be long enough.
pub fn set_bits(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let on = value & (1u64 << (bits - 1 - j)) != 0;
        let o = offset + u64::from(j);
        if let Some(b) = s.get_mut((o >> 3) as usize) {
            let mask = 1u8 << (7 - (o & 7));
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}

/// `value + incr` in an unsigned field: Ok(sum) or Err(what to store instead, if anything).
fn unsigned_add(value: u64, incr: i64, bits: u32, ow: Overflow) -> Result<u64, Option<u64>> {
    let max = (1u64 << bits) - 1;
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > maxincr) {
        return Err(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        });
    }
    if incr < 0 && incr < minincr {
        return Err(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        });
    }
    Ok(value.wrapping_add(incr as u64))
}

/// `value + incr` in a signed field, as `checkSignedBitfieldOverflow`.
fn signed_add(value: i64, incr: i64, bits: u32, ow: Overflow) -> Result<i64, Option<i64>> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        return Err(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        });
    }
    if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        return Err(match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        });
    }
    Ok(value.wrapping_add(incr))
}

/// What a SET or INCRBY does: the reply (None = nil, FAIL overflow) and the new field value
/// to write (as raw bits), and whether that differs from the old one.
pub fn apply(s: &[u8], op: &Op) -> (Option<i64>, Option<(u64, bool)>) {
    if op.signed {
        let old = get_signed(s, op.offset, op.bits);
        let (new, reply) = match op.kind {
            OpKind::Incrby => match signed_add(old, op.value, op.bits, op.overflow) {
                Ok(v) => (Some(v), v),
                Err(w) => (w, w.unwrap_or(0)),
            },
            _ => match signed_add(op.value, 0, op.bits, op.overflow) {
                Ok(v) => (Some(v), old),
                Err(w) => (w, old),
            },
        };
        match new {
            Some(n) => (Some(reply), Some((n as u64, n != old))),
            None => (None, None),
        }
    } else {
        let old = get_unsigned(s, op.offset, op.bits);
        let (new, reply) = match op.kind {
            OpKind::Incrby => match unsigned_add(old, op.value, op.bits, op.overflow) {
                Ok(v) => (Some(v), v as i64),
                Err(w) => (w, w.unwrap_or(0) as i64),
            },
            _ => match unsigned_add(op.value as u64, 0, op.bits, op.overflow) {
                Ok(v) => (Some(v), old as i64),
                Err(w) => (w, old as i64),
            },
        };
        match new {
            Some(n) => (Some(reply), Some((n, n != old))),
            None => (None, None),
        }
    }
}

/// The reply of a GET.
pub fn get(s: &[u8], op: &Op) -> i64 {
    if op.signed {
        get_signed(s, op.offset, op.bits)
    } else {
        get_unsigned(s, op.offset, op.bits) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, signed: bool, bits: u32, value: i64, overflow: Overflow) -> Op {
        Op {
            kind,
            signed,
            bits,
            offset: 0,
            value,
            overflow,
        }
    }

    #[test]
    fn overflow_rules() {
        let z = [0u8; 8];
        // u2 at 0: INCRBY 5 wraps to 1, saturates to 3, fails.
        assert_eq!(
            apply(&z, &op(OpKind::Incrby, false, 2, 5, Overflow::Wrap)).0,
            Some(1)
        );
        assert_eq!(
            apply(&z, &op(OpKind::Incrby, false, 2, 5, Overflow::Sat)).0,
            Some(3)
        );
        assert_eq!(
            apply(&z, &op(OpKind::Incrby, false, 2, 5, Overflow::Fail)).0,
            None
        );
        // i8: 0 + 200 wraps to -56, saturates to 127; 0 - 200 saturates to -128.
        assert_eq!(
            apply(&z, &op(OpKind::Incrby, true, 8, 200, Overflow::Wrap)).0,
            Some(-56)
        );
        assert_eq!(
            apply(&z, &op(OpKind::Incrby, true, 8, 200, Overflow::Sat)).0,
            Some(127)
        );
        assert_eq!(
            apply(&z, &op(OpKind::Incrby, true, 8, -200, Overflow::Sat)).0,
            Some(-128)
        );
        // i64 at its limits.
        let max = i64::MAX.to_be_bytes();
        assert_eq!(
            apply(&max, &op(OpKind::Incrby, true, 64, 1, Overflow::Wrap)).0,
            Some(i64::MIN)
        );
        assert_eq!(
            apply(&max, &op(OpKind::Incrby, true, 64, 1, Overflow::Sat)).0,
            Some(i64::MAX)
        );
        // SET replies with the old value and stores the wrapped new one.
        let (reply, write) = apply(&max, &op(OpKind::Set, false, 8, 256 + 7, Overflow::Wrap));
        assert_eq!((reply, write), (Some(0x7f), Some((7, true))));
    }

    #[test]
    fn fields_round_trip_at_any_offset() {
        let mut s = vec![0u8; 20];
        for offset in [0u64, 1, 7, 13, 64] {
            set_bits(&mut s, offset, 13, 0x1abc);
            assert_eq!(get_unsigned(&s, offset, 13), 0x1abc & 0x1fff);
            assert_eq!(get_signed(&s, offset, 13), (0x1abc_i64 << 51) >> 51);
            s.fill(0);
        }
        // Reads past the end are zeros.
        assert_eq!(get_unsigned(&[0xff], 4, 8), 0xf0);
    }

    #[test]
    fn parse_errors_as_redis() {
        let a = |words: &[&str]| -> Vec<bytes::Bytes> {
            words
                .iter()
                .map(|w| bytes::Bytes::copy_from_slice(w.as_bytes()))
                .collect()
        };
        let max = 512 << 20;
        assert_eq!(parse(&a(&["get", "u64", "0"]), max).err(), Some(TYPE_ERR));
        assert_eq!(parse(&a(&["get", "i65", "0"]), max).err(), Some(TYPE_ERR));
        assert_eq!(parse(&a(&["get", "i8", "-1"]), max).err(), Some(OFFSET_ERR));
        assert_eq!(
            parse(&a(&["get", "i8", "4294967296"]), max).err(),
            Some(OFFSET_ERR)
        );
        assert_eq!(parse(&a(&["bogus"]), max).err(), Some(CmdError::Syntax));
        let ok = parse(&a(&["set", "u8", "#2", "5", "get", "i4", "3"]), max).expect("valid");
        assert_eq!(ok.ops[0].offset, 16);
        assert_eq!(ok.highest_write, Some(23));
    }
}
