//! The change feed (PostgreSQL): triggers on the generic table and the mapped tables NOTIFY
//! a channel with the key a row change concerns; a node with `backing-change-feed yes`
//! LISTENs and drops that key from memory, so its next read loads the new row.
//!
//! ```text
//!  other program: UPDATE users ... ─► trigger ferrocache_notify ─► NOTIFY ferrocache_changes,
//!                                       'origin|db|hex(key)'   ('*' = everything)
//!  node: LISTEN connection ─► payload ─► Installer::invalidate(db, key)
//!        connection lost ─► reconnect with backoff ─► invalidate everything (events were missed)
//! ```
//!
//! The node's own pool connections set `ferrocache.origin` to the node's id; notifications
//! of its own writes carry it and are skipped (memory already holds that state or a newer
//! one). Invalidation is always safe, so anything unparsable invalidates everything.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

use crate::engine::Inner;
use crate::mapping::quote;
use crate::postgres::{config, error};
use crate::{check_identifier, AnyStore, BackingError, Mapping};

/// The channel the triggers notify.
pub const CHANNEL: &str = "ferrocache_changes";

/// The trigger function: one for all tables. With no trigger arguments the row is the
/// generic table's; with (prefix, key column) it is a mapped table's.
const FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION ferrocache_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  origin text := coalesce(current_setting('ferrocache.origin', true), '');
  payload text;
  rows jsonb[] := ARRAY[]::jsonb[];
  j jsonb;
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('ferrocache_changes', origin || '|*');
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN rows := array_append(rows, to_jsonb(OLD)); END IF;
  IF TG_OP <> 'DELETE' THEN rows := array_append(rows, to_jsonb(NEW)); END IF;
  FOREACH j IN ARRAY rows LOOP
    IF TG_NARGS = 0 THEN
      payload := origin || '|' || (j ->> 'db') || '|' || substr(j ->> 'key', 3);
    ELSE
      payload := origin || '|0|'
                 || encode(convert_to(TG_ARGV[0] || (j ->> TG_ARGV[1]), 'UTF8'), 'hex');
    END IF;
    IF octet_length(payload) > 7900 THEN
      payload := origin || '|*';
    END IF;
    PERFORM pg_notify('ferrocache_changes', payload);
  END LOOP;
  RETURN NULL;
END
$fn$;
"#;

