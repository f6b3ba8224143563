//! Membership, health and routing snapshots, shared by every worker thread.
//!
//! Workers route with an immutable [`Routing`] snapshot and pick up a new one when the epoch
//! moves, so the hot path takes no lock. Every change of membership or liveness (eject,
//! readmit, `PROXY ADD`/`REMOVE`) runs one at a time under `change` and publishes a new
//! snapshot with the next epoch.
//!
//! Stale reads after a ring change are prevented with slot drops: while a node is out, every
//! write whose key's home is that node marks the key's slot in the node's `dirty` set; before
//! the node takes traffic again those slots are dropped on it (and on the nodes that stood in
//! for it, whose copies become orphans).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cache_routing::{key_slot, Distribution, NodeSpec, Router, SlotSet, SLOTS};

use crate::backend::{encode_command, handshake, read_replies, NodeStream};
use crate::config::Config;
use crate::error::{ErrorKind, ProxyError};
use crate::reply;
use cache_net::tls::send;

pub struct NodeState {
    /// Stable across membership changes (routing indices are not).
    pub id: u64,
    pub addr: String,
    pub weight: u32,
    failures: AtomicU32,
    pub errors: AtomicU64,
    pub ejections: AtomicU64,
    pub ejected: AtomicBool,
    pub removed: AtomicBool,
    /// A Redis server without our `CLUSTER DROPSLOTS`: drops fall back to SCAN + UNLINK.
    pub plain_redis: AtomicBool,
    /// Its id when it is a cache-node in cluster mode (the proxy pushes it the slot table).
    pub cluster_id: Mutex<Option<String>>,
    /// Slots that received writes elsewhere while this node was out.
    pub dirty: Mutex<SlotSet>,
    pub last_error: Mutex<String>,
    /// Time from sending a request on a shared connection to its reply (measured only when
    /// the metrics endpoint is on).
    pub latency: cache_net::metrics::Histogram,
}

impl NodeState {
    fn new(id: u64, spec: &NodeSpec) -> NodeState {
        NodeState {
            id,
            addr: spec.name.clone(),
            weight: spec.weight,
            failures: AtomicU32::new(0),
            errors: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            ejected: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            plain_redis: AtomicBool::new(false),
            cluster_id: Mutex::new(None),
            dirty: Mutex::new(SlotSet::new()),
            last_error: Mutex::new(String::new()),
            latency: Default::default(),
        }
    }

    /// Everything it holds may be stale and it cannot be told now: it drops every slot
    /// before it takes traffic again.
    pub fn mark_all_dirty(&self) {
        *self.dirty.lock().unwrap() = SlotSet::full();
    }

    pub fn unavailable(&self) -> String {
        format!("ERR node {} is unavailable", self.addr)
    }

    /// A reply arrived: the consecutive-failure count starts again.
    pub fn answered(&self) {
        if self.failures.load(Relaxed) != 0 {
            self.failures.store(0, Relaxed);
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures.load(Relaxed)
    }

    fn spec(&self) -> NodeSpec {
        NodeSpec {
            name: self.addr.clone(),
            weight: self.weight,
        }
    }
}

/// An immutable routing snapshot.
pub struct Routing {
    pub epoch: u64,
    /// Members, in routing-index order.
    pub nodes: Vec<Arc<NodeState>>,
    pub live: Vec<bool>,
    /// Where keys go now.
    pub router: Router,
    /// Where keys go when every member is up: a key's home.
    pub home: Router,
    pub any_absent: bool,
    auto_eject: bool,
}

impl Routing {
    /// The routing index of the node serving `key`.
    pub fn route(&self, key: &[u8]) -> Result<usize, ProxyError> {
        match self.router.node_for_key(key) {
            Some(i) if self.live[i] || self.auto_eject => Ok(i),
            Some(i) => Err(ProxyError::new(ErrorKind::NodeDown).at(&self.nodes[i].addr)),
            None => Err(ProxyError::new(ErrorKind::NoNode)),
        }
    }

