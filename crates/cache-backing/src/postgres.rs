//! PostgreSQL through a deadpool pool of tokio-postgres connections.
//!
//! A batch is one transaction: per segment (see [`segments`](crate::segments)) at most one
//! flush, one `DELETE ... = ANY(arrays)` and one `INSERT ... SELECT FROM unnest(arrays) ON
//! CONFLICT DO UPDATE`, so a thousand keys cost three round trips, not a thousand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::mapping::{column_name, quote};
use crate::{encoding, segments, Backing, BackingError, Flush, Mapping, Row, Segment, Write};

/// A PostgreSQL database and the generic table in it.
pub struct Postgres {
    pool: Pool,
    /// The generic table, quoted.
    table: String,
    /// What the first connection sets up: the generic table, and each mapping with the type
    /// of its key column (`bigint`, `text`...).
    setup: Setup,
    mappings: tokio::sync::OnceCell<Vec<(Mapping, String)>>,
    timeout: Duration,
}

struct Setup {
    table: String,
    mappings: Vec<Mapping>,
}

/// Classifies a driver error: anything without an SQL state (connection lost, I/O) or with
/// a state that means "not now" is transient.
pub(crate) fn error(e: &tokio_postgres::Error) -> BackingError {
    let text = match e.as_db_error() {
        Some(db) => format!("postgres: {}: {}", db.code().code(), db.message()),
        None => format!("postgres: {e}"),
    };
    let transient = match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57")
                || c.starts_with("40")
                || *code == SqlState::LOCK_NOT_AVAILABLE
        }
    };
    BackingError {
        transient,
        message: text,
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> BackingError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => error(&e),
        other => BackingError::transient(format!("postgres pool: {other}")),
    }
}

pub(crate) fn to_time(ms: u64) -> Option<SystemTime> {
    (ms != 0).then(|| UNIX_EPOCH + Duration::from_millis(ms))
}

fn from_time(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| (d.as_millis() as u64).max(1))
}

/// Parses a URL into a driver config with our timeouts.
///
/// # Errors
/// When the URL does not parse.
pub(crate) fn config(url: &str, timeout: Duration) -> Result<tokio_postgres::Config, BackingError> {
    cache_feed::connect_config(url, timeout)
        .map_err(|e| BackingError::refused(format!("backing-url: {e}")))
}

