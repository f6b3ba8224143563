//! Twemproxy's key hashes (its `hash:` setting), bit for bit.
//!
//! Twemproxy hashes `const char *` keys, and `char` is signed on x86-64: several of these
//! hashes therefore widen a byte >= 0x80 with its sign (`b as i8 as u32`). That is what an
//! x86-64 nutcracker does, so it is what a fleet's placement depends on (an ARM64 build, where
//! `char` is unsigned, places such keys elsewhere). The golden test covers these keys.

use crc::{Crc, CRC_32_ISO_HDLC};

use crate::ConfigError;

/// A key hash of twemproxy, named as in its `hash:` setting.
#[allow(non_camel_case_types)] // the names are twemproxy's
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyHash {
    OneAtATime,
    Md5,
    Crc16,
    Crc32,
    Crc32a,
    Fnv1_64,
    /// Twemproxy's default.
    #[default]
    Fnv1a_64,
    Fnv1_32,
    Fnv1a_32,
    Hsieh,
    Murmur,
    Jenkins,
}

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

impl KeyHash {
    /// Every hash, in twemproxy's order.
    pub const ALL: [KeyHash; 12] = [
        KeyHash::OneAtATime,
        KeyHash::Md5,
        KeyHash::Crc16,
        KeyHash::Crc32,
        KeyHash::Crc32a,
        KeyHash::Fnv1_64,
        KeyHash::Fnv1a_64,
        KeyHash::Fnv1_32,
        KeyHash::Fnv1a_32,
        KeyHash::Hsieh,
        KeyHash::Murmur,
        KeyHash::Jenkins,
    ];

    /// The name in twemproxy's configuration (`fnv1a_64`, `murmur`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyHash::OneAtATime => "one_at_a_time",
            KeyHash::Md5 => "md5",
            KeyHash::Crc16 => "crc16",
            KeyHash::Crc32 => "crc32",
            KeyHash::Crc32a => "crc32a",
            KeyHash::Fnv1_64 => "fnv1_64",
            KeyHash::Fnv1a_64 => "fnv1a_64",
            KeyHash::Fnv1_32 => "fnv1_32",
            KeyHash::Fnv1a_32 => "fnv1a_32",
            KeyHash::Hsieh => "hsieh",
            KeyHash::Murmur => "murmur",
            KeyHash::Jenkins => "jenkins",
        }
    }

    /// The hash named as in twemproxy's `hash:` setting (exact, lower case, as twemproxy).
    ///
    /// # Errors
    /// [`ConfigError::UnknownHash`] for any other name.
    pub fn parse(name: &str) -> Result<KeyHash, ConfigError> {
        KeyHash::ALL
            .into_iter()
            .find(|h| h.name() == name)
            .ok_or_else(|| ConfigError::UnknownHash(name.to_owned()))
    }

    /// The 32-bit hash twemproxy computes for `key`.
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            KeyHash::OneAtATime => one_at_a_time(key),
            KeyHash::Md5 => {
                let d = md5::compute(key).0;
                u32::from_le_bytes([d[0], d[1], d[2], d[3]])
            }
            KeyHash::Crc16 => crc16(key),
            // libmemcached's "crc32": 15 bits of the real CRC-32.
            KeyHash::Crc32 => (CRC32.checksum(key) >> 16) & 0x7fff,
            KeyHash::Crc32a => CRC32.checksum(key),
            KeyHash::Fnv1_64 => fnv1_64(key),
            KeyHash::Fnv1a_64 => fnv1a_64(key),
            KeyHash::Fnv1_32 => fnv1_32(key),
            KeyHash::Fnv1a_32 => fnv1a_32(key),
            KeyHash::Hsieh => hsieh(key),
            KeyHash::Murmur => murmur(key),
            KeyHash::Jenkins => jenkins(key),
        }
    }
}

/// A key byte as twemproxy widens its signed `char`.
fn sext32(b: u8) -> u32 {
    b as i8 as u32
}

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

