//! The backing store: the database a node sits in front of. Read-through on a miss,
//! write-through (the reply waits for the database's commit) or write-back (the reply goes at
//! once; a local journal makes the write survive `kill -9` until a coalescing queue flushes it).
//!
//! ```text
//!  node threads (sync, under the engine's order lock)        engine thread (tokio)
//!  write command ─► new state of each changed key ─┬─► write-through queue ─► writer task ──► one
//!                                                  │     (group commit; reply waits)        transaction
//!                                                  └─► journal (append, fsync policy) ─┐    per batch
//!                                                      coalescing queue (per key) ─────┴─► flusher task
//!  miss ─► single-flight load ─────────────────────────────────────────────────────► Store::load
//!  change feed (PostgreSQL LISTEN) ─► invalidate callback ─► node drops the key
//! ```
//!
//! This crate knows values and rows, not sockets: the node hands it encoded key states and a
//! callback that installs loaded rows into its keyspace.

pub mod encoding;
pub mod engine;
pub mod feed;
pub mod journal;
pub mod mapping;
pub mod postgres;
pub mod sqlite;

use std::time::Duration;

pub use encoding::Kind;
pub use engine::{Engine, EngineConfig, Fsync, Installer, Mode, Pending, StatsSnapshot};
pub use mapping::Mapping;

/// A key's stored state: its kind, its encoded value and its absolute expiry (Unix ms, 0 =
/// none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: i16,
    pub value: Vec<u8>,
    pub expires_at: u64,
}

/// One change for the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put { db: u32, key: Vec<u8>, row: Row },
    Delete { db: u32, key: Vec<u8> },
    FlushDb(u32),
    FlushAll,
}

impl Write {
    /// The key a write is about, if any.
    pub fn key(&self) -> Option<(u32, &[u8])> {
        match self {
            Write::Put { db, key, .. } | Write::Delete { db, key } => Some((*db, key)),
            _ => None,
        }
    }
}

/// Why a database operation failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackingError {
    /// Connection lost, timeout, lock wait: worth retrying. Otherwise the database refused the
    /// statement itself (a constraint, a bad column) and a retry would fail the same way.
    pub transient: bool,
    pub message: String,
}

impl BackingError {
    pub fn transient(message: impl Into<String>) -> Self {
        BackingError {
            transient: true,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        BackingError {
            transient: false,
            message: message.into(),
        }
    }
}

/// What every store does. Implementations are cheap to share (`Arc`) and safe to call from
/// several tasks at once.
#[allow(async_fn_in_trait)]
pub trait Backing: Send + Sync + 'static {
    /// The live row of `key` in `db`, if any (rows expired at `now_ms` are not returned).
    ///
    /// # Errors
    /// When the database cannot be reached or refuses the query.
    async fn load(&self, db: u32, key: &[u8], now_ms: u64) -> Result<Option<Row>, BackingError>;

    /// Applies `writes` in order in ONE transaction: all or nothing.
    ///
    /// # Errors
    /// When the transaction fails; nothing of it is applied then.
    async fn apply(&self, writes: &[Write]) -> Result<(), BackingError>;

    /// Deletes rows of the generic table that expired before `now_ms`; returns how many.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    async fn purge_expired(&self, now_ms: u64) -> Result<u64, BackingError>;

    /// Whether the database answers.
    ///
    /// # Errors
    /// When it does not.
    async fn health(&self) -> Result<(), BackingError>;
}

/// The configured store: PostgreSQL or SQLite.
pub enum AnyStore {
    Postgres(postgres::Postgres),
    Sqlite(sqlite::Sqlite),
}

impl AnyStore {
    /// Opens the store a URL names (`postgres://...`, `sqlite:PATH`), creating the generic
    /// table if it is missing. `origin` tags this node's PostgreSQL sessions for the change
    /// feed (empty = none).
    ///
    /// # Errors
    /// A URL of no known scheme, or a database that refuses the table.
    pub async fn open(
        url: &str,
        table: &str,
        mappings: Vec<Mapping>,
        timeout: Duration,
        durable: bool,
        origin: &str,
    ) -> Result<AnyStore, BackingError> {
        check_identifier(table)?;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(AnyStore::Postgres(
                postgres::Postgres::open(url, table, mappings, timeout, origin).await?,
            ))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            Ok(AnyStore::Sqlite(
                sqlite::Sqlite::open(path, table, mappings, timeout, durable).await?,
            ))
        } else {
            Err(BackingError::refused(format!(
                "backing-url must start with postgres:// or sqlite: (got '{url}')"
            )))
        }
    }

    /// `postgres` or `sqlite`, for INFO.
    pub fn name(&self) -> &'static str {
        match self {
            AnyStore::Postgres(_) => "postgres",
            AnyStore::Sqlite(_) => "sqlite",
        }
    }
}

