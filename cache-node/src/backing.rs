//! The node's side of the backing store: which keys a command needs loaded first, what the
//! command changed, and what its reply must wait for.
//!
//! ```text
//!  frame ─► dispatch ─► before_run (hook, after eviction): claimed? ─► Wait::Claim
//!                                                    absent, not negative? ─► Wait::Loads (single flight)
//!        write commands run inside Engine::write (the order lock), collecting the keys the
//!        store reports changed ─► their new states ─► write-through: Step::Commit (reply waits;
//!        on error the old states come back) · write-back: journal + queue, Step::Journaled
//! ```
//!
//! With `backing-mode none` nothing here runs: the connection calls `dispatch` directly.
//! Commands that see only memory: KEYS, SCAN, RANDOMKEY, DBSIZE (a cache's view).

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use cache_backing::engine::CommitTicket;
use cache_backing::engine::LoadResult;
use cache_backing::{
    BackingError, Engine, EngineConfig, Fsync, Installer, Mapping, Mode, Pending, Row, Write,
};
use cache_protocol::command::keyspec::overwrites;
use cache_protocol::Cmd;
use cache_store::{Entry, Key, KeyChange};

use crate::cmd::{dispatch, is, Ctx};
use crate::{Config, Shared};

/// The engine's configuration from the node's parameters; None when `backing-mode none`.
///
/// # Errors
/// A bad mapping list.
pub fn engine_config(config: &Config) -> Result<Option<EngineConfig>, String> {
    let get = |name: &str| config.get(name).unwrap_or_default();
    let mode = match get("backing-mode").as_str() {
        "write-through" => Mode::WriteThrough,
        "write-back" => Mode::WriteBack,
        _ => return Ok(None),
    };
    let dir = std::path::PathBuf::from(get("dir"));
    let mut url = get("backing-url");
    if url.is_empty() {
        url = format!("sqlite:{}", dir.join("ferrocache.db").display());
    }
    let ms = |name: &str| Duration::from_millis(get(name).parse().unwrap_or(0));
    let mappings = Mapping::parse_list(&get("backing-map")).map_err(|e| e.to_string())?;
    Ok(Some(EngineConfig {
        mode,
        url,
        table: get("backing-table"),
        dir,
        write_back_delay: ms("write-back-delay"),
        write_back_batch: get("write-back-batch").parse().unwrap_or(512),
        fsync: if get("appendfsync") == "always" {
            Fsync::Always
        } else {
            Fsync::EverySec
        },
        timeout: ms("backing-timeout"),
        negative_ttl: ms("backing-negative-ttl"),
        mappings,
        change_feed: get("backing-change-feed") == "yes",
        replay_wait: Duration::from_secs(30),
        origin: format!(
            "n{:x}{:x}",
            std::process::id(),
            crate::now_ms() & 0xFFFF_FFFF
        ),
    }))
}

/// Puts loaded rows into the keyspace and drops invalidated keys.
pub struct Install {
    pub shared: Weak<Shared>,
}

impl Installer for Install {
    fn install(&self, db: u32, key: &[u8], row: &Row) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if db as usize >= shared.store.databases() {
            return;
        }
        let value = match cache_backing::encoding::decode(row.kind, &row.value) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(db, key = %String::from_utf8_lossy(key), error = %e, "stored value does not decode; treated as absent");
                return;
            }
        };
        let now = crate::now_ms();
        let mut locked = shared.store.lock(key);
        if locked.peek(db as usize, key, now).is_none() {
            locked.insert(
                db as usize,
                key,
                Entry::with_expiry(value, row.expires_at),
                now,
            );
        }
    }

    fn invalidate(&self, target: Option<(u32, &[u8])>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        match target {
            Some((db, key)) if (db as usize) < shared.store.databases() => {
                // From memory only; every client tracking the key is told, also when it is
                // not in memory (a client may have cached its absence).
                shared.invalidate_keys(db as usize, &[key]);
            }
            Some(_) => {}
            None => {
                // Anything may have changed in the database: every watcher is dirty.
                shared.watches.flushed(None);
                shared.store.flush(None);
            }
        }
    }
}

/// What a command must wait for before it can run.
pub enum Wait {
    /// Loads of its absent keys.
    Loads(Vec<(u32, Bytes, tokio::sync::watch::Receiver<Option<LoadResult>>)>),
    /// A write-through commit of one of its keys.
    Claim(Arc<tokio::sync::Notify>),
}

