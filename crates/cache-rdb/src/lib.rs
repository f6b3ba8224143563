//! Redis's serialization format, RDB version 10 as Redis 7.0 writes it: one codec for DUMP and
//! RESTORE, snapshot files (SAVE, BGSAVE, loading at start) and later for MIGRATE and a
//! replica's full sync. Bytes in, values out and back; no I/O, no tokio.
//!
//! ```text
//!  DUMP payload:  <type> <value> <RDB version u16 LE> <CRC-64 u64 LE>
//!  file:          REDIS0010 <aux>* <function>* (<SELECTDB> <RESIZEDB> <key>*)* <EOF> <CRC-64>
//!  key:           [<EXPIRETIME_MS>] [<IDLE>|<FREQ>] <type> <key string> <value>
//!  value:         object.rs (strings, lists, sets, hashes, sorted sets), stream.rs
//!                 └ built of encoding.rs (lengths, strings, LZF), listpack.rs, compact.rs
//! ```
//!
//! Loading accepts every encoding Redis 7.0 loads (plain, ziplist, zipmap, intset, quicklist
//! 1 and 2, listpack; streams of both versions). Saving writes what Redis 7.0 would: listpacks
//! and intsets under the default thresholds, so `redis-server` and `redis-check-rdb` take our
//! files, and a value moves between the two byte for byte in most cases.
//!
//! Everything read is untrusted: every length and count is checked against the input that
//! remains before anything is sized from it.

pub mod compact;
pub mod crc64;
pub mod encoding;
pub mod file;
pub mod input;
pub mod listpack;
pub mod lzf;
pub mod object;
pub mod stream;

use cache_store::Value;

pub use file::{KeyRecord, Reader, Record, Writer};

/// The format version written (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;

/// What can be wrong with RDB bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unexpected end of RDB data")]
    Truncated,
    #[error("bad RDB data: {0}")]
    BadFormat(&'static str),
    #[error("an empty collection")]
    EmptyKey,
    #[error("RDB version {0} is newer than this server reads")]
    Version(u32),
    #[error("RDB checksum mismatch")]
    Checksum,
    #[error("{0} are not supported")]
    Unsupported(&'static str),
}

/// The DUMP payload of `value`.
pub fn dump(value: &Value, compress: bool) -> Vec<u8> {
    let mut out = vec![object::value_type(value)];
    object::write_value(&mut out, value, compress);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Why a RESTORE payload was refused: the two errors Redis tells apart.
#[derive(Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// `ERR DUMP payload version or checksum are wrong`.
    VersionOrChecksum,
    /// `ERR Bad data format`.
    BadData,
}

/// The value in a DUMP payload, checked as Redis's RESTORE checks it: footer version no
/// newer than ours and matching CRC-64 first, then the value itself.
///
/// # Errors
/// [`RestoreError`], mapping to Redis's two error replies.
pub fn restore(payload: &[u8]) -> Result<Value, RestoreError> {
    if payload.len() < 10 {
        return Err(RestoreError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().map_err(|_| RestoreError::BadData)?);
    if version > RDB_VERSION || crc != crc64::crc64(&payload[..payload.len() - 8]) {
        return Err(RestoreError::VersionOrChecksum);
    }
    let mut input = input::Input::new(body);
    let t = input.u8().map_err(|_| RestoreError::BadData)?;
    if !object::is_object_type(t) {
        return Err(RestoreError::BadData);
    }
    object::read_value(t, &mut input).map_err(|_| RestoreError::BadData)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_of_an_integer_string_is_redis_s() {
        // `SET k 12345` then DUMP k on Redis 7.0.15.
        let redis = b"\x00\xc190\n\x00\x9d\x94\xea'\x93\xfc\x08\xb9";
        assert_eq!(dump(&Value::string(&b"12345"[..]), true), redis);
        assert_eq!(restore(redis).unwrap(), Value::string(&b"12345"[..]));
    }

    #[test]
    fn restore_tells_checksum_from_data_errors() {
        let mut p = dump(&Value::string(&b"hello"[..]), true);
        let n = p.len();
        p[n - 1] ^= 1;
        assert_eq!(restore(&p), Err(RestoreError::VersionOrChecksum));
        // A valid footer around garbage.
        let mut bad = vec![0x00, 0x3f];
        bad.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64::crc64(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&bad), Err(RestoreError::BadData));
        // Version 11.
        let mut newer = vec![0x00, 0x01, b'a', 11, 0];
        let crc = crc64::crc64(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&newer), Err(RestoreError::VersionOrChecksum));
    }
}
