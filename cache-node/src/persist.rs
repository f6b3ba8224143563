//! Snapshots in Redis's RDB format: SAVE, BGSAVE, `save` points, SHUTDOWN SAVE, and loading
//! `dir/dbfilename` at start.
//!
//! ```text
//!  SAVE / BGSAVE / save point / SHUTDOWN ─► write_snapshot (caller's thread, or a thread
//!      of its own for BGSAVE): store.begin_snapshot (the instant) ─► per database, per
//!      shard: snapshot_part ─► cache-rdb Writer ─► temp-<pid>-<n>.rdb ─► fsync ─► rename
//!  Node::start ─► load_at_start: dump.rdb ─► cache-rdb Reader ─► store inserts
//! ```
//!
//! No fork: the store copies on write while a snapshot is open (see
//! `cache_store::snapshot`), so writes go on and the file is the keyspace as of one
//! instant. A crash mid-save leaves the previous file, since only a complete, fsynced file is
//! renamed over it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use cache_rdb::{Reader, Record, Writer};
use cache_store::{Entry, SHARDS};

use crate::{now_ms, Shared};

/// What SHUTDOWN asked for.
pub const SHUTDOWN_DEFAULT: u8 = 0;
pub const SHUTDOWN_SAVE: u8 = 1;
pub const SHUTDOWN_NOSAVE: u8 = 2;

/// Redis waits this long after a failed BGSAVE before a save point tries again.
const RETRY_DELAY_MS: u64 = 5_000;

/// The persistence state INFO, LASTSAVE and the save points read.
#[derive(Default)]
pub struct Persistence {
    shared: OnceLock<Weak<Shared>>,
    /// Serializes saves: SAVE waits for nothing, it fails while a BGSAVE runs.
    running: Mutex<()>,
    pub bgsave_in_progress: AtomicBool,
    /// A BGSAVE SCHEDULE waiting for the running one to end.
    pub scheduled: AtomicBool,
    /// Unix seconds of the last successful save (the start time before any).
    pub last_save: AtomicU64,
    pub last_bgsave_ok: AtomicBool,
    pub last_bgsave_secs: AtomicI64,
    /// Unix milliseconds the running BGSAVE started.
    pub bgsave_started_ms: AtomicU64,
    pub last_try_ms: AtomicU64,
    pub saves: AtomicU64,
    /// Writes counted when the last successful snapshot was taken.
    pub dirty_at_save: AtomicU64,
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
    pub shutdown_mode: AtomicU8,
    /// A save already ran for this shutdown.
    pub shutdown_saved: AtomicBool,
    temp_counter: AtomicU64,
}

/// Why a save failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("a snapshot is already being written")]
    Busy,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a save wrote.
#[derive(Debug, Clone, Copy)]
pub struct Saved {
    pub keys: u64,
    pub bytes: u64,
}

impl Persistence {
    /// Ties the state to its node (BGSAVE's thread needs an owned handle) and starts the
    /// LASTSAVE clock.
    pub fn init(&self, shared: Weak<Shared>) {
        let _ = self.shared.set(shared);
        self.last_save.store(now_ms() / 1000, Relaxed);
        self.last_bgsave_ok.store(true, Relaxed);
        self.last_bgsave_secs.store(-1, Relaxed);
    }
}

/// Write commands run so far (per-thread counters, summed).
fn writes(shared: &Shared) -> u64 {
    crate::stats::sum(&shared.stats, |s| &s.writes)
}

/// INFO's `rdb_changes_since_last_save`.
pub fn changes_since_save(shared: &Shared) -> u64 {
    writes(shared).saturating_sub(shared.persist.dirty_at_save.load(Relaxed))
}

/// The `save` points: (seconds, changes) pairs.
pub fn save_points(shared: &Shared) -> Vec<(u64, u64)> {
    parse_save(&shared.config.get("save").unwrap_or_default()).unwrap_or_default()
}

/// Parses a `save` value: pairs of non-negative integers, or empty for none.
pub fn parse_save(value: &str) -> Option<Vec<(u64, u64)>> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return None;
    }
    words
        .chunks(2)
        .map(|p| Some((p[0].parse().ok()?, p[1].parse().ok()?)))
        .collect()
}

fn file_path(shared: &Shared) -> PathBuf {
    let dir = shared.config.get("dir").unwrap_or_else(|| ".".into());
    let name = shared
        .config
        .get("dbfilename")
        .unwrap_or_else(|| "dump.rdb".into());
    PathBuf::from(dir).join(name)
}

fn flag(shared: &Shared, name: &str) -> bool {
    shared.config.get(name).is_none_or(|v| v == "yes")
}

