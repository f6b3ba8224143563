//! The write-back journal: an append-only log of key states on local disk, so a write that
//! was acknowledged before it reached the database survives `kill -9` (and, with
//! `appendfsync always`, a power cut).
//!
//! ```text
//!  dir/journal-0000000000000007.log   segment: record*
//!  record = len (u32 LE) · crc32c(payload) (u32 LE) · payload
//!  payload = seq (u64) · tag (u8: put, delete, flushdb, flushall) · db (u32)
//!            · key len (u32) · key · kind (i16) · expires_at (u64) · value
//! ```
//!
//! Records are appended to a buffer under the engine's order lock (so their order is the
//! order the node executed the writes) and written to the file before the client's reply.
//! Reading stops at the first record that is short (a torn write at a crash) or whose CRC does
//! not match. A segment is deleted once every record in it is committed to the database.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::{Row, Write};

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
/// Longest record accepted when reading: anything longer is a corrupt length.
const MAX_RECORD: usize = 1 << 30;
/// A segment is closed for a new one past this size.
const SEGMENT_BYTES: u64 = 64 << 20;

const TAG_PUT: u8 = 0;
const TAG_DELETE: u8 = 1;
const TAG_FLUSHDB: u8 = 2;
const TAG_FLUSHALL: u8 = 3;

/// Appends one framed record for `write` to `out`.
pub fn encode_record(seq: u64, write: &Write, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&seq.to_le_bytes());
    let (tag, db, key, row): (u8, u32, &[u8], Option<&Row>) = match write {
        Write::Put { db, key, row } => (TAG_PUT, *db, key, Some(row)),
        Write::Delete { db, key } => (TAG_DELETE, *db, key, None),
        Write::FlushDb(db) => (TAG_FLUSHDB, *db, &[], None),
        Write::FlushAll => (TAG_FLUSHALL, 0, &[], None),
    };
    out.push(tag);
    out.extend_from_slice(&db.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    let (kind, expires, value) =
        row.map_or((0, 0, &[][..]), |r| (r.kind, r.expires_at, &r.value[..]));
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(value);
    let payload_len = out.len() - start - 8;
    let crc = CRC.checksum(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Why reading a segment stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The file ends inside a record: a write torn by a crash.
    Torn { offset: usize },
    /// A record's checksum does not match its bytes.
    Crc { offset: usize },
    /// A record checks out but does not parse (a bug or a foreign file).
    Malformed { offset: usize },
}

/// Decodes every whole, intact record of `buf` in order; says where and why it stopped early.
pub fn decode_records(buf: &[u8]) -> (Vec<(u64, Write)>, Option<Stop>) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        if buf.len() - pos < 8 {
            return (out, Some(Stop::Torn { offset: pos }));
        }
        let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4"));
        if len > MAX_RECORD {
            return (out, Some(Stop::Crc { offset: pos }));
        }
        if buf.len() - pos - 8 < len {
            return (out, Some(Stop::Torn { offset: pos }));
        }
        let payload = &buf[pos + 8..pos + 8 + len];
        if CRC.checksum(payload) != crc {
            return (out, Some(Stop::Crc { offset: pos }));
        }
        match parse_payload(payload) {
            Some(rec) => out.push(rec),
            None => return (out, Some(Stop::Malformed { offset: pos })),
        }
        pos += 8 + len;
    }
    (out, None)
}

fn parse_payload(p: &[u8]) -> Option<(u64, Write)> {
    let seq = u64::from_le_bytes(p.get(0..8)?.try_into().ok()?);
    let tag = *p.get(8)?;
    let db = u32::from_le_bytes(p.get(9..13)?.try_into().ok()?);
    let klen = u32::from_le_bytes(p.get(13..17)?.try_into().ok()?) as usize;
    let key = p.get(17..17usize.checked_add(klen)?)?.to_vec();
    let rest = &p[17 + klen..];
    let kind = i16::from_le_bytes(rest.get(0..2)?.try_into().ok()?);
    let expires_at = u64::from_le_bytes(rest.get(2..10)?.try_into().ok()?);
    let value = rest.get(10..)?.to_vec();
    let write = match tag {
        TAG_PUT => Write::Put {
            db,
            key,
            row: Row {
                kind,
                value,
                expires_at,
            },
        },
        TAG_DELETE => Write::Delete { db, key },
        TAG_FLUSHDB => Write::FlushDb(db),
        TAG_FLUSHALL => Write::FlushAll,
        _ => return None,
    };
    Some((seq, write))
}

struct Segment {
    index: u64,
    /// Highest sequence number written to it (0 = none).
    max_seq: u64,
    bytes: u64,
}

struct Files {
    current: File,
    /// A segment closed since the last fsync: the next [`Journal::sync`] syncs it too, and
    /// the directory (so the new segment's name survives a power cut).
    closed_unsynced: Vec<File>,
    segments: Vec<Segment>,
    /// Sequence number of the last record written to the file (not only buffered).
    written_seq: u64,
}