/// Installs (or replaces) the trigger function and the triggers on the generic table and
/// the mapped tables. Idempotent.
///
/// # Errors
/// When the database is unreachable or refuses the statements.
pub async fn install(
    url: &str,
    table: &str,
    mappings: &[Mapping],
) -> Result<Vec<String>, BackingError> {
    check_identifier(table)?;
    let store = AnyStore::open(
        url,
        table,
        mappings.to_vec(),
        Duration::from_secs(10),
        true,
        "",
    )
    .await?;
    if !matches!(store, AnyStore::Postgres(_)) {
        return Err(BackingError::refused(
            "the change feed needs PostgreSQL (backing-url postgres://...)",
        ));
    }
    let (client, conn) = config(url, Duration::from_secs(10))?
        .connect(NoTls)
        .await
        .map_err(|e| error(&e))?;
    tokio::spawn(conn);
    client
        .batch_execute(FUNCTION)
        .await
        .map_err(|e| error(&e))?;
    let mut done = Vec::new();
    let t = quote(table);
    client
        .batch_execute(&format!(
            "DROP TRIGGER IF EXISTS ferrocache_notify ON {t};
             CREATE TRIGGER ferrocache_notify AFTER INSERT OR UPDATE OR DELETE ON {t}
               FOR EACH ROW EXECUTE FUNCTION ferrocache_notify();
             DROP TRIGGER IF EXISTS ferrocache_notify_truncate ON {t};
             CREATE TRIGGER ferrocache_notify_truncate AFTER TRUNCATE ON {t}
               FOR EACH STATEMENT EXECUTE FUNCTION ferrocache_notify();"
        ))
        .await
        .map_err(|e| error(&e))?;
    done.push(table.to_string());
    for m in mappings {
        let mt = quote(&m.table);
        // The prefix is a string literal in the trigger definition: quote it as one.
        let prefix = String::from_utf8_lossy(&m.prefix).replace('\'', "''");
        let column = m.key_column.replace('\'', "''");
        client
            .batch_execute(&format!(
                "DROP TRIGGER IF EXISTS ferrocache_notify ON {mt};
                 CREATE TRIGGER ferrocache_notify AFTER INSERT OR UPDATE OR DELETE ON {mt}
                   FOR EACH ROW EXECUTE FUNCTION ferrocache_notify('{prefix}', '{column}');
                 DROP TRIGGER IF EXISTS ferrocache_notify_truncate ON {mt};
                 CREATE TRIGGER ferrocache_notify_truncate AFTER TRUNCATE ON {mt}
                   FOR EACH STATEMENT EXECUTE FUNCTION ferrocache_notify();"
            ))
            .await
            .map_err(|e| error(&e))?;
        done.push(m.table.clone());
    }
    Ok(done)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a payload asks: None = invalidate everything; Some(None) = a write `skip` says is
/// ours, skipped.
pub(crate) fn parse(payload: &str, skip: impl Fn(&str) -> bool) -> Option<Option<(u32, Vec<u8>)>> {
    let mut parts = payload.splitn(3, '|');
    let from = parts.next()?;
    let db = parts.next()?;
    if db == "*" {
        return None;
    }
    if skip(from) {
        return Some(None);
    }
    let db: u32 = db.parse().ok()?;
    let key = unhex(parts.next()?)?;
    Some(Some((db, key)))
}

/// Whoever follows the change feed: the node's engine (it drops keys from its memory) or
/// cache-proxy (it tells the node that owns each key).
pub trait Follower: Send + Sync {
    fn url(&self) -> &str;
    fn timeout(&self) -> Duration;
    /// Whether a notification from `origin` (the writer's `ferrocache.origin`, "" for other
    /// programs) reports a write this follower already knows about, so it is skipped.
    fn known_writer(&self, origin: &str) -> bool;
    /// `Some((db, key))`: that key changed; `None`: anything may have (the connection was
    /// lost and events were missed, a TRUNCATE, an unparsable payload).
    fn changed(&self, target: Option<(u32, &[u8])>);
    fn set_connected(&self, up: bool);
    fn failed(&self, e: &BackingError);
    fn stopping(&self) -> bool;
    /// Resolves when the follower should stop.
    fn stopped(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

impl Follower for Inner {
    fn url(&self) -> &str {
        &self.cfg.url
    }
    fn timeout(&self) -> Duration {
        self.cfg.timeout
    }
    fn known_writer(&self, origin: &str) -> bool {
        !self.cfg.origin.is_empty() && origin == self.cfg.origin
    }
    fn changed(&self, target: Option<(u32, &[u8])>) {
        self.invalidate(target);
    }
    fn set_connected(&self, up: bool) {
        self.set_feed_connected(up);
    }
    fn failed(&self, e: &BackingError) {
        self.feed_error(e);
    }
    fn stopping(&self) -> bool {
        Inner::stopping(self)
    }
    fn stopped(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(Inner::stopped(self))
    }
}

/// The node's LISTEN loop: runs until the engine stops.
pub(crate) async fn listen(inner: Arc<Inner>) {
    if !matches!(inner.store, AnyStore::Postgres(_)) {
        tracing::warn!("backing-change-feed needs PostgreSQL; ignored");
        return;
    }
    follow(&*inner).await;
}

/// LISTENs until the follower stops, reconnecting with backoff; every (re)connection starts
/// with a full invalidation, since changes made while not listening are unknown.
pub async fn follow(follower: &dyn Follower) {
    let mut backoff = Duration::from_millis(100);
    while !follower.stopping() {
        match session(follower).await {
            Ok(()) => return,
            Err(e) => {
                follower.set_connected(false);
                follower.failed(&e);
                tracing::warn!(error = %e, "change feed lost; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = follower.stopped() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One LISTEN connection's life. Ok when the follower stops; Err when the connection is lost.
async fn session(follower: &dyn Follower) -> Result<(), BackingError> {
    let cfg = config(follower.url(), follower.timeout())?;
    let (client, mut conn) = cfg.connect(NoTls).await.map_err(|e| error(&e))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "change feed connection error");
                    return;
                }
                None => return,
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| error(&e))?;
        // Changes made while we were not listening are unknown: start from a clean memory.
        follower.changed(None);
        follower.set_connected(true);
        tracing::info!("change feed listening");
        let mut ping = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                payload = rx.recv() => {
                    let Some(payload) = payload else {
                        return Err(BackingError::transient("change feed connection closed"));
                    };
                    match parse(&payload, |from| follower.known_writer(from)) {
                        Some(Some((db, key))) => follower.changed(Some((db, &key))),
                        Some(None) => {}
                        None => follower.changed(None),
                    }
                }
                _ = ping.tick() => {
                    tokio::time::timeout(follower.timeout(), client.simple_query("SELECT 1"))
                        .await
                        .map_err(|_| BackingError::transient("change feed ping timed out"))?
                        .map_err(|e| error(&e))?;
                }
                _ = follower.stopped() => return Ok(()),
            }
        }
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let me = |from: &str| from == "me";
        assert_eq!(parse("x|3|6b31", me), Some(Some((3, b"k1".to_vec()))));
        assert_eq!(parse("me|3|6b31", me), Some(None));
        assert_eq!(parse("|*", me), None);
        assert_eq!(parse("x|3|zz", me), None);
        assert_eq!(parse("garbage", me), None);
    }
}