/// Writes a snapshot of the whole keyspace to `dir/dbfilename` and records the outcome.
///
/// # Errors
/// [`SaveError::Busy`] while another save runs; I/O errors (the previous file is intact).
pub fn write_snapshot(shared: &Shared) -> Result<Saved, SaveError> {
    let p = &shared.persist;
    let _guard = p.running.try_lock().map_err(|_| SaveError::Busy)?;
    let started = Instant::now();
    let instant = now_ms();
    let dirty = writes(shared);
    let sizes = shared.store.begin_snapshot().ok_or(SaveError::Busy)?;
    let result = write_file(shared, &sizes, instant);
    shared.store.end_snapshot();
    p.last_try_ms.store(now_ms(), Relaxed);
    match &result {
        Ok(saved) => {
            p.dirty_at_save.store(dirty, Relaxed);
            p.last_save.store(instant / 1000, Relaxed);
            p.saves.fetch_add(1, Relaxed);
            tracing::info!(
                keys = saved.keys,
                bytes = saved.bytes,
                ms = started.elapsed().as_millis() as u64,
                "DB saved on disk"
            );
        }
        Err(e) => tracing::warn!(error = %e, "snapshot failed"),
    }
    result
}

fn write_file(
    shared: &Shared,
    sizes: &[cache_store::snapshot::DbSize],
    instant: u64,
) -> Result<Saved, SaveError> {
    let path = file_path(shared);
    let dir = path.parent().map(PathBuf::from).unwrap_or_default();
    let n = shared.persist.temp_counter.fetch_add(1, Relaxed);
    let temp = dir.join(format!("temp-{}-{n}.rdb", std::process::id()));
    let result = (|| -> Result<Saved, SaveError> {
        let mut file = std::fs::File::create(&temp)?;
        let ctime = (instant / 1000).to_string();
        let used = crate::cmd::server::memory_stats().0.to_string();
        let mut w = Writer::new(
            flag(shared, "rdbcompression"),
            flag(shared, "rdbchecksum"),
            &[
                ("redis-ver", b"7.0.15"),
                ("redis-bits", b"64"),
                ("ctime", ctime.as_bytes()),
                ("used-mem", used.as_bytes()),
                ("aof-base", b"0"),
            ],
        );
        for lib in shared.scripts.functions.libraries() {
            w.function(&lib.code);
        }
        let mut keys = 0u64;
        let mut bytes = 0u64;
        for (db, size) in sizes.iter().enumerate() {
            if size.keys == 0 {
                continue;
            }
            w.select_db(db as u64, size.keys, size.expires);
            for shard in 0..SHARDS {
                shared
                    .store
                    .snapshot_part(shard, db, instant, |k: &[u8], e: &Entry| {
                        w.key(k, &e.value, e.expires_at);
                        keys += 1;
                    });
                // Out of the shard lock: the file write.
                if w.pending() >= 1 << 20 {
                    let chunk = w.take();
                    bytes += chunk.len() as u64;
                    file.write_all(&chunk)?;
                }
            }
        }
        let chunk = w.take();
        file.write_all(&chunk)?;
        let tail = w.finish();
        file.write_all(&tail)?;
        bytes += (chunk.len() + tail.len()) as u64;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &path)?;
        // The rename itself must reach the disk, or a crash could bring the old name back.
        if let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            &dir
        }) {
            let _ = d.sync_all();
        }
        Ok(Saved { keys, bytes })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Starts a BGSAVE on a thread of its own. Err(Busy) when one is running.
///
/// # Errors
/// [`SaveError::Busy`] when a save is already running.
pub fn start_bgsave(shared: &Shared) -> Result<(), SaveError> {
    let p = &shared.persist;
    let Some(owned) = p.shared.get().and_then(Weak::upgrade) else {
        return Err(SaveError::Busy);
    };
    if p.bgsave_in_progress.swap(true, Relaxed) {
        return Err(SaveError::Busy);
    }
    p.bgsave_started_ms.store(now_ms(), Relaxed);
    tracing::info!("background saving started");
    let spawned = std::thread::Builder::new()
        .name("bgsave".into())
        .spawn(move || run_bgsave(owned));
    if let Err(e) = spawned {
        p.bgsave_in_progress.store(false, Relaxed);
        return Err(SaveError::Io(e));
    }
    Ok(())
}

fn run_bgsave(shared: Arc<Shared>) {
    let p = &shared.persist;
    loop {
        let started = Instant::now();
        let ok = write_snapshot(&shared).is_ok();
        p.last_bgsave_ok.store(ok, Relaxed);
        p.last_bgsave_secs
            .store(started.elapsed().as_secs() as i64, Relaxed);
        if ok {
            tracing::info!("background saving terminated with success");
        }
        if !p.scheduled.swap(false, Relaxed) {
            break;
        }
    }
    p.bgsave_in_progress.store(false, Relaxed);
}

/// Once a second from the cron: BGSAVE when a save point is reached.
pub fn cron(shared: &Shared) {
    let p = &shared.persist;
    if p.bgsave_in_progress.load(Relaxed) {
        return;
    }
    let now = now_ms();
    let changes = changes_since_save(shared);
    let since = now / 1000 - p.last_save.load(Relaxed).min(now / 1000);
    let retry_ok = p.last_bgsave_ok.load(Relaxed)
        || now.saturating_sub(p.last_try_ms.load(Relaxed)) >= RETRY_DELAY_MS;
    let due = save_points(shared)
        .iter()
        .any(|&(secs, min_changes)| changes >= min_changes && since >= secs && changes > 0);
    if due && retry_ok {
        tracing::info!(changes, seconds = since, "save point reached: saving");
        let _ = start_bgsave(shared);
    }
}

