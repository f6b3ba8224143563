//! CRC-64/Jones as Redis computes it (reflected, polynomial 0xad93d23594c935a9, init 0): it
//! closes every DUMP payload and every RDB file.

use crc::{Crc, Digest, CRC_64_REDIS};

static CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

/// The checksum of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// A running checksum, for a file written in pieces.
pub fn digest() -> Digest<'static, u64> {
    CRC64.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_from_redis_crc64_c() {
        // crc64.c's own self-test: crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn digest_in_pieces_equals_whole() {
        let mut d = digest();
        d.update(b"1234");
        d.update(b"56789");
        assert_eq!(d.finalize(), 0xe9c6d914c4b8d9ca);
    }
}
