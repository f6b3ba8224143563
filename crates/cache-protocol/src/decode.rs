//! The incremental request decoder.
//!
//! A request is either a RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or an inline line
//! (`GET k\r\n`, what telnet and `redis-cli` in some modes send). The decoder consumes what it
//! has parsed from the buffer and remembers where it stands, so a 500 MB `SET` arriving in 64 KB
//! reads is parsed once, not once per read. Arguments are zero-copy slices of the read buffer.

use bytes::{Buf, Bytes, BytesMut};

/// Longest line we search for a `\r\n` before giving up: Redis's `PROTO_INLINE_MAX_SIZE`.
pub const MAX_INLINE_LEN: usize = 64 * 1024;

/// Before AUTH, the most arguments of one request (Redis's `networking.c`).
pub const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
/// Before AUTH, the largest argument.
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16384;

/// Bytes a parsed argument costs beyond its payload (its slot in the argument vector).
const ARG_OVERHEAD: usize = std::mem::size_of::<Bytes>();

/// Size limits enforced while decoding. Defaults are Redis's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest single argument.
    pub max_bulk_len: usize,
    /// The most arguments in one multibulk request.
    pub max_multibulk_len: usize,
    /// `client-query-buffer-limit`: the most one partly received request may hold, its
    /// parsed arguments (with their slots in the argument vector) and unparsed bytes together.
    pub max_query_len: usize,
    /// The client must authenticate and has not: at most [`UNAUTHENTICATED_MAX_ARGS`]
    /// arguments of at most [`UNAUTHENTICATED_MAX_BULK`] bytes, as Redis allows.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_query_len: 1024 * 1024 * 1024,
            unauthenticated: false,
        }
    }
}

/// A request the decoder refuses; the connection replies `-ERR Protocol error: <text>` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    pub(crate) fn new(text: &str) -> Self {
        ProtocolError(text.to_string())
    }
}

#[derive(Debug, Default)]
enum State {
    /// Between requests.
    #[default]
    Idle,
    /// Inside a multibulk: `remaining` arguments still to come; `bulk_len` is set once the
    /// `$len` header of the next argument has been consumed.
    Multibulk {
        remaining: usize,
        args: Vec<Bytes>,
        bulk_len: Option<usize>,
        /// What `args` holds: payloads plus a slot per argument.
        held: usize,
    },
}