    /// A snapshot of `addrs` (all live unless `live` says otherwise) for the planner's tests.
    #[cfg(test)]
    pub fn for_test(addrs: &[&str], live: &[bool]) -> Routing {
        let specs: Vec<NodeSpec> = addrs
            .iter()
            .map(|a| NodeSpec {
                name: a.to_string(),
                weight: 1,
            })
            .collect();
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(i, s)| Arc::new(NodeState::new(i as u64, s)))
            .collect();
        let all = vec![true; addrs.len()];
        Routing {
            epoch: 1,
            nodes,
            live: live.to_vec(),
            router: Router::build(&Distribution::Rendezvous, &specs, live, 1),
            home: Router::build(&Distribution::Rendezvous, &specs, &all, 1),
            any_absent: live.iter().any(|l| !l),
            auto_eject: true,
        }
    }

    /// Records a write of `key` for the node that should hold it, if that node is out.
    pub fn mark_write(&self, key: &[u8]) {
        if !self.any_absent {
            return;
        }
        if let Some(home) = self.home.node_for_key(key) {
            if !self.live[home] {
                let slot = key_slot(key);
                self.nodes[home].dirty.lock().unwrap().insert(slot);
            }
        }
    }

    pub fn live_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.live[i])
    }
}

#[derive(Default)]
pub struct Stats {
    /// maxclients and protected mode at accept time; the connection counts INFO reports.
    pub admission: Arc<cache_net::admission::Admission>,
    pub commands: AtomicU64,
    /// Clients waiting in a blocking command now (INFO's blocked_clients).
    pub blocked: AtomicU64,
}

pub struct Cluster {
    pub config: Config,
    /// The proxy's own ACL users (its `user` lines and `requirepass`).
    pub acl: cache_acl::Acl,
    routing: Mutex<Arc<Routing>>,
    epoch: AtomicU64,
    next_id: AtomicU64,
    /// Serializes membership and liveness changes (held across the drops they send).
    change: tokio::sync::Mutex<()>,
    runtime: tokio::runtime::Handle,
    pub started: Instant,
    pub stats: Stats,
    pub feed: Arc<crate::change_feed::FeedStats>,
    /// TLS towards the nodes (`node-tls yes`).
    node_tls: Option<cache_net::tls::TlsConnector>,
    /// Where `GET /metrics` is served (set once at start when `metrics-addr` is given).
    pub metrics_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// Scripts and function libraries seen, to restore on nodes that lack them.
    pub scripts: crate::scripts::Scripts,
    /// The client port's address (set once at start): what CLUSTER SLOTS lists.
    pub listen_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// The proxy's node id in CLUSTER SLOTS / NODES / MYID.
    pub node_id: String,
    /// Every member is a cache-node in cluster mode and gets the slot table pushed.
    pub cluster_mode: AtomicBool,
}

