//! The node as a replica of a Redis 7 master (REPLICAOF): Redis's replication protocol from
//! the replica's side, so that a node can follow a production Redis and take over from it.
//!
//! ```text
//!  REPLICAOF host port / `replicaof` ─► start: one task on the node's runtime
//!    loop: link::connect ─► handshake (PING, AUTH, REPLCONF listening-port / capa, PSYNC)
//!          ├─ +FULLRESYNC ─► sync::receive ($<len> or $EOF:<mark>) ─► sync::load (flush,
//!          │                 cache-rdb records into the store; clients get -LOADING meanwhile)
//!          ├─ +CONTINUE   ─► keep the data, the offset and the selected database
//!          └─► stream::follow: every command through conn::run_request (from_master:
//!              no READONLY, ACL or maxmemory), REPLCONF GETACK answered, ACK every second
//!    link lost ─► retry every second with PSYNC <replid> <offset+1>
//!  REPLICAOF NO ONE ─► abort the task: the data stays and the node takes writes
//! ```

mod link;
mod stream;
mod sync;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, Weak};

use cache_protocol::command::{flags, CommandSpec};

use crate::{now_ms, Shared};

/// The link's state, as ROLE names it.
pub const CONNECT: u8 = 0;
pub const CONNECTING: u8 = 1;
pub const HANDSHAKE: u8 = 2;
pub const SYNC: u8 = 3;
pub const CONNECTED: u8 = 4;

const ROLE_STATES: [&str; 5] = ["connect", "connecting", "handshake", "sync", "connected"];

pub const READONLY_ERROR: &str = "READONLY You can't write against a read only replica.";
pub const MASTERDOWN_ERROR: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
pub const LOADING_ERROR: &str = "LOADING Redis is loading the dataset in memory";

/// The master being followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Master {
    pub host: String,
    pub port: u16,
}

/// What the master's replication id and offset were at the last link (for PSYNC).
#[derive(Clone, Debug, Default)]
pub struct Cached {
    pub replid: String,
    /// The database the master's stream had selected.
    pub db: usize,
}

/// Replication state, read by INFO, ROLE and admission.
#[derive(Default)]
pub struct Replica {
    /// Set while a master is configured: the one load admission pays for it.
    active: AtomicBool,
    master: Mutex<Option<Master>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    runtime: OnceLock<tokio::runtime::Handle>,
    node: OnceLock<Weak<Shared>>,
    pub state: AtomicU8,
    pub loading: AtomicBool,
    /// The master's stream applied so far (`slave_repl_offset`).
    pub offset: AtomicI64,
    /// The master's stream received so far (`slave_read_repl_offset`).
    pub read_offset: AtomicI64,
    pub cached: Mutex<Option<Cached>>,
    /// The id our own history continues, after a promotion (`master_replid2`).
    pub replid2: Mutex<Option<(String, i64)>>,
    pub last_io_ms: AtomicU64,
    pub down_since_ms: AtomicU64,
    /// Full sync progress: bytes announced (-1 for a diskless stream) and received so far.
    pub sync_total: AtomicI64,
    pub sync_read: AtomicU64,
    pub sync_keys: AtomicU64,
    pub full_syncs: AtomicU64,
    pub partial_syncs: AtomicU64,
    /// Our own replication id while we are a master (INFO's `master_replid`).
    own_replid: Mutex<String>,
}

impl Replica {
    /// Ties the state to its node (the replication task needs an owned handle).
    pub fn set_node(&self, node: Weak<Shared>, run_id: &str) {
        let _ = self.node.set(node);
        *lock(&self.own_replid) = run_id.to_string();
    }

    /// Where replication tasks run (the node's main runtime, set by `Node::start`).
    pub fn set_runtime(&self, runtime: tokio::runtime::Handle) {
        let _ = self.runtime.set(runtime);
    }

    pub fn active(&self) -> bool {
        self.active.load(Relaxed)
    }