impl Wait {
    /// Waits; returns the keys found absent everywhere (the command's next run must not
    /// load them again). Err when a load failed (the command must not run on a partial view).
    ///
    /// # Errors
    /// The database's error for a load.
    pub async fn wait(self) -> Result<Vec<(u32, Bytes)>, BackingError> {
        match self {
            Wait::Loads(loads) => {
                let mut absent = Vec::new();
                for (db, key, mut rx) in loads {
                    let found = rx
                        .wait_for(Option::is_some)
                        .await
                        .map(|v| v.clone().unwrap_or(Ok(true)))
                        .unwrap_or_else(|_| {
                            Err(BackingError::transient("backing engine stopped"))
                        })?;
                    if !found {
                        absent.push((db, key));
                    }
                }
                Ok(absent)
            }
            Wait::Claim(notify) => {
                // The release may come between our check and this wait: a short timeout
                // re-checks instead of sleeping forever on a missed wake-up.
                let _ = tokio::time::timeout(Duration::from_millis(20), notify.notified()).await;
                Ok(Vec::new())
            }
        }
    }
}

/// The key and its state before a write-through command ran.
pub type Snapshot = (u32, Key, Option<Entry>);

/// Per-connection backing state.
#[derive(Default)]
pub struct ConnBacking {
    /// Set by the hook when the command must wait (it did not run).
    pub wait: Option<Wait>,
    /// Write-through: the command's keys before it ran.
    pub snapshot: Vec<Snapshot>,
    /// Keys just found absent in the database, for the re-run of the command that loaded
    /// them (else it would load them again, forever).
    pub absent: Vec<(u32, Bytes)>,
}

/// A write-through command waiting for its commit.
pub struct Commit {
    pub ticket: CommitTicket,
    /// Where the command's reply starts in the output buffer.
    pub before: usize,
    snapshot: Vec<Snapshot>,
    changed: Vec<(u32, Key)>,
}

/// What the connection does after a frame.
pub enum Step {
    Done,
    /// Run the same frame again after this.
    Wait(Wait),
    Commit(Commit),
    /// A write-back write: write the journal out before the reply (and fsync up to this
    /// sequence number with `appendfsync always`).
    Journaled(Option<u64>),
}

/// The keys a command touches, with their databases.
fn keys_of(db: usize, cmd: Cmd, args: &[Bytes]) -> Vec<(u32, Bytes)> {
    let mut keys: Vec<(u32, Bytes)> = cmd
        .keys(args)
        .into_iter()
        .filter_map(|i| args.get(i))
        .map(|k| (db as u32, k.clone()))
        .collect();
    let db_arg = |a: &Bytes| cache_protocol::parse_i64(a).filter(|n| (0..1 << 20).contains(n));
    match cmd {
        // The destination database's key decides whether MOVE/COPY may write.
        Cmd::Move => {
            if let Some(to) = args.get(2).and_then(db_arg) {
                keys.push((to as u32, args[1].clone()));
            }
        }
        Cmd::Copy => {
            if let Some(i) = args.iter().position(|a| is(a, "db")) {
                if let Some(to) = args.get(i + 1).and_then(db_arg) {
                    keys.push((to as u32, args[2].clone()));
                }
            }
        }
        _ => {}
    }
    keys
}

/// Writes whose result does not depend on the old value, so nothing is loaded first: every
/// key of the call is overwritten unread (its key spec is OW, not INSERT: SETEX, MSET, SET
/// without GET). SET's NX/XX and KEEPTTL still look at the old entry's presence and TTL,
/// which key specs do not express.
fn is_blind(cmd: Cmd, args: &[Bytes]) -> bool {
    if cmd == Cmd::Set
        && args
            .iter()
            .skip(3)
            .any(|a| is(a, "nx") || is(a, "xx") || is(a, "keepttl"))
    {
        return false;
    }
    let keys = cmd.key_flags(args);
    !keys.is_empty() && keys.iter().all(|&(_, flags)| overwrites(flags))
}

