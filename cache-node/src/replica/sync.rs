//! A full sync: the master's RDB, as `$<len>` then the bytes, or diskless as `$EOF:<40-byte
//! mark>` then the bytes and the mark; loaded with the cache-rdb codec after a flush.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::link::Link;
use crate::{now_ms, Shared};

const MARK_LEN: usize = 40;
/// What is reserved up front, whatever the master announces: the rest grows as bytes arrive.
const MAX_RESERVE: usize = 64 << 20;
const REPORT_EVERY: u64 = 64 << 20;

/// Receives the RDB payload. Bytes after it (the command stream) stay in `link.buf`.
pub(super) async fn receive(
    shared: &Shared,
    link: &mut Link,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let r = &shared.replica;
    r.sync_read.store(0, Relaxed);
    r.sync_keys.store(0, Relaxed);
    r.sync_total.store(-1, Relaxed);
    r.last_io_ms.store(now_ms(), Relaxed);
    // The master sends newlines while it prepares the RDB, to keep the link alive.
    let header = loop {
        let line = link.line(timeout).await?;
        r.last_io_ms.store(now_ms(), Relaxed);
        if !line.is_empty() {
            break line;
        }
    };
    if let Some(e) = header.strip_prefix('-') {
        return Err(format!("MASTER aborted replication with an error: {e}"));
    }
    let Some(spec) = header.strip_prefix('$') else {
        return Err(format!(
            "bad protocol from MASTER, the first byte is not '$' (we received '{header}')"
        ));
    };
    let started = Instant::now();
    let mut next_report = REPORT_EVERY;
    let mut report = |read: u64| {
        r.sync_read.store(read, Relaxed);
        r.last_io_ms.store(now_ms(), Relaxed);
        if read >= next_report {
            tracing::info!(bytes = read, "MASTER <-> REPLICA sync: receiving");
            next_report += REPORT_EVERY;
        }
    };
    let data = if let Some(mark) = spec.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        if mark.len() != MARK_LEN {
            return Err(format!("bad EOF mark from MASTER: '{spec}'"));
        }
        tracing::info!("MASTER <-> REPLICA sync: receiving streamed RDB from master (diskless)");
        let mut data = Vec::new();
        loop {
            data.extend_from_slice(&link.buf);
            link.buf.clear();
            report(data.len() as u64);
            if data.len() >= MARK_LEN && data[data.len() - MARK_LEN..] == mark[..] {
                data.truncate(data.len() - MARK_LEN);
                break data;
            }
            link.fill(timeout).await?;
        }
    } else {
        let len: usize = spec
            .parse()
            .map_err(|_| format!("bad RDB length from MASTER: '{header}'"))?;
        r.sync_total.store(len as i64, Relaxed);
        tracing::info!(
            bytes = len,
            "MASTER <-> REPLICA sync: receiving RDB from master"
        );
        let mut data = Vec::with_capacity(len.min(MAX_RESERVE));
        while data.len() < len {
            if link.buf.is_empty() {
                link.fill(timeout).await?;
            }
            let take = (len - data.len()).min(link.buf.len());
            data.extend_from_slice(&link.buf.split_to(take));
            report(data.len() as u64);
        }
        data
    };
    tracing::info!(
        bytes = data.len(),
        ms = started.elapsed().as_millis() as u64,
        "MASTER <-> REPLICA sync: RDB received"
    );
    Ok(data)
}

/// Flushes the node and loads `data` (on a blocking thread: clients meanwhile get
/// `-LOADING` for what Redis refuses while loading).
pub(super) async fn load(shared: &Arc<Shared>, data: Vec<u8>) -> Result<(), String> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let r = &shared.replica;
        r.loading.store(true, Relaxed);
        let started = Instant::now();
        tracing::info!("MASTER <-> REPLICA sync: flushing old data");
        shared.store.flush(None);
        shared.scripts.functions.flush();
        tracing::info!("MASTER <-> REPLICA sync: loading DB in memory");
        let loaded = crate::persist::load_bytes(&shared, &data);
        r.loading.store(false, Relaxed);
        let (keys, expired) =
            loaded.map_err(|e| format!("failed loading the RDB from MASTER: {e}"))?;
        r.sync_keys.store(keys, Relaxed);
        tracing::info!(
            keys,
            expired,
            ms = started.elapsed().as_millis() as u64,
            "MASTER <-> REPLICA sync: finished loading"
        );
        Ok(())
    })
    .await
    .map_err(|e| format!("loading the RDB: {e}"))?
}
