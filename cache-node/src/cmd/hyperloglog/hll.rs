//! Redis's HyperLogLog representation, byte for byte (hyperloglog.c): a 16-byte header
//! (`HYLL`, encoding, 3 unused bytes, the cached cardinality little endian with its top bit
//! meaning "stale"), then 16384 six-bit registers either dense (12288 bytes) or sparse
//! (ZERO / XZERO / VAL run-length opcodes). The same inserts give the same bytes as Redis,
//! so a value copied from Redis with GET/SET keeps working here and back.
//!
//! Everything here works on the string's bytes and never trusts them: a corrupt value gives
//! [`Corrupt`], never a panic or an out-of-bounds read.

pub const HDR: usize = 16;
pub const P: u32 = 14;
pub const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The value is an HLL whose registers do not add up (Redis's `INVALIDOBJ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Not an HLL at all: too short, bad magic or encoding, a dense one of the wrong length
/// (Redis answers WRONGTYPE for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHll;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Dense,
    Sparse,
}

/// MurmurHash2, 64-bit version (MurmurHash64A), as Redis uses it (little-endian reads).
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element goes to and the length of its "000..1" run (1..=Q+1).
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty HLL: sparse, all registers in XZERO opcodes.
pub fn new_sparse() -> Vec<u8> {
    let mut s = Vec::with_capacity(HDR + 2 * REGISTERS.div_ceil(XZERO_MAX_LEN));
    s.extend_from_slice(b"HYLL");
    s.push(SPARSE);
    s.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        push_xzero(&mut s, run);
        left -= run;
    }
    s
}

fn push_xzero(s: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    s.push((l >> 8) as u8 | 0x40);
    s.push((l & 0xff) as u8);
}

/// Redis's `isHLLObjectOrReply` checks.
pub fn check(s: &[u8]) -> Result<Encoding, NotHll> {
    if s.len() < HDR || &s[..4] != b"HYLL" {
        return Err(NotHll);
    }
    match s[4] {
        DENSE if s.len() == DENSE_SIZE => Ok(Encoding::Dense),
        SPARSE => Ok(Encoding::Sparse),
        _ => Err(NotHll),
    }
}

/// The cached cardinality, if valid.
pub fn cached(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s.get(8..16)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

pub fn set_cached(s: &mut [u8], card: u64) {
    if let Some(c) = s.get_mut(8..16) {
        c.copy_from_slice(&card.to_le_bytes());
    }
}

pub fn invalidate(s: &mut [u8]) {
    if let Some(b) = s.get_mut(15) {
        *b |= 0x80;
    }
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u16::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(REGISTER_MAX)) as u8
}

fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = u16::from(val);
    let max = u16::from(REGISTER_MAX);
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((max << fb) as u8);
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((max >> (8 - fb)) as u8);
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// Sets register `i` of a dense HLL to `count` if that is larger; whether it changed.
fn dense_max(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

/// One sparse opcode.
#[derive(Clone, Copy)]
enum Op {
    /// A run of zero registers; `bytes` is 1 (ZERO) or 2 (XZERO).
    Zero {
        len: usize,
        bytes: usize,
    },
    Val {
        value: u8,
        len: usize,
    },
}

fn op_at(s: &[u8], p: usize) -> Op {
    let b = s[p];
    if b & 0xc0 == 0 {
        Op::Zero {
            len: usize::from(b & 0x3f) + 1,
            bytes: 1,
        }
    } else if b & 0x80 != 0 {
        Op::Val {
            value: ((b >> 2) & 0x1f) + 1,
            len: usize::from(b & 3) + 1,
        }
    } else {
        let lo = usize::from(s.get(p + 1).copied().unwrap_or(0));
        Op::Zero {
            len: ((usize::from(b & 0x3f) << 8) | lo) + 1,
            bytes: 2,
        }
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2 | (len as u8 - 1)) | 0x80
}

fn push_zero_run(seq: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(seq, len);
    } else {
        seq.push((len - 1) as u8);
    }
}

