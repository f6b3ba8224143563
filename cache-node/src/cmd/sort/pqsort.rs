//! Redis's partial quicksort (pqsort.c, from NetBSD's qsort): sorts enough of a slice that
//! positions `lrange..=rrange` hold what a full sort would put there. SORT ... BY ... LIMIT
//! and GEO searches with COUNT use it in Redis; the same swaps here leave elements that
//! compare equal in the same order as there.

use std::cmp::Ordering;

fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    if cmp(&v[a], &v[b]).is_lt() {
        if cmp(&v[b], &v[c]).is_lt() {
            b
        } else if cmp(&v[a], &v[c]).is_lt() {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]).is_gt() {
        b
    } else if cmp(&v[a], &v[c]).is_lt() {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

/// Whether `lo..lo + n` holds none of the wanted range (both ends on one side of it). The
/// ends are signed: SORT passes `end = start - 1` for an empty LIMIT, as Redis does.
fn outside(lo: usize, n: usize, l: i64, r: i64) -> bool {
    let (lo, hi) = (lo as i64, (lo + n) as i64);
    (l < lo && r < lo) || (l >= hi && r >= hi)
}

/// Sorts `v` by `cmp` so that `v[lrange..=rrange]` is in its sorted place.
pub fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: i64, rrange: i64) {
    let n = v.len();
    part(v, 0, n, cmp, lrange, rrange);
}

fn part<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
    l: i64,
    r: i64,
) {
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]).is_gt() {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c.is_gt() {
                    break;
                }
                if c.is_eq() {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c.is_lt() {
                    break;
                }
                if c.is_eq() {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let s = (pa - a).min(pb - pa);
        vecswap(v, a, pb - s, s);
        let s = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - s, s);
        let s = pb - pa;
        if s > 1 && !outside(a, s, l, r) {
            part(v, a, s, cmp, l, r);
        }
        let s = pd - pc;
        if s > 1 {
            a = pn - s;
            n = s;
            if !outside(a, n, l, r) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wanted_range_is_sorted() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for len in [0usize, 1, 5, 7, 8, 41, 100, 1000] {
            let v: Vec<u32> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 50) as u32
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            for (lo, hi) in [(0, len.saturating_sub(1)), (len / 3, len / 2), (0, 2)] {
                if hi >= len || lo > hi {
                    continue;
                }
                let mut p = v.clone();
                pqsort(&mut p, &|a: &u32, b: &u32| a.cmp(b), lo as i64, hi as i64);
                assert_eq!(&p[lo..=hi], &sorted[lo..=hi], "len {len} range {lo}..={hi}");
            }
        }
    }
}
