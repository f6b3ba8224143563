//! Values and entries.

use std::collections::VecDeque;

use indexmap::{IndexMap, IndexSet};

use crate::zset::ZSet;

/// A key as stored: a boxed slice, 16 bytes in the table plus the bytes themselves.
pub type Key = Box<[u8]>;

pub type Hasher = hashbrown::DefaultHashBuilder;
pub type HashValue = IndexMap<Box<[u8]>, Vec<u8>, Hasher>;
pub type SetValue = IndexSet<Box<[u8]>, Hasher>;
pub type ListValue = VecDeque<Vec<u8>>;

/// Redis's thresholds for its compact encodings, reported by OBJECT ENCODING.
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;
const INTSET_MAX_ENTRIES: usize = 512;

/// The value of a key. Collections are boxed so an entry stays small for strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
    List(Box<ListValue>),
    Hash(Box<HashValue>),
    Set(Box<SetValue>),
    ZSet(Box<ZSet>),
}

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// Approximate heap bytes held, for eviction accounting (collections are sampled, not
    /// walked, so this stays O(1)-ish).
    pub fn approx_bytes(&self) -> usize {
        const PER_ITEM: usize = 48;
        match self {
            Value::Str(s) => s.capacity(),
            Value::List(l) => {
                l.iter().take(8).map(|v| v.len() + PER_ITEM).sum::<usize>() * l.len().max(1)
                    / l.len().clamp(1, 8)
            }
            Value::Hash(h) => {
                h.iter()
                    .take(8)
                    .map(|(k, v)| k.len() + v.len() + PER_ITEM)
                    .sum::<usize>()
                    * h.len().max(1)
                    / h.len().clamp(1, 8)
            }
            Value::Set(s) => {
                s.iter().take(8).map(|m| m.len() + PER_ITEM).sum::<usize>() * s.len().max(1)
                    / s.len().clamp(1, 8)
            }
            Value::ZSet(z) => {
                z.scores
                    .keys()
                    .take(8)
                    .map(|m| 2 * m.len() + 2 * PER_ITEM)
                    .sum::<usize>()
                    * z.len().max(1)
                    / z.len().clamp(1, 8)
            }
        }
    }

    /// Whether a collection has become empty (and its key must go, as in Redis).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    /// The name `OBJECT ENCODING` reports, following Redis's thresholds.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if s.len() <= 20 && cache_int(s) {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::List(_) => "quicklist",
            Value::Hash(h) => {
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
            Value::Set(s) => {
                if s.len() <= INTSET_MAX_ENTRIES && s.iter().all(|m| cache_int(m)) {
                    "intset"
                } else {
                    "hashtable"
                }
            }
            Value::ZSet(z) => {
                if z.len() <= LISTPACK_MAX_ENTRIES
                    && z.scores.keys().all(|m| m.len() <= LISTPACK_MAX_VALUE)
                {
                    "listpack"
                } else {
                    "skiplist"
                }
            }
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
}

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry {
            value,
            expires_at: 0,
            access: 0,
        }
    }

    pub fn with_expiry(value: Value, expires_at: u64) -> Self {
        Entry {
            value,
            expires_at,
            access: 0,
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now_ms
    }
}
