//! SORT and SORT_RO on lists, sets and sorted sets, as Redis's sort.c: BY (a pattern without
//! `*` means "don't sort"), LIMIT, GET (`#`, key patterns, `key->field` hash fields), ASC/DESC,
//! ALPHA (byte order: Redis collates with the C locale) and STORE.
//!
//! The elements are copied out under the key's lock, which is then released: BY and GET look
//! up other keys, each under its own shard lock (never two at once, so no lock order to
//! keep). Inside MULTI the whole transaction holds the gate, so it stays atomic there.

use std::cmp::Ordering;
use std::collections::VecDeque;

use bytes::Bytes;
use cache_store::Value;

use super::{int_arg, is, strtod, CmdError, CmdResult, Ctx, Notify};

pub mod pqsort;

/// The parsed options.
#[derive(Debug, Default)]
pub struct SortArgs {
    pub desc: bool,
    pub alpha: bool,
    pub limit: Option<(i64, i64)>,
    pub store: Option<Bytes>,
    pub by: Option<Bytes>,
    /// BY a pattern without `*`: keep the collection's order.
    pub dontsort: bool,
    pub gets: Vec<Bytes>,
}

/// Parses the words after the key as `sortCommandGeneric` does.
///
/// # Errors
/// Syntax errors, and LIMIT values that are not integers.
pub fn parse(args: &[Bytes], readonly: bool) -> Result<SortArgs, CmdError> {
    let mut s = SortArgs::default();
    let mut j = 0;
    while j < args.len() {
        let left = args.len() - j - 1;
        let w = &args[j];
        if is(w, "asc") {
            s.desc = false;
        } else if is(w, "desc") {
            s.desc = true;
        } else if is(w, "alpha") {
            s.alpha = true;
        } else if is(w, "limit") && left >= 2 {
            s.limit = Some((int_arg(&args[j + 1])?, int_arg(&args[j + 2])?));
            j += 2;
        } else if !readonly && is(w, "store") && left >= 1 {
            s.store = Some(args[j + 1].clone());
            j += 1;
        } else if is(w, "by") && left >= 1 {
            s.by = Some(args[j + 1].clone());
            s.dontsort = !args[j + 1].contains(&b'*');
            j += 1;
        } else if is(w, "get") && left >= 1 {
            s.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(s)
}

/// Where a BY/GET pattern points for one element: `#` is the element itself, else the key
/// with the first `*` replaced, and the hash field after a `->` (with something after it).
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Itself,
    Key(Vec<u8>),
    Field(Vec<u8>, Vec<u8>),
    Nothing,
}

pub fn target(pattern: &[u8], elem: &[u8]) -> Target {
    if pattern == b"#" {
        return Target::Itself;
    }
    let Some(star) = pattern.iter().position(|&c| c == b'*') else {
        return Target::Nothing;
    };
    let after = &pattern[star + 1..];
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&a| a + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(a) => (&after[..a], Some(&after[a + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(postfix);
    match field {
        Some(f) => Target::Field(key, f.to_vec()),
        None => Target::Key(key),
    }
}

/// The value a pattern gives for an element: a string key's bytes or a hash field's.
fn lookup(ctx: &Ctx<'_>, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    let (db, now) = (ctx.db(), ctx.now);
    let (key, field) = match target(pattern, elem) {
        Target::Itself => return Some(elem.to_vec()),
        Target::Nothing => return None,
        Target::Key(k) => (k, None),
        Target::Field(k, f) => (k, Some(f)),
    };
    let mut locked = ctx.store().lock(&key);
    let e = locked.get(db, &key, now)?;
    match field {
        Some(f) => e.value.as_hash()?.get(&f[..]).cloned(),
        None => e.value.as_bytes().map(<[u8]>::to_vec),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// Redis's `start`/`end` from LIMIT (an empty range when `start > end`).
pub fn limits(limit: Option<(i64, i64)>, len: i64) -> (i64, i64) {
    let (offset, count) = limit.unwrap_or((0, -1));
    let mut start = offset.max(0).min(len);
    let count = count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

/// A sort key per element.
struct Keyed {
    elem: Vec<u8>,
    score: f64,
    by: Option<Vec<u8>>,
}

/// SORT (`readonly` false) and SORT_RO.
pub fn sort(ctx: &mut Ctx<'_>, args: &[Bytes], readonly: bool) -> CmdResult {
    let mut o = parse(&args[2..], readonly)?;
    let (db, now) = (ctx.db(), ctx.now);
    let (kind, mut elems): (Kind, Vec<Vec<u8>>) = {
        let mut locked = ctx.store().lock(&args[1]);
        match locked.get(db, &args[1], now) {
            None => (Kind::List, Vec::new()),
            Some(e) => {
                if let Some(l) = e.value.as_list() {
                    (Kind::List, l.iter().cloned().collect())
                } else if let Some(s) = e.value.as_set() {
                    (Kind::Set, s.iter().map(|m| m.to_vec()).collect())
                } else if let Some(z) = e.value.as_zset() {
                    (Kind::ZSet, z.iter().map(|(m, _)| m.to_vec()).collect())
                } else {
                    return Err(CmdError::WrongType);
                }
            }
        }
    };
    // A set has no order of its own: stored results are made deterministic.
    if o.dontsort && kind == Kind::Set && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let (start, end) = limits(o.limit, elems.len() as i64);
    if o.dontsort && kind != Kind::Set && o.desc {
        elems.reverse();
    }
    let mut bad_score = false;
    if !o.dontsort {
        let mut keyed: Vec<Keyed> = Vec::with_capacity(elems.len());
        for elem in elems {
            let byval = match &o.by {
                Some(p) => lookup(ctx, p, &elem),
                None => None,
            };
            let mut k = Keyed {
                elem,
                score: 0.0,
                by: None,
            };
            if o.alpha {
                k.by = byval;
            } else {
                let v = if o.by.is_some() {
                    byval
                } else {
                    Some(k.elem.clone())
                };
                if let Some(v) = v {
                    let (score, used, range) = strtod(&v);
                    if used != v.len() || range || score.is_nan() {
                        bad_score = true;
                    }
                    k.score = score;
                }
            }
            keyed.push(k);
        }
        let (alpha, by, desc) = (o.alpha, o.by.is_some(), o.desc);
        let cmp = |x: &Keyed, y: &Keyed| {
            let c = if !alpha {
                x.score
                    .partial_cmp(&y.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| x.elem.cmp(&y.elem))
            } else if by {
                x.by.cmp(&y.by)
            } else {
                x.elem.cmp(&y.elem)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        };
        if by && (start != 0 || end != keyed.len() as i64 - 1) {
            // Redis's partial sort: ties between equal BY values land where its swaps put
            // them.
            pqsort::pqsort(&mut keyed, &cmp, start, end);
        } else {
            // Stable, as glibc's qsort (a merge sort) is for the ties Redis leaves equal.
            keyed.sort_by(cmp);
        }
        elems = keyed.into_iter().map(|k| k.elem).collect();
    }
    if bad_score {
        return Err(CmdError::Msg(
            "ERR One or more scores can't be converted into double",
        ));
    }
    let rows: &[Vec<u8>] = if start <= end {
        &elems[start as usize..=end as usize]
    } else {
        &[]
    };
    let Some(dst) = o.store.clone() else {
        let per_row = o.gets.len().max(1);
        ctx.out.array(rows.len() * per_row);
        for elem in rows {
            if o.gets.is_empty() {
                ctx.out.bulk(elem);
            }
            for p in &o.gets {
                match lookup(ctx, p, elem) {
                    Some(v) => ctx.out.bulk(&v),
                    None => ctx.out.null(),
                }
            }
        }
        return Ok(());
    };
    let mut list = VecDeque::new();
    for elem in rows {
        if o.gets.is_empty() {
            list.push_back(elem.clone());
        }
        for p in &o.gets {
            list.push_back(lookup(ctx, p, elem).unwrap_or_default());
        }
    }
    let len = list.len();
    super::store_result(
        ctx,
        &dst,
        len,
        Value::from_list(list),
        Notify::LIST,
        "sortstore",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(target(b"#", b"x"), Target::Itself);
        assert_eq!(target(b"nostar", b"x"), Target::Nothing);
        assert_eq!(target(b"w_*", b"x"), Target::Key(b"w_x".to_vec()));
        assert_eq!(target(b"a*b", b"x"), Target::Key(b"axb".to_vec()));
        assert_eq!(
            target(b"h_*->f", b"x"),
            Target::Field(b"h_x".to_vec(), b"f".to_vec())
        );
        // An arrow with nothing after it is part of the key name.
        assert_eq!(target(b"h_*->", b"x"), Target::Key(b"h_x->".to_vec()));
        assert_eq!(
            target(b"h_*_s->f->g", b"x"),
            Target::Field(b"h_x_s".to_vec(), b"f->g".to_vec())
        );
    }

    #[test]
    fn limits_as_redis() {
        assert_eq!(limits(None, 5), (0, 4));
        assert_eq!(limits(Some((1, 2)), 5), (1, 2));
        assert_eq!(limits(Some((-3, 2)), 5), (0, 1));
        assert_eq!(limits(Some((10, 2)), 5), (4, 3));
        assert_eq!(limits(Some((2, 100)), 5), (2, 4));
        assert_eq!(limits(Some((0, 0)), 5), (0, -1));
        assert_eq!(limits(None, 0), (-1, -2));
    }
}
