//! Shared node connections. Each worker thread keeps a few connections per node; every client
//! of that worker appends its requests to them, so the commands of many clients leave in one
//! write and their replies come back in one read. Replies are matched to requests by order
//! (RESP has no ids), delivered into the slot of the client batch that asked.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cache_net::tls::{send, MaybeTls, TlsConnector};
use cache_protocol::reply::format_i64;
use cache_protocol::ReplyScanner;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cluster::{Cluster, NodeState};
use crate::error::ProxyError;

/// The replies one client batch waits for, filled in by the node connections.
#[derive(Default)]
pub struct Batch {
    replies: RefCell<Vec<Option<Bytes>>>,
    left: Cell<usize>,
    waker: Cell<Option<Waker>>,
}

impl Batch {
    pub fn new() -> Rc<Batch> {
        Rc::new(Batch::default())
    }

    /// Reserves a reply slot and returns its index.
    pub fn slot(&self) -> u32 {
        let mut replies = self.replies.borrow_mut();
        replies.push(None);
        self.left.set(self.left.get() + 1);
        (replies.len() - 1) as u32
    }

    pub fn complete(&self, slot: u32, reply: Bytes) {
        let mut replies = self.replies.borrow_mut();
        let entry = &mut replies[slot as usize];
        if entry.is_none() {
            *entry = Some(reply);
            self.left.set(self.left.get() - 1);
            if self.left.get() == 0 {
                if let Some(waker) = self.waker.take() {
                    waker.wake();
                }
            }
        }
    }

    pub fn fail(&self, slot: u32, message: &str) {
        self.complete(slot, crate::reply::error_bytes(message));
    }

    /// Waits until every reserved slot has its reply.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.left.get() == 0 {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    pub fn take(&self, slot: u32) -> Bytes {
        self.replies.borrow_mut()[slot as usize]
            .take()
            .unwrap_or_else(|| Bytes::from_static(b"-ERR internal: no reply\r\n"))
    }

    pub fn clear(&self) {
        self.replies.borrow_mut().clear();
        self.left.set(0);
    }
}

struct Waiting {
    batch: Rc<Batch>,
    slot: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// No task runs; the next request starts one.
    Idle,
    Running,
    /// Connecting failed or the connection broke: requests fail at once until then.
    Down(Instant),
}

/// One shared connection to a node (per worker, per protocol version, per index).
pub struct Backend {
    node: Arc<NodeState>,
    cluster: Arc<Cluster>,
    resp3: bool,
    out: RefCell<BytesMut>,
    waiting: RefCell<VecDeque<Waiting>>,
    wake_writer: Notify,
    state: Cell<State>,
    /// When the connection last made progress: a reply arrived, or a request was queued on
    /// an idle connection. A shared connection fails when it makes no progress for `timeout`
    /// (one clock read per reply batch instead of one per request).
    progress: Cell<Instant>,
    /// Latency measurement (metrics on): requests queued and answered so far, and when each
    /// write left with how many requests queued by then. One clock read per write and per
    /// batch of replies, not per request.
    measure: bool,
    queued: Cell<u64>,
    answered: Cell<u64>,
    writes: RefCell<VecDeque<(Instant, u64)>>,
}

/// How long a broken shared connection refuses requests before it tries again. Short, so a
/// node that restarts is used again quickly; ejection (with its own retry timeout) is what
/// keeps a dead node's requests away.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

impl Backend {
    pub fn new(node: Arc<NodeState>, cluster: Arc<Cluster>, resp3: bool) -> Rc<Backend> {
        let measure = cluster.config.metrics_addr.is_some();
        Rc::new(Backend {
            node,
            cluster,
            resp3,
            out: RefCell::new(BytesMut::with_capacity(16 * 1024)),
            waiting: RefCell::new(VecDeque::new()),
            wake_writer: Notify::new(),
            state: Cell::new(State::Idle),
            progress: Cell::new(Instant::now()),
            measure,
            queued: Cell::new(0),
            answered: Cell::new(0),
            writes: RefCell::new(VecDeque::new()),
        })
    }

    /// Queues `args` for the node; the reply lands in `batch` at `slot`.
    pub fn send(self: &Rc<Self>, args: &[Bytes], batch: &Rc<Batch>, slot: u32) {
        let mut frame = self.out.borrow_mut();
        encode_command(&mut frame, args);
        drop(frame);
        self.enqueue(batch, slot);
    }