/// A JSON string literal of `bytes` (lossy for non-UTF-8), for `jsonb_populate_record`.
fn json_string(bytes: &[u8], out: &mut String) {
    out.push('"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Postgres {
    /// Connects (lazily, through the pool) and creates the generic table if missing; looks
    /// up the key column type of each mapped table.
    ///
    /// # Errors
    /// A bad URL, an unreachable database, or a mapped table or column that does not exist.
    pub async fn open(
        url: &str,
        table: &str,
        mappings: Vec<Mapping>,
        timeout: Duration,
        origin: &str,
    ) -> Result<Postgres, BackingError> {
        let mut cfg = config(url, timeout)?;
        if !origin.is_empty() {
            // Only [A-Za-z0-9] (the engine makes it): safe inside the options string.
            let options = format!(
                "{} -c ferrocache.origin={origin}",
                cfg.get_options().unwrap_or_default()
            );
            cfg.options(options);
        }
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| BackingError::refused(format!("postgres pool: {e}")))?;
        let store = Postgres {
            pool,
            table: quote(table),
            setup: Setup {
                table: table.to_string(),
                mappings,
            },
            mappings: tokio::sync::OnceCell::new(),
            timeout,
        };
        // A database that is down now is retried on first use (a write-back node starts,
        // serves from memory and keeps its journal meanwhile); one that refuses the setup
        // (a mapped table without its column, no rights) stops the start.
        match store.client().await {
            Ok(_) => {}
            Err(e) if e.transient => {
                tracing::warn!(error = %e, "PostgreSQL is not reachable; starting anyway, it is retried on first use");
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// Creates the generic table if missing and looks up the mapped tables' key column types.
    async fn set_up(
        &self,
        client: &deadpool_postgres::Object,
    ) -> Result<Vec<(Mapping, String)>, BackingError> {
        let table = &self.setup.table;
        // fillfactor 80: room in each page for a row's next version, so an upsert of an existing
        // key is a HOT update (no new index entries; key and expiry index unchanged).
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} (db integer NOT NULL, key bytea NOT NULL, \
                 kind smallint NOT NULL, value bytea NOT NULL, expires_at timestamptz, \
                 PRIMARY KEY (db, key)) WITH (fillfactor = 80); \
                 CREATE INDEX IF NOT EXISTS {} ON {} (expires_at) WHERE expires_at IS NOT NULL",
                quote(table),
                crate::mapping::expiry_index(table),
                quote(table)
            ))
            .await
            .map_err(|e| error(&e))?;
        let mut typed = Vec::new();
        for m in &self.setup.mappings {
            let row = client
                .query_opt(
                    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                     WHERE a.attrelid = $1::text::regclass AND a.attname = $2 AND NOT a.attisdropped",
                    &[&m.table, &m.key_column],
                )
                .await
                .map_err(|e| error(&e))?
                .ok_or_else(|| {
                    BackingError::refused(format!(
                        "mapped table {} has no column {}",
                        m.table, m.key_column
                    ))
                })?;
            let ty: String = row.get(0);
            typed.push((m.clone(), ty));
        }
        Ok(typed)
    }

    fn mapped<'a>(&'a self, db: u32, key: &'a [u8]) -> Option<(&'a Mapping, &'a str, &'a str)> {
        if db != 0 {
            return None;
        }
        // Set by `client()`, which every caller has awaited first.
        self.mappings
            .get()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|(m, _)| key.starts_with(&m.prefix))
            .max_by_key(|(m, _)| m.prefix.len())
            .and_then(|(m, ty)| {
                let id = std::str::from_utf8(&key[m.prefix.len()..]).ok()?;
                (!id.is_empty()).then_some((m, id, ty.as_str()))
            })
    }

    /// A pooled connection, after the one-time setup (which the first success runs).
    async fn client(&self) -> Result<deadpool_postgres::Object, BackingError> {
        let client = tokio::time::timeout(self.timeout, self.pool.get())
            .await
            .map_err(|_| BackingError::transient("postgres: no connection within the timeout"))?
            .map_err(pool_error)?;
        self.mappings
            .get_or_try_init(|| self.set_up(&client))
            .await?;
        Ok(client)
    }

    async fn apply_inner(&self, writes: &[Write]) -> Result<(), BackingError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| error(&e))?;
        let t = &self.table;
        for Segment {
            flush,
            writes: items,
        } in segments(writes)
        {
            match flush {
                Some(Flush::Db(db)) => {
                    tx.execute(&format!("DELETE FROM {t} WHERE db = $1"), &[&(db as i32)])
                        .await
                        .map_err(|e| error(&e))?;
                }
                Some(Flush::All) => {
                    tx.execute(&format!("DELETE FROM {t}"), &[])
                        .await
                        .map_err(|e| error(&e))?;
                }
                None => {}
            }
            let (mut del_db, mut del_key) = (Vec::<i32>::new(), Vec::<&[u8]>::new());
            let mut put_db = Vec::<i32>::new();
            let mut put_key = Vec::<&[u8]>::new();
            let mut put_kind = Vec::<i16>::new();
            let mut put_value = Vec::<&[u8]>::new();
            let mut put_exp = Vec::<Option<SystemTime>>::new();
            for w in items {
                match w {
                    Write::Put { db, key, row } => {
                        if let Some((m, id, ty)) = self.mapped(*db, key) {
                            write_mapped(&tx, m, id, ty, Some(row)).await?;
                            continue;
                        }
                        put_db.push(*db as i32);
                        put_key.push(key);
                        put_kind.push(row.kind);
                        put_value.push(&row.value);
                        put_exp.push(to_time(row.expires_at));
                    }
                    Write::Delete { db, key } => {
                        if let Some((m, id, ty)) = self.mapped(*db, key) {
                            write_mapped(&tx, m, id, ty, None).await?;
                            continue;
                        }
                        del_db.push(*db as i32);
                        del_key.push(key);
                    }
                    Write::FlushDb(_) | Write::FlushAll => {}
                }
            }
            if !del_db.is_empty() {
                let sql = format!(
                    "DELETE FROM {t} WHERE (db, key) IN (SELECT * FROM unnest($1::int4[], $2::bytea[]))"
                );
                let stmt = tx.prepare_cached(&sql).await.map_err(|e| error(&e))?;
                tx.execute(&stmt, &[&del_db, &del_key])
                    .await
                    .map_err(|e| error(&e))?;
            }
            if !put_db.is_empty() {
                let sql = format!(
                    "INSERT INTO {t} (db, key, kind, value, expires_at) \
                     SELECT * FROM unnest($1::int4[], $2::bytea[], $3::int2[], $4::bytea[], $5::timestamptz[]) \
                     ON CONFLICT (db, key) DO UPDATE SET kind = EXCLUDED.kind, value = EXCLUDED.value, \
                     expires_at = EXCLUDED.expires_at"
                );
                let stmt = tx.prepare_cached(&sql).await.map_err(|e| error(&e))?;
                tx.execute(&stmt, &[&put_db, &put_key, &put_kind, &put_value, &put_exp])
                    .await
                    .map_err(|e| error(&e))?;
            }
        }
        tx.commit().await.map_err(|e| error(&e))
    }
}

