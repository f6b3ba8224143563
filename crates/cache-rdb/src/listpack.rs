//! Listpacks (Redis 7's compact sequence: hashes, sorted sets, list nodes, stream nodes):
//!
//! ```text
//! <total bytes u32 LE> <count u16 LE> <entry>* <0xFF>
//! entry = <encoding + data> <backlen: size of encoding + data, 1 to 5 bytes>
//! ```
//!
//! Strings that are integers written canonically are stored as integers, as Redis does.

use std::borrow::Cow;

use crate::encoding::canonical_int;
use crate::Error;

const HEADER: usize = 6;
const EOF: u8 = 0xff;

/// One listpack element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl<'a> Item<'a> {
    pub fn bytes(self) -> Cow<'a, [u8]> {
        match self {
            Item::Str(s) => Cow::Borrowed(s),
            Item::Int(v) => Cow::Owned(v.to_string().into_bytes()),
        }
    }

    /// The element as an integer (stream metadata is stored as integers).
    pub fn int(self) -> Result<i64, Error> {
        match self {
            Item::Int(v) => Ok(v),
            Item::Str(s) => canonical_int(s).ok_or(Error::BadFormat("integer expected")),
        }
    }
}

/// The elements of a listpack, checked as they are read.
pub struct Iter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

/// Checks the header of a listpack and returns an iterator over its elements.
pub fn iter(data: &[u8]) -> Result<Iter<'_>, Error> {
    if data.len() < HEADER + 1 {
        return Err(Error::BadFormat("listpack too short"));
    }
    let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if total != data.len() || data[data.len() - 1] != EOF {
        return Err(Error::BadFormat("listpack header or terminator"));
    }
    Ok(Iter {
        data: &data[..data.len() - 1],
        pos: HEADER,
        done: false,
    })
}

/// The number of elements, counting when the header says "too many to count".
pub fn len(data: &[u8]) -> Result<usize, Error> {
    let mut n = 0;
    for item in iter(data)? {
        item?;
        n += 1;
    }
    Ok(n)
}

fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

