//! Streams in RDB form (types 15 and 19): the listpack nodes keyed by their master ID, the
//! counters, then the consumer groups with their pending entries and consumers.
//!
//! A node's listpack (t_stream.c):
//!
//! ```text
//! master: <live count> <deleted count> <n fields> <field>... <0>
//! entry:  <flags> <ms - master ms> <seq - master seq> [<n fields>] (<field> <value> | <value>)... <lp-count>
//! ```
//!
//! `flags` 1 = deleted, 2 = same fields as the master (then only values follow).

use std::collections::BTreeSet;

use cache_store::stream::{Consumer, Group, Nack};
use cache_store::{Stream, StreamId};

use crate::encoding::{
    read_len, read_ms, read_string, write_blob, write_len, write_ms, write_raw_string,
};
use crate::input::Input;
use crate::listpack::{self, Item};
use crate::Error;

const FLAG_DELETED: i64 = 1;
const FLAG_SAME_FIELDS: i64 = 2;

fn id_from_raw(raw: &[u8]) -> Result<StreamId, Error> {
    if raw.len() != 16 {
        return Err(Error::BadFormat("stream ID of the wrong size"));
    }
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&raw[..8]);
    seq.copy_from_slice(&raw[8..]);
    Ok(StreamId::new(
        u64::from_be_bytes(ms),
        u64::from_be_bytes(seq),
    ))
}

fn id_to_raw(id: StreamId) -> [u8; 16] {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&id.ms.to_be_bytes());
    raw[8..].copy_from_slice(&id.seq.to_be_bytes());
    raw
}

fn read_id(input: &mut Input<'_>) -> Result<StreamId, Error> {
    Ok(StreamId::new(read_len(input)?, read_len(input)?))
}

/// Reads a stream; `v2` for type 19, which adds the first and max-deleted IDs, the
/// entries-added counter and each group's entries-read.
pub fn read(input: &mut Input<'_>, v2: bool) -> Result<Stream, Error> {
    let bad = Error::BadFormat;
    let mut s = Stream::default();
    let nodes = {
        let n = read_len(input)?;
        input.check_count(n, 2)?
    };
    let mut previous: Option<StreamId> = None;
    for _ in 0..nodes {
        let master_id = id_from_raw(&read_string(input)?)?;
        if previous.is_some_and(|p| p >= master_id) {
            return Err(bad("stream nodes out of order"));
        }
        previous = Some(master_id);
        let blob = read_string(input)?;
        read_node(&mut s, master_id, &blob)?;
    }
    let length = read_len(input)?;
    let last_id = read_id(input)?;
    let (first_id, max_deleted, entries_added) = if v2 {
        (read_id(input)?, read_id(input)?, read_len(input)?)
    } else {
        (
            s.edge_id(true).unwrap_or(StreamId::MIN),
            StreamId::MIN,
            length,
        )
    };
    if length != s.len() {
        return Err(bad("stream length does not match its entries"));
    }
    s.last_id = last_id;
    s.first_id = first_id;
    s.max_deleted_id = max_deleted;
    s.entries_added = entries_added;

    let groups = {
        let n = read_len(input)?;
        input.check_count(n, 3)?
    };
    for _ in 0..groups {
        let name: Box<[u8]> = read_string(input)?.into_owned().into_boxed_slice();
        let group_last = read_id(input)?;
        let entries_read = if v2 {
            read_len(input)? as i64
        } else {
            s.estimate_distance(group_last)
        };
        let mut group = Group::new(group_last, entries_read);
        let pending = {
            let n = read_len(input)?;
            input.check_count(n, 25)?
        };
        for _ in 0..pending {
            let id = id_from_raw(input.take(16)?)?;
            let delivery_time = read_ms(input)?;
            let delivery_count = read_len(input)?;
            let nack = Nack {
                consumer: Box::default(),
                delivery_time,
                delivery_count,
            };
            if group.pel.insert(id, nack).is_some() {
                return Err(bad("duplicate pending entry"));
            }
        }
        let consumers = {
            let n = read_len(input)?;
            input.check_count(n, 10)?
        };
        for _ in 0..consumers {
            let cname: Box<[u8]> = read_string(input)?.into_owned().into_boxed_slice();
            let seen_time = read_ms(input)?;
            let owned = {
                let n = read_len(input)?;
                input.check_count(n, 16)?
            };
            let mut pel = BTreeSet::new();
            for _ in 0..owned {
                let id = id_from_raw(input.take(16)?)?;
                let nack = group
                    .pel
                    .get_mut(&id)
                    .ok_or(bad("consumer's pending entry is not in the group's"))?;
                if !nack.consumer.is_empty() {
                    return Err(bad("pending entry owned twice"));
                }
                nack.consumer = cname.clone();
                pel.insert(id);
            }
            if group
                .consumers
                .insert(cname, Consumer { seen_time, pel })
                .is_some()
            {
                return Err(bad("duplicate consumer"));
            }
        }
        if group.pel.values().any(|n| n.consumer.is_empty()) {
            return Err(bad("pending entry without a consumer"));
        }
        if s.groups.insert(name, group).is_some() {
            return Err(bad("duplicate consumer group"));
        }
    }
    Ok(s)
}

