//! Values and entries.

use std::collections::VecDeque;

use indexmap::{IndexMap, IndexSet};

use crate::stream::Stream;
use crate::zset::ZSet;

pub use crate::key::Key;

pub type Hasher = hashbrown::DefaultHashBuilder;
pub type HashValue = IndexMap<Key, Vec<u8>, Hasher>;
pub type SetValue = IndexSet<Key, Hasher>;
pub type ListValue = VecDeque<Vec<u8>>;

/// Redis's thresholds for its compact encodings, reported by OBJECT ENCODING.
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;
const INTSET_MAX_ENTRIES: usize = 512;

/// The value of a key: 16 bytes, so a table entry stays small. A string written whole is
/// one exact allocation; everything else sits behind one box.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string as written: exactly sized, one allocation (Redis's int and embstr).
    Str(Box<[u8]>),
    /// A grown string or a collection.
    Boxed(Box<Complex>),
}

/// The values that live behind a box.
#[derive(Debug, Clone, PartialEq)]
pub enum Complex {
    /// A string changed in place (APPEND, SETRANGE, SETBIT): room to grow (Redis's raw).
    Raw(Vec<u8>),
    List(ListValue),
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSet),
    Stream(Box<Stream>),
}

/// A borrowed look at a value, for code that handles every kind.
enum View<'a> {
    Str(&'a [u8]),
    Raw(&'a Vec<u8>),
    List(&'a ListValue),
    Hash(&'a HashValue),
    Set(&'a SetValue),
    ZSet(&'a ZSet),
    Stream(&'a Stream),
}

macro_rules! accessors {
    ($($variant:ident, $ty:ty, $new:ident, $from:ident, $get:ident, $get_mut:ident;)*) => {
        impl Value {
            $(
                pub fn $new() -> Value {
                    Value::Boxed(Box::new(Complex::$variant(Default::default())))
                }

                pub fn $from(value: $ty) -> Value {
                    Value::Boxed(Box::new(Complex::$variant(value)))
                }

                pub fn $get(&self) -> Option<&$ty> {
                    match self {
                        Value::Boxed(b) => match &**b {
                            Complex::$variant(v) => Some(v),
                            _ => None,
                        },
                        Value::Str(_) => None,
                    }
                }

                pub fn $get_mut(&mut self) -> Option<&mut $ty> {
                    match self {
                        Value::Boxed(b) => match &mut **b {
                            Complex::$variant(v) => Some(v),
                            _ => None,
                        },
                        Value::Str(_) => None,
                    }
                }
            )*
        }
    };
}

accessors! {
    List, ListValue, new_list, from_list, as_list, as_list_mut;
    Hash, HashValue, new_hash, from_hash, as_hash, as_hash_mut;
    Set, SetValue, new_set, from_set, as_set, as_set_mut;
    ZSet, ZSet, new_zset, from_zset, as_zset, as_zset_mut;
    Stream, Box<Stream>, new_stream, from_stream, as_stream, as_stream_mut;
}

impl Value {
    /// A string value holding `bytes`.
    pub fn string(bytes: impl Into<Box<[u8]>>) -> Value {
        Value::Str(bytes.into())
    }

    /// A growable string (what SETRANGE and SETBIT create).
    pub fn raw_string() -> Value {
        Value::Boxed(Box::new(Complex::Raw(Vec::new())))
    }

    fn view(&self) -> View<'_> {
        match self {
            Value::Str(s) => View::Str(s),
            Value::Boxed(b) => match &**b {
                Complex::Raw(v) => View::Raw(v),
                Complex::List(l) => View::List(l),
                Complex::Hash(h) => View::Hash(h),
                Complex::Set(s) => View::Set(s),
                Complex::ZSet(z) => View::ZSet(z),
                Complex::Stream(s) => View::Stream(s),
            },
        }
    }

    /// The bytes of a string value; None for collections.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.view() {
            View::Str(s) => Some(s),
            View::Raw(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a string value, growable; turns a compact string into a raw one (as
    /// Redis turns embstr into raw on APPEND). None for collections.
    pub fn bytes_mut(&mut self) -> Option<&mut Vec<u8>> {
        if let Value::Str(s) = self {
            let bytes = std::mem::take(s).into_vec();
            *self = Value::Boxed(Box::new(Complex::Raw(bytes)));
        }
        match self {
            Value::Boxed(b) => match &mut **b {
                Complex::Raw(v) => Some(v),
                _ => None,
            },
            Value::Str(_) => None,
        }
    }

    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self.view() {
            View::Str(_) | View::Raw(_) => "string",
            View::List(_) => "list",
            View::Hash(_) => "hash",
            View::Set(_) => "set",
            View::ZSet(_) => "zset",
            View::Stream(_) => "stream",
        }
    }

    /// Approximate heap bytes held, for eviction accounting (collections are sampled, not
    /// walked, so this stays O(1)-ish).
    pub fn approx_bytes(&self) -> usize {
        const PER_ITEM: usize = 48;
        match self.view() {
            View::Str(s) => s.len(),
            View::Raw(v) => v.capacity() + std::mem::size_of::<Vec<u8>>(),
            View::List(l) => {
                l.iter().take(8).map(|v| v.len() + PER_ITEM).sum::<usize>() * l.len().max(1)
                    / l.len().clamp(1, 8)
            }
            View::Hash(h) => {
                h.iter()
                    .take(8)
                    .map(|(k, v)| k.len() + v.len() + PER_ITEM)
                    .sum::<usize>()
                    * h.len().max(1)
                    / h.len().clamp(1, 8)
            }
            View::Set(s) => {
                s.iter().take(8).map(|m| m.len() + PER_ITEM).sum::<usize>() * s.len().max(1)
                    / s.len().clamp(1, 8)
            }
            View::ZSet(z) => {
                z.scores
                    .keys()
                    .take(8)
                    .map(|m| 2 * m.len() + 2 * PER_ITEM)
                    .sum::<usize>()
                    * z.len().max(1)
                    / z.len().clamp(1, 8)
            }
            View::Stream(s) => s.approx_bytes(),
        }
    }

    /// Whether a collection has become empty (and its key must go, as in Redis).
    pub fn is_empty_collection(&self) -> bool {
        match self.view() {
            View::Str(_) | View::Raw(_) => false,
            View::List(l) => l.is_empty(),
            View::Hash(h) => h.is_empty(),
            View::Set(s) => s.is_empty(),
            View::ZSet(z) => z.is_empty(),
            // An empty stream is a value of its own (XADD then XDEL, XGROUP CREATE MKSTREAM).
            View::Stream(_) => false,
        }
    }

    /// The name `OBJECT ENCODING` reports, following Redis's thresholds.
    pub fn encoding(&self) -> &'static str {
        match self.view() {
            View::Str(s) => {
                if s.len() <= 20 && cache_int(s) {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            View::Raw(_) => "raw",
            View::List(_) => "quicklist",
            View::Hash(h) => {
                if h.len() <= LISTPACK_MAX_ENTRIES
                    && h.iter().all(|(k, v)| {
                        k.len() <= LISTPACK_MAX_VALUE && v.len() <= LISTPACK_MAX_VALUE
                    })
                {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
            View::Set(s) => {
                if s.len() <= INTSET_MAX_ENTRIES && s.iter().all(|m| cache_int(m)) {
                    "intset"
                } else {
                    "hashtable"
                }
            }
            View::ZSet(z) => {
                if z.len() <= LISTPACK_MAX_ENTRIES
                    && z.scores.keys().all(|m| m.len() <= LISTPACK_MAX_VALUE)
                {
                    "listpack"
                } else {
                    "skiplist"
                }
            }
            View::Stream(_) => "stream",
        }
    }
}

fn cache_int(s: &[u8]) -> bool {
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|v| v.to_string().as_bytes() == s)
}

/// One key's value and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 means none.
    pub expires_at: u64,
    /// Last access, in seconds of the store's clock (for OBJECT IDLETIME and LRU).
    pub access: u32,
    /// TinyLFU's count of this key and the sketch epoch it was set in (see [`tinylfu`]); it
    /// sits in what was padding, so it costs no memory.
    ///
    /// [`tinylfu`]: crate::tinylfu
    pub freq: u16,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 32);

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry {
            value,
            expires_at: 0,
            access: 0,
            freq: 0,
        }
    }

    pub fn with_expiry(value: Value, expires_at: u64) -> Self {
        Entry {
            value,
            expires_at,
            access: 0,
            freq: 0,
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now_ms
    }
}
