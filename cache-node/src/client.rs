//! The client registry: what CLIENT LIST shows and CLIENT KILL reaches.
//!
//! Each connection publishes a few atomics (database, last command, last activity) that it
//! updates without locking; other connections read them for CLIENT LIST.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// What other connections may see and do about one connection.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub created: Instant,
    pub name: Mutex<String>,
    /// The ACL user name (CLIENT LIST's `user=`); set by AUTH, read by CLIENT KILL USER.
    pub user: Mutex<String>,
    pub lib_name: Mutex<String>,
    pub lib_ver: Mutex<String>,
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    /// Index into `all_specs()` of the last command, plus one (0 = none yet).
    pub last_cmd: AtomicUsize,
    pub killed: AtomicBool,
    pub kill: Notify,
    /// CLIENT TRACKING state (`crate::tracking::flags`); 0 when tracking is off. Read on every
    /// command of this connection while some client tracks.
    pub tracking: AtomicU32,
    /// CLIENT TRACKING's REDIRECT target (0 = none).
    pub redirect: AtomicU64,
    /// Where messages for this connection go once it has a queue (it subscribed, turned
    /// tracking on, or speaks RESP3): how other connections reach it, e.g. as a REDIRECT target.
    pub outbox: OnceLock<Weak<crate::cmd::pubsub::Outbox>>,
}

impl ClientInfo {
    /// Records activity now (once per batch of requests).
    pub fn mark_active(&self, now: Instant) {
        self.last_active_ms
            .store(now.duration_since(self.created).as_millis() as u64, Relaxed);
    }

    pub fn set_last_command(&self, cmd_stat_index: usize) {
        self.last_cmd.store(cmd_stat_index + 1, Relaxed);
    }

    pub fn idle(&self) -> Duration {
        let active = Duration::from_millis(self.last_active_ms.load(Relaxed));
        self.created.elapsed().saturating_sub(active)
    }

    pub fn request_kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
    }

    pub fn name(&self) -> String {
        lock(&self.name).clone()
    }

    pub fn user(&self) -> String {
        lock(&self.user).clone()
    }

    /// This connection's message queue, if it has one.
    pub fn outbox(&self) -> Option<Arc<crate::cmd::pubsub::Outbox>> {
        self.outbox.get().and_then(Weak::upgrade)
    }

    /// CLIENT LIST's `flags` and `redir` fields (tracking's share of them).
    fn flags_and_redir(&self) -> (String, i64) {
        use crate::tracking::flags;
        let t = self.tracking.load(Relaxed);
        if t & flags::ON == 0 {
            return ("N".into(), -1);
        }
        let mut f = String::from("t");
        if t & flags::BROKEN_REDIRECT != 0 {
            f.push('R');
        }
        if t & flags::BCAST != 0 {
            f.push('B');
        }
        (f, self.redirect.load(Relaxed) as i64)
    }

    /// One line of CLIENT LIST / CLIENT INFO, with Redis's field names. `qbuf`: bytes in
    /// the client's query buffer (the command being run, for the client asking).
    pub fn describe(&self, qbuf: usize) -> String {
        let cmd = match self.last_cmd.load(Relaxed) {
            0 => "NULL".to_string(),
            i => cache_protocol::command::all_specs()
                .nth(i - 1)
                .map_or("NULL".to_string(), |s| s.name.to_string()),
        };
        let (flags, redir) = self.flags_and_redir();
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer,
            self.local,
            self.name(),
            self.created.elapsed().as_secs(),
            self.idle().as_secs(),
            flags,
            self.db.load(Relaxed),
            qbuf,
            cmd,
            lock(&self.user),
            redir,
            self.resp.load(Relaxed),
            lock(&self.lib_name),
            lock(&self.lib_ver),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// All connected clients, by id.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Clients {
    /// A new client id. Taken at accept time, so ids grow in connection order even though
    /// connections are registered later on different worker threads.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed) + 1
    }

    pub fn register(&self, id: u64, peer: SocketAddr, local: SocketAddr) -> Arc<ClientInfo> {
        let info = Arc::new(ClientInfo {
            id,
            peer,
            local,
            created: Instant::now(),
            name: Mutex::new(String::new()),
            user: Mutex::new("default".to_string()),
            lib_name: Mutex::new(String::new()),
            lib_ver: Mutex::new(String::new()),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_active_ms: AtomicU64::new(0),
            last_cmd: AtomicUsize::new(0),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            tracking: AtomicU32::new(0),
            redirect: AtomicU64::new(0),
            outbox: OnceLock::new(),
        });
        lock(&self.map).insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        lock(&self.map).remove(&id);
    }

    /// The connected client with this id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        lock(&self.map).get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        lock(&self.map).values().cloned().collect()
    }

    pub fn kill_all(&self) {
        for c in self.all() {
            c.request_kill();
        }
    }

    pub fn kill_idle(&self, timeout: Duration) {
        for c in self.all() {
            if c.idle() > timeout {
                tracing::debug!(id = c.id, "closing idle client");
                c.request_kill();
            }
        }
    }
}