/// FNV-1 in 64 bits, truncated to 32 at the end.
fn fnv1_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_64_PRIME);
        h ^= b as i8 as u64;
    }
    h as u32
}

/// Twemproxy truncates the 64-bit offset basis and prime to 32 bits and works in 32 bits
/// (basis 0x84222325, prime 0x1b3): the low half of FNV-1a 64, but with signed bytes.
fn fnv1a_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT as u32;
    for &b in key {
        h ^= sext32(b);
        h = h.wrapping_mul(FNV_64_PRIME as u32);
    }
    h
}

fn fnv1_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_32_PRIME);
        h ^= sext32(b);
    }
    h
}

fn fnv1a_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h ^= sext32(b);
        h = h.wrapping_mul(FNV_32_PRIME);
    }
    h
}

fn one_at_a_time(key: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &b in key {
        h = h.wrapping_add(sext32(b));
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h.wrapping_add(h << 15)
}

/// Paul Hsieh's SuperFastHash as twemproxy has it (signed third byte of a 3-byte tail).
fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let get16 = |s: &[u8]| u32::from(s[0]) | u32::from(s[1]) << 8;
    let mut h: u32 = 0;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        h = h.wrapping_add(get16(c));
        let tmp = (get16(&c[2..]) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h = h.wrapping_add(h >> 11);
    }
    let rest = chunks.remainder();
    match rest.len() {
        3 => {
            h = h.wrapping_add(get16(rest));
            h ^= h << 16;
            h ^= sext32(rest[2]) << 18;
            h = h.wrapping_add(h >> 11);
        }
        2 => {
            h = h.wrapping_add(get16(rest));
            h ^= h << 11;
            h = h.wrapping_add(h >> 17);
        }
        1 => {
            h = h.wrapping_add(u32::from(rest[0]));
            h ^= h << 10;
            h = h.wrapping_add(h >> 1);
        }
        _ => {}
    }
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h.wrapping_add(h >> 6)
}

/// CRC-16/XMODEM (Redis Cluster's) in a 32-bit register that twemproxy never masks: the low
/// 16 bits are the CRC, the high 16 keep the high bytes of the two previous steps' CRCs.
/// (Later twemproxy sources have a reflected CRC-16/ARC here; nutcracker 0.5.0 runs this one.)
fn crc16(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ u32::from(CRC16_XMODEM_TABLE[((crc >> 8) ^ u32::from(b)) as usize & 0xff])
    })
}

const CRC16_XMODEM_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// MurmurHash2 with twemproxy's length-derived seed (`0xdeadbeef * len`).
fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let len = key.len() as u32;
    let mut h = 0xdead_beef_u32.wrapping_mul(len) ^ len;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// Bob Jenkins' lookup3 `hashlittle` with initval 13. Twemproxy's three read paths (by key
/// alignment) give the same result on little-endian machines; this is the byte path.
fn jenkins(key: &[u8]) -> u32 {
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(13);
    let (mut a, mut b, mut c) = (init, init, init);
    let word = |s: &[u8]| {
        let mut w = [0u8; 4];
        w[..s.len()].copy_from_slice(s);
        u32::from_le_bytes(w)
    };
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        (a, b, c) = jenkins_mix(a, b, c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        c = c.wrapping_add(word(&rest[8..]));
    }
    jenkins_final(a, b, c)
}

fn jenkins_mix(mut a: u32, mut b: u32, mut c: u32) -> (u32, u32, u32) {
    a = a.wrapping_sub(c) ^ c.rotate_left(4);
    c = c.wrapping_add(b);
    b = b.wrapping_sub(a) ^ a.rotate_left(6);
    a = a.wrapping_add(c);
    c = c.wrapping_sub(b) ^ b.rotate_left(8);
    b = b.wrapping_add(a);
    a = a.wrapping_sub(c) ^ c.rotate_left(16);
    c = c.wrapping_add(b);
    b = b.wrapping_sub(a) ^ a.rotate_left(19);
    a = a.wrapping_add(c);
    c = c.wrapping_sub(b) ^ b.rotate_left(4);
    b = b.wrapping_add(a);
    (a, b, c)
}

