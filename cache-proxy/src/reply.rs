//! Reading the few node replies the proxy must look inside (to merge fan-outs); every other
//! reply is forwarded as the bytes the node sent. The replies the proxy makes itself go
//! through the shared encoder ([`encode`]).

use bytes::{Bytes, BytesMut};
use cache_protocol::{parse_i64, Protocol, ReplyBuf, ReplyScanner};

/// One reply written with cache-protocol's encoder, in RESP3 or RESP2.
pub fn encode(resp3: bool, write: impl FnOnce(&mut ReplyBuf)) -> Bytes {
    let mut out = ReplyBuf {
        buf: BytesMut::new(),
        protocol: if resp3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        },
    };
    write(&mut out);
    out.buf.freeze()
}

pub fn bulk_bytes(data: &[u8]) -> Bytes {
    encode(false, |o| o.bulk(data))
}

pub fn error_bytes(message: &str) -> Bytes {
    encode(false, |o| o.error(message))
}

/// The line after the type byte of a one-line reply.
fn line(reply: &[u8]) -> Option<&[u8]> {
    let end = reply.iter().position(|&b| b == b'\r')?;
    Some(&reply[1..end])
}

pub fn is_error(reply: &[u8]) -> bool {
    reply.first() == Some(&b'-') || reply.first() == Some(&b'!')
}

pub fn error_text(reply: &[u8]) -> String {
    String::from_utf8_lossy(line(reply).unwrap_or(b"")).into_owned()
}

pub fn integer(reply: &[u8]) -> Option<i64> {
    if reply.first() != Some(&b':') {
        return None;
    }
    parse_i64(line(reply)?)
}

/// The whole frames of a top-level array (or set/push) reply's elements, as sub-slices of
/// `reply`. `None` for anything else (a null array included).
pub fn elements(reply: &Bytes) -> Option<Vec<Bytes>> {
    if !matches!(reply.first(), Some(b'*' | b'~' | b'>')) {
        return None;
    }
    let count = parse_i64(line(reply)?)?;
    if count < 0 {
        return None;
    }
    let mut at = reply.iter().position(|&b| b == b'\n')? + 1;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = ReplyScanner::new().scan(&reply[at..]).ok()??;
        out.push(reply.slice(at..at + len));
        at += len;
    }
    Some(out)
}

/// The payload of a bulk string reply.
pub fn bulk(reply: &[u8]) -> Option<&[u8]> {
    if reply.first() != Some(&b'$') {
        return None;
    }
    let len = parse_i64(line(reply)?)?;
    if len < 0 {
        return None;
    }
    let start = reply.iter().position(|&b| b == b'\n')? + 1;
    reply.get(start..start + len as usize)
}

/// A SCAN reply: the next cursor and the keys.
pub fn scan_page(reply: &Bytes) -> Option<(Vec<u8>, Vec<Bytes>)> {
    let parts = elements(reply)?;
    if parts.len() != 2 {
        return None;
    }
    let cursor = bulk(&parts[0])?.to_vec();
    let keys = elements(&parts[1])?
        .iter()
        .map(|k| bulk(k).map(Bytes::copy_from_slice))
        .collect::<Option<Vec<Bytes>>>()?;
    Some((cursor, keys))
}

/// Sums `db0:keys=N,expires=M,...` lines of `INFO keyspace` replies: (keys, expires).
pub fn keyspace_db0(info: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(bulk(info).unwrap_or(info));
    let mut keys = 0;
    let mut expires = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("db0:") {
            for field in rest.split(',') {
                if let Some(v) = field.strip_prefix("keys=") {
                    keys = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = field.strip_prefix("expires=") {
                    expires = v.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    (keys, expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_merged_shapes() {
        assert_eq!(integer(b":42\r\n"), Some(42));
        assert_eq!(integer(b"+OK\r\n"), None);
        assert_eq!(error_text(b"-ERR bad\r\n"), "ERR bad");
        let page = Bytes::from_static(b"*2\r\n$2\r\n17\r\n*2\r\n$1\r\na\r\n$2\r\nbc\r\n");
        let (cursor, keys) = scan_page(&page).unwrap();
        assert_eq!(cursor, b"17");
        assert_eq!(
            keys,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")]
        );
        let arr = Bytes::from_static(b"*3\r\n$-1\r\n:1\r\n*1\r\n+x\r\n");
        let parts = elements(&arr).unwrap();
        assert_eq!(&parts[0][..], b"$-1\r\n");
        assert_eq!(&parts[2][..], b"*1\r\n+x\r\n");
        assert_eq!(
            keyspace_db0(b"$40\r\n# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=0\r\n\r\n"),
            (5, 2)
        );
    }
}
