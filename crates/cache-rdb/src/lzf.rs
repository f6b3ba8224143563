//! LZF, the compression Redis applies to strings over 20 bytes in RDB files and DUMP payloads
//! (liblzf's format: literal runs of up to 32 bytes, back references of 3 to 264 bytes up to
//! 8 KiB back). Ours, because it is a hundred lines and the crates that offer it wrap C.

use crate::Error;

const MAX_LITERAL: usize = 32;
const MAX_OFFSET: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
/// The hash table's size, log2: up to 16 K slots, fewer for short inputs (zeroing 64 KiB per
/// 32-byte string made saving a million of them mostly memset).
const MAX_HASH_LOG: u32 = 14;
const MIN_HASH_LOG: u32 = 6;

/// Decompresses `input` into exactly `len` bytes.
///
/// # Errors
/// [`Error::BadFormat`] when the input is not LZF or does not decompress to `len` bytes. The
/// caller has bounded `len`; nothing here allocates beyond it.
pub fn decompress(input: &[u8], len: usize) -> Result<Vec<u8>, Error> {
    let bad = || Error::BadFormat("invalid LZF compressed string");
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < MAX_LITERAL {
            let run = ctrl + 1;
            let lit = input.get(ip..ip + run).ok_or_else(bad)?;
            if out.len() + run > len {
                return Err(bad());
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += *input.get(ip).ok_or_else(bad)? as usize;
                ip += 1;
            }
            run += 2;
            let low = *input.get(ip).ok_or_else(bad)? as usize;
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            if back > out.len() || out.len() + run > len {
                return Err(bad());
            }
            let from = out.len() - back;
            // References may overlap what they produce (a run of one byte), so byte by byte.
            for i in 0..run {
                let b = out[from + i];
                out.push(b);
            }
        }
    }
    if out.len() != len {
        return Err(bad());
    }
    Ok(out)
}

fn hash(b: &[u8], log: u32) -> usize {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    (v.wrapping_mul(2654435761) >> (32 - log)) as usize
}

/// Compresses `input`; None when the result would not fit in `max` bytes (Redis stores the
/// string plain unless it saves at least 4 bytes).
pub fn compress(input: &[u8], max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(max.min(input.len()));
    let log = (usize::BITS - input.len().leading_zeros()).clamp(MIN_HASH_LOG, MAX_HASH_LOG);
    let mut table = vec![0u32; 1 << log];
    let mut lit_start = 0;
    let mut ip = 0;
    let flush = |out: &mut Vec<u8>, lits: &[u8]| {
        for chunk in lits.chunks(MAX_LITERAL) {
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
    };
    while ip + 2 < input.len() {
        let h = hash(&input[ip..], log);
        let candidate = table[h] as usize;
        table[h] = (ip + 1) as u32;
        if candidate > 0 {
            let r = candidate - 1;
            let back = ip - r;
            if back <= MAX_OFFSET && input[r..r + 3] == input[ip..ip + 3] {
                let limit = MAX_REF.min(input.len() - ip);
                let mut n = 3;
                while n < limit && input[r + n] == input[ip + n] {
                    n += 1;
                }
                flush(&mut out, &input[lit_start..ip]);
                let code = n - 2;
                let off = back - 1;
                if code < 7 {
                    out.push(((off >> 8) | (code << 5)) as u8);
                } else {
                    out.push(((off >> 8) | (7 << 5)) as u8);
                    out.push((code - 7) as u8);
                }
                out.push(off as u8);
                // Index the match's last two positions, as liblzf does (every position
                // would cost a hash per byte on long runs).
                let end = (ip + n).min(input.len().saturating_sub(2));
                for p in end.saturating_sub(2).max(ip + 1)..end {
                    table[hash(&input[p..], log)] = (p + 1) as u32;
                }
                ip += n;
                lit_start = ip;
                if out.len() > max {
                    return None;
                }
                continue;
            }
        }
        ip += 1;
    }
    flush(&mut out, &input[lit_start..]);
    (out.len() <= max).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decompresses_what_redis_wrote() {
        // The LZF body of DUMP of a string of 100 'a' on Redis 7.0.15 (clen 9, len 100).
        let redis = [0x01, b'a', b'a', 0xe0, 0x57, 0x00, 0x01, b'a', b'a'];
        assert_eq!(decompress(&redis, 100).unwrap(), vec![b'a'; 100]);
        let ours = compress(&[b'a'; 100], 96).unwrap();
        assert!(ours.len() <= 12, "{ours:?}");
        assert_eq!(decompress(&ours, 100).unwrap(), vec![b'a'; 100]);
    }

    #[test]
    fn refuses_references_before_the_start() {
        assert!(decompress(&[0x20, 0x05], 3).is_err());
        assert!(decompress(&[0x01, b'a'], 2).is_err());
        assert!(decompress(&[0x00, b'a'], 2).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000)) {
            if let Some(c) = compress(&data, data.len() + data.len() / 16 + 16) {
                prop_assert_eq!(decompress(&c, data.len()).unwrap(), data);
            }
        }
    }
}
