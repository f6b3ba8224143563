//! One client connection: decode every complete request, route each to its node (or split it
//! across nodes, or answer it here), wait for the batch's replies, write them back in the
//! client's order with one write.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use cache_protocol::admit::{admit, Admission, Resolved, Session};
use cache_protocol::command::{flags, Role};
use cache_protocol::{Cmd, Decoder, Limits};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::backend::{encode_command, Backend, Batch, Dedicated};
use crate::cluster::{Cluster, Routing};
use crate::reply::{bulk_bytes, error_bytes};
use crate::tracking::{self, Mode, PushQueue, Tracked, Tracking};
use crate::{admin, reply};
use cache_net::tls::send;

/// A worker thread's view: its routing snapshot and its shared node connections.
pub struct Worker {
    pub cluster: Arc<Cluster>,
    pub tracking: Tracking,
    routing: RefCell<Arc<Routing>>,
    backends: RefCell<HashMap<(u64, bool, usize), Rc<Backend>>>,
}

impl Worker {
    pub fn new(cluster: Arc<Cluster>) -> Rc<Worker> {
        let routing = cluster.routing();
        let cluster_tracking_limit = cluster.config.tracking_table_max_keys;
        Rc::new(Worker {
            cluster,
            routing: RefCell::new(routing),
            backends: RefCell::new(HashMap::new()),
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

    fn backend(&self, routing: &Routing, node: usize, resp3: bool, client: u64) -> Rc<Backend> {
        let state = &routing.nodes[node];
        let index = (client % self.cluster.config.server_connections as u64) as usize;
        self.backends
            .borrow_mut()
            .entry((state.id, resp3, index))
            .or_insert_with(|| Backend::new(state.clone(), self.cluster.clone(), resp3))
            .clone()
    }
}

const CROSSNODE: &str = "CROSSSLOT Keys in request don't hash to the same node; put them in one {hash tag} (e.g. {user42}:a and {user42}:b) to keep them together";

/// How one request's reply is produced from the batch.
enum Item {
    Ready(Bytes),
    Reply(u32),
    /// MGET split per node: each part's slot and where its values go in the reply.
    Mget {
        parts: Vec<(u32, Vec<usize>)>,
        total: usize,
    },
    /// DEL/UNLINK/EXISTS/TOUCH/DBSIZE: the sum of the parts' integers.
    Sum(Vec<u32>),
    /// MSET/FLUSHALL: OK when every part said OK.
    AllOk(Vec<u32>),
    /// KEYS: the parts' arrays end to end.
    Concat(Vec<u32>),
    /// SCAN on member `node` of `nodes` members.
    Scan {
        slot: u32,
        node: usize,
        members: Vec<bool>,
    },
    /// INFO: the proxy's own text plus the nodes' summed keyspace.
    Info {
        text: String,
        parts: Vec<u32>,
    },
}

pub struct Client {
    worker: Rc<Worker>,
    id: u64,
    resp3: bool,
    authenticated: bool,
    /// The proxy ACL user this client runs as (`default` until AUTH).
    user: Arc<cache_acl::UserCell>,
    name: Option<Bytes>,
    /// Commands queued since MULTI; `None` outside a transaction.
    multi: Option<Vec<Vec<Bytes>>>,
    multi_failed: bool,
    /// The connection WATCH pinned (WATCH needs a connection of its own until EXEC).
    watch: Option<Dedicated>,
    /// A connection per node for blocking commands.
    blocking: HashMap<u64, Dedicated>,
    pubsub: Option<PubSub>,
    /// Pub/sub messages and invalidations for this client, written between batches.
    pushes: Option<PushQueue>,
    /// `CLIENT CACHING yes|no`: applies to the next command only.
    caching_next: Option<bool>,
    /// What `CLIENT CACHING` said for the command being planned.
    caching: Option<bool>,
    /// Keys this batch read while tracking, recorded again when the replies are in.
    tracked_reads: Vec<Bytes>,
    batch: Rc<Batch>,
    items: Vec<Item>,
    out: BytesMut,
    quit: bool,
}

struct PubSub {
    channels: hashbrown::HashSet<Bytes>,
    patterns: hashbrown::HashSet<Bytes>,
    /// Write halves of the per-node subscription connections, by node id.
    writers: HashMap<u64, tokio::io::WriteHalf<crate::backend::NodeStream>>,
    /// One unit per confirmation a node sent (the proxy answers the client itself).
    acks: (mpsc::UnboundedSender<()>, mpsc::UnboundedReceiver<()>),
}

impl PubSub {
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
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
        tracked_reads: Vec::new(),
        batch: Batch::new(),
        items: Vec::new(),
        out: BytesMut::with_capacity(16 * 1024),
        quit: false,
    };
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut decoder = Decoder::new(Limits::default());
    let limit = cluster.config.query_buffer_limit;
    loop {
        // Every complete request already in the buffer.
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
            client.run(requests).await;
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
    cluster.stats.connected_clients.fetch_sub(1, Relaxed);
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
    async fn run(&mut self, requests: Vec<Vec<Bytes>>) {
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
            if self.plan(&routing, &args) {
                continue;
            }
            // A command that waits on its own: finish the batch so far, then run it.
            self.flush(&routing).await;
            self.run_alone(&routing, args).await;
            routing = self.worker.routing();
        }
        self.flush(&routing).await;
    }

    fn ready(&mut self, reply: Bytes) {
        self.items.push(Item::Ready(reply));
    }

    fn error(&mut self, message: &str) {
        self.ready(error_bytes(message));
    }

    fn forward(&mut self, routing: &Routing, node: usize, args: &[Bytes]) -> u32 {
        let slot = self.batch.slot();
        self.worker
            .backend(routing, node, self.resp3, self.id)
            .send(args, &self.batch, slot);
        slot
    }

    /// Plans one request into the batch. Returns false when it must run alone (it waits on
    /// a connection of its own or changes the cluster).
    fn plan(&mut self, routing: &Routing, args: &[Bytes]) -> bool {
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
            return true;
        }
        let call = match admit(Role::Proxy, args, self) {
            Admission::Run(call) => call,
            Admission::Queue(_) => {
                if let Some(queued) = self.multi.as_mut() {
                    queued.push(args.to_vec());
                }
                self.ready(Bytes::from_static(b"+QUEUED\r\n"));
                return true;
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
                return true;
            }
        };
        let (cmd, spec) = (call.cmd, call.cmd.spec());
        tracing::debug!(cmd = call.name(), args = args.len(), "request");
        match cmd {
            Cmd::Ping => {
                match args.get(1) {
                    Some(msg) => self.ready(bulk_bytes(msg)),
                    None => self.ready(Bytes::from_static(b"+PONG\r\n")),
                }
                true
            }
            Cmd::Echo => {
                self.ready(bulk_bytes(&args[1]));
                true
            }
            Cmd::Quit => {
                self.ready(Bytes::from_static(b"+OK\r\n"));
                self.quit = true;
                true
            }
            Cmd::Select => {
                if &args[1][..] == b"0" {
                    self.ready(Bytes::from_static(b"+OK\r\n"));
                } else {
                    self.error("ERR the proxy serves database 0 only");
                }
                true
            }
            Cmd::Auth => {
                self.auth(args);
                true
            }
            Cmd::Acl => {
                // The proxy's own users (not the nodes'): same implementation as cache-node.
                let cluster = self.worker.cluster.clone();
                let mut out = cache_protocol::ReplyBuf::new();
                if self.resp3 {
                    out.protocol = cache_protocol::Protocol::Resp3;
                }
                match cache_acl::command::run(&cluster.acl, &self.user, args, &mut out) {
                    Ok(_) => self.ready(out.buf.freeze()),
                    Err(e) => self.error(&e),
                }
                true
            }
            Cmd::Hello => {
                self.hello(args);
                true
            }
            Cmd::Client => {
                if args.len() > 1 && args[1].eq_ignore_ascii_case(b"tracking") {
                    return false; // waits for the nodes' invalidation feeds
                }
                self.client_command(args);
                true
            }
            Cmd::Info => {
                let text = admin::info_text(&self.worker.cluster, routing);
                let parts = routing
                    .live_nodes()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|n| {
                        self.forward(
                            routing,
                            n,
                            &[Bytes::from_static(b"INFO"), Bytes::from_static(b"keyspace")],
                        )
                    })
                    .collect();
                self.items.push(Item::Info { text, parts });
                true
            }
            Cmd::Dbsize => {
                let parts = self.fan_out(routing, args);
                self.items.push(Item::Sum(parts));
                true
            }
            Cmd::Flushall | Cmd::Flushdb => {
                // Absent nodes cannot be flushed now: everything on them is stale.
                for (i, node) in routing.nodes.iter().enumerate() {
                    if !routing.live[i] {
                        node.mark_all_dirty();
                    }
                }
                let parts = self.fan_out(routing, args);
                self.items.push(Item::AllOk(parts));
                true
            }
            Cmd::Keys => {
                let parts = self.fan_out(routing, args);
                self.items.push(Item::Concat(parts));
                true
            }
            Cmd::Scan => {
                self.scan(routing, args);
                true
            }
            Cmd::Randomkey => {
                let live: Vec<usize> = routing.live_nodes().collect();
                if live.is_empty() {
                    self.error("ERR no node is available");
                } else {
                    let pick = live[(self.id as usize + self.batch_len()) % live.len()];
                    let slot = self.forward(routing, pick, args);
                    self.items.push(Item::Reply(slot));
                }
                true
            }
            Cmd::Multi => {
                if self.multi.is_some() {
                    self.error("ERR MULTI calls can not be nested");
                } else {
                    self.multi = Some(Vec::new());
                    self.multi_failed = false;
                    self.ready(Bytes::from_static(b"+OK\r\n"));
                }
                true
            }
            Cmd::Discard => {
                if self.multi.take().is_none() {
                    self.error("ERR DISCARD without MULTI");
                    return true;
                }
                false // releases the WATCH connection
            }
            Cmd::Exec | Cmd::Watch | Cmd::Unwatch | Cmd::Reset | Cmd::Proxy => false,
            Cmd::Subscribe | Cmd::Psubscribe | Cmd::Unsubscribe | Cmd::Punsubscribe => false,
            Cmd::Publish => {
                self.single(routing, args, &args[1..2]);
                true
            }
            Cmd::Mget | Cmd::Mset | Cmd::Del | Cmd::Unlink | Cmd::Exists | Cmd::Touch => {
                self.split_and_merge(routing, args, cmd);
                true
            }
            Cmd::Swapdb
            | Cmd::Move
            | Cmd::Shutdown
            | Cmd::Config
            | Cmd::Pubsub
            | Cmd::Cluster
            | Cmd::Cache
            // Each node snapshots its own keys: ask the node.
            | Cmd::Save
            | Cmd::Bgsave
            // Per-node diagnostics: ask the node itself (PROXY NODES lists them); the
            // proxy's own numbers are on its metrics endpoint.
            | Cmd::Slowlog
            | Cmd::Latency => {
                self.error(&format!(
                    "ERR '{}' is not supported by the proxy",
                    spec.name
                ));
                true
            }
            _ if spec.has(flags::BLOCKING) => false,
            // The common case (GET, SET, INCR, HSET…): one key, at argument 1. Not for
            // movable keys: SORT/GEORADIUS ... STORE and ZUNIONSTORE name more keys than the
            // table's 1 1 1 says (Cmd::keys finds them).
            _ if spec.first_key == 1
                && spec.last_key == 1
                && spec.subcommands.is_empty()
                && !spec.has(flags::MOVABLE_KEYS) =>
            {
                let key = &args[1];
                if spec.has(flags::WRITE) {
                    routing.mark_write(key);
                }
                self.track(spec, std::slice::from_ref(key));
                match routing.route(key) {
                    Ok(node) => {
                        let slot = self.forward(routing, node, args);
                        self.items.push(Item::Reply(slot));
                    }
                    Err(e) => self.error(&e),
                }
                true
            }
            _ => {
                let keys: Vec<Bytes> = cmd
                    .keys(args)
                    .into_iter()
                    .map(|i| args[i].clone())
                    .collect();
                if keys.is_empty() {
                    // Keyless and stateless (TIME, COMMAND, LASTSAVE): any live node.
                    match routing.live_nodes().next() {
                        Some(n) => {
                            let slot = self.forward(routing, n, args);
                            self.items.push(Item::Reply(slot));
                        }
                        None => self.error("ERR no node is available"),
                    }
                    return true;
                }
                if spec.has(flags::WRITE) {
                    for key in &keys {
                        routing.mark_write(key);
                    }
                }
                self.track(spec, &keys);
                self.single(routing, args, &keys);
                true
            }
        }
    }