fn read_node(s: &mut Stream, master_id: StreamId, blob: &[u8]) -> Result<(), Error> {
    let bad = Error::BadFormat;
    let mut items = listpack::iter(blob)?;
    let mut next =
        || -> Result<Item<'_>, Error> { items.next().ok_or(bad("stream node ends early"))? };
    let live = next()?.int()?;
    let deleted = next()?.int()?;
    let nfields = next()?.int()?;
    if live < 0 || deleted < 0 || !(0..=blob.len() as i64).contains(&nfields) {
        return Err(bad("stream node header"));
    }
    let mut master = Vec::with_capacity(nfields as usize);
    for _ in 0..nfields {
        master.push(next()?.bytes());
    }
    if next()?.int()? != 0 {
        return Err(bad("stream master entry terminator"));
    }
    let master_refs: Vec<&[u8]> = master.iter().map(|f| &f[..]).collect();
    s.open_block(master_id, &master_refs);
    let (mut seen_live, mut seen_deleted) = (0, 0);
    loop {
        let flags = match items.next() {
            None => break,
            Some(item) => item?.int()?,
        };
        let mut next =
            || -> Result<Item<'_>, Error> { items.next().ok_or(bad("stream entry ends early"))? };
        let ms = master_id
            .ms
            .checked_add(next()?.int()? as u64)
            .ok_or(bad("stream entry ID"))?;
        let seq = master_id
            .seq
            .checked_add(next()?.int()? as u64)
            .ok_or(bad("stream entry ID"))?;
        let mut pairs: Vec<crate::compact::Pair<'_>> = Vec::new();
        let count = if flags & FLAG_SAME_FIELDS != 0 {
            for f in &master {
                pairs.push((std::borrow::Cow::Borrowed(&f[..]), next()?.bytes()));
            }
            master.len() as i64 + 3
        } else {
            let n = next()?.int()?;
            if !(0..=blob.len() as i64).contains(&n) {
                return Err(bad("stream entry field count"));
            }
            for _ in 0..n {
                let f = next()?.bytes();
                let v = next()?.bytes();
                pairs.push((f, v));
            }
            2 * n + 4
        };
        if next()?.int()? != count {
            return Err(bad("stream entry lp-count"));
        }
        let is_deleted = flags & FLAG_DELETED != 0;
        if is_deleted {
            seen_deleted += 1;
        } else {
            seen_live += 1;
        }
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(f, v)| (&f[..], &v[..])).collect();
        s.push_stored(StreamId::new(ms, seq), is_deleted, &refs);
    }
    if seen_live != live || seen_deleted != deleted {
        return Err(bad("stream node counts"));
    }
    if live == 0 {
        return Err(bad("empty stream node"));
    }
    Ok(())
}

