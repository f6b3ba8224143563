//! The reply encoder: appends RESP2 or RESP3 replies to one output buffer per connection.
//!
//! Handlers never build reply values; they write straight into the buffer, which the
//! connection writes once per drained batch of requests.

use bytes::{BufMut, BytesMut};

/// The protocol a connection speaks, switched by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// A connection's output buffer.
#[derive(Debug, Default)]
pub struct ReplyBuf {
    pub buf: BytesMut,
    pub protocol: Protocol,
}

impl ReplyBuf {
    pub fn new() -> Self {
        ReplyBuf {
            buf: BytesMut::with_capacity(16 * 1024),
            protocol: Protocol::Resp2,
        }
    }

    pub fn resp3(&self) -> bool {
        self.protocol == Protocol::Resp3
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops everything appended after `len` (used to retract a partially written reply).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    pub fn ok(&mut self) {
        self.buf.put_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &str) {
        self.buf.reserve(s.len() + 3);
        self.buf.put_u8(b'+');
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    /// An error reply. `msg` carries its own code (`ERR ...`, `WRONGTYPE ...`).
    pub fn error(&mut self, msg: &str) {
        self.buf.reserve(msg.len() + 3);
        self.buf.put_u8(b'-');
        // A newline inside an error would break the framing; Redis replaces them too.
        for &b in msg.as_bytes() {
            self.buf
                .put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.put_slice(b"\r\n");
    }

    pub fn int(&mut self, v: i64) {
        self.header(b':', v);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        // One reservation and three copies: a 100-element LRANGE reply is mostly this.
        let mut head = [0u8; HEADER_MAX];
        let head = header_bytes(&mut head, b'$', data.len() as i64);
        self.buf.reserve(head.len() + data.len() + 2);
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string of a formatted integer (what `INCRBYFLOAT` and friends return in RESP2).
    pub fn bulk_int(&mut self, v: i64) {
        let mut tmp = itoa_buf();
        let s = format_i64(v, &mut tmp);
        self.bulk(s);
    }

    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        if self.resp3() {
            self.buf.put_slice(b"_\r\n");
        } else {
            self.buf.put_slice(b"$-1\r\n");
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.resp3() {
            self.buf.put_slice(b"_\r\n");
        } else {
            self.buf.put_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, len: usize) {
        self.header(b'*', len as i64);
    }

    /// A map of `len` pairs: `%` in RESP3, a flat array of `2 * len` in RESP2.
    pub fn map(&mut self, len: usize) {
        if self.resp3() {
            self.header(b'%', len as i64);
        } else {
            self.header(b'*', 2 * len as i64);
        }
    }

    /// HELLO's reply map, in Redis's field order, for the protocol now in use; node and proxy
    /// differ only in the values.
    pub fn hello(&mut self, server: &[u8], version: &[u8], id: i64, mode: &[u8]) {
        let proto = if self.resp3() { 3 } else { 2 };
        self.map(7);
        self.bulk(b"server");
        self.bulk(server);
        self.bulk(b"version");
        self.bulk(version);
        self.bulk(b"proto");
        self.int(proto);
        self.bulk(b"id");
        self.int(id);
        self.bulk(b"mode");
        self.bulk(mode);
        self.bulk(b"role");
        self.bulk(b"master");
        self.bulk(b"modules");
        self.array(0);
    }

    /// A set: `~` in RESP3, an array in RESP2.
    pub fn set(&mut self, len: usize) {
        if self.resp3() {
            self.header(b'~', len as i64);
        } else {
            self.header(b'*', len as i64);
        }
    }

    /// A push frame (RESP3 `>`), an array in RESP2.
    pub fn push(&mut self, len: usize) {
        if self.resp3() {
            self.header(b'>', len as i64);
        } else {
            self.header(b'*', len as i64);
        }
    }

    /// A double (a sorted-set score): `,` in RESP3, a bulk string in RESP2, with Redis 7.0's
    /// `%.17g` text.
    pub fn double(&mut self, v: f64) {
        let text = format_score(v);
        if self.resp3() {
            self.buf.put_u8(b',');
            self.buf.put_slice(text.as_bytes());
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    pub fn boolean(&mut self, v: bool) {
        if self.resp3() {
            self.buf.put_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(i64::from(v));
        }
    }

    /// A verbatim string (`=` with a 3-letter format in RESP3), a bulk string in RESP2.
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        if self.resp3() {
            self.header(b'=', (text.len() + 4) as i64);
            self.buf.put_slice(format.as_bytes());
            self.buf.put_u8(b':');
            self.buf.put_slice(text);
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    fn header(&mut self, kind: u8, n: i64) {
        let mut head = [0u8; HEADER_MAX];
        self.buf.extend_from_slice(header_bytes(&mut head, kind, n));
    }
}

/// The type byte, at most 20 digits and CRLF.
const HEADER_MAX: usize = 23;

/// Writes `<kind><n>\r\n` into `out`, right-aligned, and returns it.
#[inline]
fn header_bytes(out: &mut [u8; HEADER_MAX], kind: u8, n: i64) -> &[u8] {
    out[HEADER_MAX - 2..].copy_from_slice(b"\r\n");
    let start = digits_before(out, HEADER_MAX - 2, n) - 1;
    out[start] = kind;
    &out[start..]
}

/// Writes `v` in decimal so that it ends just before `end`; returns where it starts.
/// `out[..end]` must hold 20 bytes (i64::MIN: 19 digits and the sign).
#[inline]
fn digits_before(out: &mut [u8], end: usize, v: i64) -> usize {
    let mut n = v.unsigned_abs();
    let mut i = end;
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        out[i] = b'-';
    }
    i
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Formats an integer into `buf` without allocating.
pub fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let start = digits_before(buf, 20, v);
    &buf[start..]
}

/// Formats a double as Redis replies it: `inf`, `-inf`, `nan`, or the shortest text that reads
/// back as the same value.
pub fn format_double(v: f64) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        let mut s = format!("{v}");
        if s == "-0" {
            s = "0".to_string();
        }
        s
    }
}

/// Formats a double as Redis 7.0's `d2string`: integers in ±2^52 as integers, else `%.17g`.
/// A NaN (only a script can make one) prints as glibc's `%.17g` does, with its sign: x86's
/// `0/0` is the negative NaN, `-nan` on Redis.
pub fn format_score(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    if v > -4_503_599_627_370_495.0 && v < 4_503_599_627_370_496.0 && v == (v as i64) as f64 {
        return (v as i64).to_string();
    }
    format_g17(v)
}

/// C's `%.17g`: 17 significant digits, trailing zeros dropped, exponent form outside
/// 1e-4 ..= 1e17.
fn format_g17(v: f64) -> String {
    let sci = format!("{v:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..17).contains(&exp) {
        let mut m = format!("{}.{}", &digits[..1], &digits[1..]);
        while m.ends_with('0') {
            m.pop();
        }
        if m.ends_with('.') {
            m.pop();
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let mut text = if exp >= 0 {
        let int_len = exp as usize + 1;
        format!("{}.{}", &digits[..int_len], &digits[int_len..])
    } else {
        format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
    };
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_bulks_at_the_edges() {
        let mut r = ReplyBuf::new();
        r.bulk(b"");
        r.bulk(b"abc");
        r.int(i64::MIN);
        r.int(i64::MAX);
        r.int(0);
        r.int(-7);
        r.array(10);
        assert_eq!(
            &r.buf[..],
            &b"$0\r\n\r\n$3\r\nabc\r\n:-9223372036854775808\r\n:9223372036854775807\r\n:0\r\n:-7\r\n*10\r\n"[..]
        );
    }

    #[test]
    fn scores_as_redis_7_0() {
        assert_eq!(format_score(0.1), "0.10000000000000001");
        assert_eq!(format_score(1.5), "1.5");
        assert_eq!(format_score(3.0), "3");
        assert_eq!(format_score(-2.5), "-2.5");
        assert_eq!(format_score(1e20), "1e+20");
        assert_eq!(format_score(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_score(123456.789), "123456.789");
        assert_eq!(format_score(f64::INFINITY), "inf");
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let mut r = ReplyBuf::new();
        r.null();
        r.map(1);
        r.double(1.5);
        r.boolean(true);
        assert_eq!(&r.buf[..], b"$-1\r\n*2\r\n$3\r\n1.5\r\n:1\r\n");
        let mut r = ReplyBuf::new();
        r.protocol = Protocol::Resp3;
        r.null();
        r.map(1);
        r.double(1.5);
        r.boolean(true);
        assert_eq!(&r.buf[..], b"_\r\n%1\r\n,1.5\r\n#t\r\n");
    }

    #[test]
    fn integers() {
        let mut tmp = itoa_buf();
        assert_eq!(format_i64(i64::MIN, &mut tmp), b"-9223372036854775808");
        assert_eq!(format_i64(0, &mut tmp), b"0");
        assert_eq!(format_i64(42, &mut tmp), b"42");
    }

    #[test]
    fn errors_stay_on_one_line() {
        let mut r = ReplyBuf::new();
        r.error("ERR a\r\nb");
        assert_eq!(&r.buf[..], b"-ERR a  b\r\n");
    }
}