struct Buffer {
    bytes: Vec<u8>,
    last_seq: u64,
}

/// The journal of one node's `dir`.
pub struct Journal {
    dir: PathBuf,
    files: Mutex<Files>,
    buffer: Mutex<Buffer>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("journal-{index:016}.log"))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What opening a journal found.
pub struct Replay {
    /// Every intact record of the existing segments, in order.
    pub records: Vec<(u64, Write)>,
    /// Segments whose reading stopped early, and why.
    pub stops: Vec<(PathBuf, Stop)>,
}

impl Journal {
    /// Opens the journal in `dir` (created if missing): reads what the existing segments
    /// hold and starts a new segment after them.
    ///
    /// # Errors
    /// When the directory or a segment cannot be read, or the new segment not created.
    pub fn open(dir: &Path) -> std::io::Result<(Journal, Replay)> {
        std::fs::create_dir_all(dir)?;
        let mut indexes: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("journal-")?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect();
        indexes.sort_unstable();
        let mut replay = Replay {
            records: Vec::new(),
            stops: Vec::new(),
        };
        let mut segments = Vec::new();
        for &index in &indexes {
            let path = segment_path(dir, index);
            let mut buf = Vec::new();
            File::open(&path)?.read_to_end(&mut buf)?;
            let (records, stop) = decode_records(&buf);
            if let Some(stop) = stop {
                replay.stops.push((path, stop));
            }
            let max_seq = records.iter().map(|(s, _)| *s).max().unwrap_or(0);
            replay.records.extend(records);
            segments.push(Segment {
                index,
                max_seq,
                bytes: buf.len() as u64,
            });
        }
        let next = indexes.last().map_or(1, |i| i + 1);
        let current = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(dir, next))?;
        sync_dir(dir);
        segments.push(Segment {
            index: next,
            max_seq: 0,
            bytes: 0,
        });
        let last_seq = replay.records.iter().map(|(s, _)| *s).max().unwrap_or(0);
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                files: Mutex::new(Files {
                    current,
                    closed_unsynced: Vec::new(),
                    segments,
                    written_seq: last_seq,
                }),
                buffer: Mutex::new(Buffer {
                    bytes: Vec::new(),
                    last_seq,
                }),
            },
            replay,
        ))
    }

    /// Buffers a record (call in the order the writes happened).
    pub fn append(&self, seq: u64, write: &Write) {
        let mut b = lock(&self.buffer);
        encode_record(seq, write, &mut b.bytes);
        b.last_seq = seq;
    }

    /// Writes the buffered records to the file (not yet synced); returns the sequence number
    /// the file now holds up to.
    ///
    /// # Errors
    /// When the write fails (the records stay buffered).
    pub fn write_out(&self) -> std::io::Result<u64> {
        let mut files = lock(&self.files);
        self.write_locked(&mut files)
    }

    fn write_locked(&self, files: &mut Files) -> std::io::Result<u64> {
        let (bytes, last_seq) = {
            let mut b = lock(&self.buffer);
            if b.bytes.is_empty() {
                return Ok(files.written_seq);
            }
            (std::mem::take(&mut b.bytes), b.last_seq)
        };
        if let Err(e) = files.current.write_all(&bytes) {
            // Put them back in front of anything buffered since, to retry in order.
            let mut b = lock(&self.buffer);
            let later = std::mem::replace(&mut b.bytes, bytes);
            b.bytes.extend_from_slice(&later);
            return Err(e);
        }
        files.written_seq = last_seq;
        let seg = files.segments.last_mut().expect("a current segment");
        seg.bytes += bytes.len() as u64;
        seg.max_seq = last_seq;
        Ok(last_seq)
    }

    /// Writes out and fsyncs what is buffered; returns the sequence number now durable. The
    /// fsync runs outside the lock, so appends and writes go on meanwhile.
    ///
    /// # Errors
    /// When the write or the fsync fails.
    pub fn sync(&self) -> std::io::Result<u64> {
        let (file, closed, seq) = {
            let mut files = lock(&self.files);
            let seq = self.write_locked(&mut files)?;
            (
                files.current.try_clone()?,
                std::mem::take(&mut files.closed_unsynced),
                seq,
            )
        };
        if !closed.is_empty() {
            for f in &closed {
                f.sync_data()?;
            }
            sync_dir(&self.dir);
        }
        file.sync_data()?;
        Ok(seq)
    }

    /// Starts a new segment when the current one is big, or when `all_committed` and it is
    /// not empty; then deletes every closed segment whose records all have a sequence number
    /// below `min_uncommitted`.
    ///
    /// # Errors
    /// When the new segment cannot be created.
    pub fn rotate(&self, min_uncommitted: u64, all_committed: bool) -> std::io::Result<()> {
        let mut files = lock(&self.files);
        self.write_locked(&mut files)?;
        let cur = files.segments.last().expect("a current segment");
        if cur.bytes >= SEGMENT_BYTES || (all_committed && cur.bytes > 0) {
            let next = cur.index + 1;
            // No fsync here (writers wait on this lock before their replies): the fsync
            // policy's next sync covers the closed segment and the directory.
            let new = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, next))?;
            let old = std::mem::replace(&mut files.current, new);
            files.closed_unsynced.push(old);
            files.segments.push(Segment {
                index: next,
                max_seq: 0,
                bytes: 0,
            });
        }
        let last = files.segments.len() - 1;
        let mut doomed = Vec::new();
        let mut i = 0;
        files.segments.retain(|s| {
            let keep = i == last || (s.max_seq >= min_uncommitted && s.max_seq != 0);
            i += 1;
            if !keep {
                doomed.push(s.index);
            }
            keep
        });
        drop(files);
        // Outside the lock: segment numbers only grow, so nothing reuses these names.
        for index in &doomed {
            let _ = std::fs::remove_file(segment_path(&self.dir, *index));
        }
        if !doomed.is_empty() {
            sync_dir(&self.dir);
        }
        Ok(())
    }

    /// Bytes in all segments on disk (INFO's journal size).
    pub fn bytes(&self) -> u64 {
        lock(&self.files).segments.iter().map(|s| s.bytes).sum()
    }

    /// The highest sequence number in the file or its buffer.
    pub fn last_seq(&self) -> u64 {
        lock(&self.buffer).last_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "ferrocache-journal-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn put(k: &str, v: &str) -> Write {
        Write::Put {
            db: 3,
            key: k.into(),
            row: Row {
                kind: 0,
                value: v.into(),
                expires_at: 1234,
            },
        }
    }

    #[test]
    fn records_round_trip() {
        let writes = vec![
            put("a", "1"),
            Write::Delete {
                db: 1,
                key: "b".into(),
            },
            Write::FlushDb(4),
            Write::FlushAll,
        ];
        let mut buf = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            encode_record(i as u64 + 1, w, &mut buf);
        }
        let (got, stop) = decode_records(&buf);
        assert_eq!(stop, None);
        assert_eq!(got.into_iter().map(|(_, w)| w).collect::<Vec<_>>(), writes);
    }

    #[test]
    fn a_torn_tail_record_is_ignored() {
        let mut buf = Vec::new();
        encode_record(1, &put("a", "1"), &mut buf);
        let whole = buf.len();
        encode_record(2, &put("b", "2"), &mut buf);
        for cut in whole..buf.len() {
            let (got, stop) = decode_records(&buf[..cut]);
            assert_eq!(got.len(), 1, "cut at {cut}");
            assert_eq!(got[0].0, 1);
            if cut > whole {
                assert_eq!(stop, Some(Stop::Torn { offset: whole }));
            }
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_crc() {
        let mut buf = Vec::new();
        encode_record(1, &put("a", "1"), &mut buf);
        let second = buf.len();
        encode_record(2, &put("b", "2"), &mut buf);
        encode_record(3, &put("c", "3"), &mut buf);
        buf[second + 12] ^= 0x40;
        let (got, stop) = decode_records(&buf);
        assert_eq!(got.len(), 1);
        assert_eq!(stop, Some(Stop::Crc { offset: second }));
    }

    #[test]
    fn replay_after_reopen_and_rotation_deletes_committed_segments() {
        let dir = temp_dir();
        {
            let (j, replay) = Journal::open(&dir).unwrap();
            assert!(replay.records.is_empty());
            j.append(1, &put("a", "1"));
            j.append(2, &put("a", "2"));
            j.write_out().unwrap();
            // A crash here: nothing was committed.
        }
        // A torn record at the end of the first segment, as a crash mid-write leaves.
        let first = segment_path(&dir, 1);
        let mut f = OpenOptions::new().append(true).open(&first).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (j, replay) = Journal::open(&dir).unwrap();
        assert_eq!(
            replay.records.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(replay.stops.len(), 1);
        assert_eq!(j.last_seq(), 2);
        j.append(3, &put("b", "3"));
        j.sync().unwrap();
        // Everything below 3 committed: segment 1 goes, the current one (holding 3) stays.
        j.rotate(3, false).unwrap();
        assert!(!first.exists());
        assert!(segment_path(&dir, 2).exists());
        // All committed: a fresh segment is started and the old one removed.
        j.rotate(4, true).unwrap();
        assert!(!segment_path(&dir, 2).exists());
        assert!(segment_path(&dir, 3).exists());
        drop(j);
        let (_, replay) = Journal::open(&dir).unwrap();
        assert!(replay.records.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
