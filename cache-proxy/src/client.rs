//! One client connection, the executor of plans: decode every complete request, admit it,
//! [`plan`](crate::plan::plan) it, send what the plan says into the batch, wait for the
//! batch's replies and write them back in the client's order with one write.
//!
//! ```text
//!  read ─► admit ─► plan ─► Reply/Error ─────────────────────────► items
//!                         ├► Forward/Split/FanOut/Scan/Info ─► Backend (shared) ─► batch
//!                         ├► Local ─► session.rs (AUTH, HELLO, CLIENT, ACL, MULTI)
//!                         └► Alone ─► flush, then transaction.rs / pubsub.rs / admin.rs
//!  flush: wait, restore missing scripts and retry, merge (merge.rs), write
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use cache_protocol::admit::{admit, Admission, Resolved, Session};
use cache_protocol::command::Role;
use cache_protocol::{Cmd, Decoder, Limits};
use tokio::io::AsyncReadExt;

use crate::backend::{Backend, Batch, Dedicated};
use crate::cluster::{Cluster, Routing};
use crate::plan::{self, Action, Alone, Merge, Plan, Reload, View};
use crate::pubsub::PubSub;
use crate::reply::error_bytes;
use crate::session::ReplyMode;
use crate::tracking::{self, PushQueue, Tracking};
use crate::{admin, merge};
use cache_net::tls::send;

/// A worker thread's view: its routing snapshot and its shared node connections.
pub struct Worker {
    pub cluster: Arc<Cluster>,
    pub tracking: Tracking,
    routing: RefCell<Arc<Routing>>,
    backends: RefCell<HashMap<(u64, bool, usize), Rc<Backend>>>,
    /// (node id, SHA) of scripts this worker has loaded on a node before an EVALSHA, so a
    /// pipeline keeps its order: the SCRIPT LOAD goes ahead of the EVALSHA on the same
    /// connection instead of a retry after the whole batch.
    loaded: RefCell<hashbrown::HashSet<(u64, Bytes)>>,
}

impl Worker {
    pub fn new(cluster: Arc<Cluster>) -> Rc<Worker> {
        let routing = cluster.routing();
        let cluster_tracking_limit = cluster.config.tracking_table_max_keys;
        Rc::new(Worker {
            cluster,
            routing: RefCell::new(routing),
            backends: RefCell::new(HashMap::new()),
            loaded: RefCell::default(),
            tracking: Tracking::new(cluster_tracking_limit),
        })
    }

    /// The current snapshot; one atomic load unless the epoch moved.
    pub fn routing(&self) -> Arc<Routing> {
        let current = self.cluster.epoch();
        if self.routing.borrow().epoch != current {
            *self.routing.borrow_mut() = self.cluster.routing();
            // Slots moved or were dropped: tracked keys may now be served from elsewhere.
            if self.tracking.active() {
                self.tracking.flush_all();
            }
        }
        self.routing.borrow().clone()
    }

    pub(crate) fn backend(
        &self,
        routing: &Routing,
        node: usize,
        resp3: bool,
        client: u64,
    ) -> Rc<Backend> {
        let state = &routing.nodes[node];
        let index = (client % self.cluster.config.server_connections as u64) as usize;
        self.backends
            .borrow_mut()
            .entry((state.id, resp3, index))
            .or_insert_with(|| Backend::new(state.clone(), self.cluster.clone(), resp3))
            .clone()
    }
}