impl Cluster {
    pub fn new(
        config: Config,
        runtime: tokio::runtime::Handle,
        node_tls: Option<cache_net::tls::TlsConnector>,
    ) -> Arc<Cluster> {
        let nodes: Vec<Arc<NodeState>> = config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, spec)| Arc::new(NodeState::new(i as u64, spec)))
            .collect();
        let next_id = nodes.len() as u64;
        let routing = build_routing(&config, nodes, 1);
        // `Config::from_pairs` has checked the user lines; a config built otherwise with a bad
        // one fails closed: nobody can authenticate.
        let acl = config.acl().unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid user line: every user is disabled");
            let acl = cache_acl::Acl::default();
            let _ = acl.set_user(b"default", &["off", "resetpass"]);
            acl
        });
        Arc::new(Cluster {
            config,
            acl,
            routing: Mutex::new(Arc::new(routing)),
            epoch: AtomicU64::new(1),
            next_id: AtomicU64::new(next_id),
            change: tokio::sync::Mutex::new(()),
            runtime,
            started: Instant::now(),
            stats: Stats::default(),
            feed: Arc::default(),
            node_tls,
            metrics_addr: std::sync::OnceLock::new(),
            scripts: Default::default(),
            listen_addr: std::sync::OnceLock::new(),
            node_id: cache_routing::random_node_id(),
            cluster_mode: AtomicBool::new(false),
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn routing(&self) -> Arc<Routing> {
        self.routing.lock().unwrap().clone()
    }

    pub fn timeout(&self) -> Option<Duration> {
        (self.config.timeout_ms > 0).then(|| Duration::from_millis(self.config.timeout_ms))
    }

    fn publish(&self, routing: Routing) {
        let epoch = routing.epoch;
        *self.routing.lock().unwrap() = Arc::new(routing);
        self.epoch
            .store(epoch, std::sync::atomic::Ordering::Release);
    }

    /// Finds out which nodes are plain Redis servers (no slot drop); logs it, as the
    /// fallback (SCAN + UNLINK) is much slower.
    pub async fn detect_node_kinds(self: Arc<Self>) {
        let _change = self.change.lock().await;
        let routing = self.routing();
        for node in routing.nodes.clone() {
            self.detect_kind(&node).await;
        }
        self.push_table(&routing).await;
    }

    async fn detect_kind(&self, node: &NodeState) {
        crate::cluster_push::learn_id(self, node).await;
        if let Ok(reply) = self
            .node_command(&node.addr, &["CLUSTER", "DROPSLOTS"])
            .await
        {
            let plain = reply.first() != Some(&b':');
            node.plain_redis.store(plain, Relaxed);
            if plain {
                tracing::warn!(
                    node = %node.addr,
                    "node is not a cache-node: after a ring change its slots are dropped with \
                     SCAN + UNLINK, which is slower than a cache-node's per-slot drop"
                );
            }
        }
    }

    /// A request to `node` failed; ejects it after `server-failure-limit` in a row.
    pub fn report_failure(self: &Arc<Self>, node: &Arc<NodeState>) {
        node.errors.fetch_add(1, Relaxed);
        let failures = node.failures.fetch_add(1, Relaxed) + 1;
        if self.config.auto_eject
            && failures >= self.config.failure_limit
            && !node.ejected.swap(true, Relaxed)
        {
            let cluster = self.clone();
            let node = node.clone();
            self.runtime.spawn(async move { cluster.eject(node).await });
        } else if !self.config.auto_eject
            && failures >= self.config.failure_limit
            && !node.ejected.swap(true, Relaxed)
        {
            // Without auto-eject the node keeps its keys (they fail fast); a probe still
            // watches for its return so the state in PROXY NODES is right.
            let cluster = self.clone();
            let node = node.clone();
            self.runtime.spawn(async move { cluster.probe(node).await });
        }
    }

    async fn eject(self: Arc<Self>, node: Arc<NodeState>) {
        {
            let _change = self.change.lock().await;
            let current = self.routing();
            node.ejections.fetch_add(1, Relaxed);
            tracing::warn!(node = %node.addr, "ejecting node after {} failures", node.failures());
            let next = build_routing(&self.config, current.nodes.clone(), current.epoch + 1);
            self.push_table(&next).await;
            self.publish(next);
        }
        self.probe(node).await;
    }

    /// Probes an ejected node every `server-retry-timeout` and readmits it once it answers.
    async fn probe(self: Arc<Self>, node: Arc<NodeState>) {
        let every = Duration::from_millis(self.config.retry_timeout_ms);
        loop {
            tokio::time::sleep(every).await;
            if node.removed.load(Relaxed) {
                return;
            }
            let probe = self.node_command_within(&node.addr, &["PING"], self.timeout());
            match probe.await {
                Ok(reply) if reply.starts_with(b"+PONG") => {}
                Ok(reply) => {
                    *node.last_error.lock().unwrap() = reply::error_text(&reply);
                    continue;
                }
                Err(e) => {
                    *node.last_error.lock().unwrap() = e;
                    continue;
                }
            }
            match self.clone().readmit(&node).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(node = %node.addr, error = %e, "readmission failed; will retry");
                    *node.last_error.lock().unwrap() = e;
                }
            }
        }
    }

    async fn readmit(self: Arc<Self>, node: &Arc<NodeState>) -> Result<(), String> {
        let _change = self.change.lock().await;
        self.detect_kind(node).await;
        let mut dropped = SlotSet::new();
        // Drop until no new slot was marked meanwhile; the last check and the switch happen
        // under the dirty lock, so no write can slip between them.
        loop {
            let pending = {
                let dirty = node.dirty.lock().unwrap();
                without(&dirty, &dropped)
            };
            if pending.is_empty() {
                break;
            }
            let removed = self.drop_slots(node, &pending).await?;
            tracing::info!(node = %node.addr, slots = pending.len(), keys = removed, "dropped slots written elsewhere while the node was out");
            dropped.union_with(&pending);
        }
        let before = self.routing();
        {
            let mut dirty = node.dirty.lock().unwrap();
            if !without(&dirty, &dropped).is_empty() {
                return Err("writes arrived during readmission; retrying".to_string());
            }
            dirty.clear();
            node.ejected.store(false, Relaxed);
            node.failures.store(0, Relaxed);
            let next = build_routing(&self.config, before.nodes.clone(), before.epoch + 1);
            self.publish(next);
        }
        tracing::info!(node = %node.addr, "node readmitted");
        // (Pushed after the switch: the dirty lock cannot be held across it. Until the
        // stand-ins have it they still serve the slots a direct cluster client sends them.)
        self.push_table(&self.routing()).await;
        // The nodes that stood in for it now hold orphan copies of those slots; a later
        // ejection would make them serve those copies again, so drop them now.
        if matches!(self.config.distribution, Distribution::Rendezvous) && !dropped.is_empty() {
            let mut per_node: Vec<SlotSet> = vec![SlotSet::new(); before.nodes.len()];
            for slot in dropped.iter() {
                if let Some(i) = before.router.node_for_slot(slot) {
                    per_node[i].insert(slot);
                }
            }
            for (i, slots) in per_node.iter().enumerate() {
                if !slots.is_empty() && before.live[i] {
                    if let Err(e) = self.drop_slots(&before.nodes[i], slots).await {
                        tracing::warn!(node = %before.nodes[i].addr, error = %e, "could not drop orphan slots");
                    }
                }
            }
        }
        // Writers that routed with the old snapshot may have marked slots after the switch.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let late = std::mem::take(&mut *node.dirty.lock().unwrap());
        if !late.is_empty() {
            let _ = self.drop_slots(node, &late).await;
        }
        Ok(())
    }

    /// `PROXY ADD`: the new node takes its share of slots. The slots it takes are dropped on
    /// it first (it may hold old copies) and on their old owners afterwards (orphans).
    pub async fn add_node(self: &Arc<Self>, spec: NodeSpec) -> Result<(), String> {
        let _change = self.change.lock().await;
        let before = self.routing();
        if before.nodes.iter().any(|n| n.addr == spec.name) {
            return Err(format!("ERR node {} is already a member", spec.name));
        }
        let node = Arc::new(NodeState::new(self.next_id.fetch_add(1, Relaxed), &spec));
        self.detect_kind(&node).await;
        let mut nodes = before.nodes.clone();
        nodes.push(node.clone());
        let next = build_routing(&self.config, nodes, before.epoch + 1);
        let moved = moved_slots(&before, &next);
        let new_index = next.nodes.len() - 1;
        if !moved[new_index].is_empty() {
            self.drop_slots(&node, &moved[new_index])
                .await
                .map_err(|e| format!("ERR cannot prepare node {}: {e}", spec.name))?;
        }
        self.push_table(&next).await;
        self.publish(next);
        tracing::info!(node = %spec.name, "node added");
        // Orphans on the old owners.
        let mut from_old: Vec<SlotSet> = vec![SlotSet::new(); before.nodes.len()];
        for slot in moved[new_index].iter() {
            if let Some(i) = before.router.node_for_slot(slot) {
                from_old[i].insert(slot);
            }
        }
        for (i, slots) in from_old.iter().enumerate() {
            if !slots.is_empty() && before.live[i] {
                let _ = self.drop_slots(&before.nodes[i], slots).await;
            }
        }
        Ok(())
    }

    /// `PROXY REMOVE`: the node's slots go to the others, which drop any old copies of them
    /// first.
    pub async fn remove_node(self: &Arc<Self>, addr: &str) -> Result<(), String> {
        let _change = self.change.lock().await;
        let before = self.routing();
        let Some(position) = before.nodes.iter().position(|n| n.addr == addr) else {
            return Err(format!("ERR node {addr} is not a member"));
        };
        if before.nodes.len() == 1 {
            return Err("ERR cannot remove the last node".to_string());
        }
        let mut nodes = before.nodes.clone();
        let removed = nodes.remove(position);
        let next = build_routing(&self.config, nodes, before.epoch + 1);
        let moved = moved_slots(&before, &next);
        for (i, slots) in moved.iter().enumerate() {
            if !slots.is_empty() && next.live[i] {
                self.drop_slots(&next.nodes[i], slots)
                    .await
                    .map_err(|e| format!("ERR cannot prepare node {}: {e}", next.nodes[i].addr))?;
            }
        }
        removed.removed.store(true, Relaxed);
        self.push_table(&next).await;
        if self.cluster_mode.load(Relaxed) {
            self.push_table_to(&next, &[&removed]).await;
        }
        self.publish(next);
        tracing::info!(node = %addr, "node removed");
        Ok(())
    }

    /// `PROXY INVALIDATE pattern`: every live node forgets the matching keys (a cache-node
    /// from memory only; a plain Redis by SCAN MATCH + UNLINK). Nodes that are out drop
    /// everything they hold before they return, since they cannot be reached now.
    pub async fn invalidate(&self, routing: &Routing, pattern: &[u8]) -> Result<u64, String> {
        let mut total = 0;
        for (i, node) in routing.nodes.iter().enumerate() {
            if !routing.live[i] {
                node.mark_all_dirty();
                continue;
            }
            if node.plain_redis.load(Relaxed) {
                total += self.unlink_by_scan(node, pattern, |_| true).await?;
                continue;
            }
            let reply = self
                .node_command(&node.addr, &[&b"CACHE"[..], b"INVALIDATE", pattern])
                .await?;
            match reply::integer(&reply) {
                Some(n) => total += n.max(0) as u64,
                None => {
                    return Err(format!(
                        "ERR node {} refused: {}",
                        node.addr,
                        reply::error_text(&reply)
                    ))
                }
            }
        }
        Ok(total)
    }

    /// Removes every key of `slots` from `node`'s memory; returns how many keys went.
    pub async fn drop_slots(&self, node: &NodeState, slots: &SlotSet) -> Result<u64, String> {
        if slots.is_empty() {
            return Ok(0);
        }
        if !node.plain_redis.load(Relaxed) {
            let mut args: Vec<Vec<u8>> = vec![b"CLUSTER".to_vec(), b"DROPSLOTS".to_vec()];
            for (start, end) in slots.ranges() {
                args.push(start.to_string().into_bytes());
                args.push(end.to_string().into_bytes());
            }
            let reply = self.node_command(&node.addr, &args).await?;
            if let Some(n) = reply::integer(&reply) {
                return Ok(n.max(0) as u64);
            }
            // Not a cache-node after all (it was replaced by a plain Redis): fall back.
            node.plain_redis.store(true, Relaxed);
        }
        self.drop_slots_by_scan(node, slots).await
    }

    /// The plain-Redis fallback: SCAN the whole keyspace and UNLINK the keys of `slots`.
    async fn drop_slots_by_scan(&self, node: &NodeState, slots: &SlotSet) -> Result<u64, String> {
        self.unlink_by_scan(node, b"*", |k| slots.contains(key_slot(k)))
            .await
    }

    /// SCAN MATCH `pattern` over a whole node and UNLINK the keys `doomed` picks.
    async fn unlink_by_scan(
        &self,
        node: &NodeState,
        pattern: &[u8],
        doomed: impl Fn(&[u8]) -> bool,
    ) -> Result<u64, String> {
        let mut stream = self.connect(&node.addr, false).await?;
        let mut cursor = b"0".to_vec();
        let mut removed = 0u64;
        loop {
            let mut request = BytesMut::new();
            encode_command(
                &mut request,
                &[&b"SCAN"[..], &cursor, b"MATCH", pattern, b"COUNT", b"1000"],
            );
            send(&mut stream, &request)
                .await
                .map_err(|e| e.to_string())?;
            let reply = read_replies(&mut stream, 1).await?.remove(0);
            let (next, keys) = reply::scan_page(&reply).ok_or("bad SCAN reply")?;
            let doomed: Vec<Bytes> = keys.into_iter().filter(|k| doomed(k)).collect();
            if !doomed.is_empty() {
                let mut unlink = BytesMut::new();
                let mut args = vec![Bytes::from_static(b"UNLINK")];
                args.extend(doomed);
                encode_command(&mut unlink, &args);
                send(&mut stream, &unlink)
                    .await
                    .map_err(|e| e.to_string())?;
                let reply = read_replies(&mut stream, 1).await?.remove(0);
                removed += reply::integer(&reply).unwrap_or(0).max(0) as u64;
            }
            if next == b"0" {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// A prepared connection to a node (AUTH with the node password; HELLO 3 for `resp3`),
    /// within one request timeout.
    pub async fn connect(&self, addr: &str, resp3: bool) -> Result<NodeStream, String> {
        let connecting = handshake(
            addr,
            self.node_tls.as_ref(),
            self.config.node_password.as_deref(),
            resp3,
        );
        match self.timeout() {
            Some(t) => tokio::time::timeout(t, connecting)
                .await
                .map_err(|_| "connect timed out".to_string())?,
            None => connecting.await,
        }
    }

    /// One command on a connection of its own (admin traffic, not the hot path). Admin
    /// commands may walk a keyspace, so they get ten request timeouts.
    pub async fn node_command(
        &self,
        addr: &str,
        args: &[impl AsRef<[u8]>],
    ) -> Result<Bytes, String> {
        self.node_command_within(addr, args, self.timeout().map(|t| t * 10))
            .await
    }

    async fn node_command_within(
        &self,
        addr: &str,
        args: &[impl AsRef<[u8]>],
        limit: Option<Duration>,
    ) -> Result<Bytes, String> {
        let work = async {
            let mut stream = self.connect(addr, false).await?;
            let mut request = BytesMut::new();
            encode_command(&mut request, args);
            send(&mut stream, &request)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<Bytes, String>(read_replies(&mut stream, 1).await?.remove(0))
        };
        match limit {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| "timed out".to_string())?,
            None => work.await,
        }
    }
}

fn build_routing(config: &Config, nodes: Vec<Arc<NodeState>>, epoch: u64) -> Routing {
    let specs: Vec<NodeSpec> = nodes.iter().map(|n| n.spec()).collect();
    let live: Vec<bool> = nodes.iter().map(|n| !n.ejected.load(Relaxed)).collect();
    let all = vec![true; nodes.len()];
    let home = Router::build(&config.distribution, &specs, &all, epoch);
    let router = if config.auto_eject {
        Router::build(&config.distribution, &specs, &live, epoch)
    } else {
        Router::build(&config.distribution, &specs, &all, epoch)
    };
    Routing {
        epoch,
        any_absent: live.iter().any(|l| !l),
        nodes,
        live,
        router,
        home,
        auto_eject: config.auto_eject,
    }
}

/// For each node of `after`, the slots it serves in `after` but someone else served in
/// `before` (rendezvous only; ketama has no slot table).
fn moved_slots(before: &Routing, after: &Routing) -> Vec<SlotSet> {
    let mut moved = vec![SlotSet::new(); after.nodes.len()];
    for slot in 0..SLOTS as u16 {
        let (Some(new), Some(old)) = (
            after.router.node_for_slot(slot),
            before.router.node_for_slot(slot),
        ) else {
            continue;
        };
        if after.nodes[new].id != before.nodes[old].id {
            moved[new].insert(slot);
        }
    }
    moved
}

/// The slots of `a` that are not in `b`.
fn without(a: &SlotSet, b: &SlotSet) -> SlotSet {
    let mut out = SlotSet::new();
    for slot in a.iter().filter(|s| !b.contains(*s)) {
        out.insert(slot);
    }
    out
}