impl Backing for AnyStore {
    async fn load(&self, db: u32, key: &[u8], now_ms: u64) -> Result<Option<Row>, BackingError> {
        match self {
            AnyStore::Postgres(s) => s.load(db, key, now_ms).await,
            AnyStore::Sqlite(s) => s.load(db, key, now_ms).await,
        }
    }

    async fn apply(&self, writes: &[Write]) -> Result<(), BackingError> {
        match self {
            AnyStore::Postgres(s) => s.apply(writes).await,
            AnyStore::Sqlite(s) => s.apply(writes).await,
        }
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<u64, BackingError> {
        match self {
            AnyStore::Postgres(s) => s.purge_expired(now_ms).await,
            AnyStore::Sqlite(s) => s.purge_expired(now_ms).await,
        }
    }

    async fn health(&self) -> Result<(), BackingError> {
        match self {
            AnyStore::Postgres(s) => s.health().await,
            AnyStore::Sqlite(s) => s.health().await,
        }
    }
}

/// Table and column names go into SQL text: only plain identifiers (optionally
/// `schema.table`) are accepted, so a configuration value can never inject SQL.
///
/// # Errors
/// When `name` is not such an identifier.
pub fn check_identifier(name: &str) -> Result<(), BackingError> {
    let ok = !name.is_empty()
        && name.split('.').count() <= 2
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !part.as_bytes()[0].is_ascii_digit()
        });
    if ok {
        Ok(())
    } else {
        Err(BackingError::refused(format!(
            "'{name}' is not a plain table or column name"
        )))
    }
}

/// A flush at the start of a [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    Db(u32),
    All,
}

/// Part of a batch: an optional flush, then the last state of each key written after it.
#[derive(Debug)]
pub(crate) struct Segment<'a> {
    pub flush: Option<Flush>,
    pub writes: Vec<&'a Write>,
}

/// Groups writes into segments that one transaction applies in order (the states of a key
/// in between are never visible outside the transaction, so only its last one counts).
pub(crate) fn segments(writes: &[Write]) -> Vec<Segment<'_>> {
    type Keys<'a> = indexmap::IndexMap<(u32, &'a [u8]), &'a Write>;
    let mut out: Vec<(Option<Flush>, Keys<'_>)> = vec![(None, Keys::new())];
    for w in writes {
        match w {
            Write::FlushDb(db) => out.push((Some(Flush::Db(*db)), Keys::new())),
            Write::FlushAll => out.push((Some(Flush::All), Keys::new())),
            Write::Put { db, key, .. } | Write::Delete { db, key } => {
                let last = out.last_mut().expect("one segment at least");
                last.1.insert((*db, key), w);
            }
        }
    }
    out.into_iter()
        .filter(|(f, m)| f.is_some() || !m.is_empty())
        .map(|(flush, mut m)| {
            // Key order: neighbouring rows share b-tree pages (SQLite touches each page once
            // per run instead of hopping), and concurrent PostgreSQL transactions lock rows in
            // one order. One write per key remains, so the order between keys is free.
            m.sort_unstable_keys();
            Segment {
                flush,
                writes: m.into_values().collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(check_identifier("ferrocache_kv").is_ok());
        assert!(check_identifier("app.users").is_ok());
        assert!(check_identifier("users; drop table x").is_err());
        assert!(check_identifier("1abc").is_err());
        assert!(check_identifier("a.b.c").is_err());
        assert!(check_identifier("").is_err());
    }

    #[test]
    fn segments_keep_last_state_per_key_between_flushes() {
        let put = |k: &str, v: u8| Write::Put {
            db: 0,
            key: k.into(),
            row: Row {
                kind: 0,
                value: vec![1, v],
                expires_at: 0,
            },
        };
        let writes = vec![
            put("a", 1),
            put("b", 1),
            put("a", 2),
            Write::FlushDb(0),
            put("a", 3),
            Write::Delete {
                db: 0,
                key: "a".into(),
            },
        ];
        let segs = segments(&writes);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].flush, None);
        assert_eq!(segs[0].writes, vec![&put("a", 2), &put("b", 1)]);
        assert_eq!(segs[1].flush, Some(Flush::Db(0)));
        assert_eq!(segs[1].writes, vec![&writes[5]]);
    }
}