/// How one request's reply is produced from the batch.
pub(crate) enum Item {
    Ready(Bytes),
    Reply(u32),
    /// A reply nobody asked for (the SCRIPT LOAD sent ahead of an EVALSHA).
    Discard(u32),
    /// A reply that may need a script or library restored on `node` and a retry.
    Reload {
        slot: u32,
        node: usize,
        args: Vec<Bytes>,
        reload: Reload,
    },
    /// The parts of a split or fan-out, merged by `merge`.
    Merged {
        merge: Merge,
        slots: Vec<u32>,
        positions: Vec<Vec<usize>>,
        /// SCRIPT EXISTS: the scripts the proxy itself would restore on a node lacking them.
        known: Vec<bool>,
    },
    Scan {
        slot: u32,
        node: usize,
        members: Vec<bool>,
    },
    /// A reply CLIENT REPLY OFF or SKIP keeps from the client (its parts are still taken).
    Muted(Box<Item>),
    Info {
        text: String,
        parts: Vec<u32>,
    },
}

pub struct Client {
    pub(crate) worker: Rc<Worker>,
    pub(crate) id: u64,
    pub(crate) resp3: bool,
    pub(crate) authenticated: bool,
    /// The proxy ACL user this client runs as (`default` until AUTH).
    pub(crate) user: Arc<cache_acl::UserCell>,
    pub(crate) name: Option<Bytes>,
    /// Commands queued since MULTI; `None` outside a transaction.
    pub(crate) multi: Option<Vec<Vec<Bytes>>>,
    pub(crate) multi_failed: bool,
    /// The connection WATCH pinned (WATCH needs a connection of its own until EXEC).
    pub(crate) watch: Option<Dedicated>,
    /// A connection per node for blocking commands.
    pub(crate) blocking: HashMap<u64, Dedicated>,
    pub(crate) pubsub: Option<PubSub>,
    /// Pub/sub messages and invalidations for this client, written between batches.
    pub(crate) pushes: Option<PushQueue>,
    /// `CLIENT CACHING yes|no`: applies to the next command only.
    pub(crate) caching_next: Option<bool>,
    /// What `CLIENT CACHING` said for the command being planned.
    pub(crate) caching: Option<bool>,
    /// `CLIENT REPLY ON|OFF|SKIP`.
    pub(crate) replies: ReplyMode,
    /// Keys this batch read while tracking, recorded again when the replies are in.
    pub(crate) tracked_reads: Vec<Bytes>,
    batch: Rc<Batch>,
    pub(crate) items: Vec<Item>,
    pub(crate) out: BytesMut,
    pub(crate) quit: bool,
}

pub async fn serve(worker: Rc<Worker>, mut stream: impl cache_net::tls::Stream, id: u64) {
    let cluster = worker.cluster.clone();
    let mut client = Client {
        authenticated: cluster.acl.default_open(),
        user: cluster.acl.default_user(),
        worker,
        id,
        resp3: false,
        name: None,
        multi: None,
        multi_failed: false,
        watch: None,
        blocking: HashMap::new(),
        pubsub: None,
        pushes: None,
        caching_next: None,
        caching: None,
        replies: ReplyMode::On,
        tracked_reads: Vec::new(),
        batch: Batch::new(),
        items: Vec::new(),
        out: BytesMut::with_capacity(16 * 1024),
        quit: false,
    };
    let mut input = BytesMut::with_capacity(16 * 1024);
    let limit = cluster.config.query_buffer_limit;
    let mut decoder = Decoder::new(Limits {
        max_query_len: limit,
        ..Limits::default()
    });
    loop {
        // Every complete request already in the buffer. Before AUTH, Redis's limits on
        // argument count and size apply; the batch is decoded before it runs, so a
        // pipelined AUTH lifts them from the next read on.
        decoder.set_unauthenticated(!client.authenticated);
        let mut requests = Vec::new();
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(args)) => requests.push(args),
                Ok(None) => break,
                Err(e) => {
                    client.run(requests).await;
                    client.out.put_slice(format!("-ERR {e}\r\n").as_bytes());
                    let _ = send(&mut stream, &client.out).await;
                    return;
                }
            }
        }
        if !requests.is_empty() {
            if client
                .run_watching(requests, &mut stream, &mut input, limit)
                .await
            {
                break;
            }
            if !client.out.is_empty() {
                if send(&mut stream, &client.out).await.is_err() {
                    break;
                }
                client.out.clear();
            }
            if client.quit {
                break;
            }
        }
        if input.len() > limit {
            let _ = send(
                &mut stream,
                b"-ERR Protocol error: query buffer limit exceeded\r\n",
            )
            .await;
            break;
        }
        if input.is_empty() && input.capacity() > 1 << 20 {
            // After a huge request, give the memory back (Redis shrinks idle query buffers).
            input = BytesMut::with_capacity(16 * 1024);
        }
        input.reserve(16 * 1024);
        let read = if let Some(pushes) = client.pushes.as_mut() {
            tokio::select! {
                read = stream.read_buf(&mut input) => read,
                Some(message) = pushes.rx.recv() => {
                    let Some(out) = pushes.drain(message) else {
                        tracing::warn!(id = client.id, "closing a client that does not read its pushes (over the output limit)");
                        break;
                    };
                    if send(&mut stream, &out).await.is_err() {
                        break;
                    }
                    continue;
                }
            }
        } else {
            stream.read_buf(&mut input).await
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    client.worker.tracking.disable(client.id);
}

