//! The versioned binary encoding of values in the generic table (and in the journal).
//!
//! ```text
//!  value column = version (1 byte) · payload
//!  string: the bytes as they are
//!  list, set: varint count · (varint len · bytes)*
//!  hash:      varint count · (varint len · field · varint len · value)*
//!  zset:      varint count · (varint len · member · f64 little endian score)*
//!  stream:    id last · id first · id max-deleted · varint entries-added
//!             · varint count · (id · varint pairs · (bytes field · bytes value)*)*
//!             · varint groups · (bytes name · id last · varint entries-read+1
//!               · varint pending · (id · bytes consumer · varint time · varint count)*
//!               · varint consumers · (bytes name · varint seen-time · varint n · id*)*)*
//!  (id = varint ms · varint seq)
//! ```
//!
//! The `kind` column says which payload follows, so a reader never guesses. A new version
//! byte is how a later layout would be introduced; readers refuse versions they do not know
//! instead of misreading them.

use cache_store::stream::{Consumer, Group, Nack};
use cache_store::{HashValue, ListValue, SetValue, Stream, StreamId, Value, ZSet};

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
    Stream = 5,
}

impl Kind {
    pub fn from_i16(v: i16) -> Option<Kind> {
        Some(match v {
            0 => Kind::String,
            1 => Kind::List,
            2 => Kind::Hash,
            3 => Kind::Set,
            4 => Kind::ZSet,
            5 => Kind::Stream,
            _ => return None,
        })
    }

    pub fn of(value: &Value) -> Kind {
        match value.type_name() {
            "list" => Kind::List,
            "hash" => Kind::Hash,
            "set" => Kind::Set,
            "zset" => Kind::ZSet,
            "stream" => Kind::Stream,
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
    } else if let Some(stream) = value.as_stream() {
        encode_stream(&mut out, stream);
    }
    (kind, out)
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_varint(out, id.ms);
    put_varint(out, id.seq);
}

fn encode_stream(out: &mut Vec<u8>, s: &Stream) {
    put_id(out, s.last_id);
    put_id(out, s.first_id);
    put_id(out, s.max_deleted_id);
    put_varint(out, s.entries_added);
    put_varint(out, s.len());
    s.for_range(StreamId::MIN, StreamId::MAX, false, |id, entry| {
        put_id(out, id);
        put_varint(out, entry.len() as u64);
        for (f, v) in entry.pairs() {
            put_bytes(out, f);
            put_bytes(out, v);
        }
        true
    });
    put_varint(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_bytes(out, name);
        put_id(out, g.last_id);
        put_varint(out, (g.entries_read + 1).max(0) as u64);
        put_varint(out, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            put_id(out, *id);
            put_bytes(out, &nack.consumer);
            put_varint(out, nack.delivery_time);
            put_varint(out, nack.delivery_count);
        }
        put_varint(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_bytes(out, cname);
            put_varint(out, c.seen_time);
            put_varint(out, c.pel.len() as u64);
            for id in &c.pel {
                put_id(out, *id);
            }
        }
    }
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

    fn id(&mut self) -> Result<StreamId, DecodeError> {
        Ok(StreamId::new(self.varint()?, self.varint()?))
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
        Kind::Stream => Value::from_stream(Box::new(decode_stream(&mut r)?)),
    };
    if !r.buf.is_empty() {
        return Err(DecodeError::Trailing);
    }
    Ok(value)
}

/// Block limits for decoded streams: Redis's defaults (the node's settings are not known
/// here; they only shape blocks, never contents).
const NODE_MAX_ENTRIES: u64 = 100;
const NODE_MAX_BYTES: u64 = 4096;

fn decode_stream(r: &mut Reader<'_>) -> Result<Stream, DecodeError> {
    let last_id = r.id()?;
    let first_id = r.id()?;
    let max_deleted_id = r.id()?;
    let entries_added = r.varint()?;
    let mut s = Stream::default();
    let n = r.count(3)?;
    for _ in 0..n {
        let id = r.id()?;
        let pairs = r.count(2)?;
        let mut fields = Vec::with_capacity(pairs);
        for _ in 0..pairs {
            fields.push((r.bytes()?, r.bytes()?));
        }
        if id <= s.last_id && !s.is_empty() {
            return Err(DecodeError::Truncated);
        }
        s.append(id, &fields, NODE_MAX_ENTRIES, NODE_MAX_BYTES);
    }
    s.last_id = last_id;
    s.first_id = first_id;
    s.max_deleted_id = max_deleted_id;
    s.entries_added = entries_added;
    let groups = r.count(5)?;
    for _ in 0..groups {
        let name = r.bytes()?;
        let mut g = Group::new(r.id()?, r.varint()? as i64 - 1);
        let pending = r.count(5)?;
        for _ in 0..pending {
            let id = r.id()?;
            let consumer = r.bytes()?.into();
            let delivery_time = r.varint()?;
            let delivery_count = r.varint()?;
            g.pel.insert(
                id,
                Nack {
                    consumer,
                    delivery_time,
                    delivery_count,
                },
            );
        }
        let consumers = r.count(3)?;
        for _ in 0..consumers {
            let cname = r.bytes()?;
            let seen_time = r.varint()?;
            let ids = r.count(2)?;
            let mut c = Consumer {
                seen_time,
                pel: Default::default(),
            };
            for _ in 0..ids {
                c.pel.insert(r.id()?);
            }
            g.consumers.insert(cname.into(), c);
        }
        s.groups.insert(name.into(), g);
    }
    Ok(s)
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
            proptest::collection::vec(
                (1u64..5, proptest::collection::vec((bytes(), bytes()), 1..4)),
                1..30
            )
            .prop_map(|entries| {
                let mut s = Stream::default();
                let mut ms = 0;
                for (step, fields) in entries {
                    ms += step;
                    let pairs: Vec<(&[u8], &[u8])> =
                        fields.iter().map(|(f, v)| (&f[..], &v[..])).collect();
                    s.append(StreamId::new(ms, 0), &pairs, 3, 4096);
                }
                s.delete(&[StreamId::new(ms, 0)]);
                let mut g = Group::new(StreamId::new(ms, 0), 2);
                g.consumers
                    .insert(b"c".to_vec().into(), Consumer::default());
                g.assign(StreamId::new(1, 0), b"c", 77).delivery_count = 3;
                s.groups.insert(b"g".to_vec().into(), g);
                Value::from_stream(Box::new(s))
            }),
        ]
    }

    /// Zsets have no structural equality (tree arenas differ): compare what they hold.
    fn same(a: &Value, b: &Value) -> bool {
        match (a.as_zset(), b.as_zset(), a.as_stream(), b.as_stream()) {
            (Some(x), Some(y), _, _) => x.iter().eq(y.iter()),
            // Streams: the same entries and metadata (block boundaries may differ).
            (_, _, Some(x), Some(y)) => encode(a).1 == encode(b).1 && x.groups == y.groups,
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
