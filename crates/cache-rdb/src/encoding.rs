//! RDB's primitive encodings: lengths (6, 14, 32 or 64 bits), strings (plain, small integers,
//! LZF), doubles, millisecond times.

use std::borrow::Cow;

use crate::input::Input;
use crate::{lzf, Error};

const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// The longest string a load accepts (Redis's `proto-max-bulk-len` default): an LZF length
/// claims more than its input, so it is bounded by this and by LZF's best ratio.
pub const MAX_STRING: u64 = 512 * 1024 * 1024;

/// A length, or the marker of a specially encoded string.
pub enum Len {
    Plain(u64),
    Encoded(u8),
}

pub fn read_len_or_enc(input: &mut Input<'_>) -> Result<Len, Error> {
    let first = input.u8()?;
    Ok(match first >> 6 {
        0 => Len::Plain(u64::from(first & 0x3f)),
        1 => Len::Plain((u64::from(first & 0x3f) << 8) | u64::from(input.u8()?)),
        3 => Len::Encoded(first & 0x3f),
        _ => match first {
            0x80 => Len::Plain(u64::from(u32::from_be_bytes(input.array()?))),
            0x81 => Len::Plain(u64::from_be_bytes(input.array()?)),
            _ => return Err(Error::BadFormat("unknown length encoding")),
        },
    })
}

pub fn read_len(input: &mut Input<'_>) -> Result<u64, Error> {
    match read_len_or_enc(input)? {
        Len::Plain(n) => Ok(n),
        Len::Encoded(_) => Err(Error::BadFormat("encoded value where a length belongs")),
    }
}

pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(((len >> 8) as u8) | 0x40);
        out.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A string as stored: borrowed when plain, owned when it was an integer or compressed.
pub fn read_string<'a>(input: &mut Input<'a>) -> Result<Cow<'a, [u8]>, Error> {
    match read_len_or_enc(input)? {
        Len::Plain(n) => Ok(Cow::Borrowed(input.take(n)?)),
        Len::Encoded(ENC_INT8) => Ok(int_string(i64::from(input.u8()? as i8))),
        Len::Encoded(ENC_INT16) => Ok(int_string(i64::from(i16::from_le_bytes(input.array()?)))),
        Len::Encoded(ENC_INT32) => Ok(int_string(i64::from(i32::from_le_bytes(input.array()?)))),
        Len::Encoded(ENC_LZF) => {
            let clen = read_len(input)?;
            let len = read_len(input)?;
            let data = input.take(clen)?;
            // An LZF back reference of 3 bytes yields at most 264: a longer claim is a lie.
            if len > MAX_STRING || len > clen.saturating_mul(90) + 32 {
                return Err(Error::BadFormat("LZF length out of range"));
            }
            Ok(Cow::Owned(lzf::decompress(data, len as usize)?))
        }
        Len::Encoded(_) => Err(Error::BadFormat("unknown string encoding")),
    }
}

fn int_string(v: i64) -> Cow<'static, [u8]> {
    Cow::Owned(v.to_string().into_bytes())
}

/// The value of `s` when it is an integer written the one way Redis writes it (no sign
/// but `-`, no leading zeros, no `-0`): such strings are stored as integers.
pub fn canonical_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(digit)?
        } else {
            v.checked_add(digit)?
        };
    }
    Some(v)
}