/// Decodes requests from a read buffer, one at a time, keeping partial progress between calls.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: Limits,
    state: State,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            state: State::Idle,
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Whether the client still has to authenticate (checked per request: a pipelined AUTH
    /// lifts the limits for the requests after it, as in Redis).
    pub fn set_unauthenticated(&mut self, unauthenticated: bool) {
        self.limits.unauthenticated = unauthenticated;
    }

    /// How much the caller should make room for before its next read: the rest of the
    /// current bulk argument, but never more than what has already arrived of it, so a
    /// large argument costs O(its size) in copies while a header alone (`$536870912`, sent
    /// by anyone) reserves nothing: memory follows the bytes that came, not the claims.
    pub fn bytes_needed(&self, buf: &BytesMut) -> usize {
        match &self.state {
            State::Multibulk {
                bulk_len: Some(len),
                ..
            } => (len + 2).saturating_sub(buf.len()).min(buf.len()),
            _ => 0,
        }
    }

    /// Decodes the next complete request from `buf`, consuming its bytes.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete request yet (what was parsed so far is
    /// kept). Empty requests (`*0`, a blank inline line) are skipped. An `Ok(Some(args))` always
    /// has at least one argument.
    ///
    /// # Errors
    /// A [`ProtocolError`] with Redis's text; the decoder must not be used after one.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if let State::Idle = self.state {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.decode_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(count) = read_header(buf, "too big mbulk count string")? else {
                    return Ok(None);
                };
                if count > 0 && count as u64 > self.limits.max_multibulk_len as u64 {
                    return Err(ProtocolError::new("invalid multibulk length"));
                }
                if count > UNAUTHENTICATED_MAX_ARGS && self.limits.unauthenticated {
                    return Err(ProtocolError::new("unauthenticated multibulk length"));
                }
                if count <= 0 {
                    continue;
                }
                let count = count as usize;
                self.state = State::Multibulk {
                    remaining: count,
                    // Cap the preallocation: the count is only a claim until the bytes arrive.
                    args: Vec::with_capacity(count.min(1024)),
                    bulk_len: None,
                    held: 0,
                };
            }
            let State::Multibulk {
                remaining,
                args,
                bulk_len,
                held,
            } = &mut self.state
            else {
                unreachable!("state is multibulk here");
            };
            while *remaining > 0 {
                let len = match *bulk_len {
                    Some(len) => len,
                    None => {
                        if buf.is_empty() {
                            return Ok(None);
                        }
                        if buf[0] != b'$' {
                            let got = buf[0] as char;
                            return Err(ProtocolError(format!("expected '$', got '{got}'")));
                        }
                        let Some(len) = read_header(buf, "too big bulk count string")? else {
                            return Ok(None);
                        };
                        if len < 0 || len as u64 > self.limits.max_bulk_len as u64 {
                            return Err(ProtocolError::new("invalid bulk length"));
                        }
                        if len > UNAUTHENTICATED_MAX_BULK && self.limits.unauthenticated {
                            return Err(ProtocolError::new("unauthenticated bulk length"));
                        }
                        *bulk_len = Some(len as usize);
                        len as usize
                    }
                };
                // `*2147483647` and empty arguments would grow the argument vector several
                // times faster than the bytes sent: what it holds counts against the limit.
                if held.saturating_add(buf.len().min(len + 2)) > self.limits.max_query_len {
                    return Err(ProtocolError::new("query buffer limit exceeded"));
                }
                if buf.len() < len + 2 {
                    return Ok(None);
                }
                *held += len + ARG_OVERHEAD;
                args.push(buf.split_to(len).freeze());
                // Like Redis, the two bytes after the payload are skipped, not checked.
                buf.advance(2);
                *bulk_len = None;
                *remaining -= 1;
            }
            let State::Multibulk { args, .. } = std::mem::take(&mut self.state) else {
                unreachable!("state is multibulk here");
            };
            return Ok(Some(args));
        }
    }

    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(newline) = memchr(b'\n', buf) else {
            if buf.len() > MAX_INLINE_LEN {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(None);
        };
        let line = buf.split_to(newline + 1);
        let mut end = newline;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        split_args(&line[..end])
            .map(Some)
            .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Reads a `*N\r\n` or `$N\r\n` header, consuming it. `Ok(None)` until the line is complete.
fn read_header(buf: &mut BytesMut, too_big: &str) -> Result<Option<i64>, ProtocolError> {
    let Some(cr) = memchr(b'\r', buf) else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(ProtocolError::new(too_big));
        }
        return Ok(None);
    };
    if cr + 1 >= buf.len() {
        return Ok(None);
    }
    let value = parse_i64(&buf[1..cr]);
    let is_multibulk = buf[0] == b'*';
    buf.advance(cr + 2);
    match value {
        Some(v) => Ok(Some(v)),
        None if is_multibulk => Err(ProtocolError::new("invalid multibulk length")),
        None => Err(ProtocolError::new("invalid bulk length")),
    }
}

/// Parses a decimal integer the way Redis's `string2ll` does: optional `-`, no `+`, no spaces,
/// no leading zeros, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(_) => (false, s),
        None => return None,
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    if digits[0] == b'0' {
        return (digits.len() == 1 && !negative).then_some(0);
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            None
        } else {
            Some((value as i128).wrapping_neg() as i64)
        }
    } else {
        i64::try_from(value).ok()
    }
}

/// Splits an inline request the way Redis's `sdssplitargs` does: whitespace separates, `"..."`
/// understands `\n \r \t \b \a \\ \" \xHH`, `'...'` understands `\'`, and a closing quote must be
/// followed by whitespace. Returns `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                        current.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < n {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    c => current.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(current));
    }
}