/// Writes a stream as type 19.
pub fn write(out: &mut Vec<u8>, s: &Stream, compress: bool) {
    write_len(out, s.block_count() as u64);
    for block in s.blocks() {
        let master_id = block.master_id;
        let mut lp = listpack::Writer::new();
        lp.push_int(i64::from(block.live()));
        lp.push_int(i64::from(block.deleted()));
        lp.push_int(block.master_count() as i64);
        for f in block.master_fields() {
            lp.push(f);
        }
        lp.push_int(0);
        for e in block.entries() {
            let mut flags = 0;
            if e.deleted {
                flags |= FLAG_DELETED;
            }
            if e.same_fields {
                flags |= FLAG_SAME_FIELDS;
            }
            lp.push_int(flags);
            lp.push_int(e.id.ms.wrapping_sub(master_id.ms) as i64);
            lp.push_int(e.id.seq.wrapping_sub(master_id.seq) as i64);
            let n = e.entry.len() as i64;
            if e.same_fields {
                for (_, v) in e.entry.pairs() {
                    lp.push(v);
                }
                lp.push_int(n + 3);
            } else {
                lp.push_int(n);
                for (f, v) in e.entry.pairs() {
                    lp.push(f);
                    lp.push(v);
                }
                lp.push_int(2 * n + 4);
            }
        }
        write_raw_string(out, &id_to_raw(master_id));
        write_blob(out, &lp.finish(), compress);
    }
    write_len(out, s.len());
    for id in [s.last_id, s.first_id, s.max_deleted_id] {
        write_len(out, id.ms);
        write_len(out, id.seq);
    }
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        write_raw_string(out, name);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            out.extend_from_slice(&id_to_raw(*id));
            write_ms(out, nack.delivery_time);
            write_len(out, nack.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            write_raw_string(out, cname);
            write_ms(out, c.seen_time);
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id_to_raw(*id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{read_value, value_type, write_value};
    use cache_store::Value;

    /// DUMP on Redis 7.0.15 of: XADD x 1-1 f v; XADD x 1-2 f w; XGROUP CREATE x g 0;
    /// XREADGROUP GROUP g c COUNT 1 STREAMS x > (version and checksum cut off).
    const REDIS_STREAM: &[u8] = b"\x13\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01((\x00\x00\x00\x0f\x00\x02\x01\x00\x01\x01\x01\x81f\x02\x00\x01\x02\x01\x00\x01\x00\x01\x81v\x02\x04\x01\x02\x01\x00\x01\x01\x01\x81w\x02\x04\x01\xff\x02\x01\x02\x01\x01\x00\x00\x02\x01\x01g\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01u\xe5\x88:\xa2\x01\x00\x00\x01\x01\x01cu\xe5\x88:\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01";

    #[test]
    fn stream_redis_wrote_loads_and_saves_the_same_bytes() {
        let mut input = Input::new(&REDIS_STREAM[1..]);
        let v = read_value(REDIS_STREAM[0], &mut input).unwrap();
        assert!(input.is_empty());
        let s = v.as_stream().unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.last_id, StreamId::new(1, 2));
        assert_eq!(
            s.get(StreamId::new(1, 2)).unwrap(),
            vec![(b"f".to_vec(), b"w".to_vec())]
        );
        let g = &s.groups[&b"g"[..]];
        assert_eq!(g.last_id, StreamId::new(1, 1));
        assert_eq!(g.entries_read, 1);
        assert_eq!(&*g.pel[&StreamId::new(1, 1)].consumer, b"c");
        let mut out = vec![value_type(&v)];
        write_value(&mut out, &v, true);
        assert_eq!(out, REDIS_STREAM);
    }

    #[test]
    fn deleted_entries_and_mixed_fields_round_trip() {
        let mut s = Stream::default();
        for i in 1..=300u64 {
            let fields: Vec<(&[u8], &[u8])> = if i % 3 == 0 {
                vec![(b"a", b"1"), (b"b", b"two")]
            } else {
                vec![(b"a", b"x")]
            };
            s.append(StreamId::new(i, 0), &fields, 100, 4096);
        }
        s.delete(&[StreamId::new(5, 0), StreamId::new(150, 0)]);
        let v = Value::from_stream(Box::new(s));
        let mut out = Vec::new();
        write_value(&mut out, &v, false);
        let back = read_value(value_type(&v), &mut Input::new(&out)).unwrap();
        let (a, b) = (v.as_stream().unwrap(), back.as_stream().unwrap());
        assert_eq!(b.len(), 298);
        assert_eq!(b.block_count(), a.block_count());
        assert_eq!(b.get(StreamId::new(3, 0)), a.get(StreamId::new(3, 0)));
        assert!(!b.contains(StreamId::new(150, 0)));
        assert_eq!(
            (b.first_id, b.last_id, b.max_deleted_id),
            (a.first_id, a.last_id, a.max_deleted_id)
        );
        let mut again = Vec::new();
        write_value(&mut again, &back, false);
        assert_eq!(again, out);
    }

    #[test]
    fn lies_in_a_stream_are_refused() {
        // Claims the 2-entry node holds 3 live entries.
        let mut bad = REDIS_STREAM.to_vec();
        bad[26] = 0x03;
        assert!(read_value(bad[0], &mut Input::new(&bad[1..])).is_err());
        assert!(read_value(bad[0], &mut Input::new(&REDIS_STREAM[1..60])).is_err());
    }
}
