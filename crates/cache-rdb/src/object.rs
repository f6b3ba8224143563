//! One value in RDB form (what follows a key in a file, and what a DUMP payload holds): a
//! type byte, then the type's encoding. Loads every encoding Redis 7.0 loads; saves what
//! Redis 7.0 saves under its default thresholds (listpacks and intsets when small).

use cache_store::value::Complex;
use cache_store::{HashValue, Key, ListValue, SetValue, Value, ZSet};

use crate::encoding::{
    canonical_int, format_double, read_len, read_string, read_text_double, write_blob, write_len,
    write_string,
};
use crate::input::Input;
use crate::listpack::{self, Item};
use crate::{compact, stream, Error};

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_MODULE: u8 = 6;
pub const TYPE_MODULE_2: u8 = 7;
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;

/// Whether `t` starts a value (as opposed to a file opcode).
pub fn is_object_type(t: u8) -> bool {
    t <= 7 || (9..=19).contains(&t)
}

/// Redis 7.0's default thresholds for the compact encodings.
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;
const INTSET_MAX_ENTRIES: usize = 512;
/// `list-max-listpack-size -2`: list nodes of up to 8 KiB.
const LIST_NODE_BYTES: usize = 8192;

const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;

/// Reads a value of type `t`.
///
/// # Errors
/// [`Error::EmptyKey`] for an empty collection (Redis skips those when loading a file);
/// other variants when the bytes are not a valid value.
pub fn read_value(t: u8, input: &mut Input<'_>) -> Result<Value, Error> {
    let value = match t {
        TYPE_STRING => Value::string(read_string(input)?.into_owned()),
        TYPE_LIST => {
            let n = {
                let n = read_len(input)?;
                input.check_count(n, 1)?
            };
            let mut list = ListValue::with_capacity(n);
            for _ in 0..n {
                list.push_back(read_string(input)?.into_owned());
            }
            Value::from_list(list)
        }
        TYPE_SET => {
            let n = {
                let n = read_len(input)?;
                input.check_count(n, 1)?
            };
            let mut set = SetValue::with_capacity_and_hasher(n, Default::default());
            for _ in 0..n {
                if !set.insert(Key::new(&read_string(input)?)) {
                    return Err(Error::BadFormat("duplicate set member"));
                }
            }
            Value::from_set(set)
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = {
                let n = read_len(input)?;
                input.check_count(n, 2)?
            };
            let mut z = ZSet::default();
            for _ in 0..n {
                let member = read_string(input)?;
                let score = if t == TYPE_ZSET_2 {
                    f64::from_le_bytes(input.array()?)
                } else {
                    read_text_double(input)?
                };
                if score.is_nan() {
                    return Err(Error::BadFormat("NaN score"));
                }
                if !z.insert(&member, score) {
                    return Err(Error::BadFormat("duplicate sorted set member"));
                }
            }
            Value::from_zset(z)
        }
        TYPE_HASH => {
            let n = {
                let n = read_len(input)?;
                input.check_count(n, 2)?
            };
            let mut h = HashValue::with_capacity_and_hasher(n, Default::default());
            for _ in 0..n {
                let field = read_string(input)?;
                let value = read_string(input)?.into_owned();
                if h.insert(Key::new(&field), value).is_some() {
                    return Err(Error::BadFormat("duplicate hash field"));
                }
            }
            Value::from_hash(h)
        }
        TYPE_HASH_ZIPMAP => {
            let blob = read_string(input)?;
            pairs_to_hash(compact::zipmap(&blob)?.into_iter())?
        }
        TYPE_LIST_ZIPLIST => {
            let blob = read_string(input)?;
            let items = compact::ziplist(&blob)?;
            Value::from_list(items.into_iter().map(|i| i.bytes().into_owned()).collect())
        }
        TYPE_SET_INTSET => {
            let blob = read_string(input)?;
            let members = compact::intset(&blob)?;
            let mut set = SetValue::with_capacity_and_hasher(members.len(), Default::default());
            for m in members {
                if !set.insert(Key::new(m.to_string().as_bytes())) {
                    return Err(Error::BadFormat("duplicate intset member"));
                }
            }
            Value::from_set(set)
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = read_string(input)?;
            let items = if t == TYPE_ZSET_ZIPLIST {
                compact::ziplist(&blob)?
            } else {
                listpack::iter(&blob)?.collect::<Result<Vec<_>, _>>()?
            };
            items_to_zset(&items)?
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = read_string(input)?;
            let items = if t == TYPE_HASH_ZIPLIST {
                compact::ziplist(&blob)?
            } else {
                listpack::iter(&blob)?.collect::<Result<Vec<_>, _>>()?
            };
            if !items.len().is_multiple_of(2) {
                return Err(Error::BadFormat("odd number of hash elements"));
            }
            pairs_to_hash(items.chunks_exact(2).map(|p| (p[0].bytes(), p[1].bytes())))?
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = {
                let n = read_len(input)?;
                input.check_count(n, 1)?
            };
            let mut list = ListValue::new();
            for _ in 0..nodes {
                let container = if t == TYPE_LIST_QUICKLIST_2 {
                    read_len(input)?
                } else {
                    QUICKLIST_NODE_PACKED
                };
                let blob = read_string(input)?;
                match container {
                    QUICKLIST_NODE_PLAIN => list.push_back(blob.into_owned()),
                    QUICKLIST_NODE_PACKED if t == TYPE_LIST_QUICKLIST => {
                        for i in compact::ziplist(&blob)? {
                            list.push_back(i.bytes().into_owned());
                        }
                    }
                    QUICKLIST_NODE_PACKED => {
                        for i in listpack::iter(&blob)? {
                            list.push_back(i?.bytes().into_owned());
                        }
                    }
                    _ => return Err(Error::BadFormat("unknown quicklist node container")),
                }
            }
            Value::from_list(list)
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 => {
            return Ok(Value::from_stream(Box::new(stream::read(
                input,
                t == TYPE_STREAM_LISTPACKS_2,
            )?)))
        }
        TYPE_MODULE | TYPE_MODULE_2 => return Err(Error::Unsupported("module values")),
        _ => return Err(Error::BadFormat("unknown value type")),
    };
    if value.is_empty_collection() {
        return Err(Error::EmptyKey);
    }
    Ok(value)
}

fn pairs_to_hash<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, [u8]>, std::borrow::Cow<'a, [u8]>)>,
) -> Result<Value, Error> {
    let mut h = HashValue::default();
    for (f, v) in pairs {
        if h.insert(Key::new(&f), v.into_owned()).is_some() {
            return Err(Error::BadFormat("duplicate hash field"));
        }
    }
    Ok(Value::from_hash(h))
}