/// C's `isspace`, which Redis uses: Rust's `is_ascii_whitespace` leaves out `\v`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf)? {
            out.push(frame);
        }
        Ok(out)
    }

    fn args(list: &[&str]) -> Vec<Bytes> {
        list.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn multibulk_and_inline() {
        let frames = decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n").unwrap();
        assert_eq!(
            frames,
            vec![
                args(&["GET", "k"]),
                args(&["PING"]),
                args(&["set", "a", "b c"])
            ]
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        let frames = decode_all(b"\r\n*0\r\n*-1\r\n  \r\nPING\r\n").unwrap();
        assert_eq!(frames, vec![args(&["PING"])]);
    }

    #[test]
    fn split_at_every_byte_gives_the_same_frames() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$10\r\n0123456789\r\nECHO 'x y'\r\n";
        let whole = decode_all(input).unwrap();
        for split in 0..input.len() {
            let mut decoder = Decoder::default();
            let mut buf = BytesMut::from(&input[..split]);
            let mut frames = Vec::new();
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            buf.extend_from_slice(&input[split..]);
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            assert_eq!(frames, whole, "split at {split}");
        }
    }

    #[test]
    fn bulk_progress_is_kept() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$100\r\nabc"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        // The headers were consumed; only the partial payload stays buffered.
        assert_eq!(&buf[..], b"abc");
        // Room for as much again as arrived, not the 99 declared: the buffer doubles.
        assert_eq!(decoder.bytes_needed(&buf), 3);
    }

    #[test]
    fn redis_error_texts() {
        let err = |input: &[u8]| decode_all(input).unwrap_err().to_string();
        assert_eq!(err(b"*abc\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*1\r\n$x\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(err(b"*1\r\n$-5\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"*1\r\nfoo\r\n"),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            err(b"set a \"b\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
        let huge = vec![b'a'; MAX_INLINE_LEN + 1];
        assert_eq!(err(&huge), "Protocol error: too big inline request");
        let mut star = b"*".to_vec();
        star.extend(vec![b'1'; MAX_INLINE_LEN + 1]);
        assert_eq!(err(&star), "Protocol error: too big mbulk count string");
    }

    #[test]
    fn before_auth_redis_limits_apply() {
        let unauth = Limits {
            unauthenticated: true,
            ..Limits::default()
        };
        let refused = |input: &[u8]| {
            let mut decoder = Decoder::new(unauth);
            decoder
                .decode(&mut BytesMut::from(input))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(b"*11\r\n"),
            "Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            refused(b"*1\r\n$16385\r\n"),
            "Protocol error: unauthenticated bulk length"
        );
        // A count over the absolute limit keeps Redis's first error.
        assert_eq!(
            refused(b"*2147483648\r\n"),
            "Protocol error: invalid multibulk length"
        );
        let mut at_limits = b"*10\r\n$16384\r\n".to_vec();
        at_limits.extend(std::iter::repeat_n(b'v', 16384));
        at_limits.extend_from_slice(b"\r\n");
        for _ in 0..9 {
            at_limits.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut decoder = Decoder::new(unauth);
        let args = decoder
            .decode(&mut BytesMut::from(&at_limits[..]))
            .unwrap()
            .unwrap();
        assert_eq!(args.len(), 10);
        // Authenticated (set per request), the same decoder takes more.
        decoder.set_unauthenticated(false);
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn a_bulk_header_reserves_only_what_arrived() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert_eq!(decoder.bytes_needed(&buf), 0);
        buf.extend_from_slice(&[b'v'; 1000]);
        assert_eq!(decoder.bytes_needed(&buf), 1000);
    }

    #[test]
    fn parsed_arguments_count_against_the_query_limit() {
        let mut decoder = Decoder::new(Limits {
            max_query_len: 64 * 1024,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"*100000\r\n"[..]);
        for _ in 0..3000 {
            buf.extend_from_slice(b"$0\r\n\r\n");
        }
        assert_eq!(
            decoder.decode(&mut buf).unwrap_err().to_string(),
            "Protocol error: query buffer limit exceeded"
        );
    }

    #[test]
    fn limits_are_enforced_before_allocation() {
        let mut decoder = Decoder::new(Limits {
            max_bulk_len: 10,
            max_multibulk_len: 3,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"*4\r\n"[..]);
        assert!(decoder.decode(&mut buf).is_err());
        let mut decoder = Decoder::new(Limits {
            max_bulk_len: 10,
            max_multibulk_len: 3,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"*1\r\n$11\r\n"[..]);
        assert!(decoder.decode(&mut buf).is_err());
        // A huge declared count allocates nothing up front.
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"*2000000000\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn parse_i64_is_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"",
            b"-",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn inline_escapes() {
        let got = split_args(br#"set "a\x41\n" 'it\'s' plain"#).unwrap();
        assert_eq!(got, args(&["set", "aA\n", "it's", "plain"]));
        assert_eq!(split_args(br#""a"b"#), None);
    }
}
