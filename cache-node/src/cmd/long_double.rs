//! INCRBYFLOAT and HINCRBYFLOAT arithmetic exactly as Redis on x86-64 does it: C `long double`
//! (x87 80-bit extended: a 64-bit significand), read as `strtold` reads it and printed as
//! `%.17Lf` with the trailing zeros (and a trailing dot) removed (Redis's `ld2string` in human
//! mode). Software floating point (`rustc_apfloat`), so the bits do not depend on the host.
//!
//! ```text
//!  "9223372036854775807" ─parse─► x87 ─add (nearest-even)─► x87 ─exact decimal, 17 places─► text
//! ```

use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::{Float, Round, Status};

/// A C `long double` on x86-64.
pub type LongDouble = X87DoubleExtended;

/// 0, the value of a missing key or field.
pub const ZERO: LongDouble = LongDouble::ZERO;

pub fn is_infinite(v: LongDouble) -> bool {
    v.is_infinite()
}

/// Redis's `string2ld`: the whole text is one `strtold` number, no leading blank, not NaN, and
/// not out of range (an overflow, or an underflow to zero). None when Redis would say "value
/// is not a valid float".
pub fn parse(text: &[u8]) -> Option<LongDouble> {
    if text.is_empty() || text.len() > MAX_CHARS {
        return None;
    }
    let s = std::str::from_utf8(text).ok()?;
    let (negative, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let value = if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        LongDouble::INFINITY
    } else if body.len() > 1 && (body.starts_with("0x") || body.starts_with("0X")) {
        // Hexadecimal as strtold reads it (an exponent is optional there); rare enough that
        // glibc's double reading is used, whose value converts to long double exactly.
        let (v, used, range_error) = super::strtod(body.as_bytes());
        if used != body.len() || range_error || v.is_nan() {
            return None;
        }
        from_f64(v.abs())
    } else {
        if !is_decimal(body) {
            return None;
        }
        let parsed = LongDouble::from_str_r(body, Round::NearestTiesToEven).ok()?;
        let out_of_range = parsed.status.intersects(Status::OVERFLOW)
            || (parsed.status.intersects(Status::UNDERFLOW) && parsed.value.is_zero());
        if out_of_range {
            return None;
        }
        parsed.value
    };
    Some(if negative { -value } else { value })
}

/// Longest number text Redis reads or writes as a long double (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;

/// `digits [. digits] [e [sign] digits]` or `. digits [...]`: what strtold consumes entirely
/// in decimal (apfloat alone would also take `1e`).
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn from_f64(v: f64) -> LongDouble {
    use rustc_apfloat::FloatConvert;
    let mut lost = false;
    let d = rustc_apfloat::ieee::Double::from_bits(u128::from(v.to_bits()));
    d.convert(&mut lost).value
}

/// `a + b` rounded to nearest-even, as the x87 unit does; None when the result is NaN or
/// infinite ("increment would produce NaN or Infinity").
pub fn add(a: LongDouble, b: LongDouble) -> Option<LongDouble> {
    let sum = a.add_r(b, Round::NearestTiesToEven).value;
    (sum.is_finite()).then_some(sum)
}

/// Redis's `ld2string(.., LD_STR_HUMAN)`: `%.17Lf`, trailing zeros and dot removed, `-0` as `0`.
pub fn format(v: LongDouble) -> String {
    let bits = v.to_bits();
    let negative = bits >> 79 & 1 == 1;
    let exponent = (bits >> 64 & 0x7fff) as i64;
    let significand = bits as u64;
    // value = significand × 2^k (a denormal's exponent field 0 counts as 1).
    let k = exponent.max(1) - 16383 - 63;
    let scaled = u128::from(significand) * 100_000_000_000_000_000u128; // × 10^17 < 2^121
    let digits = if k >= 0 {
        Big::from(scaled).shifted_left(k as usize).into_decimal()
    } else {
        shift_right_even(scaled, (-k) as u32).to_string()
    };
    // `digits` is the value × 10^17, rounded: put the point 17 places from the right.
    let padded = format!("{digits:0>18}");
    let (int, frac) = padded.split_at(padded.len() - 17);
    let frac = frac.trim_end_matches('0');
    let mut out = String::with_capacity(padded.len() + 2);
    if negative {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if out == "-0" {
        out = "0".into();
    }
    out
}

/// `x / 2^n`, rounded half to even (glibc's printf rounding of the exact value).
fn shift_right_even(x: u128, n: u32) -> u128 {
    if n >= 128 {
        // Below 2^-7 of one unit in the 17th place: rounds to zero.
        return 0;
    }
    let q = x >> n;
    let rest = x & ((1u128 << n) - 1);
    let half = 1u128 << (n - 1);
    if rest > half || (rest == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// A non-negative integer in 32-bit limbs, least significant first: just enough arithmetic
/// to print a large long double exactly.
struct Big(Vec<u32>);

impl From<u128> for Big {
    fn from(mut x: u128) -> Big {
        let mut limbs = Vec::new();
        while x > 0 {
            limbs.push(x as u32);
            x >>= 32;
        }
        Big(limbs)
    }
}

impl Big {
    fn shifted_left(self, n: usize) -> Big {
        let (words, bits) = (n / 32, n % 32);
        let mut out = vec![0u32; words];
        let mut carry = 0u32;
        for limb in self.0 {
            if bits == 0 {
                out.push(limb);
            } else {
                out.push(limb << bits | carry);
                carry = limb >> (32 - bits);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        Big(out)
    }

    fn into_decimal(mut self) -> String {
        let mut chunks = Vec::new();
        while self.0.iter().any(|&l| l != 0) {
            let mut rem = 0u64;
            for limb in self.0.iter_mut().rev() {
                let cur = rem << 32 | u64::from(*limb);
                *limb = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            chunks.push(rem as u32);
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }
        let mut out = match chunks.pop() {
            Some(top) => top.to_string(),
            None => return "0".into(),
        };
        for chunk in chunks.iter().rev() {
            out.push_str(&format!("{chunk:09}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        Some(format(add(parse(a.as_bytes())?, parse(b.as_bytes())?)?))
    }

    #[test]
    fn matches_redis_on_x86_64() {
        // Expectations from Redis 7.0.15 on x86-64.
        assert_eq!(incr("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(
            incr("9223372036854775807", "0").as_deref(),
            Some("9223372036854775807")
        );
        assert_eq!(incr("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(incr("0", "-0").as_deref(), Some("0"));
        assert_eq!(incr("3", "-3.5").as_deref(), Some("-0.5"));
        assert_eq!(incr("1", "1e-20").as_deref(), Some("1"));
        assert_eq!(incr("0", "1e-17").as_deref(), Some("0.00000000000000001"));
        assert_eq!(
            incr("0", "1e30").as_deref(),
            Some("1000000000000000000024696061952")
        );
        assert_eq!(incr("1e4932", "inf"), None);
        assert!(parse(b"1e5000").is_none(), "overflow is out of range");
        assert!(
            parse(b"1e-5000").is_none(),
            "underflow to zero is out of range"
        );
        assert!(parse(b"1e").is_none() && parse(b" 1").is_none() && parse(b"nan").is_none());
        assert!(parse(b"0x10").is_some() && parse(b"-inf").is_some() && parse(b".5").is_some());
    }
}
