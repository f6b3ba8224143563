//! The versioned binary encoding of values in the generic table (and in the journal).
//!
//! ```text
//!  value column = version (1 byte) · payload
//!  string: the bytes as they are
//!  list, set: varint count · (varint len · bytes)*
//!  hash:      varint count · (varint len · field · varint len · value)*
//!  zset:      varint count · (varint len · member · f64 little endian score)*
//! ```
//!
//! The `kind` column says which payload follows, so a reader never guesses. A new version
//! byte is how a later layout would be introduced; readers refuse versions they do not know
//! instead of misreading them.

use cache_store::{HashValue, ListValue, SetValue, Value, ZSet};

/// The encoding version this build writes.
pub const VERSION: u8 = 1;

/// The type of a stored value (the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum Kind {
    String = 0,
    List = 1,
    Hash = 2,
    Set = 3,
    ZSet = 4,
}

impl Kind {
    pub fn from_i16(v: i16) -> Option<Kind> {
        Some(match v {
            0 => Kind::String,
            1 => Kind::List,
            2 => Kind::Hash,
            3 => Kind::Set,
            4 => Kind::ZSet,
            _ => return None,
        })
    }

    pub fn of(value: &Value) -> Kind {
        match value.type_name() {
            "list" => Kind::List,
            "hash" => Kind::Hash,
            "set" => Kind::Set,
            "zset" => Kind::ZSet,
            _ => Kind::String,
        }
    }
}

/// A stored value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown value kind {0}")]
    Kind(i16),
    #[error("unknown encoding version {0}")]
    Version(u8),
    #[error("value truncated")]
    Truncated,
    #[error("trailing bytes after value")]
    Trailing,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Encodes a value: its kind and the bytes of the `value` column.
pub fn encode(value: &Value) -> (Kind, Vec<u8>) {
    let kind = Kind::of(value);
    let mut out = Vec::with_capacity(1 + value.approx_bytes().min(1 << 20));
    out.push(VERSION);
    if let Some(bytes) = value.as_bytes() {
        out.extend_from_slice(bytes);
    } else if let Some(list) = value.as_list() {
        put_varint(&mut out, list.len() as u64);
        for item in list {
            put_bytes(&mut out, item);
        }
    } else if let Some(hash) = value.as_hash() {
        put_varint(&mut out, hash.len() as u64);
        for (f, v) in hash {
            put_bytes(&mut out, f);
            put_bytes(&mut out, v);
        }
    } else if let Some(set) = value.as_set() {
        put_varint(&mut out, set.len() as u64);
        for m in set {
            put_bytes(&mut out, m);
        }
    } else if let Some(zset) = value.as_zset() {
        put_varint(&mut out, zset.len() as u64);
        for (m, score) in zset.iter() {
            put_bytes(&mut out, m);
            out.extend_from_slice(&score.to_le_bytes());
        }
    }
    (kind, out)
}

/// Encodes a hash given as (field, value) pairs, for rows of mapped tables.
pub fn encode_hash<'a>(fields: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = vec![VERSION];
    put_varint(&mut out, fields.len() as u64);
    for (f, v) in fields {
        put_bytes(&mut out, f);
        put_bytes(&mut out, v);
    }
    out
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
            self.buf = rest;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Truncated)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        if n > self.buf.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        let (b, rest) = self.buf.split_at(n as usize);
        self.buf = rest;
        Ok(b)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        if self.buf.len() < 8 {
            return Err(DecodeError::Truncated);
        }
        let (b, rest) = self.buf.split_at(8);
        self.buf = rest;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A count of items each at least `min_item` bytes long: a corrupt count cannot make
    /// us reserve more than the input could hold.
    fn count(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > (self.buf.len() / min_item.max(1)) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }
}

