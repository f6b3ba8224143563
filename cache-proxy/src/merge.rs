//! Merging the replies of a split or a fan-out into one, as the response policy says
//! (pure functions over reply bytes).

use bytes::{BufMut, Bytes, BytesMut};

use crate::plan::{Merge, SCAN_NODES};
use crate::reply;

/// One reply from the parts' replies (in part order). `positions` are the key positions each
/// part carried (only [`Merge::Values`] uses them).
pub fn merge(merge: Merge, parts: Vec<Bytes>, positions: &[Vec<usize>], resp3: bool) -> Bytes {
    let first_error = || parts.iter().find(|p| reply::is_error(p)).cloned();
    match merge {
        Merge::Values { total } => {
            let mut values: Vec<Option<Bytes>> = vec![None; total];
            for (part, positions) in parts.iter().zip(positions) {
                if reply::is_error(part) {
                    return part.clone();
                }
                let Some(elements) = reply::elements(part) else {
                    return Bytes::from_static(b"-ERR bad MGET reply from a node\r\n");
                };
                for (value, &position) in elements.into_iter().zip(positions) {
                    if let Some(slot) = values.get_mut(position) {
                        *slot = Some(value);
                    }
                }
            }
            let mut out = BytesMut::new();
            out.put_slice(format!("*{total}\r\n").as_bytes());
            for value in values {
                match value {
                    Some(v) => out.put_slice(&v),
                    None => out.put_slice(&null(resp3)),
                }
            }
            out.freeze()
        }
        Merge::Sum => {
            let mut sum = 0i64;
            for part in &parts {
                match reply::integer(part) {
                    Some(n) => sum = sum.saturating_add(n),
                    None => return part.clone(),
                }
            }
            Bytes::from(format!(":{sum}\r\n"))
        }
        Merge::AllSucceeded => first_error()
            .or_else(|| parts.first().cloned())
            .unwrap_or_else(|| Bytes::from_static(b"+OK\r\n")),
        Merge::OneSucceeded => parts
            .iter()
            .find(|p| !reply::is_error(p))
            .or(parts.first())
            .cloned()
            .unwrap_or_else(|| Bytes::from_static(b"-ERR no node is available\r\n")),
        Merge::And => {
            let mut all: Option<Vec<i64>> = None;
            for part in &parts {
                let Some(elements) = reply::elements(part) else {
                    return part.clone();
                };
                let flags: Vec<i64> = elements
                    .iter()
                    .map(|e| reply::integer(e).unwrap_or(0))
                    .collect();
                all = Some(match all {
                    None => flags,
                    Some(acc) => acc
                        .iter()
                        .zip(&flags)
                        .map(|(a, b)| i64::from(*a != 0 && *b != 0))
                        .collect(),
                });
            }
            let all = all.unwrap_or_default();
            let mut out = BytesMut::new();
            out.put_slice(format!("*{}\r\n", all.len()).as_bytes());
            for flag in all {
                out.put_slice(format!(":{flag}\r\n").as_bytes());
            }
            out.freeze()
        }
        Merge::PairSums => {
            let mut sums: Vec<(Bytes, i64)> = Vec::new();
            for part in &parts {
                let Some(elements) = reply::elements(part) else {
                    return part.clone();
                };
                for (i, pair) in elements.chunks(2).enumerate() {
                    let [name, count] = pair else { continue };
                    let count = reply::integer(count).unwrap_or(0);
                    match sums.get_mut(i) {
                        Some((_, sum)) => *sum = sum.saturating_add(count),
                        None => sums.push((name.clone(), count)),
                    }
                }
            }
            let mut out = BytesMut::new();
            out.put_slice(format!("*{}\r\n", 2 * sums.len()).as_bytes());
            for (name, sum) in sums {
                out.put_slice(&name);
                out.put_slice(format!(":{sum}\r\n").as_bytes());
            }
            out.freeze()
        }
        Merge::Max => {
            let mut max = 0i64;
            for part in &parts {
                match reply::integer(part) {
                    Some(n) => max = max.max(n),
                    None => return part.clone(),
                }
            }
            Bytes::from(format!(":{max}\r\n"))
        }
        Merge::Agree => match first_error() {
            Some(e) => e,
            None if parts.windows(2).all(|w| w[0] == w[1]) => {
                parts.into_iter().next().unwrap_or_else(|| null(resp3))
            }
            None => Bytes::from_static(b"-ERR the nodes' values differ: ask a node\r\n"),
        },
        Merge::Concat => {
            let mut all = Vec::new();
            for part in &parts {
                match reply::elements(part) {
                    Some(elements) => all.extend(elements),
                    None => return part.clone(),
                }
            }
            let mut out = BytesMut::new();
            out.put_slice(format!("*{}\r\n", all.len()).as_bytes());
            for element in all {
                out.put_slice(&element);
            }
            out.freeze()
        }
    }
}

/// An array of 0/1 (SCRIPT EXISTS) with 1 wherever `known` says so; other replies as they are.
pub fn or_known(reply: Bytes, known: &[bool]) -> Bytes {
    let Some(elements) = reply::elements(&reply) else {
        return reply;
    };
    let mut out = BytesMut::new();
    out.put_slice(format!("*{}\r\n", elements.len()).as_bytes());
    for (i, element) in elements.iter().enumerate() {
        let flag = reply::integer(element).unwrap_or(0) != 0 || known.get(i) == Some(&true);
        out.put_slice(if flag { b":1\r\n" } else { b":0\r\n" });
    }
    out.freeze()
}