/// The proxy's side of admission: its own login and ACL users (not the nodes').
impl Session for Client {
    fn authenticated(&self) -> bool {
        self.authenticated
    }

    fn acl_check(&mut self, call: Resolved, args: &[Bytes]) -> Result<(), String> {
        // One relaxed load while the only user is an unrestricted default.
        if !self.worker.cluster.acl.restricted() {
            return Ok(());
        }
        self.user
            .check(call.cmd, call.sub, args)
            .map_err(|denied| denied.noperm(call.name()))
    }

    fn resp2_subscribed(&self) -> bool {
        self.pubsub.is_some() && !self.resp3
    }

    fn queueing(&self) -> bool {
        self.multi.is_some()
    }
}

impl Client {
    /// Runs a batch of requests, appending their replies to `out` in order.
    pub(crate) async fn run(&mut self, requests: Vec<Vec<Bytes>>) {
        let cluster = self.worker.cluster.clone();
        cluster
            .stats
            .commands
            .fetch_add(requests.len() as u64, Relaxed);
        let mut routing = self.worker.routing();
        let tracking = &self.worker.tracking;
        if tracking.active() && tracking.feeds_epoch.get() != routing.epoch {
            // Membership changed: nodes that joined need an invalidation feed too.
            let worker = self.worker.clone();
            tokio::task::spawn_local(async move { tracking::ensure_feeds(&worker).await });
        }
        for args in requests {
            if self.quit {
                break;
            }
            let mute = self.mutes(&args);
            let items = self.items.len();
            let Some((alone, call)) = self.step(&routing, &args) else {
                self.mute_from(mute, items, self.out.len());
                continue;
            };
            // A command that waits on its own: finish the batch so far, then run it.
            self.flush(&routing).await;
            let out = self.out.len();
            self.run_alone(&routing, alone, call, args).await;
            self.mute_from(mute, 0, out);
            routing = self.worker.routing();
        }
        self.flush(&routing).await;
    }

    pub(crate) fn ready(&mut self, reply: Bytes) {
        self.items.push(Item::Ready(reply));
    }

    pub(crate) fn error(&mut self, message: &str) {
        self.ready(error_bytes(message));
    }

    fn forward(&mut self, routing: &Routing, node: usize, args: &[Bytes]) -> u32 {
        let slot = self.batch.slot();
        self.worker
            .backend(routing, node, self.resp3, self.id)
            .send(args, &self.batch, slot);
        slot
    }