    /// Queues an already encoded command.
    pub fn send_raw(self: &Rc<Self>, encoded: &[u8], batch: &Rc<Batch>, slot: u32) {
        self.out.borrow_mut().put_slice(encoded);
        self.enqueue(batch, slot);
    }

    fn enqueue(self: &Rc<Self>, batch: &Rc<Batch>, slot: u32) {
        match self.state.get() {
            State::Down(until) if Instant::now() < until => {
                self.out.borrow_mut().clear();
                batch.fail(slot, &self.node.unavailable());
                return;
            }
            State::Idle | State::Down(_) => {
                self.state.set(State::Running);
                tokio::task::spawn_local(self.clone().run());
            }
            State::Running => {}
        }
        let mut waiting = self.waiting.borrow_mut();
        if waiting.is_empty() {
            self.progress.set(Instant::now());
        }
        waiting.push_back(Waiting {
            batch: batch.clone(),
            slot,
        });
        drop(waiting);
        self.queued.set(self.queued.get() + 1);
        self.wake_writer.notify_one();
    }

    async fn run(self: Rc<Self>) {
        let error = match self.cluster.connect(&self.node.addr, self.resp3).await {
            Ok(stream) => self.serve(stream).await,
            Err(e) => e,
        };
        tracing::debug!(node = %self.node.addr, error = %error, "node connection lost");
        self.state
            .set(State::Down(Instant::now() + RECONNECT_BACKOFF));
        self.out.borrow_mut().clear();
        let failed: Vec<Waiting> = self.waiting.borrow_mut().drain(..).collect();
        self.answered.set(self.queued.get());
        self.writes.borrow_mut().clear();
        let message = format!("ERR node {} failed: {error}", self.node.addr);
        for w in failed {
            w.batch.fail(w.slot, &message);
        }
        self.cluster.report_failure(&self.node);
    }

    async fn serve(&self, stream: NodeStream) -> String {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let write_loop = async {
            loop {
                self.wake_writer.notified().await;
                loop {
                    let chunk = self.out.borrow_mut().split();
                    if chunk.is_empty() {
                        break;
                    }
                    if self.measure {
                        // Every request queued so far is in this chunk or an earlier one.
                        self.writes
                            .borrow_mut()
                            .push_back((Instant::now(), self.queued.get()));
                    }
                    if let Err(e) = send(&mut writer, &chunk).await {
                        return e.to_string();
                    }
                }
            }
        };
        let read_loop = async {
            let mut input = BytesMut::with_capacity(16 * 1024);
            let mut scanner = ReplyScanner::new();
            let timeout = self.cluster.timeout();
            loop {
                if input.capacity() - input.len() < 4096 {
                    input.reserve(16 * 1024);
                }
                let read = match timeout {
                    Some(t) => match tokio::time::timeout(t, reader.read_buf(&mut input)).await {
                        Ok(r) => r,
                        Err(_) => {
                            // Only a stalled connection is a failure; an idle one waits.
                            let overdue = !self.waiting.borrow().is_empty()
                                && self.progress.get().elapsed() >= t;
                            if overdue {
                                return "timed out".to_string();
                            }
                            continue;
                        }
                    },
                    None => reader.read_buf(&mut input).await,
                };
                match read {
                    Ok(0) => return "connection closed".to_string(),
                    Ok(_) => {}
                    Err(e) => return e.to_string(),
                }
                let mut answered = false;
                let first = self.answered.get();
                loop {
                    let len = match scanner.scan(&input) {
                        Ok(Some(len)) => len,
                        Ok(None) => break,
                        Err(e) => return e.to_string(),
                    };
                    let frame = input.split_to(len).freeze();
                    if frame.first() == Some(&b'>') {
                        continue; // a push on a shared connection belongs to nobody
                    }
                    let Some(w) = self.waiting.borrow_mut().pop_front() else {
                        return "reply without a request".to_string();
                    };
                    w.batch.complete(w.slot, frame);
                    self.answered.set(self.answered.get() + 1);
                    answered = true;
                }
                if answered {
                    let now = Instant::now();
                    self.progress.set(now);
                    self.node.answered();
                    if self.measure {
                        self.record_latency(first, now);
                    }
                }
            }
        };
        tokio::select! {
            e = write_loop => e,
            e = read_loop => e,
        }
    }
}

/// A connection to a node: plain TCP, or TLS with `node-tls yes`.
pub type NodeStream = MaybeTls<TcpStream>;

