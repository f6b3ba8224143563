//! Shared by the fuzz targets: cutting an input into the reads a connection might see.

/// Cuts `data` into chunks of 1..=`max` bytes. The sizes come from a xorshift generator
/// seeded by a hash of the input, so a given input always splits the same way (crashes
/// reproduce) while different inputs split differently.
pub fn chunks(data: &[u8], max: usize) -> Vec<&[u8]> {
    // FNV-1a.
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut x = seed | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly tiny reads, where the decoder's resumption is exercised hardest.
        let n = match x % 4 {
            0 | 1 => 1 + (x >> 8) as usize % 4,
            2 => 1 + (x >> 8) as usize % 64,
            _ => 1 + (x >> 8) as usize % max,
        };
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}
