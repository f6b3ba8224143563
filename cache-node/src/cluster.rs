//! Cluster mode (`cluster-enabled yes`): the node holds its cluster's slot table and answers
//! as a Redis Cluster node. There is no cluster bus: the table is pushed whole, with an epoch,
//! by the membership authority (cache-proxy) through `CLUSTER SETTABLE`, and a node never
//! serves a slot the newest table it has seen does not give it.
//!
//! ```text
//!  CLUSTER SETTABLE epoch groups… ─► ClusterTable::parse_args ─► install (older epoch refused;
//!                                     keys of slots no longer ours dropped, as Redis does)
//!  every keyed request ─► admission (admit.rs) ─► Session::cluster_redirect ─► redirect():
//!      keys' slots (EXEC: of its whole queue) ─► -CROSSSLOT | -CLUSTERDOWN | -MOVED | serve
//! ```
//!
//! The check reads the table under a read lock that installs take briefly; nothing else
//! on the request path changes in cluster mode.

use std::cell::RefCell;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use cache_protocol::admit::Resolved;
use cache_protocol::command::Cmd;
use cache_routing::cluster_reply::Endpoint;
use cache_routing::{key_slot, ClusterNode, ClusterTable, SLOTS};

use crate::cmd::ConnState;
use crate::Shared;

static NEXT_STATE: AtomicU64 = AtomicU64::new(0);

/// The table this node holds and where it is in it.
#[derive(Debug)]
pub struct Installed {
    pub table: ClusterTable,
    /// This node's index in the table; `None` when the table does not list it.
    pub me: Option<usize>,
    /// When it was installed (Unix ms): the "pong received" of CLUSTER NODES.
    pub at_ms: u64,
}

/// The node's cluster state.
#[derive(Debug)]
pub struct ClusterState {
    pub enabled: bool,
    /// 40 hexadecimal characters, chosen at start.
    pub myid: String,
    installed: RwLock<Arc<Installed>>,
    /// Bumped by every install: worker threads keep the table they last read until it moves
    /// (no shared lock or counter written per request).
    version: AtomicU64,
    /// Tells this state's tables from another's in a thread's cache (nodes in one process).
    unique: u64,
}

impl ClusterState {
    pub fn new(enabled: bool) -> ClusterState {
        ClusterState {
            enabled,
            myid: cache_routing::random_node_id(),
            installed: RwLock::new(Arc::new(Installed {
                table: ClusterTable::empty(),
                me: None,
                at_ms: crate::now_ms(),
            })),
            version: AtomicU64::new(0),
            unique: NEXT_STATE.fetch_add(1, Relaxed),
        }
    }

    /// Runs `f` with the table held, read from this thread's cache unless an install has
    /// happened since.
    fn with_current<R>(&self, f: impl FnOnce(&Installed) -> R) -> R {
        type Cached = Option<(u64, u64, Arc<Installed>)>;
        thread_local! {
            static CACHE: RefCell<Cached> = const { RefCell::new(None) };
        }
        let version = self.version.load(Acquire);
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let fresh = matches!(&*cache, Some((u, v, _)) if *u == self.unique && *v == version);
            if !fresh {
                *cache = Some((self.unique, version, self.current()));
            }
            match &*cache {
                Some((_, _, held)) => f(held),
                None => f(&self.current()),
            }
        })
    }

    pub fn current(&self) -> Arc<Installed> {
        self.installed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Installs `table` unless it is older than the one held (or as old but different); then
    /// drops the keys of every slot this node does not own. Returns how many keys went.
    pub fn install(&self, shared: &Shared, table: ClusterTable) -> Result<usize, String> {
        let mut held = self.installed.write().unwrap_or_else(|e| e.into_inner());
        let epoch = held.table.epoch;
        if table.epoch < epoch {
            return Err(format!(
                "ERR Table epoch {} is older than this node's epoch {epoch}",
                table.epoch
            ));
        }
        if table.epoch == epoch && table != held.table {
            return Err(format!(
                "ERR Table epoch {epoch} is already installed with other contents"
            ));
        }
        let me = table.find(&self.myid);
        let ours: Vec<bool> = (0..SLOTS as u16)
            .map(|s| me.is_some() && table.owner_index(s) == me)
            .collect();
        tracing::info!(
            epoch = table.epoch,
            nodes = table.nodes.len(),
            assigned = table.assigned(),
            mine = ours.iter().filter(|o| **o).count(),
            listed = me.is_some(),
            "cluster table installed"
        );
        *held = Arc::new(Installed {
            table,
            me,
            at_ms: crate::now_ms(),
        });
        self.version.fetch_add(1, Release);
        // Under the write lock: no request is admitted by the old table meanwhile.
        let removed = shared.store.drop_slots(|s| !ours[usize::from(s)]);
        drop(held);
        if removed > 0 {
            tracing::info!(removed, "dropped the keys of slots this node does not own");
        }
        Ok(removed)
    }

    /// The table as this node presents it: its own entry with `cluster-announce-ip`,
    /// `-port` and `-hostname` when they are set, and listed (with no slot) when the
    /// table does not list it, as a Redis node always knows itself.
    pub fn view(&self, shared: &Shared) -> Installed {
        let current = self.current();
        let get = |name: &str| shared.config.get(name).unwrap_or_default();
        let (ip, port, hostname) = (
            get("cluster-announce-ip"),
            get("cluster-announce-port").parse::<u16>().unwrap_or(0),
            get("cluster-announce-hostname"),
        );
        let mut table = current.table.clone();
        let me = current.me.unwrap_or_else(|| {
            let addr = shared.addr;
            let node = ClusterNode::new(
                self.myid.clone(),
                &addr.ip().to_string(),
                addr.port(),
                Vec::new(),
            );
            table.nodes.push(node);
            table.nodes.len() - 1
        });
        let node = &mut table.nodes[me];
        if !ip.is_empty() {
            node.ip = ip;
        }
        if port != 0 {
            node.port = port;
        }
        if !hostname.is_empty() {
            node.hostname = hostname;
        }
        Installed {
            table,
            me: Some(me),
            at_ms: current.at_ms,
        }
    }
}

