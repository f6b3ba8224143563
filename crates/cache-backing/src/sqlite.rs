//! SQLite: the embedded default (`sqlite:PATH`). One connection writes and one reads, each
//! on its own thread (SQLite calls block); WAL mode lets the reader run beside a write.
//!
//! ```text
//!  apply ─► channel ─► writer thread (Connection, synchronous=FULL) ─► oneshot reply
//!  load  ─► channel ─► reader thread (Connection, read only)        ─► oneshot reply
//! ```

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::mapping::{column_name, quote};
use crate::{encoding, segments, Backing, BackingError, Flush, Mapping, Row, Segment, Write};

/// A plain SQLite connection, for tests and tools that set up tables.
pub use rusqlite::Connection as RawConnection;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A SQLite file behind two worker threads.
pub struct Sqlite {
    writer: mpsc::Sender<Job>,
    reader: mpsc::Sender<Job>,
    table: String,
    mappings: Vec<Mapping>,
}

fn error(e: rusqlite::Error) -> BackingError {
    use rusqlite::ErrorCode::{
        CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure,
    };
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen
            ) =>
        {
            BackingError::transient(format!("sqlite: {e}"))
        }
        _ => BackingError::refused(format!("sqlite: {e}")),
    }
}

fn spawn_worker(name: &str, mut conn: Connection) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job(&mut conn);
            }
        })?;
    Ok(tx)
}

fn open_conn(path: &str, timeout: Duration, durable: bool) -> Result<Connection, BackingError> {
    let conn = Connection::open(path).map_err(error)?;
    conn.busy_timeout(timeout).map_err(error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(error)?;
    // 64 MiB of page cache: random-key upserts otherwise re-read b-tree pages from the OS
    // on every batch (a third of the writer's time in the benchmark).
    conn.pragma_update(None, "cache_size", -65536)
        .map_err(error)?;
    // Checkpoint every 64 MiB of WAL instead of 4: a page rewritten by many batches (random
    // keys land on every page) is copied back to the database once per checkpoint.
    conn.pragma_update(None, "wal_autocheckpoint", 16384)
        .map_err(error)?;
    // FULL: a committed batch survives a power cut, so the journal may be truncated after it.
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })
        .map_err(error)?;
    Ok(conn)
}

impl Sqlite {
    /// Opens (creating if needed) the file and the generic table.
    ///
    /// # Errors
    /// When the file cannot be opened or the table created.
    pub async fn open(
        path: &str,
        table: &str,
        mappings: Vec<Mapping>,
        timeout: Duration,
        durable: bool,
    ) -> Result<Sqlite, BackingError> {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| BackingError::refused(format!("sqlite: {path}: {e}")))?;
            }
        }
        let writer = open_conn(path, timeout, durable)?;
        writer
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} (db INTEGER NOT NULL, key BLOB NOT NULL, \
                 kind INTEGER NOT NULL, value BLOB NOT NULL, expires_at INTEGER, \
                 PRIMARY KEY (db, key)) WITHOUT ROWID; \
                 CREATE INDEX IF NOT EXISTS {} ON {} (expires_at) WHERE expires_at IS NOT NULL",
                quote(table),
                crate::mapping::expiry_index_qualified(table),
                quote(table)
            ))
            .map_err(error)?;
        let reader = open_conn(path, timeout, durable)?;
        let spawn = |name, conn| {
            spawn_worker(name, conn).map_err(|e| BackingError::refused(format!("sqlite: {e}")))
        };
        Ok(Sqlite {
            writer: spawn("ferrocache-sqlite-w", writer)?,
            reader: spawn("ferrocache-sqlite-r", reader)?,
            table: quote(table),
            mappings,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Connection) -> Result<T, BackingError> + Send + 'static,
    ) -> Result<T, BackingError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        let queue = if write { &self.writer } else { &self.reader };
        queue
            .send(job)
            .map_err(|_| BackingError::transient("sqlite worker is gone"))?;
        rx.await
            .map_err(|_| BackingError::transient("sqlite worker is gone"))?
    }
}

fn load_mapped(conn: &Connection, m: &Mapping, id: &str) -> Result<Option<Row>, BackingError> {
    let sql = format!(
        "SELECT * FROM {} WHERE {} = ?1",
        quote(&m.table),
        quote(&m.key_column)
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(error)?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let fields = stmt
        .query_row([id], |row| {
            let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                if name.eq_ignore_ascii_case(&m.key_column) {
                    continue;
                }
                use rusqlite::types::ValueRef;
                let text = match row.get_ref(i)? {
                    ValueRef::Null => continue,
                    ValueRef::Integer(v) => v.to_string().into_bytes(),
                    ValueRef::Real(v) => v.to_string().into_bytes(),
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
                };
                fields.push((name.as_bytes().to_vec(), text));
            }
            Ok(fields)
        })
        .optional()
        .map_err(error)?;
    Ok(fields.map(|f| Row {
        kind: encoding::Kind::Hash as i16,
        value: encoding::encode_hash(f.iter().map(|(a, b)| (&a[..], &b[..]))),
        expires_at: 0,
    }))
}