    pub fn master(&self) -> Option<Master> {
        lock(&self.master).clone()
    }

    pub fn link_up(&self) -> bool {
        self.state.load(Relaxed) == CONNECTED
    }

    fn set_down(&self) {
        if self.state.swap(CONNECTING, Relaxed) == CONNECTED {
            self.down_since_ms.store(now_ms(), Relaxed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a client's command is refused on a replica, with Redis's text (`processCommand`'s
/// order: read-only replica, stale data, loading). `spec` is the call's, `top` its command's.
pub fn refusal(shared: &Shared, spec: &CommandSpec, top: &CommandSpec) -> Option<&'static str> {
    let r = &shared.replica;
    if !r.active() {
        return None;
    }
    if spec.is_write() && flag(shared, "replica-read-only") {
        return Some(READONLY_ERROR);
    }
    if !r.link_up() && !flag(shared, "replica-serve-stale-data") && !top.has(flags::STALE) {
        return Some(MASTERDOWN_ERROR);
    }
    if r.loading.load(Relaxed) && !top.has(flags::LOADING) {
        return Some(LOADING_ERROR);
    }
    None
}

/// replica-ignore-maxmemory on a replica: no eviction, its master decides.
pub fn ignores_maxmemory(shared: &Shared) -> bool {
    shared.replica.active() && flag(shared, "replica-ignore-maxmemory")
}

fn flag(shared: &Shared, name: &str) -> bool {
    shared.config.get(name).is_none_or(|v| v == "yes")
}

/// Why REPLICAOF cannot follow a master.
pub fn refused(shared: &Shared) -> Option<&'static str> {
    shared.backing.is_some().then_some(
        "ERR REPLICAOF is not allowed with a backing store: the database is the source of truth (backing-mode must be none)",
    )
}

/// Follows `master` (replacing any link), or stops following with None (a promotion: the
/// data stays). True when a new link was started; false when it was the current master.
pub fn set_master(shared: &Shared, master: Option<Master>) -> bool {
    let r = &shared.replica;
    let mut current = lock(&r.master);
    if *current == master && master.is_some() {
        return false;
    }
    if let Some(task) = lock(&r.task).take() {
        task.abort();
    }
    let was = current.take();
    match master {
        None => {
            r.active.store(false, Relaxed);
            r.state.store(CONNECT, Relaxed);
            if was.is_some() {
                // Our history goes on from the master's: its id becomes our second one.
                let offset = r.offset.load(Relaxed);
                let old = lock(&r.cached)
                    .take()
                    .map_or_else(|| lock(&r.own_replid).clone(), |c| c.replid);
                *lock(&r.replid2) = Some((old, offset + 1));
                *lock(&r.own_replid) = new_replid();
                tracing::info!("MASTER MODE enabled: the node keeps its data and takes writes");
            }
            false
        }
        Some(m) => {
            if was.is_none() {
                // A master becoming a replica: no cached master to continue from.
                *lock(&r.cached) = None;
            }
            tracing::info!(host = %m.host, port = m.port, "connecting to MASTER");
            r.state.store(CONNECT, Relaxed);
            r.down_since_ms.store(now_ms(), Relaxed);
            r.active.store(true, Relaxed);
            *current = Some(m.clone());
            let runtime = r
                .runtime
                .get()
                .cloned()
                .or_else(|| tokio::runtime::Handle::try_current().ok());
            let node = r.node.get().and_then(Weak::upgrade);
            if let (Some(runtime), Some(node)) = (runtime, node) {
                let task = runtime.spawn(link::run(node, m));
                *lock(&r.task) = Some(task.abort_handle());
            }
            true
        }
    }
}

fn new_replid() -> String {
    crate::random_id(0x9e37_79b9_7f4a_7c15)
}

/// INFO's `# Replication` section.
pub fn info_section(shared: &Shared) -> String {
    let r = &shared.replica;
    let now = now_ms();
    let mut t = String::from("# Replication\r\n");
    let master = r.master();
    let offset = r.offset.load(Relaxed);
    if let Some(m) = &master {
        let state = r.state.load(Relaxed);
        let secs = |ms: u64| (now.saturating_sub(ms) / 1000) as i64;
        let last_io = if state == CONNECTED {
            secs(r.last_io_ms.load(Relaxed))
        } else {
            -1
        };
        let syncing = state == SYNC;
        let _ = write!(
            t,
            "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{last_io}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{offset}\r\n",
            m.host,
            m.port,
            if state == CONNECTED { "up" } else { "down" },
            u8::from(syncing),
            r.read_offset.load(Relaxed),
        );
        if syncing {
            let total = r.sync_total.load(Relaxed);
            let read = r.sync_read.load(Relaxed) as i64;
            let (left, perc) = if total > 0 {
                (total - read, read as f64 * 100.0 / total as f64)
            } else {
                (-1, 0.0)
            };
            let _ = write!(
                t,
                "master_sync_total_bytes:{total}\r\nmaster_sync_read_bytes:{read}\r\nmaster_sync_left_bytes:{left}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\nmaster_sync_loaded_keys:{}\r\n",
                secs(r.last_io_ms.load(Relaxed)),
                r.sync_keys.load(Relaxed),
            );
        }
        if state != CONNECTED {
            let _ = write!(
                t,
                "master_link_down_since_seconds:{}\r\n",
                secs(r.down_since_ms.load(Relaxed))
            );
        }
        let _ = write!(
            t,
            "slave_priority:100\r\nslave_read_only:{}\r\nreplica_announced:1\r\n",
            u8::from(flag(shared, "replica-read-only"))
        );
    } else {
        t.push_str("role:master\r\n");
    }
    let replid = match (&master, &*lock(&r.cached)) {
        (Some(_), Some(c)) => c.replid.clone(),
        _ => lock(&r.own_replid).clone(),
    };
    let (replid2, second) = lock(&r.replid2)
        .clone()
        .unwrap_or_else(|| ("0".repeat(40), -1));
    let _ = write!(
        t,
        "connected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{replid}\r\nmaster_replid2:{replid2}\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:{second}\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
    );
    t
}

/// ROLE's reply: `master offset []` or `slave host port state offset`.
pub fn role(shared: &Shared, out: &mut cache_protocol::ReplyBuf) {
    let r = &shared.replica;
    let offset = r.offset.load(Relaxed);
    match r.master() {
        None => {
            out.array(3);
            out.bulk(b"master");
            out.int(offset);
            out.array(0);
        }
        Some(m) => {
            out.array(5);
            out.bulk(b"slave");
            out.bulk(m.host.as_bytes());
            out.int(i64::from(m.port));
            let state = ROLE_STATES[usize::from(r.state.load(Relaxed)).min(4)];
            out.bulk(state.as_bytes());
            out.int(if r.state.load(Relaxed) == CONNECTED {
                offset
            } else {
                -1
            });
        }
    }
}

/// `replicaof HOST PORT` in the configuration: follow it from the start.
///
/// # Errors
/// A malformed value, or a backing store configured.
pub fn start_from_config(shared: &Shared) -> Result<(), String> {
    let value = shared.config.get("replicaof").unwrap_or_default();
    let words: Vec<&str> = value.split_whitespace().collect();
    match words[..] {
        [] => Ok(()),
        [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => Ok(()),
        [host, port] => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("replicaof: invalid master port '{port}'"))?;
            if let Some(e) = refused(shared) {
                return Err(format!("replicaof: {}", e.trim_start_matches("ERR ")));
            }
            set_master(
                shared,
                Some(Master {
                    host: host.to_string(),
                    port,
                }),
            );
            Ok(())
        }
        _ => Err(format!("replicaof: expected HOST PORT, got '{value}'")),
    }
}
