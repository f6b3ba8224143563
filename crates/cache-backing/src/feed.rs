//! The node's side of the change feed (see the `cache-feed` crate): installing the triggers
//! (`cache-node install-change-feed`) and the engine as a follower that drops changed keys
//! from memory, so the next read loads the new row.

use std::sync::Arc;
use std::time::Duration;

use cache_feed::{FeedError, Follower, TRIGGER_FUNCTION};
use tokio_postgres::NoTls;

use crate::engine::Inner;
use crate::mapping::quote;
use crate::postgres::{config, error};
use crate::{check_identifier, AnyStore, BackingError, Mapping};

pub use cache_feed::CHANNEL;

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
        .batch_execute(TRIGGER_FUNCTION)
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
    fn failed(&self, e: &FeedError) {
        self.feed_error(&BackingError::transient(e.to_string()));
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
    cache_feed::follow(&*inner).await;
}