/// A SCAN page of member `node` (of `members`), with the proxy's composite cursor.
pub fn scan_page(part: &Bytes, node: usize, members: &[bool]) -> Bytes {
    let Some((next, keys)) = reply::scan_page(part) else {
        return part.clone();
    };
    let next: u64 = std::str::from_utf8(&next)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let cursor = if next != 0 {
        match next.checked_mul(SCAN_NODES) {
            Some(c) => c + node as u64,
            None => return Bytes::from_static(b"-ERR node cursor too large for the proxy\r\n"),
        }
    } else {
        // Cursor 0 on the next member; member 0 is never "next".
        (node + 1..members.len())
            .find(|&n| members[n])
            .map_or(0, |n| n as u64)
    };
    scan_reply(cursor.to_string().as_bytes(), &keys)
}

/// INFO: the proxy's own text plus the nodes' summed keyspace.
pub fn info(text: &str, parts: &[Bytes], resp3: bool) -> Bytes {
    let (mut keys, mut expires) = (0u64, 0u64);
    for part in parts {
        let (k, e) = reply::keyspace_db0(part);
        keys += k;
        expires += e;
    }
    let mut full = text.to_string();
    full.push_str("\r\n# Keyspace\r\n");
    if keys > 0 {
        full.push_str(&format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n"));
    }
    reply::encode(resp3, |o| o.verbatim("txt", full.as_bytes()))
}

pub fn null(resp3: bool) -> Bytes {
    reply::encode(resp3, |o| o.null())
}

pub fn scan_reply(cursor: &[u8], keys: &[Bytes]) -> Bytes {
    reply::encode(false, |o| {
        o.array(2);
        o.bulk(cursor);
        o.array(keys.len());
        for key in keys {
            o.bulk(key);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn config_get_answers_where_the_nodes_agree() {
        let same = b("*2\r\n$2\r\nhz\r\n$2\r\n10\r\n");
        let agreed = merge(Merge::Agree, vec![same.clone(), same.clone()], &[], false);
        assert_eq!(agreed, same);
        let differ = merge(
            Merge::Agree,
            vec![same, b("*2\r\n$2\r\nhz\r\n$2\r\n50\r\n")],
            &[],
            false,
        );
        assert_eq!(
            &differ[..],
            b"-ERR the nodes' values differ: ask a node\r\n"
        );
    }

    #[test]
    fn pubsub_counts() {
        let numsub = merge(
            Merge::PairSums,
            vec![
                b("*4\r\n$1\r\na\r\n:2\r\n$1\r\nb\r\n:0\r\n"),
                b("*4\r\n$1\r\na\r\n:0\r\n$1\r\nb\r\n:1\r\n"),
            ],
            &[],
            false,
        );
        assert_eq!(&numsub[..], b"*4\r\n$1\r\na\r\n:2\r\n$1\r\nb\r\n:1\r\n");
        let numpat = merge(Merge::Max, vec![b(":1\r\n"), b(":3\r\n")], &[], false);
        assert_eq!(&numpat[..], b":3\r\n");
    }

    #[test]
    fn policies() {
        let values = merge(
            Merge::Values { total: 3 },
            vec![b("*2\r\n$1\r\na\r\n$-1\r\n"), b("*1\r\n$1\r\nb\r\n")],
            &[vec![0, 2], vec![1]],
            false,
        );
        assert_eq!(&values[..], b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n");
        assert_eq!(
            &merge(Merge::Sum, vec![b(":2\r\n"), b(":3\r\n")], &[], false)[..],
            b":5\r\n"
        );
        let failed = merge(
            Merge::AllSucceeded,
            vec![b("+OK\r\n"), b("-ERR x\r\n")],
            &[],
            false,
        );
        assert_eq!(&failed[..], b"-ERR x\r\n");
        let sha = merge(
            Merge::AllSucceeded,
            vec![b("$2\r\nab\r\n"), b("$2\r\nab\r\n")],
            &[],
            false,
        );
        assert_eq!(&sha[..], b"$2\r\nab\r\n");
        let and = merge(
            Merge::And,
            vec![b("*3\r\n:1\r\n:1\r\n:0\r\n"), b("*3\r\n:1\r\n:0\r\n:0\r\n")],
            &[],
            false,
        );
        assert_eq!(&and[..], b"*3\r\n:1\r\n:0\r\n:0\r\n");
        let one = merge(
            Merge::OneSucceeded,
            vec![b("-NOTBUSY x\r\n"), b("+OK\r\n")],
            &[],
            false,
        );
        assert_eq!(&one[..], b"+OK\r\n");
        let keys = merge(
            Merge::Concat,
            vec![b("*1\r\n$1\r\na\r\n"), b("*0\r\n")],
            &[],
            false,
        );
        assert_eq!(&keys[..], b"*1\r\n$1\r\na\r\n");
    }

    #[test]
    fn scan_cursor_carries_the_member() {
        let page = b("*2\r\n$1\r\n5\r\n*1\r\n$1\r\nk\r\n");
        let out = scan_page(&page, 2, &[true, true, true]);
        assert_eq!(
            &out[..],
            format!("*2\r\n$4\r\n{}\r\n*1\r\n$1\r\nk\r\n", 5 * SCAN_NODES + 2).as_bytes()
        );
        let done = b("*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(
            &scan_page(&done, 0, &[true, false, true])[..],
            b"*2\r\n$1\r\n2\r\n*0\r\n"
        );
        assert_eq!(
            &scan_page(&done, 2, &[true, true, true])[..],
            b"*2\r\n$1\r\n0\r\n*0\r\n"
        );
    }
}