fn items_to_zset(items: &[Item<'_>]) -> Result<Value, Error> {
    if !items.len().is_multiple_of(2) {
        return Err(Error::BadFormat("odd number of sorted set elements"));
    }
    let mut z = ZSet::default();
    for p in items.chunks_exact(2) {
        let score = match p[1] {
            Item::Int(v) => v as f64,
            Item::Str(s) => crate::encoding::parse_double(s)?,
        };
        if score.is_nan() {
            return Err(Error::BadFormat("NaN score"));
        }
        if !z.insert(&p[0].bytes(), score) {
            return Err(Error::BadFormat("duplicate sorted set member"));
        }
    }
    Ok(Value::from_zset(z))
}

/// The type byte Redis 7.0 would write for `value`.
pub fn value_type(value: &Value) -> u8 {
    match value {
        Value::Str(_) => TYPE_STRING,
        Value::Boxed(b) => match &**b {
            Complex::Raw(_) => TYPE_STRING,
            Complex::List(_) => TYPE_LIST_QUICKLIST_2,
            Complex::Hash(h) => {
                if hash_is_small(h) {
                    TYPE_HASH_LISTPACK
                } else {
                    TYPE_HASH
                }
            }
            Complex::Set(s) => {
                if set_is_intset(s) {
                    TYPE_SET_INTSET
                } else {
                    TYPE_SET
                }
            }
            Complex::ZSet(z) => {
                if zset_is_small(z) {
                    TYPE_ZSET_LISTPACK
                } else {
                    TYPE_ZSET_2
                }
            }
            Complex::Stream(_) => TYPE_STREAM_LISTPACKS_2,
        },
    }
}

fn hash_is_small(h: &HashValue) -> bool {
    h.len() <= LISTPACK_MAX_ENTRIES
        && h.iter()
            .all(|(k, v)| k.len() <= LISTPACK_MAX_VALUE && v.len() <= LISTPACK_MAX_VALUE)
}

fn set_is_intset(s: &SetValue) -> bool {
    s.len() <= INTSET_MAX_ENTRIES && s.iter().all(|m| canonical_int(m).is_some())
}

fn zset_is_small(z: &ZSet) -> bool {
    z.len() <= LISTPACK_MAX_ENTRIES && z.scores.keys().all(|m| m.len() <= LISTPACK_MAX_VALUE)
}

/// Writes `value` (without its type byte, which [`value_type`] gives).
pub fn write_value(out: &mut Vec<u8>, value: &Value, compress: bool) {
    match value {
        Value::Str(s) => write_string(out, s, compress),
        Value::Boxed(b) => match &**b {
            Complex::Raw(s) => write_string(out, s, compress),
            Complex::List(l) => write_list(out, l, compress),
            Complex::Hash(h) => {
                if hash_is_small(h) {
                    let mut lp = listpack::Writer::new();
                    for (k, v) in h {
                        lp.push(k);
                        lp.push(v);
                    }
                    write_blob(out, &lp.finish(), compress);
                } else {
                    write_len(out, h.len() as u64);
                    for (k, v) in h {
                        write_string(out, k, compress);
                        write_string(out, v, compress);
                    }
                }
            }
            Complex::Set(s) => {
                if set_is_intset(s) {
                    let mut members: Vec<i64> = s.iter().filter_map(|m| canonical_int(m)).collect();
                    write_blob(out, &compact::write_intset(&mut members), compress);
                } else {
                    write_len(out, s.len() as u64);
                    for m in s {
                        write_string(out, m, compress);
                    }
                }
            }
            Complex::ZSet(z) => {
                if zset_is_small(z) {
                    let mut lp = listpack::Writer::new();
                    for (m, score) in z.iter() {
                        lp.push(m);
                        lp.push(format_double(score).as_bytes());
                    }
                    write_blob(out, &lp.finish(), compress);
                } else {
                    write_len(out, z.len() as u64);
                    // Highest first, as Redis writes it, so a load appends at the head.
                    let all: Vec<(&[u8], f64)> = z.iter().collect();
                    for (m, score) in all.into_iter().rev() {
                        write_string(out, m, compress);
                        out.extend_from_slice(&score.to_le_bytes());
                    }
                }
            }
            Complex::Stream(s) => stream::write(out, s, compress),
        },
    }
}

fn write_list(out: &mut Vec<u8>, list: &ListValue, compress: bool) {
    // Nodes of up to 8 KiB, as `list-max-listpack-size -2` makes them.
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut lp = listpack::Writer::new();
    for item in list {
        if lp.count() > 0 && lp.bytes() + item.len() + 11 > LIST_NODE_BYTES {
            nodes.push(std::mem::take(&mut lp).finish());
        }
        lp.push(item);
    }
    if lp.count() > 0 {
        nodes.push(lp.finish());
    }
    write_len(out, nodes.len() as u64);
    for node in nodes {
        write_len(out, QUICKLIST_NODE_PACKED);
        write_blob(out, &node, compress);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &[u8]) -> Value {
        let mut input = Input::new(&bytes[1..]);
        let v = read_value(bytes[0], &mut input).unwrap();
        assert!(input.is_empty());
        v
    }

    fn save(v: &Value) -> Vec<u8> {
        let mut out = vec![value_type(v)];
        write_value(&mut out, v, true);
        out
    }

    #[test]
    fn list_redis_wrote() {
        // DUMP of `RPUSH l a b 7` on Redis 7.0.15, without version and checksum.
        let redis = [
            0x12, 0x01, 0x02, 0x0f, 0x0f, 0x00, 0x00, 0x00, 0x03, 0x00, 0x81, b'a', 0x02, 0x81,
            b'b', 0x02, 0x07, 0x01, 0xff,
        ];
        let v = load(&redis);
        let l: Vec<&[u8]> = v.as_list().unwrap().iter().map(|x| &x[..]).collect();
        assert_eq!(l, [&b"a"[..], b"b", b"7"]);
        assert_eq!(save(&v), redis);
    }

    #[test]
    fn zset_redis_wrote() {
        // DUMP of `ZADD z 1.5 a 2 b` on Redis 7.0.15.
        let redis = [
            0x11, 0x14, 0x14, 0x00, 0x00, 0x00, 0x04, 0x00, 0x81, b'a', 0x02, 0x83, b'1', b'.',
            b'5', 0x04, 0x81, b'b', 0x02, 0x02, 0x01, 0xff,
        ];
        let v = load(&redis);
        assert_eq!(v.as_zset().unwrap().score(b"a"), Some(1.5));
        assert_eq!(v.as_zset().unwrap().score(b"b"), Some(2.0));
        assert_eq!(save(&v), redis);
    }

    #[test]
    fn big_collections_use_the_plain_encodings() {
        let mut h = HashValue::default();
        let mut z = ZSet::default();
        let mut s = SetValue::default();
        for i in 0..300 {
            h.insert(Key::new(format!("f{i}").as_bytes()), vec![b'v'; i]);
            z.insert(format!("m{i}").as_bytes(), i as f64 / 3.0);
            s.insert(Key::new(format!("{i}x").as_bytes()));
        }
        let list: ListValue = (0..3000)
            .map(|i| format!("item-{i}").into_bytes())
            .collect();
        for v in [
            Value::from_hash(h),
            Value::from_zset(z),
            Value::from_set(s),
            Value::from_list(list),
        ] {
            let bytes = save(&v);
            assert!(matches!(
                bytes[0],
                TYPE_HASH | TYPE_ZSET_2 | TYPE_SET | TYPE_LIST_QUICKLIST_2
            ));
            assert_eq!(load(&bytes), v);
        }
    }

    #[test]
    fn empty_and_truncated_values_are_refused() {
        assert!(matches!(
            read_value(TYPE_SET, &mut Input::new(&[0x00])),
            Err(Error::EmptyKey)
        ));
        // A list claiming 2^32 elements in 3 bytes of input.
        assert!(read_value(TYPE_LIST, &mut Input::new(&[0x80, 1, 0, 0, 0, 1, b'a'])).is_err());
        assert!(read_value(TYPE_ZSET_2, &mut Input::new(&[0x01, 0x01, b'a', 0, 0])).is_err());
    }
}