impl<'a> Iter<'a> {
    fn next_item(&mut self) -> Result<Option<Item<'a>>, Error> {
        let bad = || Error::BadFormat("listpack entry");
        let d = self.data;
        let start = self.pos;
        let Some(&b) = d.get(start) else {
            return Ok(None);
        };
        let byte = |i: usize| d.get(start + i).copied().ok_or_else(bad);
        let int_le = |n: usize| -> Result<i64, Error> {
            let bytes = d.get(start + 1..start + 1 + n).ok_or_else(bad)?;
            let mut v: u64 = 0;
            for (i, &x) in bytes.iter().enumerate() {
                v |= u64::from(x) << (8 * i);
            }
            let shift = 64 - 8 * n as u32;
            Ok(((v << shift) as i64) >> shift)
        };
        let (item, size) = if b & 0x80 == 0 {
            (Item::Int(i64::from(b & 0x7f)), 1)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            (
                Item::Str(d.get(start + 1..start + 1 + n).ok_or_else(bad)?),
                1 + n,
            )
        } else if b & 0xe0 == 0xc0 {
            let u = (i64::from(b & 0x1f) << 8) | i64::from(byte(1)?);
            (Item::Int(if u >= 1 << 12 { u - (1 << 13) } else { u }), 2)
        } else if b & 0xf0 == 0xe0 {
            let n = (((b & 0x0f) as usize) << 8) | byte(1)? as usize;
            (
                Item::Str(d.get(start + 2..start + 2 + n).ok_or_else(bad)?),
                2 + n,
            )
        } else {
            match b {
                0xf0 => {
                    let n = u32::from_le_bytes([byte(1)?, byte(2)?, byte(3)?, byte(4)?]) as usize;
                    let end = (start + 5).checked_add(n).ok_or_else(bad)?;
                    (Item::Str(d.get(start + 5..end).ok_or_else(bad)?), 5 + n)
                }
                0xf1 => (Item::Int(int_le(2)?), 3),
                0xf2 => (Item::Int(int_le(3)?), 4),
                0xf3 => (Item::Int(int_le(4)?), 5),
                0xf4 => (Item::Int(int_le(8)?), 9),
                _ => return Err(bad()),
            }
        };
        let next = start + size + backlen_size(size);
        if next > d.len() {
            return Err(bad());
        }
        self.pos = next;
        Ok(Some(item))
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Item<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_item().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

/// Builds a listpack.
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            buf: vec![0; HEADER],
            count: 0,
        }
    }

    /// Bytes so far, header included.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends a string, as an integer when it is one written canonically.
    pub fn push(&mut self, s: &[u8]) {
        match canonical_int(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.finish_entry(start);
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else {
            let (tag, n) = if i16::try_from(v).is_ok() {
                (0xf1, 2)
            } else if (-(1 << 23)..1 << 23).contains(&v) {
                (0xf2, 3)
            } else if i32::try_from(v).is_ok() {
                (0xf3, 4)
            } else {
                (0xf4, 8)
            };
            self.buf.push(tag);
            self.buf.extend_from_slice(&v.to_le_bytes()[..n]);
        }
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let l = self.buf.len() - start;
        // The back length: its most significant 7 bits first, every byte but the first
        // flagged, so it can be read from its last byte backwards.
        let size = backlen_size(l);
        for i in (0..size).rev() {
            let part = ((l >> (7 * i)) & 0x7f) as u8;
            self.buf
                .push(if i == size - 1 { part } else { part | 0x80 });
        }
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = if self.count < 65535 {
            self.count
        } else {
            65535
        } as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listpack inside Redis 7.0.15's DUMP of `HSET h f1 v1 f2 123`.
    const REDIS_HASH: &[u8] = &[
        0x15, 0x00, 0x00, 0x00, 0x04, 0x00, 0x82, b'f', b'1', 0x03, 0x82, b'v', b'1', 0x03, 0x82,
        b'f', b'2', 0x03, 0x7b, 0x01, 0xff,
    ];

    #[test]
    fn reads_what_redis_wrote() {
        let items: Vec<_> = iter(REDIS_HASH).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            items,
            [
                Item::Str(b"f1"),
                Item::Str(b"v1"),
                Item::Str(b"f2"),
                Item::Int(123)
            ]
        );
    }

    #[test]
    fn writes_what_redis_writes() {
        let mut w = Writer::new();
        for s in [&b"f1"[..], b"v1", b"f2", b"123"] {
            w.push(s);
        }
        assert_eq!(w.finish(), REDIS_HASH);
    }

    #[test]
    fn every_encoding_round_trips() {
        let ints = [
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -32768,
            32767,
            1 << 20,
            -(1 << 23),
            1 << 30,
            i64::from(i32::MIN),
            1 << 40,
            i64::MIN,
            i64::MAX,
        ];
        let strs = [
            vec![b'x'; 0],
            vec![b'y'; 63],
            vec![b'z'; 64],
            vec![b'w'; 5000],
        ];
        let mut w = Writer::new();
        for v in ints {
            w.push_int(v);
        }
        for s in &strs {
            w.push(s);
        }
        let lp = w.finish();
        let items: Vec<_> = iter(&lp).unwrap().map(Result::unwrap).collect();
        assert_eq!(items.len(), ints.len() + strs.len());
        for (i, v) in ints.iter().enumerate() {
            assert_eq!(items[i], Item::Int(*v));
        }
        for (i, s) in strs.iter().enumerate() {
            assert_eq!(items[ints.len() + i], Item::Str(s));
        }
    }

    #[test]
    fn truncated_entries_are_errors() {
        let mut lp = REDIS_HASH.to_vec();
        // Claim a 60-byte string in the first entry.
        lp[6] = 0x80 | 60;
        assert!(iter(&lp).unwrap().any(|r| r.is_err()));
        assert!(iter(&lp[..10]).is_err());
    }
}