/// Decodes the `value` column of a row of `kind`.
///
/// # Errors
/// An unknown kind or version, or bytes that do not form a whole value.
pub fn decode(kind: i16, bytes: &[u8]) -> Result<Value, DecodeError> {
    let kind = Kind::from_i16(kind).ok_or(DecodeError::Kind(kind))?;
    let (&version, payload) = bytes.split_first().ok_or(DecodeError::Truncated)?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let mut r = Reader { buf: payload };
    let value = match kind {
        Kind::String => return Ok(Value::string(payload)),
        Kind::List => {
            let n = r.count(1)?;
            let mut list = ListValue::with_capacity(n);
            for _ in 0..n {
                list.push_back(r.bytes()?.to_vec());
            }
            Value::from_list(list)
        }
        Kind::Hash => {
            let n = r.count(2)?;
            let mut hash = HashValue::with_capacity_and_hasher(n, Default::default());
            for _ in 0..n {
                let f = r.bytes()?;
                let v = r.bytes()?;
                hash.insert(f.into(), v.to_vec());
            }
            Value::from_hash(hash)
        }
        Kind::Set => {
            let n = r.count(1)?;
            let mut set = SetValue::with_capacity_and_hasher(n, Default::default());
            for _ in 0..n {
                set.insert(r.bytes()?.into());
            }
            Value::from_set(set)
        }
        Kind::ZSet => {
            let n = r.count(9)?;
            let mut zset = ZSet::default();
            for _ in 0..n {
                let m = r.bytes()?;
                let score = r.f64()?;
                zset.insert(m, score);
            }
            Value::from_zset(zset)
        }
    };
    if !r.buf.is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(value)
}

/// A hash field and its value.
pub type Field = (Vec<u8>, Vec<u8>);

/// The fields of an encoded hash, for writing mapped tables.
///
/// # Errors
/// As [`decode`].
pub fn hash_fields(bytes: &[u8]) -> Result<Vec<Field>, DecodeError> {
    let value = decode(Kind::Hash as i16, bytes)?;
    Ok(value
        .as_hash()
        .map(|h| h.iter().map(|(f, v)| (f.to_vec(), v.clone())).collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..40)
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            bytes().prop_map(Value::string),
            proptest::collection::vec(bytes(), 1..20)
                .prop_map(|l| Value::from_list(l.into_iter().collect())),
            proptest::collection::vec((bytes(), bytes()), 1..20).prop_map(|pairs| {
                let mut h = HashValue::default();
                for (f, v) in pairs {
                    h.insert(f.into(), v);
                }
                Value::from_hash(h)
            }),
            proptest::collection::vec(bytes(), 1..20).prop_map(|ms| {
                let mut s = SetValue::default();
                for m in ms {
                    s.insert(m.into());
                }
                Value::from_set(s)
            }),
            proptest::collection::vec((bytes(), -1e9f64..1e9), 1..20).prop_map(|ms| {
                let mut z = ZSet::default();
                for (m, s) in ms {
                    z.insert(&m, s);
                }
                Value::from_zset(z)
            }),
        ]
    }

    /// Zsets have no structural equality (tree arenas differ): compare what they hold.
    fn same(a: &Value, b: &Value) -> bool {
        match (a.as_zset(), b.as_zset()) {
            (Some(x), Some(y)) => x.iter().eq(y.iter()),
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn round_trip(v in value()) {
            let (kind, bytes) = encode(&v);
            prop_assert_eq!(bytes[0], VERSION);
            let back = decode(kind as i16, &bytes).unwrap();
            prop_assert!(same(&v, &back));
            prop_assert_eq!(Kind::of(&back), kind);
        }

        /// Any truncation of a collection is refused, never misread or a panic.
        #[test]
        fn truncation_is_detected(v in value(), cut in 0usize..1000) {
            let (kind, bytes) = encode(&v);
            if kind != Kind::String && cut < bytes.len() {
                prop_assert!(decode(kind as i16, &bytes[..cut]).is_err());
            }
        }

        /// Garbage never panics.
        #[test]
        fn garbage_does_not_panic(kind in 0i16..6, bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(kind, &bytes);
        }
    }

    #[test]
    fn refuses_unknown_version_and_kind() {
        assert_eq!(decode(0, &[9, b'x']), Err(DecodeError::Version(9)));
        assert_eq!(decode(7, &[1]), Err(DecodeError::Kind(7)));
        assert_eq!(decode(0, &[]), Err(DecodeError::Truncated));
        assert_eq!(decode(1, &[1, 1, 0, 0]), Err(DecodeError::Trailing));
    }

    #[test]
    fn string_layout_is_version_then_bytes() {
        assert_eq!(
            encode(&Value::string(&b"abc"[..])),
            (Kind::String, b"\x01abc".to_vec())
        );
    }
}