    /// Admits and plans one request, and sends what can go into the batch now. Returns what
    /// must run alone (it waits on a connection of its own or changes the cluster).
    fn step(&mut self, routing: &Routing, args: &[Bytes]) -> Option<(Alone, Resolved)> {
        // CLIENT CACHING applies to the next request, whatever becomes of that one.
        let caching = self.caching_next.take();
        if args[0].eq_ignore_ascii_case(b"client")
            && args.len() > 1
            && args[1].eq_ignore_ascii_case(b"caching")
        {
            self.caching_next = caching;
        } else {
            self.caching = caching;
        }
        if self.worker.cluster.acl.restricted() && self.user.is_deleted() {
            // ACL DELUSER on the proxy: its connections end, as Redis closes them.
            self.quit = true;
            return None;
        }
        let call = match admit(Role::Proxy, args, self) {
            Admission::Run(call) => call,
            Admission::Queue(_) => {
                if let Some(queued) = self.multi.as_mut() {
                    queued.push(args.to_vec());
                }
                self.ready(Bytes::from_static(b"+QUEUED\r\n"));
                return None;
            }
            Admission::Refuse { error, call } => {
                let queueing = self.multi.is_some();
                self.multi_failed |= queueing;
                if cache_protocol::admit::aborts_transaction(call, queueing) {
                    // Closing the pinned connection ends its WATCH on the node.
                    self.multi = None;
                    self.multi_failed = false;
                    self.watch = None;
                }
                self.error(&error);
                return None;
            }
        };
        tracing::debug!(cmd = call.name(), args = args.len(), "request");
        let view = View {
            in_multi: self.multi.is_some(),
            pick: self.id as usize + self.items.len(),
            subscribed: self.resp2_subscribed(),
        };
        let Plan {
            action,
            keys,
            write,
        } = plan::plan(routing, &view, call, args);
        let keys = keys.as_slice();
        if write {
            for key in keys {
                routing.mark_write(key);
            }
        }
        if matches!(action, Action::Forward { .. } | Action::Split { .. }) && !keys.is_empty() {
            self.track(call.spec(), keys);
        }
        self.remember_scripts(call, args);
        match action {
            Action::Reply(bytes) => self.ready(bytes),
            Action::Error(e) => self.ready(e.reply()),
            Action::Local => self.local(call, args),
            Action::Forward { node, mut reload } => {
                if let Reload::Script(sha) = &reload {
                    self.preload(routing, node, sha);
                }
                if reload == Reload::None && self.worker.cluster.cluster_mode.load(Relaxed) {
                    reload = Reload::Moved;
                }
                let slot = self.forward(routing, node, args);
                self.items.push(match reload {
                    Reload::None => Item::Reply(slot),
                    reload => Item::Reload {
                        slot,
                        node,
                        args: args.to_vec(),
                        reload,
                    },
                });
            }
            Action::Split { parts, merge } => {
                let mut slots = Vec::with_capacity(parts.len());
                let mut positions = Vec::with_capacity(parts.len());
                for part in parts {
                    slots.push(self.forward(routing, part.node, &part.args));
                    positions.push(part.positions);
                }
                self.items.push(Item::Merged {
                    merge,
                    slots,
                    positions,
                    known: Vec::new(),
                });
            }
            Action::FanOut {
                nodes,
                merge,
                stale_absent,
            } => {
                if stale_absent {
                    // Absent nodes cannot be flushed now: everything on them is stale.
                    for (i, node) in routing.nodes.iter().enumerate() {
                        if !routing.live[i] {
                            node.mark_all_dirty();
                        }
                    }
                }
                let slots = nodes
                    .into_iter()
                    .map(|n| self.forward(routing, n, args))
                    .collect();
                // A script the proxy keeps exists for the cluster: EVALSHA of it succeeds on
                // every node, loaded where missing.
                let known = match call.sub.map(|s| s.name) {
                    Some("script|exists") => {
                        let scripts = &self.worker.cluster.scripts;
                        args[2..]
                            .iter()
                            .map(|sha| scripts.script(sha).is_some())
                            .collect()
                    }
                    _ => Vec::new(),
                };
                self.items.push(Item::Merged {
                    merge,
                    slots,
                    positions: Vec::new(),
                    known,
                });
            }
            Action::Scan {
                node,
                cursor,
                members,
            } => {
                let mut sub = args.to_vec();
                sub[1] = Bytes::from(cursor.to_string());
                let slot = self.forward(routing, node, &sub);
                self.items.push(Item::Scan {
                    slot,
                    node,
                    members,
                });
            }
            Action::Info { nodes } => {
                let text = admin::info_text(&self.worker.cluster, routing);
                let keyspace = [Bytes::from_static(b"INFO"), Bytes::from_static(b"keyspace")];
                let parts = nodes
                    .into_iter()
                    .map(|n| self.forward(routing, n, &keyspace))
                    .collect();
                self.items.push(Item::Info { text, parts });
            }
            Action::Alone(alone) => return Some((alone, call)),
        }
        None
    }

