//! Redis Cluster key slots: `CRC16(key or its {hash tag}) mod 16384`.

use crc::{Crc, Table, CRC_16_XMODEM};

/// Number of cluster slots.
pub const SLOTS: usize = 16384;

/// Slice-by-16 tables: every command hashes its key for the slot, so the byte-at-a-time
/// loop showed in profiles.
const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_XMODEM);

/// The part of the key that is hashed: the first `{...}` with something inside, else the key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The cluster slot of a key.
pub fn key_slot(key: &[u8]) -> u16 {
    CRC16.checksum(hash_tag(key)) % SLOTS as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vectors() {
        assert_eq!(CRC16.checksum(b"123456789"), 0x31C3);
        // Hash-tag cases from the Redis Cluster specification.
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.a"), key_slot(b"{user1000}.b"));
    }
}