impl Backend {
    /// Records, for requests `first..answered`, the time since the write that carried them.
    fn record_latency(&self, first: u64, now: Instant) {
        let mut writes = self.writes.borrow_mut();
        for seq in first..self.answered.get() {
            // Writes whose requests are all answered are done with.
            while writes.len() > 1 && writes.front().is_some_and(|w| w.1 <= seq) {
                writes.pop_front();
            }
            if let Some(&(sent, _)) = writes.front() {
                let us = now.saturating_duration_since(sent).as_micros() as u64;
                self.node.latency.record(us);
            }
        }
    }
}

/// Appends `args` as a RESP multibulk.
pub fn encode_command(out: &mut BytesMut, args: &[impl AsRef<[u8]>]) {
    let mut num = [0u8; 20];
    out.put_u8(b'*');
    out.put_slice(format_i64(args.len() as i64, &mut num));
    out.put_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.reserve(arg.len() + 16);
        out.put_u8(b'$');
        out.put_slice(format_i64(arg.len() as i64, &mut num));
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// Connects to a node and prepares the connection: AUTH with the node password and, for
/// RESP3 clients' connections, HELLO 3.
pub async fn handshake(
    addr: &str,
    tls: Option<&TlsConnector>,
    password: Option<&str>,
    resp3: bool,
) -> Result<NodeStream, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let mut stream = match tls {
        None => MaybeTls::Plain(stream),
        Some(connector) => {
            let name = cache_net::tls::server_name(addr)?;
            let stream = connector
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            MaybeTls::Tls(Box::new(stream))
        }
    };
    let mut setup = BytesMut::new();
    let mut expected = 0;
    if let Some(pass) = password {
        encode_command(&mut setup, &["AUTH", pass]);
        expected += 1;
    }
    if resp3 {
        encode_command(&mut setup, &["HELLO", "3"]);
        expected += 1;
    }
    if expected > 0 {
        send(&mut stream, &setup).await.map_err(|e| e.to_string())?;
        let replies = read_replies(&mut stream, expected).await?;
        for reply in replies {
            if reply.first() == Some(&b'-') {
                return Err(String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned());
            }
        }
    }
    Ok(stream)
}

/// Reads `count` whole replies from a connection used for one request at a time.
pub async fn read_replies(
    stream: &mut (impl AsyncRead + Unpin),
    count: usize,
) -> Result<Vec<Bytes>, String> {
    let mut input = BytesMut::with_capacity(4096);
    let mut scanner = ReplyScanner::new();
    let mut replies = Vec::with_capacity(count);
    while replies.len() < count {
        match scanner.scan(&input) {
            Ok(Some(len)) => {
                replies.push(input.split_to(len).freeze());
                continue;
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        let n = stream
            .read_buf(&mut input)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".to_string());
        }
    }
    Ok(replies)
}

/// A connection owned by one client for commands that hold a connection's state: blocking
/// pops, WATCH … EXEC, and subscriptions.
pub struct Dedicated {
    pub node: Arc<NodeState>,
    pub stream: NodeStream,
    pub input: BytesMut,
    scanner: ReplyScanner,
}

impl Dedicated {
    pub async fn open(
        cluster: &Cluster,
        node: Arc<NodeState>,
        resp3: bool,
    ) -> Result<Dedicated, ProxyError> {
        let stream = cluster
            .connect(&node.addr, resp3)
            .await
            .map_err(|e| ProxyError::node_failed(&node.addr, e))?;
        Ok(Dedicated {
            node,
            stream,
            input: BytesMut::with_capacity(4096),
            scanner: ReplyScanner::new(),
        })
    }

    pub async fn send(&mut self, encoded: &[u8]) -> Result<(), ProxyError> {
        send(&mut self.stream, encoded)
            .await
            .map_err(|e| ProxyError::node_failed(&self.node.addr, e))
    }

    /// The next whole reply (or push).
    pub async fn next_reply(&mut self) -> Result<Bytes, ProxyError> {
        let failed = |e: String| ProxyError::node_failed(&self.node.addr, e);
        loop {
            match self.scanner.scan(&self.input) {
                Ok(Some(len)) => return Ok(self.input.split_to(len).freeze()),
                Ok(None) => {}
                Err(e) => return Err(failed(e.to_string())),
            }
            let n = self
                .stream
                .read_buf(&mut self.input)
                .await
                .map_err(|e| failed(e.to_string()))?;
            if n == 0 {
                return Err(failed("connection closed".to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_multibulk() {
        let mut out = BytesMut::new();
        encode_command(&mut out, &["SET", "k", ""]);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