/// Claims and loads for `keys`; None when the command may run now.
fn check_keys(
    shared: &Shared,
    engine: &Engine,
    keys: &[(u32, Bytes)],
    blind: bool,
    absent: &[(u32, Bytes)],
    now: u64,
) -> Option<Wait> {
    let mut loads = Vec::new();
    for (db, key) in keys {
        if (*db as usize) >= shared.store.databases() {
            continue;
        }
        if let Some(n) = engine.claimed(*db, key) {
            return Some(Wait::Claim(n));
        }
        if blind
            || shared.store.lock(key).contains(*db as usize, key, now)
            || absent.iter().any(|(d, k)| d == db && k == key)
            || engine.known_absent(*db, key, now)
        {
            continue;
        }
        loads.push((*db, key.clone(), engine.load(*db, key)));
    }
    (!loads.is_empty()).then_some(Wait::Loads(loads))
}

fn take_snapshot(shared: &Shared, keys: &[(u32, Bytes)], now: u64) -> Vec<Snapshot> {
    keys.iter()
        .filter(|(db, _)| (*db as usize) < shared.store.databases())
        .map(|(db, k)| {
            (
                *db,
                Key::from(&k[..]),
                shared.store.snapshot(*db as usize, k, now),
            )
        })
        .collect()
}

/// The hook `dispatch` calls right before running a command (after eviction): false when
/// the command must not run now (a wait is set, or an error reply was written).
pub fn before_run(ctx: &mut Ctx<'_>, cmd: Cmd, args: &[Bytes]) -> bool {
    let shared = ctx.shared;
    let Some(engine) = &shared.backing else {
        return true;
    };
    if cmd == Cmd::Swapdb {
        // Swapping would have to move every row of two databases; refused rather than faked.
        ctx.out
            .error("ERR SWAPDB is not supported while a backing store is on");
        return false;
    }
    let keys = keys_of(ctx.db(), cmd, args);
    if keys.is_empty() {
        // EXEC (and a script) name no keys of their own: what their last run found absent
        // is for `run_exec` / `run_script`. Taken here, a transaction on a key the
        // database lacks loaded it again on every run, for ever.
        return true;
    }
    let absent = std::mem::take(&mut ctx.conn.backing.absent);
    if let Some(w) = check_keys(shared, engine, &keys, is_blind(cmd, args), &absent, ctx.now) {
        ctx.conn.backing.wait = Some(w);
        return false;
    }
    if engine.mode() == Mode::WriteThrough && cmd.spec().is_write() {
        ctx.conn.backing.snapshot = take_snapshot(shared, &keys, ctx.now);
    }
    true
}

/// The writes for what a command changed: each changed key's state now.
fn to_writes(shared: &Shared, changes: &[KeyChange], now: u64) -> (Vec<Write>, Vec<(u32, Key)>) {
    let mut writes = Vec::with_capacity(changes.len());
    let mut changed: Vec<(u32, Key)> = Vec::with_capacity(changes.len());
    let mut seen = hashbrown::HashSet::new();
    for c in changes {
        match c {
            KeyChange::Flushed(Some(db)) => writes.push(Write::FlushDb(*db as u32)),
            KeyChange::Flushed(None) => writes.push(Write::FlushAll),
            KeyChange::Key(index, key) => {
                let db = *index as u32;
                if changes.len() > 1 && !seen.insert((db, key.clone())) {
                    continue;
                }
                // Encoded under the shard lock: no copy of the value on the way.
                let write = shared
                    .store
                    .with_entry(*index, key, now, |entry| match entry {
                        Some(entry) => {
                            let (kind, value) = cache_backing::encoding::encode(&entry.value);
                            Write::Put {
                                db,
                                key: key.to_vec(),
                                row: Row {
                                    kind: kind as i16,
                                    value,
                                    expires_at: entry.expires_at,
                                },
                            }
                        }
                        None => Write::Delete {
                            db,
                            key: key.to_vec(),
                        },
                    });
                writes.push(write);
                changed.push((db, key.clone()));
            }
        }
    }
    (writes, changed)
}

/// What a write command that ran leaves for its commit: its snapshot and the keys it changed.
type Ran = (Vec<Snapshot>, Vec<(u32, Key)>);

fn step(mode: Mode, before: usize, outcome: Result<Ran, Wait>, pending: Pending) -> Step {
    match (outcome, pending) {
        (Err(w), _) => Step::Wait(w),
        (Ok((snapshot, changed)), Pending::Commit(ticket)) => Step::Commit(Commit {
            ticket,
            before,
            snapshot,
            changed,
        }),
        (Ok(_), Pending::Durable(seq)) => Step::Journaled(Some(seq)),
        (Ok(_), Pending::Done) if mode == Mode::WriteBack => Step::Journaled(None),
        (Ok(_), Pending::Done) => Step::Done,
    }
}