    fn batch_len(&self) -> usize {
        self.items.len()
    }

    /// Forwards a command whose keys must all live on one node.
    fn single(&mut self, routing: &Routing, args: &[Bytes], keys: &[Bytes]) {
        match same_node(routing, keys) {
            Ok(node) => {
                let slot = self.forward(routing, node, args);
                self.items.push(Item::Reply(slot));
            }
            Err(e) => self.error(&e),
        }
    }

    fn fan_out(&mut self, routing: &Routing, args: &[Bytes]) -> Vec<u32> {
        let live: Vec<usize> = routing.live_nodes().collect();
        live.into_iter()
            .map(|n| self.forward(routing, n, args))
            .collect()
    }

    /// Splits a multi-key command (the name, then keys each followed by `per_key - 1`
    /// values) into one command per node, in first-seen order, with the positions of its
    /// keys in the original. `None` when an error reply was queued instead.
    fn split(
        &mut self,
        routing: &Routing,
        args: &[Bytes],
        per_key: usize,
        write: bool,
    ) -> Option<Vec<Part>> {
        let mut parts: Vec<Part> = Vec::new();
        for (position, group) in args[1..].chunks(per_key).enumerate() {
            let node = match routing.route(&group[0]) {
                Ok(n) => n,
                Err(e) => {
                    self.error(&e);
                    return None;
                }
            };
            if write {
                routing.mark_write(&group[0]);
            }
            match parts.iter_mut().find(|p| p.node == node) {
                Some(p) => p.args.extend_from_slice(group),
                None => {
                    let mut sub = vec![args[0].clone()];
                    sub.extend_from_slice(group);
                    parts.push(Part {
                        node,
                        args: sub,
                        positions: Vec::new(),
                    });
                }
            }
            let part = parts
                .iter_mut()
                .find(|p| p.node == node)
                .expect("pushed above");
            part.positions.push(position);
        }
        Some(parts)
    }

