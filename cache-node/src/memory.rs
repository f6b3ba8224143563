//! maxmemory: how much the node uses, and making room before a write.
//!
//! `used` is jemalloc's count of allocated bytes (what INFO reports as used_memory), re-read
//! at most once per millisecond on the write path while a limit is set; evictions subtract
//! their estimated size in between, so one refresh period never evicts twice for the same
//! bytes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use cache_protocol::command::flags;
use cache_protocol::{Cmd, CommandSpec};
use cache_store::Policy;

use crate::cmd::{CmdError, Ctx, Notify};
use crate::Shared;

/// Cached memory use.
#[derive(Default)]
pub struct Memory {
    used: AtomicU64,
    refreshed_at: AtomicU64,
    peak: AtomicU64,
}

/// Evictions per command at most, so one write never stalls the node for long.
const MAX_EVICTIONS_PER_COMMAND: usize = 4096;

impl Memory {
    /// Bytes in use, refreshed from the allocator when the cached figure is over 1 ms old.
    pub fn used(&self, now_ms: u64) -> u64 {
        let last = self.refreshed_at.load(Relaxed);
        if now_ms > last
            && self
                .refreshed_at
                .compare_exchange(last, now_ms, Relaxed, Relaxed)
                .is_ok()
        {
            let (allocated, _) = crate::cmd::server::memory_stats();
            self.used.store(allocated, Relaxed);
            self.record(allocated);
        }
        self.used.load(Relaxed)
    }

    /// Notes a reading for `used_memory_peak`.
    pub fn record(&self, allocated: u64) {
        self.peak.fetch_max(allocated, Relaxed);
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }

    fn freed(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Relaxed, Relaxed, |u| Some(u.saturating_sub(bytes as u64)));
    }
}

/// Memory that counts against maxmemory: all of it but the backing store's write-back
/// queue (evicting keys cannot shrink that; Redis likewise leaves its AOF buffers out).
fn counted(shared: &Shared, now: u64) -> u64 {
    let used = shared.memory.used(now);
    match &shared.backing {
        Some(engine) => used.saturating_sub(engine.queued_bytes()),
        None => used,
    }
}

/// Evicts until under `maxmemory`. Err when the policy cannot free enough.
fn make_room(shared: &Shared, maxmemory: u64, now: u64) -> Result<(), ()> {
    let mut evicted = 0;
    while counted(shared, now) > maxmemory {
        if evicted >= MAX_EVICTIONS_PER_COMMAND {
            // Keep serving; the next write continues the work.
            return Ok(());
        }
        match shared.store.evict_one(now) {
            Some(e) => {
                shared.memory.freed(e.bytes);
                shared.notify(e.db, Notify::EVICTED, "evicted", &e.key);
                evicted += 1;
            }
            None => return Err(()),
        }
    }
    Ok(())
}

/// Evicts at once down to `maxmemory` (as Redis does when CONFIG SET lowers it), as far as
/// the policy allows; the next writes continue if one call cannot free enough.
pub fn evict_now(shared: &Shared, now: u64) {
    let maxmemory = shared.config.maxmemory.load(Relaxed);
    if maxmemory != 0 {
        let _ = make_room(shared, maxmemory, now);
    }
}

/// Whether memory is over `maxmemory` with nothing left to evict (Redis's
/// `performEvictions() == EVICT_FAIL`): what refuses queueing inside MULTI.
pub fn out_of_memory(shared: &Shared, now: u64) -> bool {
    let maxmemory = shared.config.maxmemory.load(Relaxed);
    maxmemory != 0 && make_room(shared, maxmemory, now).is_err()
}

/// What the dispatcher must do after running a write admitted under memory pressure.
pub enum Admission {
    /// Nothing more.
    Done,
    /// TinyLFU turned the new key away: delete it once the command has run.
    Reject(usize, bytes::Bytes),
}

/// Called before every command while a maxmemory is set: evicts to make room, or refuses a
/// DENYOOM command with Redis's OOM error when nothing can be evicted.
pub fn before_command(
    ctx: &Ctx<'_>,
    cmd: Cmd,
    spec: &CommandSpec,
    args: &[bytes::Bytes],
) -> Result<Admission, CmdError> {
    let maxmemory = ctx.shared.config.maxmemory.load(Relaxed);
    // A script's commands were admitted with the script (see `scripting::admit`).
    if maxmemory == 0 || ctx.conn.in_script {
        return Ok(Admission::Done);
    }
    // A replica with replica-ignore-maxmemory leaves eviction to its master (Redis's
    // performEvictions); its master's writes are obeyed whatever memory says.
    if ctx.conn.from_master || crate::replica::ignores_maxmemory(ctx.shared) {
        return Ok(Admission::Done);
    }
    let used = counted(ctx.shared, ctx.now);
    let store = &ctx.shared.store;
    let policy = store.eviction.policy();
    let tinylfu = policy.tinylfu() && spec.has(flags::DENYOOM);
    // TinyLFU filters new keys from just below the limit on: between two allocator readings
    // the figure only drops (evictions subtract their size), so checking only when over the
    // limit let every key written in that slack in unfiltered, and scans leaked through it.
    let admission_line = maxmemory - maxmemory / 32;
    if used <= maxmemory && !(tinylfu && used > admission_line) {
        return Ok(Admission::Done);
    }
    if tinylfu {
        if let Some(&k) = cmd.keys(args).first() {
            let key = &args[k];
            let db = ctx.db();
            let is_new = !store.lock(key).contains(db, key, ctx.now);
            if is_new && !store.admit(key, ctx.now) {
                // Less frequent than what it would displace: let it run, then drop it, which
                // costs nothing net and keeps the hot set.
                return Ok(Admission::Reject(db, args[k].clone()));
            }
        }
    }
    match make_room(ctx.shared, maxmemory, ctx.now) {
        Ok(()) => Ok(Admission::Done),
        Err(())
            if spec.has(flags::DENYOOM)
                || policy == Policy::NoEviction && spec.has(flags::DENYOOM) =>
        {
            Err(CmdError::Msg(
                "OOM command not allowed when used memory > 'maxmemory'.",
            ))
        }
        Err(()) => Ok(Admission::Done),
    }
}

/// Completes an [`Admission`] after the command ran.
pub fn after_write(ctx: &Ctx<'_>, admission: Admission) {
    if let Admission::Reject(db, key) = admission {
        if ctx.shared.store.reject(db, &key, ctx.now) {
            ctx.shared.notify(db, Notify::EVICTED, "evicted", &key);
        }
    }
}

/// Whether the node is over maxmemory even after evicting what the policy allows: Redis's
/// `pre_command_oom_state`, which a script that may write is refused under.
pub fn over_limit(ctx: &Ctx<'_>) -> bool {
    let maxmemory = ctx.shared.config.maxmemory.load(Relaxed);
    maxmemory != 0 && make_room(ctx.shared, maxmemory, ctx.now).is_err()
}