fn jenkins_final(mut a: u32, mut b: u32, mut c: u32) -> u32 {
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for h in KeyHash::ALL {
            assert_eq!(KeyHash::parse(h.name()), Ok(h));
        }
        assert_eq!(
            KeyHash::parse("FNV1A_64"),
            Err(ConfigError::UnknownHash("FNV1A_64".into()))
        );
        assert!(KeyHash::parse("xxhash").is_err());
        assert_eq!(KeyHash::default(), KeyHash::Fnv1a_64);
    }

    #[test]
    fn published_vectors_where_twemproxy_follows_the_reference() {
        // Standard check values ("123456789") and FNV/lookup3 reference outputs: where
        // twemproxy's function is the textbook one, it must give the textbook answer.
        assert_eq!(KeyHash::Crc32a.hash(b"123456789"), 0xCBF4_3926);
        // CRC-16/XMODEM of "123456789" is 0x31C3; above it, the high bytes of the CRCs of
        // "1234567" (0x86D6) and "12345678" (0x9015), the two steps before.
        assert_eq!(KeyHash::Crc16.hash(b"123456789"), 0x8690_31C3);
        assert_eq!(KeyHash::Crc16.hash(b"12345678") & 0xffff, 0x9015);
        assert_eq!(
            KeyHash::Crc32.hash(b"123456789"),
            (0xCBF4_3926 >> 16) & 0x7fff
        );
        assert_eq!(KeyHash::Fnv1a_32.hash(b"a"), 0xe40c_292c);
        assert_eq!(KeyHash::Fnv1_32.hash(b"a"), 0x050c_5d7e);
        // FNV-1 64 of "a" is 0xaf63bd4c8601b7be; twemproxy keeps the low half.
        assert_eq!(KeyHash::Fnv1_64.hash(b"a"), 0x8601_b7be);
        assert_eq!(KeyHash::Md5.hash(b""), 0xd98c_1dd4); // d41d8cd9... read little-endian
        assert_eq!(KeyHash::OneAtATime.hash(b"a"), 0xca2e_9442);
        // lookup3 hashlittle("", 0) is 0xdeadbeef; twemproxy's initval 13 adds 13.
        assert_eq!(KeyHash::Jenkins.hash(b""), 0xdead_beef + 13);
    }

    #[test]
    fn fnv1a_64_is_32_bit_arithmetic_with_signed_bytes() {
        // The low 32 bits of a product depend only on the low 32 bits of its factors, so
        // twemproxy's truncated constants give the low half of the real FNV-1a 64
        // (0xaf63dc4c8601ec8c for "a")...
        assert_eq!(KeyHash::Fnv1a_64.hash(b"a"), 0x8601_ec8c);
        // ...except for bytes >= 0x80, which twemproxy widens with their sign.
        let textbook = (0x8422_2325u32 ^ 0xe9).wrapping_mul(0x1b3);
        let signed = (0x8422_2325u32 ^ 0xffff_ffe9).wrapping_mul(0x1b3);
        assert_eq!(KeyHash::Fnv1a_64.hash(&[0xe9]), signed);
        assert_ne!(signed, textbook);
        // The unsigned-byte hashes are unaffected.
        assert_eq!(KeyHash::Crc32a.hash(&[0xe9]), CRC32.checksum(&[0xe9]));
    }

    #[test]
    fn every_length_of_the_block_hashes_is_distinct() {
        // The tail handling of murmur, jenkins and hsieh is where ports go wrong: prefixes of
        // one key over lengths 0..40 must all differ (a dropped tail byte would collide).
        let key: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for h in [KeyHash::Murmur, KeyHash::Jenkins, KeyHash::Hsieh] {
            let mut seen: Vec<u32> = (1..=key.len()).map(|n| h.hash(&key[..n])).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), key.len(), "{h:?}");
        }
    }
}