/// Whether writes are refused: the last background save failed, save points are set and
/// `stop-writes-on-bgsave-error` is on (Redis's MISCONF).
pub fn writes_stopped(shared: &Shared) -> bool {
    !shared.persist.last_bgsave_ok.load(Relaxed)
        && flag(shared, "stop-writes-on-bgsave-error")
        && !save_points(shared).is_empty()
}

pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// At shutdown (SHUTDOWN, a signal): saves when asked to, or when save points are set and
/// NOSAVE was not given. Returns false when a save was wanted and failed.
pub fn save_on_shutdown(shared: &Shared) -> bool {
    let p = &shared.persist;
    let mode = p.shutdown_mode.load(Relaxed);
    let wanted =
        mode == SHUTDOWN_SAVE || (mode == SHUTDOWN_DEFAULT && !save_points(shared).is_empty());
    if !wanted || p.shutdown_saved.load(Relaxed) {
        return true;
    }
    // A running BGSAVE holds the lock: wait for it, then write a fresh one.
    let _wait = p.running.lock();
    drop(_wait);
    tracing::info!("saving the final RDB snapshot before exiting");
    let ok = write_snapshot(shared).is_ok();
    p.shutdown_saved.store(ok, Relaxed);
    ok
}

/// Loads `dir/dbfilename` if it exists. With a backing store the file is not loaded: the
/// database is the source of truth and may have changed while the node was down.
///
/// # Errors
/// A file that exists and cannot be read or is not a valid RDB file (the node does not
/// start, as redis-server does not).
pub fn load_at_start(shared: &Shared) -> Result<(), String> {
    let path = file_path(shared);
    if !path.exists() {
        return Ok(());
    }
    if shared.backing.is_some() {
        tracing::info!(
            file = %path.display(),
            "a backing store is configured: not loading the snapshot (the database is the source of truth)"
        );
        return Ok(());
    }
    let started = Instant::now();
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(file = %path.display(), bytes = data.len(), "loading RDB snapshot");
    let (loaded, expired) =
        load_bytes(shared, &data).map_err(|e| format!("{}: {e}", path.display()))?;
    shared.persist.loaded_keys.store(loaded, Relaxed);
    shared.persist.loaded_expired.store(expired, Relaxed);
    tracing::info!(
        keys = loaded,
        expired,
        ms = started.elapsed().as_millis() as u64,
        "DB loaded from disk"
    );
    Ok(())
}

/// Loads an RDB file's keys (and function libraries) into the store; (keys loaded, keys
/// skipped because they had expired).
///
/// # Errors
/// The file's first defect.
pub fn load_bytes(shared: &Shared, data: &[u8]) -> Result<(u64, u64), String> {
    let mut reader = Reader::new(data).map_err(|e| e.to_string())?;
    let now = now_ms();
    let databases = shared.store.databases() as u64;
    let (mut loaded, mut expired) = (0u64, 0u64);
    let mut next_report = 64 << 20;
    while let Some(record) = reader.next_record().map_err(|e| e.to_string())? {
        match record {
            Record::Key(k) => {
                if k.db >= databases {
                    return Err(format!(
                        "FATAL: Data file was created with a Redis server configured to handle more than {databases} databases."
                    ));
                }
                if k.expires_at != 0 && k.expires_at <= now {
                    expired += 1;
                    continue;
                }
                let entry = Entry::with_expiry(k.value, k.expires_at);
                let mut locked = shared.store.lock(&k.key);
                locked.insert(k.db as usize, &k.key, entry, now);
                locked.set_access(k.db as usize, &k.key, now, k.idle_secs, k.freq);
                loaded += 1;
            }
            Record::Function(code) => {
                if let Err(e) = shared
                    .scripts
                    .functions
                    .load(bytes::Bytes::copy_from_slice(&code), true)
                {
                    return Err(format!("function library: {e}"));
                }
            }
            Record::Aux(k, v) if &*k == b"redis-ver" => {
                tracing::info!(version = %String::from_utf8_lossy(&v), "snapshot written by");
            }
            _ => {}
        }
        if reader.position() >= next_report {
            tracing::info!(
                bytes = reader.position(),
                of = data.len(),
                keys = loaded,
                "loading"
            );
            next_report += 64 << 20;
        }
    }
    Ok((loaded, expired))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_points_parse_as_redis_reads_them() {
        assert_eq!(
            parse_save("3600 1 300 100"),
            Some(vec![(3600, 1), (300, 100)])
        );
        assert_eq!(parse_save(""), Some(vec![]));
        assert_eq!(parse_save("3600"), None);
        assert_eq!(parse_save("a 1"), None);
    }
}