/// Walks a sparse HLL's opcodes: `f(first_register, op)`. Returns the register count seen.
fn walk_sparse(s: &[u8], mut f: impl FnMut(usize, Op) -> bool) -> usize {
    let mut p = HDR;
    let mut idx = 0usize;
    while p < s.len() {
        let op = op_at(s, p);
        if !f(idx, op) {
            break;
        }
        match op {
            Op::Zero { len, bytes } => {
                idx += len;
                p += bytes;
            }
            Op::Val { len, .. } => {
                idx += len;
                p += 1;
            }
        }
    }
    idx
}

/// Calls `f(registers, value)` for each VAL run of a sparse HLL, in order, after checking
/// that the run stays inside the 16384 registers; then that the runs cover exactly those.
fn for_each_run(s: &[u8], mut f: impl FnMut(std::ops::Range<usize>, u8)) -> Result<(), Corrupt> {
    let mut overflow = false;
    let idx = walk_sparse(s, |first, op| {
        if let Op::Val { value, len } = op {
            if first + len > REGISTERS {
                overflow = true;
                return false;
            }
            f(first..first + len, value);
        }
        true
    });
    if overflow || idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// The dense form of a sparse HLL (the header copied, cached cardinality included).
pub fn sparse_to_dense(s: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&s[..HDR]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR..];
    for_each_run(s, |range, value| {
        for i in range {
            dense_set(regs, i, value);
        }
    })?;
    Ok(dense)
}