/// Runs one frame with the backing store on.
pub fn run_frame(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Step {
    let shared = ctx.shared;
    let engine = shared.backing.as_ref().expect("backing is on");
    let write = Cmd::lookup(&args[0]).is_some_and(|c| c.spec().is_write());
    if !write {
        dispatch(ctx, args);
        return ctx.conn.backing.wait.take().map_or(Step::Done, Step::Wait);
    }
    let before = ctx.out.len();
    let (outcome, pending) = engine.write(|| {
        let ((), changes) = ctx.changes.record(|| dispatch(ctx, args));
        if let Some(w) = ctx.conn.backing.wait.take() {
            return (Err(w), Vec::new());
        }
        let (writes, changed) = to_writes(shared, &changes, ctx.now);
        (
            Ok((std::mem::take(&mut ctx.conn.backing.snapshot), changed)),
            writes,
        )
    });
    step(engine.mode(), before, outcome, pending)
}

/// Runs an accepted transaction (the caller holds the gate exclusively) with the backing
/// store on: every key of the queue is loaded first.
pub fn run_exec(ctx: &mut Ctx<'_>, queue: Vec<Vec<Bytes>>) -> Step {
    let shared = ctx.shared;
    let engine = shared.backing.as_ref().expect("backing is on");
    if queue
        .iter()
        .any(|a| Cmd::lookup(&a[0]) == Some(Cmd::Swapdb))
    {
        crate::cmd::multi::unwatch_all(ctx);
        ctx.out
            .error("ERR SWAPDB is not supported while a backing store is on");
        return Step::Done;
    }
    let before = ctx.out.len();
    let (outcome, pending) = engine.write(|| {
        let mut db = ctx.db();
        let mut keys = Vec::new();
        for a in &queue {
            let Some(cmd) = Cmd::lookup(&a[0]) else {
                continue;
            };
            if cmd == Cmd::Select {
                if let Some(n) = a.get(1).and_then(|n| cache_protocol::parse_i64(n)) {
                    db = usize::try_from(n).unwrap_or(db);
                }
            }
            keys.extend(keys_of(db, cmd, a));
        }
        let absent = std::mem::take(&mut ctx.conn.backing.absent);
        if let Some(w) = check_keys(shared, engine, &keys, false, &absent, ctx.now) {
            ctx.conn.multi = Some(queue);
            return (Err(w), Vec::new());
        }
        let snapshot = if engine.mode() == Mode::WriteThrough {
            take_snapshot(shared, &keys, ctx.now)
        } else {
            Vec::new()
        };
        // Blocked clients its pushes serve pop here, inside its writes.
        let ((), changes) = ctx.changes.record(|| {
            crate::cmd::multi::run(ctx, queue);
            crate::cmd::blocking::serve_ready(shared, ctx.store(), ctx.now);
        });
        let (writes, changed) = to_writes(shared, &changes, ctx.now);
        (Ok((snapshot, changed)), writes)
    });
    step(engine.mode(), before, outcome, pending)
}

/// Runs an accepted script (the caller holds the gate exclusively) with the backing store on.
/// Its declared keys were loaded before EVAL/FCALL ran (`before_run`); its writes commit as
/// one group before the reply under write-through, or are journaled under write-back, like a
/// transaction's.
pub fn run_script(ctx: &mut Ctx<'_>, script: crate::scripting::Invocation) -> Step {
    let shared = ctx.shared;
    let engine = shared.backing.as_ref().expect("backing is on");
    let before = ctx.out.len();
    let db = ctx.db() as u32;
    let keys: Vec<(u32, Bytes)> = script.keys.iter().map(|k| (db, k.clone())).collect();
    let (outcome, pending) = engine.write(|| {
        let snapshot = if engine.mode() == Mode::WriteThrough {
            take_snapshot(shared, &keys, ctx.now)
        } else {
            Vec::new()
        };
        let ((), changes) = ctx.changes.record(|| {
            crate::scripting::run(ctx, script);
            crate::cmd::blocking::serve_ready(shared, ctx.store(), ctx.now);
        });
        let (writes, changed) = to_writes(shared, &changes, ctx.now);
        (Ok((snapshot, changed)), writes)
    });
    step(engine.mode(), before, outcome, pending)
}

/// After a failed write-through commit: puts the command's keys back as they were (keys it
/// changed that were not in the snapshot are dropped; the next read loads them).
pub fn restore(shared: &Shared, commit: &Commit) {
    let Some(engine) = &shared.backing else {
        return;
    };
    let now = crate::now_ms();
    engine.write(|| {
        for (db, key, entry) in &commit.snapshot {
            let mut locked = shared.store.lock(key);
            match entry {
                Some(e) => {
                    locked.insert(*db as usize, key, e.clone(), now);
                }
                None => {
                    locked.remove(*db as usize, key, now);
                }
            }
        }
        for (db, key) in &commit.changed {
            if !commit.snapshot.iter().any(|(d, k, _)| d == db && k == key) {
                shared.store.lock(key).evict(*db as usize, key, now);
            }
        }
        ((), Vec::new())
    });
}

/// Before replies of write-back writes leave: the journal records are in the file (and
/// fsynced up to `durable_seq` with `appendfsync always`).
pub async fn settle(shared: &Shared, durable_seq: u64) {
    let Some(engine) = &shared.backing else {
        return;
    };
    if durable_seq > 0 {
        if let Err(e) = engine.durable(durable_seq).await {
            tracing::error!(error = %e, "journal fsync failed");
        }
    } else if let Err(e) = engine.before_reply() {
        tracing::error!(error = %e, "journal write failed");
    }
}

/// INFO's `# Backing` section.
pub fn info(shared: &Shared, t: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(t, "# Backing\r\n");
    let Some(engine) = &shared.backing else {
        let _ = write!(t, "backing_mode:none\r\n");
        return;
    };
    let s = engine.stats();
    let mode = match engine.mode() {
        Mode::WriteThrough => "write-through",
        Mode::WriteBack => "write-back",
    };
    let avg_batch = if s.commits > 0 {
        let n = if engine.mode() == Mode::WriteThrough {
            s.committed_commands
        } else {
            s.flushed
        };
        n as f64 / s.commits as f64
    } else {
        0.0
    };
    let avg_commit = s.commit_usec.checked_div(s.commits).unwrap_or(0);
    let last_error = s.last_error.replace(['\r', '\n'], " ");
    let _ = write!(
        t,
        "backing_mode:{mode}\r\nbacking_store:{}\r\nbacking_pending_writes:{}\r\nbacking_oldest_pending_ms:{}\r\n\
         backing_flushed:{}\r\nbacking_failed:{}\r\nbacking_retries:{}\r\nbacking_journal_bytes:{}\r\n\
         backing_last_error:{last_error}\r\nbacking_loads:{}\r\nbacking_loads_joined:{}\r\nbacking_load_hits:{}\r\n\
         backing_load_misses:{}\r\nbacking_load_errors:{}\r\nbacking_negative_hits:{}\r\nbacking_commits:{}\r\n\
         backing_avg_batch:{avg_batch:.2}\r\nbacking_avg_commit_usec:{avg_commit}\r\nbacking_invalidations:{}\r\n\
         backing_change_feed:{}\r\n",
        engine.store_name(),
        s.pending,
        s.oldest_pending_ms,
        s.flushed,
        s.failed,
        s.retries,
        s.journal_bytes,
        s.loads,
        s.loads_joined,
        s.load_hits,
        s.load_misses,
        s.load_errors,
        s.negative_hits,
        s.commits,
        s.invalidations,
        if !engine.config().change_feed {
            "off"
        } else if s.feed_connected {
            "up"
        } else {
            "down"
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blind(line: &str) -> bool {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        is_blind(Cmd::lookup(&args[0]).expect("known"), &args)
    }

    #[test]
    fn blind_writes_come_from_the_key_specs() {
        for line in [
            "set k v",
            "set k v EX 10",
            "setex k 10 v",
            "psetex k 10 v",
            "mset a 1 b 2",
        ] {
            assert!(blind(line), "{line}");
        }
        for line in [
            "set k v GET",
            "set k v NX",
            "set k v KEEPTTL",
            "setnx k v",
            "msetnx a 1",
            "getset k v",
            "incr k",
            "append k v",
            "rename a b",
            "get k",
        ] {
            assert!(!blind(line), "{line}");
        }
    }
}