fn write_mapped(
    conn: &Connection,
    m: &Mapping,
    id: &str,
    row: Option<&Row>,
) -> Result<(), BackingError> {
    let (table, key_col) = (quote(&m.table), quote(&m.key_column));
    let Some(row) = row else {
        conn.execute(&format!("DELETE FROM {table} WHERE {key_col} = ?1"), [id])
            .map_err(error)?;
        return Ok(());
    };
    let fields = crate::mapping::mapped_fields(m, row)?;
    let fields: Vec<(&str, &[u8])> = fields
        .iter()
        .filter(|(f, _)| !f.eq_ignore_ascii_case(m.key_column.as_bytes()))
        .map(|(f, v)| Ok((column_name(f)?, &v[..])))
        .collect::<Result<_, BackingError>>()?;
    let mut cols = vec![key_col.clone()];
    cols.extend(fields.iter().map(|(c, _)| quote(c)));
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let update = if fields.is_empty() {
        "NOTHING".to_string()
    } else {
        format!(
            "UPDATE SET {}",
            fields
                .iter()
                .map(|(c, _)| format!("{0} = excluded.{0}", quote(c)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({key_col}) DO {update}",
        cols.join(", "),
        marks.join(", ")
    );
    let mut values: Vec<rusqlite::types::Value> = vec![id.to_string().into()];
    for (_, v) in &fields {
        values.push(match std::str::from_utf8(v) {
            Ok(t) => t.to_string().into(),
            Err(_) => v.to_vec().into(),
        });
    }
    conn.execute(&sql, rusqlite::params_from_iter(values))
        .map_err(error)?;
    Ok(())
}

fn opt_expiry(at: u64) -> Option<i64> {
    (at != 0).then_some(at as i64)
}

impl Backing for Sqlite {
    async fn load(&self, db: u32, key: &[u8], now_ms: u64) -> Result<Option<Row>, BackingError> {
        if let Some((m, id)) = Mapping::find(&self.mappings, db, key) {
            let (m, id) = (m.clone(), id.to_string());
            return self.run(false, move |c| load_mapped(c, &m, &id)).await;
        }
        let sql = format!(
            "SELECT kind, value, expires_at FROM {} WHERE db = ?1 AND key = ?2 \
             AND (expires_at IS NULL OR expires_at > ?3)",
            self.table
        );
        let key = key.to_vec();
        self.run(false, move |c| {
            c.prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![db, key, now_ms as i64], |r| {
                        Ok(Row {
                            kind: r.get(0)?,
                            value: r.get(1)?,
                            expires_at: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                        })
                    })
                    .optional()
                })
                .map_err(error)
        })
        .await
    }

    async fn apply(&self, writes: &[Write]) -> Result<(), BackingError> {
        let writes = writes.to_vec();
        let table = self.table.clone();
        let mappings = self.mappings.clone();
        self.run(true, move |c| {
            let tx = c.transaction().map_err(error)?;
            for Segment { flush, writes: items } in segments(&writes) {
                match flush {
                    Some(Flush::Db(db)) => {
                        tx.execute(&format!("DELETE FROM {table} WHERE db = ?1"), [db])
                            .map_err(error)?;
                    }
                    Some(Flush::All) => {
                        tx.execute(&format!("DELETE FROM {table}"), [])
                            .map_err(error)?;
                    }
                    None => {}
                }
                let put_sql = format!(
                    "INSERT INTO {table} (db, key, kind, value, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (db, key) DO UPDATE SET kind = excluded.kind, value = excluded.value, \
                     expires_at = excluded.expires_at"
                );
                let del_sql = format!("DELETE FROM {table} WHERE db = ?1 AND key = ?2");
                let mut put = tx.prepare_cached(&put_sql).map_err(error)?;
                let mut del = tx.prepare_cached(&del_sql).map_err(error)?;
                for w in items {
                    match w {
                        Write::Put { db, key, row } => {
                            if let Some((m, id)) = Mapping::find(&mappings, *db, key) {
                                write_mapped(&tx, m, id, Some(row))?;
                                continue;
                            }
                            put.execute(params![
                                db,
                                key,
                                row.kind,
                                row.value,
                                opt_expiry(row.expires_at)
                            ])
                            .map_err(error)?;
                        }
                        Write::Delete { db, key } => {
                            if let Some((m, id)) = Mapping::find(&mappings, *db, key) {
                                write_mapped(&tx, m, id, None)?;
                                continue;
                            }
                            del.execute(params![db, key]).map_err(error)?;
                        }
                        Write::FlushDb(_) | Write::FlushAll => {}
                    }
                }
            }
            tx.commit().map_err(error)
        })
        .await
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<u64, BackingError> {
        let sql = format!(
            "DELETE FROM {} WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            self.table
        );
        self.run(true, move |c| {
            c.execute(&sql, [now_ms as i64])
                .map(|n| n as u64)
                .map_err(error)
        })
        .await
    }

    async fn health(&self) -> Result<(), BackingError> {
        self.run(false, |c| {
            c.query_row("SELECT 1", [], |_| Ok(())).map_err(error)
        })
        .await
    }
}