    /// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH: sent whole when one node holds every key,
    /// else split per node and merged by `merge`.
    fn split_and_merge(&mut self, routing: &Routing, args: &[Bytes], cmd: Cmd) {
        let (per_key, write) = match cmd {
            Cmd::Mset => (2, true),
            Cmd::Mget | Cmd::Exists | Cmd::Touch => (1, false),
            _ => (1, true),
        };
        if per_key == 2 && args.len().is_multiple_of(2) {
            return self.error("ERR wrong number of arguments for 'mset' command");
        }
        let Some(parts) = self.split(routing, args, per_key, write) else {
            return;
        };
        if self.worker.tracking.active() {
            let keys: Vec<Bytes> = args[1..].iter().step_by(per_key).cloned().collect();
            self.track(cmd.spec(), &keys);
        }
        if parts.len() == 1 {
            let slot = self.forward(routing, parts[0].node, args);
            self.items.push(Item::Reply(slot));
            return;
        }
        let mut sent = Vec::with_capacity(parts.len());
        for part in parts {
            let slot = self.forward(routing, part.node, &part.args);
            sent.push((slot, part.positions));
        }
        let item = match cmd {
            Cmd::Mget => Item::Mget {
                parts: sent,
                total: args.len() - 1,
            },
            Cmd::Mset => Item::AllOk(sent.into_iter().map(|(slot, _)| slot).collect()),
            _ => Item::Sum(sent.into_iter().map(|(slot, _)| slot).collect()),
        };
        self.items.push(item);
    }

