//! A reply frame scanner: finds where one complete RESP2/RESP3 reply ends in a buffer without
//! building it. The proxy forwards node replies as bytes, so it only needs their lengths.
//!
//! The scanner resumes where it stopped: a large array arriving in many reads is walked once,
//! not from byte 0 on every read. Its whole state is the offset reached and how many values
//! are still owed (a pre-order walk of the reply tree needs nothing more).

use crate::decode::{parse_i64, ProtocolError};

/// Most elements one aggregate header may claim. Replies come from our own nodes, but a bad
/// peer must not make the counter overflow.
const MAX_AGGREGATE: i64 = 1 << 32;

#[derive(Debug, Default, Clone)]
pub struct ReplyScanner {
    /// Offset of the first header not yet walked.
    pos: usize,
    /// Values still needed to finish the reply; 0 between replies.
    need: u64,
}

impl ReplyScanner {
    pub fn new() -> Self {
        ReplyScanner::default()
    }

    /// Returns `Some(len)` when `buf[..len]` is one complete reply. The caller consumes those
    /// bytes before the next call; on `None` it appends more bytes and calls again.
    ///
    /// # Errors
    /// A byte that starts no RESP type, or a malformed length.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if self.need == 0 {
            self.pos = 0;
            self.need = 1;
        }
        while self.need > 0 {
            let Some(rest) = buf.get(self.pos..) else {
                return Ok(None);
            };
            let Some(cr) = rest.windows(2).position(|w| w == b"\r\n") else {
                return Ok(None);
            };
            let line = &rest[1..cr];
            let after = self.pos + cr + 2;
            let Some(&kind) = rest.first() else {
                return Ok(None);
            };
            match kind {
                b'+' | b'-' | b':' | b',' | b'_' | b'#' | b'(' => {
                    self.pos = after;
                    self.need -= 1;
                }
                b'$' | b'!' | b'=' => {
                    let len = length(line)?;
                    if len < 0 {
                        self.pos = after;
                    } else {
                        let end = after + len as usize + 2;
                        if buf.len() < end {
                            // The header is parsed again next time: cheap, and keeps the
                            // state to two numbers.
                            return Ok(None);
                        }
                        self.pos = end;
                    }
                    self.need -= 1;
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let n = length(line)?;
                    self.pos = after;
                    self.need -= 1;
                    if n > 0 {
                        let per = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
                        self.need += n as u64 * per;
                    }
                    // An attribute map is followed by the value it describes.
                    if kind == b'|' {
                        self.need += 1;
                    }
                }
                _ => return Err(ProtocolError::new("invalid reply type byte")),
            }
        }
        Ok(Some(std::mem::take(&mut self.pos)))
    }
}

fn length(line: &[u8]) -> Result<i64, ProtocolError> {
    match parse_i64(line) {
        Some(n) if (-1..=MAX_AGGREGATE).contains(&n) => Ok(n),
        _ => Err(ProtocolError::new("invalid reply length")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Option<usize> {
        ReplyScanner::new().scan(bytes).unwrap()
    }

    #[test]
    fn simple_types() {
        assert_eq!(whole(b"+OK\r\n"), Some(5));
        assert_eq!(whole(b"-ERR x\r\n+OK\r\n"), Some(8));
        assert_eq!(whole(b":12\r\n"), Some(5));
        assert_eq!(whole(b"$-1\r\n"), Some(5));
        assert_eq!(whole(b"*-1\r\n"), Some(5));
        assert_eq!(whole(b"$3\r\nfoo\r\n"), Some(9));
        assert_eq!(whole(b"$3\r\nfo"), None);
        assert_eq!(whole(b"*2\r\n$1\r\na\r\n:1\r\n"), Some(15));
        assert_eq!(whole(b"*2\r\n$1\r\na\r\n"), None);
        assert_eq!(whole(b"%1\r\n+a\r\n:1\r\n"), Some(12));
        assert_eq!(whole(b"_\r\n"), Some(3));
        assert_eq!(whole(b"*0\r\n"), Some(4));
        assert_eq!(whole(b"|1\r\n+k\r\n+v\r\n:5\r\n"), Some(16));
        assert!(ReplyScanner::new().scan(b"?\r\n").is_err());
        assert!(ReplyScanner::new().scan(b"$x\r\n").is_err());
    }

    #[test]
    fn resumes_byte_by_byte() {
        let reply = b"*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n%1\r\n+a\r\n,1.5\r\n";
        let mut scanner = ReplyScanner::new();
        for end in 0..reply.len() {
            assert_eq!(scanner.scan(&reply[..end]).unwrap(), None, "at {end}");
        }
        assert_eq!(scanner.scan(reply).unwrap(), Some(reply.len()));
        // Ready for the next reply.
        assert_eq!(scanner.scan(b"+OK\r\n").unwrap(), Some(5));
    }
}