/// Redis's `hllSparseSet`: register `index` to `count` if larger, splitting opcodes, merging
/// neighbours, promoting to dense past `max_bytes` or for a count over 32. Whether it changed.
fn sparse_set(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: u64,
    marks: &mut Marks,
) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // The hot loop of a sparse HLL (Redis orders the tests the same way): plain byte
    // arithmetic, most frequent opcode first, from the nearest mark.
    let start = marks.start(index);
    let mut p = start.off;
    let mut first = start.first;
    let mut prev = start.prev;
    let mut span = 0usize;
    let bytes = &s[..];
    while let Some(&b) = bytes.get(p) {
        let oplen;
        if b & 0xc0 == 0 {
            span = usize::from(b & 0x3f) + 1;
            oplen = 1;
        } else if b & 0x80 != 0 {
            span = usize::from(b & 3) + 1;
            oplen = 1;
        } else {
            let lo = usize::from(bytes.get(p + 1).copied().unwrap_or(0));
            span = ((usize::from(b & 0x3f) << 8) | lo) + 1;
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= s.len() {
        return Err(Corrupt);
    }
    let op = op_at(s, p);
    match op {
        Op::Val { value, len } => {
            if value >= count {
                return Ok(false);
            }
            if len == 1 {
                s[p] = val_op(count, 1);
                let total = s.len();
                return Ok(finish(s, prev, p, 1, total, marks));
            }
        }
        Op::Zero { len: 1, bytes: 1 } => {
            s[p] = val_op(count, 1);
            let total = s.len();
            return Ok(finish(s, prev, p, 1, total, marks));
        }
        Op::Zero { .. } => {}
    }
    let last = first + span - 1;
    let mut seq = Vec::with_capacity(5);
    let oldlen = match op {
        Op::Zero { bytes, .. } => {
            if index != first {
                push_zero_run(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zero_run(&mut seq, last - index);
            }
            bytes
        }
        Op::Val { value, .. } => {
            if index != first {
                seq.push(val_op(value, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(value, last - index));
            }
            1
        }
    };
    if seq.len() > oldlen && (s.len() + seq.len() - oldlen) as u64 > max_bytes {
        return promote(s, index, count);
    }
    let end = (p + oldlen).min(s.len());
    let total = s.len();
    s.splice(p..end, seq);
    Ok(finish(s, prev, p, oldlen, total, marks))
}

/// Step 4 of `hllSparseSet`: merge adjacent VAL opcodes of one value (up to 5 opcodes from
/// the one before the change), then mark the cached cardinality stale. `at..at + oldlen`
/// held the opcode that was replaced, before the change (for the marks).
fn finish(
    s: &mut Vec<u8>,
    prev: Option<usize>,
    at: usize,
    oldlen: usize,
    old_total: usize,
    marks: &mut Marks,
) -> bool {
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        match op_at(s, p) {
            Op::Zero { bytes, .. } => {
                p += bytes;
                continue;
            }
            Op::Val { value: v1, len: l1 } => {
                if p + 1 < s.len() && s[p + 1] & 0x80 != 0 {
                    if let Op::Val { value: v2, len: l2 } = op_at(s, p + 1) {
                        if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                            s[p + 1] = val_op(v1, l1 + l2);
                            s.remove(p);
                            continue;
                        }
                    }
                }
            }
        }
        p += 1;
    }
    invalidate(s);
    let delta = s.len() as isize - old_total as isize;
    marks.changed(prev.unwrap_or(HDR), at + oldlen + 24, delta, s);
    true
}

/// Where opcodes start, every 32 opcodes of a sparse HLL, with the scan's state there: a
/// PFADD of many elements starts each search near its register instead of at the first
/// opcode (the search is what makes sparse adds slow). Exact across changes: marks past a
/// change move by its length difference, marks near it are dropped, and all are rebuilt
/// after a few changes.
#[derive(Default)]
pub struct Marks {
    list: Vec<Mark>,
    changes: usize,
    enabled: bool,
}

#[derive(Clone, Copy)]
struct Mark {
    off: usize,
    first: usize,
    prev: Option<usize>,
}

impl Marks {
    /// Marks for a value that will take many changes.
    pub fn new(s: &[u8]) -> Marks {
        let mut m = Marks {
            enabled: true,
            ..Marks::default()
        };
        m.rebuild(s);
        m
    }

    fn rebuild(&mut self, s: &[u8]) {
        self.list.clear();
        self.changes = 0;
        if !self.enabled || s.get(4) != Some(&SPARSE) {
            return;
        }
        let (mut p, mut first, mut prev, mut n) = (HDR, 0usize, None, 0usize);
        while p < s.len() {
            if n % 32 == 0 {
                self.list.push(Mark {
                    off: p,
                    first,
                    prev,
                });
            }
            n += 1;
            let (span, oplen) = match op_at(s, p) {
                Op::Zero { len, bytes } => (len, bytes),
                Op::Val { len, .. } => (len, 1),
            };
            prev = Some(p);
            p += oplen;
            first += span;
        }
    }

    fn start(&self, index: usize) -> Mark {
        let i = self.list.partition_point(|m| m.first <= index);
        match i {
            0 => Mark {
                off: HDR,
                first: 0,
                prev: None,
            },
            _ => self.list[i - 1],
        }
    }

    /// Bytes `lo..hi` (before the change) may have changed; the value grew by `delta`.
    fn changed(&mut self, lo: usize, hi: usize, delta: isize, s: &[u8]) {
        if !self.enabled {
            return;
        }
        self.changes += 1;
        if self.changes >= 32 {
            self.rebuild(s);
            return;
        }
        let from = self.list.partition_point(|m| m.off < lo);
        let mut tail = self.list.split_off(from);
        tail.retain_mut(|m| {
            if m.off < hi || m.prev.is_some_and(|p| p < hi) {
                return false;
            }
            m.off = m.off.wrapping_add_signed(delta);
            m.prev = m.prev.map(|p| p.wrapping_add_signed(delta));
            true
        });
        self.list.append(&mut tail);
    }
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    *s = sparse_to_dense(s)?;
    dense_max(&mut s[HDR..], index, count);
    Ok(true)
}

/// Sets register `index` to `count` if larger, in either encoding. Whether it changed.
///
/// # Errors
/// A sparse value whose opcodes do not cover the register.
pub fn set_register(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: u64,
    marks: &mut Marks,
) -> Result<bool, Corrupt> {
    match s.get(4) {
        Some(&DENSE) => Ok(dense_max(&mut s[HDR..], index, count)),
        Some(&SPARSE) => sparse_set(s, index, count, max_bytes, marks),
        _ => Err(Corrupt),
    }
}

/// The value of register `index` (for deciding whether an add changes anything).
pub fn register(s: &[u8], index: usize) -> Result<u8, Corrupt> {
    match s.get(4) {
        Some(&DENSE) => Ok(dense_get(&s[HDR..], index)),
        Some(&SPARSE) => {
            let mut found = None;
            walk_sparse(s, |first, op| {
                let (len, value) = match op {
                    Op::Zero { len, .. } => (len, 0),
                    Op::Val { value, len } => (len, value),
                };
                if index < first + len {
                    found = Some(value);
                    return false;
                }
                true
            });
            found.ok_or(Corrupt)
        }
        _ => Err(Corrupt),
    }
}

/// `max[i] = max(max[i], register i)` over an HLL (`hllMerge`).
///
/// # Errors
/// A sparse value that does not cover exactly 16384 registers.
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    if s.get(4) == Some(&DENSE) {
        let regs = &s[HDR..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    for_each_run(s, |range, value| {
        for m in &mut max[range] {
            *m = (*m).max(value);
        }
    })
}

/// The cardinality estimate of an HLL (Ertl's improved estimator, as Redis 5+).
///
/// # Errors
/// A sparse value that does not cover exactly 16384 registers.
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    if s.get(4) == Some(&DENSE) {
        let regs = &s[HDR..];
        for i in 0..REGISTERS {
            histo[usize::from(dense_get(regs, i))] += 1;
        }
    } else {
        let idx = walk_sparse(s, |_, op| {
            match op {
                Op::Zero { len, .. } => histo[0] += len as u32,
                Op::Val { value, len } => histo[usize::from(value)] += len as u32,
            }
            true
        });
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// The cardinality of raw byte registers (PFCOUNT of several keys).
pub fn count_raw(regs: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[usize::from(r & 63)] += 1;
    }
    estimate(&histo)
}

fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(histo[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// Adds `ele`; whether a register changed (PFADD goes through its batched form; the tests
/// add one at a time).
///
/// # Errors
/// A corrupt sparse value.
#[cfg(test)]
pub fn add(s: &mut Vec<u8>, ele: &[u8], max_bytes: u64) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set_register(s, index, count, max_bytes, &mut Marks::default())
}

/// Sets each `(register, count)` in order, as that many adds; whether any changed.
///
/// # Errors
/// A corrupt sparse value (the registers before the failing one stay set, as in Redis).
pub fn set_all(s: &mut Vec<u8>, regs: &[(usize, u8)], max_bytes: u64) -> Result<bool, Corrupt> {
    let mut marks = if regs.len() > 8 {
        Marks::new(s)
    } else {
        Marks::default()
    };
    let mut changed = false;
    for &(index, count) in regs {
        changed |= set_register(s, index, count, max_bytes, &mut marks)?;
    }
    Ok(changed)
}

/// PFDEBUG DECODE's text for a sparse HLL.
pub fn decode(s: &[u8]) -> String {
    let mut out = Vec::new();
    let mut p = HDR;
    while p < s.len() {
        match op_at(s, p) {
            Op::Zero { len, bytes: 1 } => {
                out.push(format!("z:{len}"));
                p += 1;
            }
            Op::Zero { len, bytes } => {
                out.push(format!("Z:{len}"));
                p += bytes;
            }
            Op::Val { value, len } => {
                out.push(format!("v:{value},{len}"));
                p += 1;
            }
        }
    }
    out.join(" ")
}

/// All 16384 registers of a dense HLL.
pub fn dense_registers(s: &[u8]) -> impl Iterator<Item = u8> + '_ {
    (0..REGISTERS).map(move |i| dense_get(&s[HDR..], i))
}

/// PFSELFTEST: register access, and dense and sparse estimates agreeing within bounds.
///
/// # Errors
/// The `TESTFAILED ...` message Redis would give.
pub fn selftest(mut rand: impl FnMut() -> u64, max_bytes: u64) -> Result<(), String> {
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..4].copy_from_slice(b"HYLL");
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..10 {
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = (rand() & u64::from(REGISTER_MAX)) as u8;
            *b = r;
            dense_set(&mut dense[HDR..], i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let v = dense_get(&dense[HDR..], i);
            if v != b {
                return Err(format!("TESTFAILED Register {i} should be {b} but is {v}"));
            }
        }
    }
    dense[HDR..].fill(0);
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed = rand();
    let mut checkpoint: u64 = 1;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let (index, cnt) = pat_len(&ele);
        dense_max(&mut dense[HDR..], index, cnt);
        set_register(&mut sparse, index, cnt, max_bytes, &mut Marks::default())
            .map_err(|_| "TESTFAILED corrupted sparse HLL".to_string())?;
        if j != checkpoint {
            continue;
        }
        if j < max_bytes / 2 && sparse[4] != SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = count(&dense).map_err(|_| "TESTFAILED dense/sparse disagree".to_string())?;
        if count(&sparse) != Ok(card) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = checkpoint.abs_diff(card);
        let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
        if j == 10 {
            maxerr = 1;
        }
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_match_redis() {
        // PFADD k a / PFADD k hello then PFDEBUG DECODE k, on Redis 7.0.
        assert_eq!(pat_len(b"a"), (12711, 2));
        assert_eq!(pat_len(b"hello"), (9216, 1));
        let mut s = new_sparse();
        add(&mut s, b"a", 3000).expect("ok");
        assert_eq!(decode(&s), "Z:12711 v:2,1 Z:3672");
    }

    #[test]
    fn new_is_sparse_xzero() {
        let s = new_sparse();
        assert_eq!(s.len(), HDR + 2);
        assert_eq!(check(&s), Ok(Encoding::Sparse));
        assert_eq!(decode(&s), "Z:16384");
        assert_eq!(count(&s), Ok(0));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut s = new_sparse();
        let mut d = sparse_to_dense(&s).expect("valid");
        for i in 0..2000u32 {
            let e = i.to_string();
            let a = add(&mut s, e.as_bytes(), 3000).expect("ok");
            let b = add(&mut d, e.as_bytes(), 3000).expect("ok");
            assert_eq!(a, b, "{i}");
            assert_eq!(count(&s), count(&d));
        }
        assert_eq!(check(&s), Ok(Encoding::Dense));
        assert!(s[HDR..] == d[HDR..], "same registers");
        let c = count(&d).expect("ok");
        assert!((1900..2100).contains(&c), "{c}");
    }

    #[test]
    fn marks_change_nothing() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20 {
            let regs: Vec<(usize, u8)> = (0..1500 + round * 37)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    pat_len(&x.to_le_bytes())
                })
                .collect();
            let mut a = new_sparse();
            let mut b = new_sparse();
            set_all(&mut a, &regs, 6000).expect("ok");
            for &(i, c) in &regs {
                set_register(&mut b, i, c, 6000, &mut Marks::default()).expect("ok");
            }
            assert!(a == b, "round {round}");
        }
    }

    #[test]
    fn promotes_past_max_bytes() {
        let mut s = new_sparse();
        for i in 0..200u32 {
            add(&mut s, &i.to_le_bytes(), 100).expect("ok");
        }
        assert_eq!(check(&s), Ok(Encoding::Dense));
    }

    #[test]
    fn corrupt_values_never_panic() {
        let mut s = new_sparse();
        for i in 0..50u32 {
            add(&mut s, &i.to_le_bytes(), 3000).expect("ok");
        }
        let mut x: u64 = 88172645463325252;
        for _ in 0..3000 {
            let mut c = s.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = HDR + (x as usize % (c.len() - HDR));
                c[pos] = (x >> 32) as u8;
            }
            let _ = count(&c);
            let _ = sparse_to_dense(&c);
            let _ = add(&mut c.clone(), b"zz", 3000);
            let mut m = [0u8; REGISTERS];
            let _ = merge_into(&mut m, &c);
            let _ = register(&c, 16383);
            let _ = decode(&c);
        }
        let mut t = s.clone();
        t.extend_from_slice(b"hello");
        assert_eq!(count(&t), Err(Corrupt));
    }

    #[test]
    fn cache_bits() {
        let mut s = new_sparse();
        assert_eq!(cached(&s), Some(0));
        invalidate(&mut s);
        assert_eq!(cached(&s), None);
        set_cached(&mut s, 42);
        assert_eq!(cached(&s), Some(42));
    }
}