    /// Sends SCRIPT LOAD ahead of the first EVALSHA of a script the proxy keeps to a node
    /// (from this worker).
    fn preload(&mut self, routing: &Routing, node: usize, sha: &Bytes) {
        let key = (
            routing.nodes[node].id,
            Bytes::from(sha.to_ascii_lowercase()),
        );
        if self.worker.loaded.borrow().contains(&key) {
            return;
        }
        let Some(body) = self.worker.cluster.scripts.script(sha) else {
            return;
        };
        let load = [
            Bytes::from_static(b"SCRIPT"),
            Bytes::from_static(b"LOAD"),
            body,
        ];
        let slot = self.forward(routing, node, &load);
        self.items.push(Item::Discard(slot));
        let mut loaded = self.worker.loaded.borrow_mut();
        if loaded.len() >= crate::scripts::MAX_ENTRIES {
            loaded.clear();
        }
        loaded.insert(key);
    }

    /// Keeps the scripts and libraries that go by, for nodes that lack them later.
    fn remember_scripts(&self, call: Resolved, args: &[Bytes]) {
        let scripts = &self.worker.cluster.scripts;
        let sub = call.sub.map(|s| s.name);
        match (call.cmd, sub) {
            (Cmd::Eval | Cmd::EvalRo, _) => scripts.add_script(&args[1]),
            (Cmd::Script, Some("script|load")) => scripts.add_script(&args[2]),
            (Cmd::Script, Some("script|flush")) => {
                scripts.flush_scripts();
                self.worker.loaded.borrow_mut().clear();
            }
            (Cmd::Function, Some("function|load")) => {
                if let Some(code) = args.last() {
                    scripts.add_library(code);
                }
            }
            (Cmd::Function, Some("function|delete")) => scripts.delete_library(&args[2]),
            (Cmd::Function, Some("function|flush")) => scripts.flush_libraries(),
            _ => {}
        }
    }

    /// Waits for the batch and writes every planned reply in order.
    async fn flush(&mut self, routing: &Routing) {
        if self.items.is_empty() {
            return;
        }
        self.batch.wait().await;
        let mut items = std::mem::take(&mut self.items);
        for item in &mut items {
            if let Item::Reload {
                slot,
                node,
                args,
                reload,
            } = item
            {
                let first = self.batch.take(*slot);
                let reply = self
                    .reload_and_retry(routing, *node, args, reload, first)
                    .await;
                *item = Item::Ready(reply);
            }
        }
        for item in &items {
            self.assemble(item);
        }
        self.items = items;
        self.items.clear();
        self.batch.clear();
        // Reads are recorded again once answered: an invalidation that arrived while they
        // were in flight consumed the first record, yet the reply may hold the new value.
        for key in std::mem::take(&mut self.tracked_reads) {
            self.worker.tracking.record_read(self.id, &key);
        }
    }

