//! Keys as stored: short ones inline, long ones boxed.
//!
//! Most keys in a cache are short (`user:1000`, `session:…`). Kept inline, a key costs no
//! allocation, and a lookup compares it in the table entry it already loaded instead of
//! following a pointer to another cache line: one memory miss fewer on every command.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Longest key kept inline; with the length byte and the tag, a key is 24 bytes.
pub const INLINE_KEY_MAX: usize = 22;

/// A key's bytes. Derefs to `[u8]`, and hashes, compares and orders exactly like it, so a
/// map keyed by `Key` is looked up with a plain `&[u8]`.
#[derive(Clone)]
pub enum Key {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_MAX],
    },
    Heap(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<Key>() == 24);

impl Key {
    pub fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE_KEY_MAX {
            let mut bytes = [0u8; INLINE_KEY_MAX];
            bytes[..key.len()].copy_from_slice(key);
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(key.into())
        }
    }

    /// The bytes as a box, reusing the heap copy when there is one.
    pub fn into_boxed(self) -> Box<[u8]> {
        match self {
            Key::Heap(b) => b,
            inline => Box::from(&*inline),
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl From<&[u8]> for Key {
    fn from(key: &[u8]) -> Key {
        Key::new(key)
    }
}

impl<const N: usize> From<&[u8; N]> for Key {
    fn from(key: &[u8; N]) -> Key {
        Key::new(key)
    }
}

impl From<Vec<u8>> for Key {
    fn from(key: Vec<u8>) -> Key {
        if key.len() <= INLINE_KEY_MAX {
            Key::new(&key)
        } else {
            Key::Heap(key.into_boxed_slice())
        }
    }
}

impl From<Box<[u8]>> for Key {
    fn from(key: Box<[u8]>) -> Key {
        if key.len() <= INLINE_KEY_MAX {
            Key::new(&key)
        } else {
            Key::Heap(key)
        }
    }
}

impl From<Key> for Box<[u8]> {
    fn from(key: Key) -> Box<[u8]> {
        key.into_boxed()
    }
}

impl From<Key> for Vec<u8> {
    fn from(key: Key) -> Vec<u8> {
        key.into_boxed().into_vec()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl PartialEq<[u8]> for Key {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn inline_and_heap_keys_behave_like_their_bytes() {
        let short = Key::from(&b"user:42"[..]);
        let edge = Key::from(vec![b'x'; INLINE_KEY_MAX]);
        let long = Key::from(vec![b'y'; INLINE_KEY_MAX + 1]);
        assert!(matches!(short, Key::Inline { .. }));
        assert!(matches!(edge, Key::Inline { .. }));
        assert!(matches!(long, Key::Heap(_)));
        assert_eq!(&*short, b"user:42");
        assert_eq!(edge.len(), INLINE_KEY_MAX);
        assert_eq!(long.len(), INLINE_KEY_MAX + 1);
        assert_eq!(Key::from(&b""[..]).len(), 0);
        assert_eq!(Vec::from(long.clone()), vec![b'y'; INLINE_KEY_MAX + 1]);
        assert_eq!(&*long.into_boxed(), &[b'y'; INLINE_KEY_MAX + 1][..]);

        // Order and hashing follow the bytes, whichever way each key is stored.
        let set: BTreeSet<Key> = [b"b".to_vec(), vec![b'a'; 30], b"a".to_vec()]
            .into_iter()
            .map(Key::from)
            .collect();
        let order: Vec<Vec<u8>> = set.iter().map(|k| k.to_vec()).collect();
        assert_eq!(order, vec![b"a".to_vec(), vec![b'a'; 30], b"b".to_vec()]);
        let build = hashbrown::DefaultHashBuilder::default();
        use std::hash::BuildHasher;
        for k in &set {
            assert_eq!(build.hash_one(k), build.hash_one(&**k));
        }
    }
}
