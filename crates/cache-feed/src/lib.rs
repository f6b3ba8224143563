//! The change feed's listening side (PostgreSQL LISTEN/NOTIFY), shared by cache-node's
//! backing engine and cache-proxy: triggers on the generic table and the mapped tables
//! NOTIFY a channel with the key a row change concerns, and a follower LISTENs and is told
//! each changed key.
//!
//! ```text
//!  other program: UPDATE users ... ─► trigger ferrocache_notify ─► NOTIFY ferrocache_changes,
//!                                       'origin|db|hex(key)'   ('*' = everything)
//!  follower: LISTEN connection ─► payload ─► Follower::changed(db, key)
//!            connection lost ─► reconnect with backoff ─► changed(everything): events were missed
//! ```
//!
//! A node's own pool connections set `ferrocache.origin` to the node's id; notifications of
//! its own writes carry it and the follower may skip them. Invalidation is always safe, so
//! anything unparsable means "everything may have changed".
//!
//! Its own crate so that the proxy follows the feed without linking the backing engine
//! (SQLite, the connection pool).

use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

/// The channel the triggers notify.
pub const CHANNEL: &str = "ferrocache_changes";

/// The trigger function: one for all tables. With no trigger arguments the row is the
/// generic table's; with (prefix, key column) it is a mapped table's.
pub const TRIGGER_FUNCTION: &str = r#"
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

/// Why following failed (the connection was lost or refused); the follower reconnects.
#[derive(Debug, Clone)]
pub struct FeedError(pub String);

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FeedError {}

fn pg_error(e: &tokio_postgres::Error) -> FeedError {
    FeedError(match e.as_db_error() {
        Some(db) => format!("postgres: {}: {}", db.code().code(), db.message()),
        None => format!("postgres: {e}"),
    })
}

/// The connection settings ferrocache uses for `url`: connect, statement and lock timeouts of
/// `timeout`, application name `ferrocache`.
///
/// # Errors
/// When `url` is not a PostgreSQL connection string.
pub fn connect_config(url: &str, timeout: Duration) -> Result<tokio_postgres::Config, String> {
    let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    cfg.connect_timeout(timeout);
    cfg.options(format!(
        "-c statement_timeout={} -c lock_timeout={}",
        timeout.as_millis(),
        timeout.as_millis()
    ));
    cfg.application_name("ferrocache");
    Ok(cfg)
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
pub fn parse(payload: &str, skip: impl Fn(&str) -> bool) -> Option<Option<(u32, Vec<u8>)>> {
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
    fn failed(&self, e: &FeedError);
    fn stopping(&self) -> bool;
    /// Resolves when the follower should stop.
    fn stopped(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
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
async fn session(follower: &dyn Follower) -> Result<(), FeedError> {
    let cfg = connect_config(follower.url(), follower.timeout()).map_err(FeedError)?;
    let (client, mut conn) = cfg.connect(NoTls).await.map_err(|e| pg_error(&e))?;
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
            .map_err(|e| pg_error(&e))?;
        // Changes made while we were not listening are unknown: start from a clean memory.
        follower.changed(None);
        follower.set_connected(true);
        tracing::info!("change feed listening");
        let mut ping = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                payload = rx.recv() => {
                    let Some(payload) = payload else {
                        return Err(FeedError("change feed connection closed".into()));
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
                        .map_err(|_| FeedError("change feed ping timed out".into()))?
                        .map_err(|e| pg_error(&e))?;
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