    /// A node that answered `-NOSCRIPT` (or lacks a function) gets what the proxy has seen,
    /// and the request is sent once more; the client sees only the second answer.
    async fn reload_and_retry(
        &mut self,
        routing: &Routing,
        node: usize,
        args: &[Bytes],
        reload: &Reload,
        first: Bytes,
    ) -> Bytes {
        if first.starts_with(b"-MOVED ") {
            let cluster = self.worker.cluster.clone();
            return cluster.follow_moved(first, args).await;
        }
        let scripts = &self.worker.cluster.scripts;
        let restore: Vec<Vec<Bytes>> = match reload {
            Reload::Script(sha) if first.starts_with(b"-NOSCRIPT") => match scripts.script(sha) {
                Some(body) => vec![vec![
                    Bytes::from_static(b"SCRIPT"),
                    Bytes::from_static(b"LOAD"),
                    body,
                ]],
                None => return first,
            },
            Reload::Functions if first.starts_with(b"-ERR Function not found") => {
                let libraries = scripts.libraries();
                if libraries.is_empty() {
                    return first;
                }
                libraries
                    .into_iter()
                    .map(|code| {
                        vec![
                            Bytes::from_static(b"FUNCTION"),
                            Bytes::from_static(b"LOAD"),
                            Bytes::from_static(b"REPLACE"),
                            code,
                        ]
                    })
                    .collect()
            }
            _ => return first,
        };
        tracing::debug!(node = %routing.nodes[node].addr, "restoring scripts on a node that lacks them");
        let backend = self.worker.backend(routing, node, self.resp3, self.id);
        let batch = Batch::new();
        for command in &restore {
            let slot = batch.slot();
            backend.send(command, &batch, slot);
        }
        let retry = batch.slot();
        backend.send(args, &batch, retry);
        batch.wait().await;
        batch.take(retry)
    }

    fn assemble(&mut self, item: &Item) {
        let batch = self.batch.clone();
        let reply = match item {
            Item::Ready(bytes) => bytes.clone(),
            Item::Discard(slot) => {
                batch.take(*slot);
                return;
            }
            Item::Reply(slot) | Item::Reload { slot, .. } => batch.take(*slot),
            Item::Merged {
                merge,
                slots,
                positions,
                known,
            } => {
                let parts = slots.iter().map(|s| batch.take(*s)).collect();
                let merged = merge::merge(*merge, parts, positions, self.resp3);
                if known.is_empty() {
                    merged
                } else {
                    merge::or_known(merged, known)
                }
            }
            Item::Scan {
                slot,
                node,
                members,
            } => merge::scan_page(&batch.take(*slot), *node, members),
            Item::Info { text, parts } => {
                let parts: Vec<Bytes> = parts.iter().map(|s| batch.take(*s)).collect();
                merge::info(text, &parts, self.resp3)
            }
            Item::Muted(item) => {
                let len = self.out.len();
                self.assemble(item);
                self.out.truncate(len);
                return;
            }
        };
        self.out.put_slice(&reply);
    }

    /// Commands that wait on a connection of their own or change the cluster.
    async fn run_alone(
        &mut self,
        routing: &Routing,
        alone: Alone,
        call: Resolved,
        args: Vec<Bytes>,
    ) {
        let reply = match alone {
            Alone::Proxy => admin::proxy_command(&self.worker.cluster, routing, &args).await,
            Alone::Tracking => self.tracking_command(&args).await,
            Alone::Exec => self.exec(routing).await,
            Alone::Discard => {
                self.multi = None;
                self.unwatch().await;
                Bytes::from_static(b"+OK\r\n")
            }
            Alone::Watch => self.watch(routing, &args).await,
            Alone::Unwatch => {
                self.unwatch().await;
                Bytes::from_static(b"+OK\r\n")
            }
            Alone::Reset => {
                self.reset().await;
                Bytes::from_static(b"+RESET\r\n")
            }
            Alone::Subscribe => {
                self.subscription(routing, call.cmd, &args).await;
                return;
            }
            Alone::Blocking { node } => self.blocking(routing, node, &args).await,
        };
        self.out.put_slice(&reply);
    }
}