    /// SCAN with a cursor that carries the member index in its low 10 bits.
    fn scan(&mut self, routing: &Routing, args: &[Bytes]) {
        let Some(cursor) = std::str::from_utf8(&args[1])
            .ok()
            .and_then(|c| c.parse::<u64>().ok())
        else {
            return self.error("ERR invalid cursor");
        };
        let members: Vec<bool> = routing.live.clone();
        let mut node = (cursor % SCAN_NODES) as usize;
        let node_cursor = cursor / SCAN_NODES;
        if cursor == 0 {
            node = 0;
        }
        // Skip members that are out (their keys are served elsewhere meanwhile).
        while node < members.len() && !members[node] {
            node += 1;
        }
        if node >= members.len() {
            return self.ready(scan_reply(b"0", &[]));
        }
        let mut sub = args.to_vec();
        sub[1] = Bytes::from(node_cursor.to_string());
        let slot = self.forward(routing, node, &sub);
        self.items.push(Item::Scan {
            slot,
            node,
            members,
        });
    }

    /// Checks credentials against the proxy's users; the client runs as that user from now on.
    fn login(&mut self, user: &[u8], pass: &[u8]) -> bool {
        match self.worker.cluster.acl.authenticate(user, pass) {
            Some(cell) => {
                self.user = cell;
                self.authenticated = true;
                true
            }
            None => false,
        }
    }

    fn auth(&mut self, args: &[Bytes]) {
        let acl = &self.worker.cluster.acl;
        let ok = match args.len() {
            2 if acl.default_nopass() => return self.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
            2 => self.login(b"default", &args[1]),
            3 => self.login(&args[1], &args[2]),
            _ => return self.error("ERR syntax error"),
        };
        if ok {
            self.ready(Bytes::from_static(b"+OK\r\n"));
        } else {
            self.error("WRONGPASS invalid username-password pair or user is disabled.");
        }
    }

