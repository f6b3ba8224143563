//! LCS: the longest common subsequence of two strings, with Redis's dynamic-programming table
//! and its walk back (so IDX gives Redis's ranges, in Redis's order). The table is
//! `(len_a + 1) * (len_b + 1)` u32 cells; as Redis, more than `proto-max-bulk-len` bytes of it
//! is refused before anything is allocated, and an allocation failure is an error reply.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{int_arg, is, CmdError, CmdResult, Ctx};

/// One matching range: positions in A, positions in B (inclusive), length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub a: (usize, usize),
    pub b: (usize, usize),
    pub len: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Lcs {
    pub len: usize,
    /// The subsequence itself, when asked for.
    pub string: Option<Vec<u8>>,
    /// Ranges of at least `min_len`, from the ends of the strings backwards.
    pub matches: Vec<Match>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcsError {
    TooLong,
    OverLimit,
    NoMemory,
}

impl LcsError {
    fn message(self) -> CmdError {
        CmdError::Msg(match self {
            LcsError::TooLong => "ERR String too long for LCS",
            LcsError::OverLimit => {
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
            }
            LcsError::NoMemory => {
                "ERR Insufficient memory, failed allocating transient memory for LCS"
            }
        })
    }
}

/// Computes the LCS of `a` and `b`; `walk` says whether the string or the ranges are wanted.
///
/// # Errors
/// A table larger than `max_table_bytes`, or strings too long for u32 positions.
pub fn compute(
    a: &[u8],
    b: &[u8],
    walk: bool,
    min_len: usize,
    max_table_bytes: u64,
) -> Result<Lcs, LcsError> {
    if a.len() as u64 >= u64::from(u32::MAX) - 1 || b.len() as u64 >= u64::from(u32::MAX) - 1 {
        return Err(LcsError::TooLong);
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let bytes = cells.checked_mul(4).ok_or(LcsError::NoMemory)?;
    if bytes > max_table_bytes {
        return Err(LcsError::OverLimit);
    }
    let cells = usize::try_from(cells).map_err(|_| LcsError::NoMemory)?;
    let mut t: Vec<u32> = Vec::new();
    t.try_reserve_exact(cells).map_err(|_| LcsError::NoMemory)?;
    t.resize(cells, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let len = t[alen * w + blen] as usize;
    if !walk {
        return Ok(Lcs {
            len,
            string: None,
            matches: Vec::new(),
        });
    }
    let mut string = vec![0u8; len];
    let mut matches = Vec::new();
    let mut idx = len;
    // `None` is Redis's "arange_start == alen": no range open.
    let mut range: Option<Match> = None;
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            string[idx - 1] = a[i - 1];
            match &mut range {
                None => {
                    range = Some(Match {
                        a: (i - 1, i - 1),
                        b: (j - 1, j - 1),
                        len: 0,
                    });
                }
                Some(r) if r.a.0 == i && r.b.0 == j => {
                    r.a.0 -= 1;
                    r.b.0 -= 1;
                }
                Some(_) => emit = true,
            }
            if range.is_some_and(|r| r.a.0 == 0 || r.b.0 == 0) {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = range.is_some();
        }
        if emit {
            if let Some(mut r) = range.take() {
                r.len = r.a.1 - r.a.0 + 1;
                if min_len == 0 || r.len >= min_len {
                    matches.push(r);
                }
            }
        }
    }
    Ok(Lcs {
        len,
        string: Some(string),
        matches,
    })
}

pub fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now);
    let mut locked = ctx.store().lock_keys([&args[1][..], &args[2][..]]);
    let mut read = |key: &[u8]| -> Result<Vec<u8>, CmdError> {
        match locked.get(db, key, now) {
            None => Ok(Vec::new()),
            Some(e) => e.value.as_bytes().map(<[u8]>::to_vec).ok_or(CmdError::Msg(
                "ERR The specified keys must contain string values",
            )),
        }
    };
    let (a, b) = (read(&args[1])?, read(&args[2])?);
    drop(locked);
    let (mut idx, mut len, mut with_len) = (false, false, false);
    let mut min_len = 0i64;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "idx") {
            idx = true;
        } else if is(&args[j], "len") {
            len = true;
        } else if is(&args[j], "withmatchlen") {
            with_len = true;
        } else if is(&args[j], "minmatchlen") && more {
            min_len = int_arg(&args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if idx && len {
        return Err(CmdError::Msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let limit = ctx.shared.config.proto_max_bulk_len.load(Relaxed);
    let result =
        compute(&a, &b, idx || !len, min_len as usize, limit).map_err(LcsError::message)?;
    if idx {
        ctx.out.map(2);
        ctx.out.bulk(b"matches");
        ctx.out.array(result.matches.len());
        for m in &result.matches {
            ctx.out.array(2 + usize::from(with_len));
            for (start, end) in [m.a, m.b] {
                ctx.out.array(2);
                ctx.out.int(start as i64);
                ctx.out.int(end as i64);
            }
            if with_len {
                ctx.out.int(m.len as i64);
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.int(result.len as i64);
    } else if len {
        ctx.out.int(result.len as i64);
    } else {
        ctx.out.bulk(result.string.as_deref().unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_doc_example() {
        let r = compute(b"ohmytext", b"mynewtext", true, 0, 1 << 20).expect("fits");
        assert_eq!(r.len, 6);
        assert_eq!(r.string.as_deref(), Some(&b"mytext"[..]));
        assert_eq!(
            r.matches,
            vec![
                Match {
                    a: (4, 7),
                    b: (5, 8),
                    len: 4
                },
                Match {
                    a: (2, 3),
                    b: (0, 1),
                    len: 2
                },
            ]
        );
        let r = compute(b"ohmytext", b"mynewtext", true, 4, 1 << 20).expect("fits");
        assert_eq!(r.matches.len(), 1);
    }

    #[test]
    fn refuses_big_tables_before_allocating() {
        assert_eq!(
            compute(&[b'a'; 1000], &[b'b'; 1000], false, 0, 1_000_000),
            Err(LcsError::OverLimit)
        );
        assert_eq!(compute(b"", b"", true, 0, 4).map(|r| r.len), Ok(0));
    }
}
