//! The older compact encodings Redis still loads: ziplists (lists, hashes and sorted sets
//! before 7.0), intsets (small integer sets, still written) and zipmaps (hashes before 2.6).

use std::borrow::Cow;

use crate::listpack::Item;
use crate::Error;

/// The elements of a ziplist:
/// `<zlbytes u32> <zltail u32> <zllen u16> (<prevlen> <encoding> <data>)* <0xFF>`.
pub fn ziplist(data: &[u8]) -> Result<Vec<Item<'_>>, Error> {
    let bad = || Error::BadFormat("ziplist entry");
    if data.len() < 11 {
        return Err(Error::BadFormat("ziplist too short"));
    }
    let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if total != data.len() || data[data.len() - 1] != 0xff {
        return Err(Error::BadFormat("ziplist header or terminator"));
    }
    let d = &data[..data.len() - 1];
    let mut pos = 10;
    let mut out = Vec::new();
    while pos < d.len() {
        // prevlen: one byte, or 0xFE and four more.
        pos += if d[pos] == 0xfe { 5 } else { 1 };
        let b = *d.get(pos).ok_or_else(bad)?;
        let get = |from: usize, n: usize| {
            from.checked_add(n)
                .and_then(|end| d.get(from..end))
                .ok_or_else(bad)
        };
        let int = |n: usize| -> Result<i64, Error> {
            let bytes = get(pos + 1, n)?;
            let mut v: u64 = 0;
            for (i, &x) in bytes.iter().enumerate() {
                v |= u64::from(x) << (8 * i);
            }
            let shift = 64 - 8 * n as u32;
            Ok(((v << shift) as i64) >> shift)
        };
        let (item, size) = match b >> 6 {
            0 => {
                let n = (b & 0x3f) as usize;
                (Item::Str(get(pos + 1, n)?), 1 + n)
            }
            1 => {
                let n = (((b & 0x3f) as usize) << 8)
                    | *get(pos + 1, 1)?.first().ok_or_else(bad)? as usize;
                (Item::Str(get(pos + 2, n)?), 2 + n)
            }
            2 => {
                let l = get(pos + 1, 4)?;
                let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                (Item::Str(get(pos + 5, n)?), 5 + n)
            }
            _ => match b {
                0xc0 => (Item::Int(int(2)?), 3),
                0xd0 => (Item::Int(int(4)?), 5),
                0xe0 => (Item::Int(int(8)?), 9),
                0xf0 => (Item::Int(int(3)?), 4),
                0xfe => (Item::Int(int(1)?), 2),
                0xf1..=0xfd => (Item::Int(i64::from(b & 0x0f) - 1), 1),
                _ => return Err(bad()),
            },
        };
        pos += size;
        if pos > d.len() {
            return Err(bad());
        }
        out.push(item);
    }
    Ok(out)
}

/// The members of an intset: `<width u32> <count u32> <sorted members, width bytes each>`.
pub fn intset(data: &[u8]) -> Result<Vec<i64>, Error> {
    let bad = Error::BadFormat("intset");
    if data.len() < 8 {
        return Err(bad);
    }
    let width = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let count = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width) != Some(data.len() - 8) {
        return Err(bad);
    }
    Ok(data[8..]
        .chunks_exact(width)
        .map(|c| match width {
            2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
            4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// An intset of `members` (sorted here), in the narrowest width that holds them all.
pub fn write_intset(members: &mut [i64]) -> Vec<u8> {
    members.sort_unstable();
    let width: usize = if members.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if members.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + members.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for v in members.iter() {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// A field and its value.
pub type Pair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// The field-value pairs of a zipmap: `<count u8> (<len> <field> <len> <free u8> <value>
/// <free bytes>)* <0xFF>`, a length being one byte under 254 or 254 and four bytes.
pub fn zipmap(data: &[u8]) -> Result<Vec<Pair<'_>>, Error> {
    let bad = || Error::BadFormat("zipmap");
    let mut pos = 1;
    let mut out = Vec::new();
    let len = |pos: &mut usize| -> Result<Option<usize>, Error> {
        let b = *data.get(*pos).ok_or_else(bad)?;
        *pos += 1;
        match b {
            255 => Ok(None),
            254 => {
                let l = data.get(*pos..*pos + 4).ok_or_else(bad)?;
                *pos += 4;
                Ok(Some(u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize))
            }
            n => Ok(Some(n as usize)),
        }
    };
    while let Some(klen) = len(&mut pos)? {
        let key = data
            .get(pos..pos.checked_add(klen).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        pos += klen;
        let vlen = len(&mut pos)?.ok_or_else(bad)?;
        let free = *data.get(pos).ok_or_else(bad)? as usize;
        pos += 1;
        let value = data
            .get(pos..pos.checked_add(vlen).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        pos += vlen + free;
        out.push((Cow::Borrowed(key), Cow::Borrowed(value)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_redis_wrote() {
        // The intset in Redis 7.0.15's DUMP of `SADD s 1 2 3`.
        let redis = [2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 0, 3, 0];
        assert_eq!(intset(&redis).unwrap(), [1, 2, 3]);
        assert_eq!(write_intset(&mut [3, 1, 2]), redis);
        assert!(intset(&redis[..13]).is_err());
    }

    #[test]
    fn intset_widens_for_big_members() {
        let mut m = [1, 1 << 40, -5];
        let bytes = write_intset(&mut m);
        assert_eq!(bytes[0], 8);
        assert_eq!(intset(&bytes).unwrap(), [-5, 1, 1 << 40]);
    }

    #[test]
    fn ziplist_of_every_encoding() {
        // A ziplist as Redis 6 wrote `RPUSH l a 5 300 70000 <70-byte string>`, built by hand
        // from ziplist.c's layout.
        let long = [b'q'; 70];
        let mut entries: Vec<u8> = Vec::new();
        entries.extend_from_slice(&[0x00, 0x01, b'a']);
        entries.extend_from_slice(&[0x03, 0xf6]); // 5 as an immediate (0xf1 + 5)
        entries.extend_from_slice(&[0x02, 0xc0, 0x2c, 0x01]); // int16 300
        entries.extend_from_slice(&[0x04, 0xf0, 0x70, 0x11, 0x01]); // int24 70000
        entries.extend_from_slice(&[0x05, 0x40, 70]);
        entries.extend_from_slice(&long);
        let total = 10 + entries.len() + 1;
        let mut zl = Vec::new();
        zl.extend_from_slice(&(total as u32).to_le_bytes());
        zl.extend_from_slice(&[0, 0, 0, 0, 5, 0]);
        zl.extend_from_slice(&entries);
        zl.push(0xff);
        let items = ziplist(&zl).unwrap();
        assert_eq!(
            items,
            [
                Item::Str(b"a"),
                Item::Int(5),
                Item::Int(300),
                Item::Int(70000),
                Item::Str(&long)
            ]
        );
        zl[total - 2] = 0xff;
        assert!(ziplist(&zl[..total - 1]).is_err());
    }

    #[test]
    fn zipmap_pairs() {
        let zm = [
            2, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 3, b'z', 0, 0, 0, 0xff,
        ];
        let pairs = zipmap(&zm).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(&*pairs[0].1, b"xy");
        assert_eq!(&*pairs[1].0, b"b");
        assert_eq!(&*pairs[1].1, b"z");
        assert!(zipmap(&zm[..6]).is_err());
    }
}