/// Writes a string as Redis 7.0 does: a small integer in 1, 2 or 4 bytes; otherwise LZF when
/// `compress` is on, the string is over 20 bytes and LZF saves at least 4 of them; otherwise
/// plain.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = canonical_int(s) {
            if let Ok(v) = i8::try_from(v) {
                out.push(0xc0 | ENC_INT8);
                out.push(v as u8);
                return;
            }
            if let Ok(v) = i16::try_from(v) {
                out.push(0xc0 | ENC_INT16);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
            if let Ok(v) = i32::try_from(v) {
                out.push(0xc0 | ENC_INT32);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    write_blob(out, s, compress);
}

/// A string written plain, never as an integer or compressed (stream IDs, listpacks when
/// compression is off).
pub fn write_raw_string(out: &mut Vec<u8>, s: &[u8]) {
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A listpack, ziplist or intset blob: compressed like any string when that saves room.
pub fn write_blob(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xc0 | ENC_LZF);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_raw_string(out, s);
}

/// The old text form of a double (ZSET version 1): a length byte, or 253/254/255 for NaN,
/// +inf and -inf.
pub fn read_text_double(input: &mut Input<'_>) -> Result<f64, Error> {
    match input.u8()? {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        n => parse_double(input.take(u64::from(n))?),
    }
}

pub fn parse_double(s: &[u8]) -> Result<f64, Error> {
    let bad = || Error::BadFormat("invalid double");
    let text = std::str::from_utf8(s).map_err(|_| bad())?;
    match text {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => text.parse::<f64>().map_err(|_| bad()),
    }
}

/// A double as Redis's d2string writes it into a listpack (integers as integers, else
/// digits that parse back to the same value).
pub fn format_double(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v < 0.0 { "-inf" } else { "inf" }.into()
    } else if v == 0.0 {
        if v.is_sign_negative() { "-0" } else { "0" }.into()
    } else if v.fract() == 0.0 && v.abs() < 4503599627370496.0 {
        format!("{}", v as i64)
    } else if v.abs() >= 1e17 || v.abs() < 1e-5 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

pub fn read_ms(input: &mut Input<'_>) -> Result<u64, Error> {
    Ok(i64::from_le_bytes(input.array()?) as u64)
}

pub fn write_ms(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_at_every_boundary() {
        for n in [
            0,
            63,
            64,
            16383,
            16384,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_len(&mut out, n);
            let mut input = Input::new(&out);
            assert_eq!(read_len(&mut input).unwrap(), n);
            assert!(input.is_empty());
        }
    }

    #[test]
    fn canonical_integers_only() {
        assert_eq!(canonical_int(b"12345"), Some(12345));
        assert_eq!(canonical_int(b"-9223372036854775808"), Some(i64::MIN));
        for s in [
            &b"012"[..],
            b"-0",
            b"+1",
            b"",
            b"-",
            b"1 ",
            b"9223372036854775808",
        ] {
            assert_eq!(canonical_int(s), None, "{s:?}");
        }
    }

    #[test]
    fn integers_as_redis_writes_them() {
        // DUMP of `SET k 12345` on Redis 7.0.15 starts 00 c1 39 30: INT16, little-endian.
        let mut out = Vec::new();
        write_string(&mut out, b"12345", true);
        assert_eq!(out, [0xc1, 0x39, 0x30]);
    }

    #[test]
    fn lzf_string_redis_wrote() {
        // DUMP of a string of 100 'a' on Redis 7.0.15, after the type byte.
        let data = [
            0xc3, 0x09, 0x40, 0x64, 0x01, b'a', b'a', 0xe0, 0x57, 0x00, 0x01, b'a', b'a',
        ];
        let mut input = Input::new(&data);
        assert_eq!(read_string(&mut input).unwrap().as_ref(), &[b'a'; 100][..]);
    }

    #[test]
    fn lzf_length_claims_are_bounded() {
        // Claims 2^40 bytes from 2 bytes of input.
        let mut data = vec![0xc3, 0x02, 0x81];
        data.extend_from_slice(&(1u64 << 40).to_be_bytes());
        data.extend_from_slice(&[0x00, b'a']);
        assert!(read_string(&mut Input::new(&data)).is_err());
    }

    #[test]
    fn doubles_format_to_what_parses_back() {
        for v in [
            1.5,
            3.0,
            -0.0,
            1e300,
            1e-300,
            0.1,
            -2.5e-7,
            4503599627370497.0,
        ] {
            let s = format_double(v);
            assert_eq!(
                parse_double(s.as_bytes()).unwrap().to_bits(),
                v.to_bits(),
                "{s}"
            );
        }
        assert_eq!(format_double(3.0), "3");
    }
}