/// `cluster-preferred-endpoint-type`.
pub fn endpoint(shared: &Shared) -> Endpoint {
    Endpoint::parse(
        &shared
            .config
            .get("cluster-preferred-endpoint-type")
            .unwrap_or_default(),
    )
}

fn yes(shared: &Shared, name: &str) -> bool {
    shared.config.get(name).as_deref() == Some("yes")
}

/// Redis's cluster state: `ok` when some node serves slots and, with
/// `cluster-require-full-coverage yes`, every slot has an owner.
pub fn state_ok(shared: &Shared, table: &ClusterTable) -> bool {
    let assigned = table.assigned();
    assigned > 0 && (assigned == SLOTS || !yes(shared, "cluster-require-full-coverage"))
}

/// Redis Cluster's redirection of one request (Redis's `getNodeByQuery`): `Err` is the
/// whole error. Commands run by EXEC or a script were checked when the EXEC or the script
/// was admitted.
pub fn redirect(
    shared: &Shared,
    conn: &ConnState,
    call: Resolved,
    args: &[Bytes],
) -> Result<(), String> {
    if !shared.cluster.enabled || conn.in_exec || conn.in_script {
        return Ok(());
    }
    let mut first: Option<(Bytes, u16)> = None;
    let mut write = false;
    let mut check = |cmd: Cmd, args: &[Bytes]| -> Result<(), String> {
        write |= cmd.spec().is_write();
        for i in cmd.keys(args) {
            let Some(key) = args.get(i) else { continue };
            match first {
                None => first = Some((key.clone(), key_slot(key))),
                Some((ref k, slot)) if k != key && key_slot(key) != slot => {
                    return Err("CROSSSLOT Keys in request don't hash to the same slot".into());
                }
                Some(_) => {}
            }
        }
        Ok(())
    };
    if call.cmd == Cmd::Exec {
        let Some(queue) = conn.multi.as_ref() else {
            return Ok(());
        };
        for queued in queue {
            if let Some(cmd) = Cmd::lookup(&queued[0]) {
                check(cmd, queued)?;
            }
        }
    } else {
        check(call.cmd, args)?;
    }
    let Some((_, slot)) = first else {
        return Ok(());
    };
    shared
        .cluster
        .with_current(|held| route(shared, held, slot, write))
}

/// Where `slot` is served by the table held: here (`Ok`) or a redirection.
fn route(shared: &Shared, held: &Installed, slot: u16, write: bool) -> Result<(), String> {
    let Some(owner) = held.table.owner_index(slot) else {
        return Err("CLUSTERDOWN Hash slot not served".into());
    };
    if !state_ok(shared, &held.table) {
        if !yes(shared, "cluster-allow-reads-when-down") {
            return Err("CLUSTERDOWN The cluster is down".into());
        }
        if write {
            return Err("CLUSTERDOWN The cluster is down and only accepts read commands".into());
        }
    }
    if held.me == Some(owner) {
        return Ok(());
    }
    let node = &held.table.nodes[owner];
    Err(format!(
        "MOVED {slot} {}:{}",
        endpoint(shared).of(node),
        node.port
    ))
}