async fn write_mapped(
    tx: &deadpool_postgres::Transaction<'_>,
    m: &Mapping,
    id: &str,
    key_type: &str,
    row: Option<&Row>,
) -> Result<(), BackingError> {
    let (table, key_col) = (quote(&m.table), quote(&m.key_column));
    let Some(row) = row else {
        tx.execute(
            &format!("DELETE FROM {table} WHERE {key_col} = ($1::text)::{key_type}"),
            &[&id],
        )
        .await
        .map_err(|e| error(&e))?;
        return Ok(());
    };
    let fields = crate::mapping::mapped_fields(m, row)?;
    let mut json = String::from("{");
    json_string(m.key_column.as_bytes(), &mut json);
    json.push(':');
    json_string(id.as_bytes(), &mut json);
    let mut cols = vec![key_col.clone()];
    for (f, v) in &fields {
        if f.eq_ignore_ascii_case(m.key_column.as_bytes()) {
            continue;
        }
        cols.push(quote(column_name(f)?));
        json.push(',');
        json_string(f, &mut json);
        json.push(':');
        json_string(v, &mut json);
    }
    json.push('}');
    let update = if cols.len() == 1 {
        "NOTHING".to_string()
    } else {
        format!(
            "UPDATE SET {}",
            cols[1..]
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let list = cols.join(", ");
    let sql = format!(
        "INSERT INTO {table} ({list}) SELECT {list} FROM jsonb_populate_record(NULL::{table}, $1::text::jsonb) \
         ON CONFLICT ({key_col}) DO {update}"
    );
    tx.execute(&sql, &[&json]).await.map_err(|e| error(&e))?;
    Ok(())
}

impl Backing for Postgres {
    async fn load(&self, db: u32, key: &[u8], now_ms: u64) -> Result<Option<Row>, BackingError> {
        let client = self.client().await?;
        if let Some((m, id, ty)) = self.mapped(db, key) {
            let sql = format!(
                "SELECT j.key, j.value FROM {} t, jsonb_each_text(to_jsonb(t)) j \
                 WHERE t.{} = ($1::text)::{ty}",
                quote(&m.table),
                quote(&m.key_column)
            );
            let rows = client.query(&sql, &[&id]).await.map_err(|e| error(&e))?;
            if rows.is_empty() {
                return Ok(None);
            }
            let fields: Vec<(String, String)> = rows
                .iter()
                .filter_map(|r| {
                    let name: String = r.get(0);
                    let value: Option<String> = r.get(1);
                    (name != m.key_column).then_some((name, value?))
                })
                .collect();
            return Ok(Some(Row {
                kind: encoding::Kind::Hash as i16,
                value: encoding::encode_hash(
                    fields.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes())),
                ),
                expires_at: 0,
            }));
        }
        let sql = format!(
            "SELECT kind, value, expires_at FROM {} WHERE db = $1 AND key = $2 \
             AND (expires_at IS NULL OR expires_at > $3)",
            self.table
        );
        let stmt = client.prepare_cached(&sql).await.map_err(|e| error(&e))?;
        let now = to_time(now_ms.max(1));
        let row = client
            .query_opt(&stmt, &[&(db as i32), &key, &now])
            .await
            .map_err(|e| error(&e))?;
        Ok(row.map(|r| Row {
            kind: r.get(0),
            value: r.get(1),
            expires_at: from_time(r.get(2)),
        }))
    }

    async fn apply(&self, writes: &[Write]) -> Result<(), BackingError> {
        tokio::time::timeout(self.timeout * 2, self.apply_inner(writes))
            .await
            .map_err(|_| BackingError::transient("postgres: transaction timed out"))?
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<u64, BackingError> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "DELETE FROM {} WHERE expires_at IS NOT NULL AND expires_at <= $1",
                    self.table
                ),
                &[&to_time(now_ms.max(1))],
            )
            .await
            .map_err(|e| error(&e))
    }

    async fn health(&self) -> Result<(), BackingError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_string(b"a\"b\\c\n", &mut s);
        assert_eq!(s, r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn times_round_trip_in_ms() {
        assert_eq!(from_time(to_time(1_700_000_000_123)), 1_700_000_000_123);
        assert_eq!(to_time(0), None);
        assert_eq!(from_time(None), 0);
    }
}