    fn hello(&mut self, args: &[Bytes]) {
        let mut i = 1;
        let mut version = if self.resp3 { 3 } else { 2 };
        if let Some(v) = args.get(1) {
            match std::str::from_utf8(v)
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
            {
                Some(v @ 2..=3) => version = v,
                Some(_) => return self.error("NOPROTO unsupported protocol version"),
                None => {
                    return self.error("ERR Protocol version is not an integer or out of range")
                }
            }
            i = 2;
        }
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"auth") && i + 2 < args.len() {
                let (user, pass) = (args[i + 1].clone(), args[i + 2].clone());
                if !self.login(&user, &pass) {
                    return self
                        .error("WRONGPASS invalid username-password pair or user is disabled.");
                }
                i += 3;
            } else if args[i].eq_ignore_ascii_case(b"setname") && i + 1 < args.len() {
                self.name = Some(args[i + 1].clone());
                i += 2;
            } else {
                let opt = String::from_utf8_lossy(&args[i]).into_owned();
                return self.error(&format!("ERR Syntax error in HELLO option '{opt}'"));
            }
        }
        if !self.authenticated {
            return self.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        self.resp3 = version == 3;
        let id = self.id as i64;
        self.ready(reply::encode(self.resp3, |o| {
            o.hello(
                b"ferrocache-proxy",
                env!("CARGO_PKG_VERSION").as_bytes(),
                id,
                b"proxy",
            )
        }));
    }

    fn client_command(&mut self, args: &[Bytes]) {
        let sub = args
            .get(1)
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        match (&sub[..], args.len()) {
            (b"setname", 3) => {
                if args[2].iter().any(|&b| b <= b' ' || b > b'~') {
                    return self.error(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                }
                self.name = Some(args[2].clone()).filter(|n| !n.is_empty());
                self.ready(Bytes::from_static(b"+OK\r\n"));
            }
            (b"getname", 2) => match self.name.clone() {
                Some(name) => self.ready(bulk_bytes(&name)),
                None => self.ready(null(self.resp3)),
            },
            (b"id", 2) => self.ready(Bytes::from(format!(":{}\r\n", self.id))),
            // Client libraries send their name and version on connect; nothing to keep.
            (b"setinfo", 4) => self.ready(Bytes::from_static(b"+OK\r\n")),
            (b"caching", 3) => {
                let yes = args[2].eq_ignore_ascii_case(b"yes");
                if !yes && !args[2].eq_ignore_ascii_case(b"no") {
                    return self.error("ERR syntax error");
                }
                match (self.worker.tracking.mode(self.id), yes) {
                    (Some(Mode::OptIn), true) | (Some(Mode::OptOut), false) => {
                        self.caching_next = Some(yes);
                        self.ready(Bytes::from_static(b"+OK\r\n"));
                    }
                    (Some(Mode::OptOut), true) => self.error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."),
                    (Some(Mode::OptIn), false) => self.error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."),
                    _ => self.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"),
                }
            }
            (b"getredir", 2) => {
                let redir = if self.worker.tracking.mode(self.id).is_some() {
                    0
                } else {
                    -1
                };
                self.ready(Bytes::from(format!(":{redir}\r\n")));
            }
            (b"trackinginfo", 2) => {
                let info = self.worker.tracking.info(self.id);
                self.ready(tracking_info(info, self.resp3));
            }
            _ => self.error(&format!(
                "ERR CLIENT {} is not supported by the proxy",
                String::from_utf8_lossy(&sub).to_uppercase()
            )),
        }
    }

    /// Waits for the batch and writes every planned reply in order.
    async fn flush(&mut self, _routing: &Routing) {
        if self.items.is_empty() {
            return;
        }
        self.batch.wait().await;
        let items = std::mem::take(&mut self.items);
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

    fn assemble(&mut self, item: &Item) {
        let batch = self.batch.clone();
        match item {
            Item::Ready(bytes) => self.out.put_slice(bytes),
            Item::Reply(slot) => self.out.put_slice(&batch.take(*slot)),
            Item::Mget { parts, total } => {
                let mut values: Vec<Option<Bytes>> = vec![None; *total];
                for (slot, positions) in parts {
                    let part = batch.take(*slot);
                    if reply::is_error(&part) {
                        self.out.put_slice(&part);
                        return;
                    }
                    let Some(elements) = reply::elements(&part) else {
                        self.out.put_slice(b"-ERR bad MGET reply from a node\r\n");
                        return;
                    };
                    for (value, &position) in elements.into_iter().zip(positions) {
                        values[position] = Some(value);
                    }
                }
                self.out.put_slice(format!("*{total}\r\n").as_bytes());
                for value in values {
                    match value {
                        Some(v) => self.out.put_slice(&v),
                        None => self.out.put_slice(&null(self.resp3)),
                    }
                }
            }
            Item::Sum(parts) => {
                let mut sum = 0i64;
                for slot in parts {
                    let part = batch.take(*slot);
                    match reply::integer(&part) {
                        Some(n) => sum += n,
                        None => {
                            self.out.put_slice(&part);
                            return;
                        }
                    }
                }
                self.out.put_slice(format!(":{sum}\r\n").as_bytes());
            }
            Item::AllOk(parts) => {
                for slot in parts {
                    let part = batch.take(*slot);
                    if !part.starts_with(b"+OK") {
                        self.out.put_slice(&part);
                        return;
                    }
                }
                self.out.put_slice(b"+OK\r\n");
            }
            Item::Concat(parts) => {
                let mut all = Vec::new();
                for slot in parts {
                    let part = batch.take(*slot);
                    match reply::elements(&part) {
                        Some(elements) => all.extend(elements),
                        None => {
                            self.out.put_slice(&part);
                            return;
                        }
                    }
                }
                self.out.put_slice(format!("*{}\r\n", all.len()).as_bytes());
                for element in all {
                    self.out.put_slice(&element);
                }
            }
            Item::Scan {
                slot,
                node,
                members,
            } => {
                let part = batch.take(*slot);
                let Some((next, keys)) = reply::scan_page(&part) else {
                    self.out.put_slice(&part);
                    return;
                };
                let next: u64 = std::str::from_utf8(&next)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let cursor = if next != 0 {
                    match next.checked_mul(SCAN_NODES) {
                        Some(c) => c + *node as u64,
                        None => {
                            self.out
                                .put_slice(b"-ERR node cursor too large for the proxy\r\n");
                            return;
                        }
                    }
                } else {
                    match (node + 1..members.len()).find(|&n| members[n]) {
                        // Cursor 0 on the next member; member 0 is never "next".
                        Some(n) => n as u64,
                        None => 0,
                    }
                };
                self.out
                    .put_slice(&scan_reply(cursor.to_string().as_bytes(), &keys));
            }
            Item::Info { text, parts } => {
                let (mut keys, mut expires) = (0u64, 0u64);
                for slot in parts {
                    let (k, e) = reply::keyspace_db0(&batch.take(*slot));
                    keys += k;
                    expires += e;
                }
                let mut full = text.clone();
                full.push_str("\r\n# Keyspace\r\n");
                if keys > 0 {
                    full.push_str(&format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n"));
                }
                self.out.put_slice(&verbatim(full.as_bytes(), self.resp3));
            }
        }
    }

    /// Commands that wait on a connection of their own or change the cluster.
    async fn run_alone(&mut self, routing: &Routing, args: Vec<Bytes>) {
        if args[0].eq_ignore_ascii_case(b"proxy") {
            let reply = admin::proxy_command(&self.worker.cluster, routing, &args).await;
            self.out.put_slice(&reply);
            return;
        }
        let Some(cmd) = Cmd::lookup(&args[0]) else {
            return;
        };
        let reply = match cmd {
            Cmd::Client => self.tracking_command(&args).await,
            Cmd::Exec => self.exec(routing).await,
            Cmd::Discard => {
                self.unwatch().await;
                Bytes::from_static(b"+OK\r\n")
            }
            Cmd::Watch => self.watch(routing, &args).await,
            Cmd::Unwatch => {
                self.unwatch().await;
                Bytes::from_static(b"+OK\r\n")
            }
            Cmd::Reset => {
                self.unwatch().await;
                self.multi = None;
                self.pubsub = None;
                self.worker.tracking.disable(self.id);
                self.caching_next = None;
                self.resp3 = false;
                self.name = None;
                self.user = self.worker.cluster.acl.default_user();
                self.authenticated = self.worker.cluster.acl.default_open();
                Bytes::from_static(b"+RESET\r\n")
            }
            Cmd::Subscribe | Cmd::Psubscribe | Cmd::Unsubscribe | Cmd::Punsubscribe => {
                self.subscription(routing, cmd, &args).await;
                return;
            }
            _ => self.blocking(routing, cmd, &args).await,
        };
        self.out.put_slice(&reply);
    }

    async fn exec(&mut self, routing: &Routing) -> Bytes {
        let Some(queued) = self.multi.take() else {
            return Bytes::from_static(b"-ERR EXEC without MULTI\r\n");
        };
        if self.multi_failed {
            self.unwatch().await;
            return Bytes::from_static(
                b"-EXECABORT Transaction discarded because of previous errors.\r\n",
            );
        }
        let mut keys = Vec::new();
        for args in &queued {
            if let Some(cmd) = Cmd::lookup(&args[0]) {
                let write = cmd.spec().has(flags::WRITE);
                for i in cmd.keys(args) {
                    if write {
                        routing.mark_write(&args[i]);
                    }
                    keys.push(args[i].clone());
                }
            }
        }
        let node = match same_node(routing, &keys) {
            Ok(n) => n,
            Err(e) => {
                self.unwatch().await;
                return error_bytes(&format!("EXECABORT {e}"));
            }
        };
        let node = match &self.watch {
            Some(pinned) if !keys.is_empty() && pinned.node.id != routing.nodes[node].id => {
                self.unwatch().await;
                return error_bytes(&format!("EXECABORT {CROSSNODE}"));
            }
            Some(pinned) => routing
                .nodes
                .iter()
                .position(|n| n.id == pinned.node.id)
                .unwrap_or(node),
            None => node,
        };
        let mut encoded = BytesMut::new();
        encode_command(&mut encoded, &["MULTI"]);
        for args in &queued {
            encode_command(&mut encoded, args);
        }
        encode_command(&mut encoded, &["EXEC"]);
        let expected = queued.len() + 2;
        if let Some(mut pinned) = self.watch.take() {
            let result = async {
                pinned.send(&encoded).await?;
                let mut last = Bytes::new();
                for _ in 0..expected {
                    last = pinned.next_reply().await?;
                }
                Ok::<Bytes, String>(last)
            }
            .await;
            return result.unwrap_or_else(|e| error_bytes(&format!("ERR node failed: {e}")));
        }
        // No WATCH: the transaction goes down the shared connection in one piece, so no
        // other client's command can land inside it.
        let backend = self.worker.backend(routing, node, self.resp3, self.id);
        let batch = Batch::new();
        let mut last = 0;
        let mut remaining = &encoded[..];
        for _ in 0..expected {
            let len = frame_len(remaining);
            last = batch.slot();
            backend.send_raw(&remaining[..len], &batch, last);
            remaining = &remaining[len..];
        }
        batch.wait().await;
        batch.take(last)
    }

    async fn watch(&mut self, routing: &Routing, args: &[Bytes]) -> Bytes {
        if self.multi.is_some() {
            return Bytes::from_static(b"-ERR WATCH inside MULTI is not allowed\r\n");
        }
        let node = match same_node(routing, &args[1..]) {
            Ok(n) => n,
            Err(e) => return error_bytes(&e),
        };
        if let Some(pinned) = &self.watch {
            if pinned.node.id != routing.nodes[node].id {
                return error_bytes(CROSSNODE);
            }
        } else {
            match Dedicated::open(
                &self.worker.cluster,
                routing.nodes[node].clone(),
                self.resp3,
            )
            .await
            {
                Ok(conn) => self.watch = Some(conn),
                Err(e) => return error_bytes(&format!("ERR node failed: {e}")),
            }
        }
        let mut encoded = BytesMut::new();
        encode_command(&mut encoded, args);
        let pinned = self.watch.as_mut().expect("pinned above");
        let result = async {
            pinned.send(&encoded).await?;
            pinned.next_reply().await
        }
        .await;
        result.unwrap_or_else(|e| {
            self.watch = None;
            error_bytes(&format!("ERR node failed: {e}"))
        })
    }

    async fn unwatch(&mut self) {
        // Closing the pinned connection ends its WATCH on the node.
        self.watch = None;
    }

    /// `CLIENT TRACKING ON|OFF [BCAST] [PREFIX p]... [OPTIN] [OPTOUT] [NOLOOP]` (RESP3 only).
    async fn tracking_command(&mut self, args: &[Bytes]) -> Bytes {
        let Some(switch) = args.get(2) else {
            return error_bytes("ERR wrong number of arguments for 'client|tracking' command");
        };
        let on = switch.eq_ignore_ascii_case(b"on");
        if !on && !switch.eq_ignore_ascii_case(b"off") {
            return error_bytes("ERR syntax error");
        }
        let (mut bcast, mut optin, mut optout, mut noloop) = (false, false, false, false);
        let mut prefixes = Vec::new();
        let mut i = 3;
        while i < args.len() {
            let opt = args[i].to_ascii_lowercase();
            match &opt[..] {
                b"bcast" => bcast = true,
                b"optin" => optin = true,
                b"optout" => optout = true,
                b"noloop" => noloop = true,
                b"prefix" if i + 1 < args.len() => {
                    prefixes.push(args[i + 1].clone());
                    i += 1;
                }
                b"redirect" if i + 1 < args.len() => {
                    return error_bytes("ERR the proxy does not support REDIRECT: use HELLO 3 and receive invalidations on the same connection");
                }
                _ => return error_bytes("ERR syntax error"),
            }
            i += 1;
        }
        if !on {
            self.worker.tracking.disable(self.id);
            self.caching_next = None;
            return Bytes::from_static(b"+OK\r\n");
        }
        if optin && optout {
            return error_bytes("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if !prefixes.is_empty() && !bcast {
            return error_bytes("ERR PREFIX option requires BCAST mode to be enabled");
        }
        if bcast && (optin || optout) {
            return error_bytes("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if !self.resp3 {
            return error_bytes(
                "ERR the proxy supports client tracking on RESP3 connections only (HELLO 3)",
            );
        }
        let mode = if bcast {
            Mode::Bcast
        } else if optin {
            Mode::OptIn
        } else if optout {
            Mode::OptOut
        } else {
            Mode::Default
        };
        if let Some(current) = self.worker.tracking.mode(self.id) {
            if (current == Mode::Bcast) != bcast {
                return error_bytes("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
            }
        }
        let push = self
            .pushes
            .get_or_insert_with(PushQueue::new)
            .sender
            .clone();
        self.worker.tracking.enable(
            self.id,
            Tracked {
                push,
                mode,
                noloop,
                prefixes,
            },
        );
        tracking::ensure_feeds(&self.worker).await;
        Bytes::from_static(b"+OK\r\n")
    }

    /// Records the keys of a read for tracking, and a NOLOOP client's writes.
    fn track(&mut self, spec: &cache_protocol::CommandSpec, keys: &[Bytes]) {
        // The per-command path: nothing but this check while no client of the worker tracks.
        if !self.worker.tracking.active() {
            return;
        }
        let worker = self.worker.clone();
        let tracking = &worker.tracking;
        let Some(mode) = tracking.mode(self.id) else {
            return;
        };
        if spec.has(flags::READONLY) {
            let wanted = match mode {
                Mode::Default => true,
                Mode::OptIn => self.caching == Some(true),
                Mode::OptOut => self.caching != Some(false),
                Mode::Bcast => false,
            };
            if wanted {
                for key in keys {
                    tracking.record_read(self.id, key);
                    self.tracked_reads.push(key.clone());
                }
            }
        } else if spec.has(flags::WRITE) {
            for key in keys {
                tracking.record_write(self.id, key);
            }
        }
    }

    /// Blocking commands get a connection of their own to the keys' node: the wait holds
    /// that connection, never a shared one.
    async fn blocking(&mut self, routing: &Routing, cmd: Cmd, args: &[Bytes]) -> Bytes {
        let keys: Vec<Bytes> = cmd
            .keys(args)
            .into_iter()
            .map(|i| args[i].clone())
            .collect();
        let node = match same_node(routing, &keys) {
            Ok(n) => n,
            Err(e) => return error_bytes(&e),
        };
        if cmd.spec().has(flags::WRITE) {
            for key in &keys {
                routing.mark_write(key);
            }
        }
        let state = routing.nodes[node].clone();
        let mut conn = match self.blocking.remove(&state.id) {
            Some(conn) => conn,
            None => match Dedicated::open(&self.worker.cluster, state.clone(), self.resp3).await {
                Ok(conn) => conn,
                Err(e) => return error_bytes(&format!("ERR node {} failed: {e}", state.addr)),
            },
        };
        let mut encoded = BytesMut::new();
        encode_command(&mut encoded, args);
        let result = async {
            conn.send(&encoded).await?;
            conn.next_reply().await
        }
        .await;
        match result {
            Ok(reply) => {
                self.blocking.insert(state.id, conn);
                reply
            }
            Err(e) => error_bytes(&format!("ERR node {} failed: {e}", state.addr)),
        }
    }

    /// SUBSCRIBE and friends: channels live on the node their name hashes to (where PUBLISH
    /// goes); patterns are subscribed on every live node. The proxy answers the
    /// confirmations itself, with counts over all nodes, and forwards only messages.
    async fn subscription(&mut self, routing: &Routing, cmd: Cmd, args: &[Bytes]) {
        let kind: &[u8] = match cmd {
            Cmd::Subscribe => b"subscribe",
            Cmd::Psubscribe => b"psubscribe",
            Cmd::Unsubscribe => b"unsubscribe",
            _ => b"punsubscribe",
        };
        let subscribing = matches!(cmd, Cmd::Subscribe | Cmd::Psubscribe);
        if self.pubsub.is_none() {
            if !subscribing {
                // Nothing subscribed: one confirmation with a null name, as Redis does.
                let mut reply = BytesMut::new();
                self.confirm(&mut reply, kind, None, 0);
                self.out.put_slice(&reply);
                return;
            }
            self.pubsub = Some(PubSub {
                channels: Default::default(),
                patterns: Default::default(),
                writers: HashMap::new(),
                acks: mpsc::unbounded_channel(),
            });
        }
        let patterns = matches!(cmd, Cmd::Psubscribe | Cmd::Punsubscribe);
        let mut names: Vec<Bytes> = args[1..].to_vec();
        if names.is_empty() {
            let pubsub = self.pubsub.as_ref().expect("set above");
            let set = if patterns {
                &pubsub.patterns
            } else {
                &pubsub.channels
            };
            names = set.iter().cloned().collect();
        }
        let mut reply = BytesMut::new();
        if names.is_empty() {
            let count = self.pubsub.as_ref().map_or(0, PubSub::count);
            self.confirm(&mut reply, kind, None, count);
        }
        // Every node's confirmation is awaited before the client's, so a PUBLISH sent after
        // the client saw its confirmation finds the subscription in force.
        let mut sent = 0;
        for name in &names {
            let targets: Vec<usize> = if patterns {
                routing.live_nodes().collect()
            } else {
                routing.route(name).into_iter().collect()
            };
            let mut encoded = BytesMut::new();
            encode_command(&mut encoded, &[Bytes::from_static(kind), name.clone()]);
            for node in targets {
                match self.subscription_send(routing, node, &encoded).await {
                    Ok(()) => sent += 1,
                    Err(e) => tracing::debug!(error = %e, "subscription forwarding failed"),
                }
            }
        }
        let limit = self
            .worker
            .cluster
            .timeout()
            .unwrap_or(std::time::Duration::from_secs(5));
        if let Some(pubsub) = self.pubsub.as_mut() {
            for _ in 0..sent {
                match tokio::time::timeout(limit, pubsub.acks.1.recv()).await {
                    Ok(Some(())) => {}
                    _ => break, // a node went away: its confirmation will not come
                }
            }
        }
        for name in names {
            let pubsub = self.pubsub.as_mut().expect("set above");
            let set = if patterns {
                &mut pubsub.patterns
            } else {
                &mut pubsub.channels
            };
            if subscribing {
                set.insert(name.clone());
            } else {
                set.remove(&name);
            }
            let count = pubsub.count();
            self.confirm(&mut reply, kind, Some(&name), count);
        }
        self.out.put_slice(&reply);
        if self.pubsub.as_ref().is_some_and(|p| p.count() == 0) {
            self.pubsub = None; // closes the subscription connections
        }
    }

    fn confirm(&self, reply: &mut BytesMut, kind: &[u8], name: Option<&Bytes>, count: usize) {
        reply.put_slice(&reply::encode(self.resp3, |o| {
            o.push(3);
            o.bulk(kind);
            match name {
                Some(n) => o.bulk(n),
                None => o.null(),
            }
            o.int(count as i64);
        }));
    }

    async fn subscription_send(
        &mut self,
        routing: &Routing,
        node: usize,
        encoded: &[u8],
    ) -> Result<(), String> {
        let state = routing.nodes[node].clone();
        let sender = self
            .pushes
            .get_or_insert_with(PushQueue::new)
            .sender
            .clone();
        let pubsub = self.pubsub.as_mut().expect("subscribed");
        let connected = pubsub.writers.contains_key(&state.id);
        if !connected {
            let conn = Dedicated::open(&self.worker.cluster, state.clone(), self.resp3).await?;
            let (mut reader, writer) = tokio::io::split(conn.stream);
            let mut input = conn.input;
            let acks = pubsub.acks.0.clone();
            tokio::task::spawn_local(async move {
                let mut scanner = cache_protocol::ReplyScanner::new();
                loop {
                    while let Ok(Some(len)) = scanner.scan(&input) {
                        let frame = input.split_to(len).freeze();
                        let delivered = if is_message(&frame) {
                            sender.send(frame)
                        } else {
                            acks.send(()).is_ok()
                        };
                        if !delivered {
                            return;
                        }
                    }
                    match reader.read_buf(&mut input).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
            pubsub.writers.insert(state.id, writer);
        }
        let writer = pubsub.writers.get_mut(&state.id).expect("inserted above");
        send(writer, encoded).await.map_err(|e| e.to_string())
    }
}

/// One node's share of a split multi-key command.
struct Part {
    node: usize,
    args: Vec<Bytes>,
    positions: Vec<usize>,
}

/// Low bits of a proxy SCAN cursor that name the member being scanned.
const SCAN_NODES: u64 = 1024;

/// Whether a pub/sub frame is a message (forwarded) rather than a confirmation (answered
/// by the proxy itself).
fn is_message(frame: &Bytes) -> bool {
    reply::elements(frame)
        .and_then(|parts| {
            parts
                .first()
                .and_then(|p| reply::bulk(p).map(|k| k.to_vec()))
        })
        .is_some_and(|kind| kind == b"message" || kind == b"pmessage")
}

fn same_node(routing: &Routing, keys: &[Bytes]) -> Result<usize, String> {
    let mut node = None;
    for key in keys {
        let n = routing.route(key)?;
        match node {
            None => node = Some(n),
            Some(m) if m != n => return Err(CROSSNODE.to_string()),
            Some(_) => {}
        }
    }
    node.ok_or_else(|| "ERR no key to route by".to_string())
}

/// Length of the first multibulk frame in `encoded` (which we built ourselves).
fn frame_len(encoded: &[u8]) -> usize {
    let mut scanner = cache_protocol::ReplyScanner::new();
    scanner
        .scan(encoded)
        .ok()
        .flatten()
        .unwrap_or(encoded.len())
}

fn verbatim(text: &[u8], resp3: bool) -> Bytes {
    reply::encode(resp3, |o| o.verbatim("txt", text))
}

fn null(resp3: bool) -> Bytes {
    reply::encode(resp3, |o| o.null())
}

fn scan_reply(cursor: &[u8], keys: &[Bytes]) -> Bytes {
    reply::encode(false, |o| {
        o.array(2);
        o.bulk(cursor);
        o.array(keys.len());
        for key in keys {
            o.bulk(key);
        }
    })
}

fn tracking_info(info: Option<(Mode, bool, Vec<Bytes>)>, resp3: bool) -> Bytes {
    let mut flags: Vec<&str> = Vec::new();
    let mut prefixes = Vec::new();
    let redirect = match &info {
        None => {
            flags.push("off");
            -1
        }
        Some((mode, noloop, p)) => {
            flags.push("on");
            match mode {
                Mode::Bcast => flags.push("bcast"),
                Mode::OptIn => flags.push("optin"),
                Mode::OptOut => flags.push("optout"),
                Mode::Default => {}
            }
            if *noloop {
                flags.push("noloop");
            }
            prefixes = p.clone();
            0
        }
    };
    reply::encode(resp3, |o| {
        o.map(3);
        o.bulk(b"flags");
        o.set(flags.len());
        for flag in flags {
            o.bulk(flag.as_bytes());
        }
        o.bulk(b"redirect");
        o.int(redirect);
        o.bulk(b"prefixes");
        o.array(prefixes.len());
        for p in &prefixes {
            o.bulk(p);
        }
    })
}
