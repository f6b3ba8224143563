//! One client connection: read, decode every complete request, run each, write once.
//!
//! ```text
//!  loop: run every complete request (holding the gate shared, no .await)
//!        ├─ backing store: a request waits for loads or a commit: release the gate, await,
//!        │  go on (the request runs again after a load; its reply is fixed after a commit)
//!        ├─ a blocking command parked us: write what we have, wait for the waiter
//!        write replies once ─► wait for input, a pub/sub message, or a kill
//! ```

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cache_net::tls::{send, Stream, TlsAcceptor};
use cache_protocol::{Decoder, Limits, ProtocolError, ReplyBuf};
use cache_store::ChangeLog;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::backing::{self, Step};
use crate::client::ClientInfo;
use crate::cmd::blocking::{self, Outcome};
use crate::cmd::{dispatch, ConnState, Ctx};
use crate::config::output::ClientClass;
use crate::Shared;

const READ_CHUNK: usize = 16 * 1024;

pub fn spawn(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let policy = cache_net::admission::Policy {
        maxclients: shared.config.maxclients.load(Relaxed),
        loopback_only: shared.config.protected_mode.load(Relaxed) && shared.acl.default_nopass(),
    };
    let slot = match shared.admission.admit(peer.ip(), policy) {
        Ok(slot) => slot,
        Err(refusal) => {
            tokio::spawn(cache_net::admission::refuse(stream, refusal));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(peer);
    let info = shared.clients.register(id, peer, local);
    // Request context for debug logs: every event of this connection's task carries the
    // client's id and address (a disabled span costs nothing per poll).
    let span = tracing::debug_span!("client", id, %peer);
    let client = async move {
        let id = info.id;
        // Unregisters even if a handler panics, so a crashed connection never lingers in
        // CLIENT LIST or counts against maxclients.
        let _registration = Registration {
            shared: &shared,
            id,
        };
        let _slot = slot;
        let served = match tls {
            None => serve(stream, info, &shared).await,
            Some(acceptor) => match cache_net::tls::handshake(acceptor, stream).await {
                Ok(stream) => serve(stream, info, &shared).await,
                Err(e) => Err(e),
            },
        };
        if let Err(e) = served {
            tracing::debug!(id, error = %e, "connection ended with an error");
        }
    };
    tokio::spawn(client.instrument(span));
}

/// Unregisters a client however its task ends.
pub(crate) struct Registration<'a> {
    pub shared: &'a Shared,
    pub id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.clients.unregister(self.id);
    }
}

/// The decoder's limits for a connection now: the configured sizes, and Redis's tighter
/// ones while the client still has to authenticate.
pub(crate) fn limits(shared: &Shared, conn: &ConnState) -> Limits {
    Limits {
        max_bulk_len: shared.config.proto_max_bulk_len.load(Relaxed) as usize,
        max_query_len: shared.config.client_query_buffer_limit.load(Relaxed) as usize,
        unauthenticated: !conn.authenticated,
        ..Limits::default()
    }
}

/// Per-connection cleanup that must run however the connection ends.
struct Cleanup<'a> {
    shared: &'a Shared,
    conn: ConnState,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        release(self.shared, &mut self.conn);
        // Before the socket closes (the stream, a parameter of `serve`, drops after this), as
        // Redis unlinks a client before closing it: whoever sees the connection end (a killed
        // client, ACL DELUSER's caller) no longer finds it in CLIENT LIST.
        self.shared.clients.unregister(self.conn.info.id);
    }
}

/// Frees what a connection holds in the shared state: subscriptions, a parked blocking
/// command, watched keys, tracking.
pub(crate) fn release(shared: &Shared, conn: &mut ConnState) {
    if let Some(subs) = &conn.subs {
        shared.pubsub.drop_client(conn.info.id, subs);
        shared.monitors.remove(conn.info.id);
    }
    if let Some((waiter, _)) = conn.blocked.take() {
        blocking::abandon(shared, &waiter);
    }
    if !conn.watched.is_empty() {
        crate::cmd::multi::forget(shared, conn);
    }
    shared.tracking.disable(shared, &conn.info);
}

async fn serve(
    mut stream: impl Stream,
    info: Arc<ClientInfo>,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut state = Cleanup {
        shared,
        conn: ConnState::new(
            info.clone(),
            shared.acl.default_user(),
            shared.acl.default_open(),
        ),
    };
    let conn = &mut state.conn;
    let mut decoder = Decoder::new(limits(shared, conn));
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut out = ReplyBuf::new();
    let mut carry = Carry::default();
    // Since when this client's replies are over its class's soft output limit (0: they are not).
    let soft_since = std::sync::atomic::AtomicU64::new(0);
    loop {
        let now = crate::now_ms();
        let mut clock = Instant::now();
        info.mark_active(clock);
        let BatchEnd {
            protocol_error,
            parked,
            after,
        } = run_batch(
            shared,
            conn,
            &mut decoder,
            &mut input,
            &mut out,
            &mut carry,
            now,
            &mut clock,
        );
        cache_net::busy_poll::note_activity();
        match after {
            Some(Step::Wait(w)) => {
                match w.wait().await {
                    Ok(absent) => conn.backing.absent = absent,
                    Err(e) => {
                        // The command cannot run on a partial view: it fails instead.
                        carry.args = None;
                        if conn.multi.take().is_some() {
                            crate::cmd::multi::forget(shared, conn);
                        }
                        out.error(&format!("ERR backing store read failed: {e}"));
                    }
                }
                continue;
            }
            Some(Step::Commit(mut commit)) => {
                if let Err(e) = commit.ticket.wait().await {
                    backing::restore(shared, &commit);
                    out.truncate(commit.before);
                    out.error(&format!("ERR backing store write failed: {e}"));
                }
                // Dropping the ticket releases the keys for the next command on them.
                drop(commit);
                continue;
            }
            _ => {}
        }
        // Once per batch, before anything leaves: the worker's other ready connections run
        // their batches first, so their journal records share one write(2) (the first back
        // writes them all) and replies leave in a burst, as Redis writes its AOF and then every
        // client's replies at the end of its event-loop turn. A client woken by the first
        // reply finds the rest already there, and both sides wake less often.
        let mut yielded = false;
        if carry.journaled {
            tokio::task::yield_now().await;
            yielded = true;
            backing::settle(shared, carry.durable_seq).await;
            carry.journaled = false;
            carry.durable_seq = 0;
        }
        if let Some((waiter, timeout)) = parked {
            // A blocking command parked us: send what is ready, wait, then go on with the
            // requests already buffered behind it.
            if !out.is_empty() {
                send(&mut stream, &out.buf).await?;
                out.buf.clear();
            }
            if !wait_blocked(
                &mut stream,
                &mut input,
                &info,
                shared,
                &waiter,
                timeout,
                &mut out,
            )
            .await?
            {
                return Ok(());
            }
            continue;
        }
        if let Some(e) = &protocol_error {
            out.error(&format!("ERR {e}"));
        }
        let limit = shared.config.client_query_buffer_limit.load(Relaxed) as usize;
        let over_limit = input.len() > limit;
        if over_limit {
            tracing::warn!(
                id = info.id,
                "closing client that exceeded the query buffer limit"
            );
        }
        if !out.is_empty() {
            let class = if conn.subscribed() {
                ClientClass::PubSub
            } else {
                ClientClass::Normal
            };
            if let Some(limit) = shared.config.output_limits.exceeded(
                class,
                out.len() as u64,
                &soft_since,
                crate::now_ms,
            ) {
                // As Redis: the reply is dropped with the client, not sent in part.
                tracing::warn!(
                    id = info.id,
                    bytes = out.len(),
                    ?class,
                    limit,
                    "closing client over its output buffer limit"
                );
                return Ok(());
            }
            if !yielded {
                tokio::task::yield_now().await;
            }
            send(&mut stream, &out.buf).await?;
            shared
                .stats
                .local()
                .net_output_bytes
                .fetch_add(out.len() as u64, Relaxed);
            out.buf.clear();
        }
        if conn.close || protocol_error.is_some() || over_limit {
            let _ = stream.shutdown().await;
            return Ok(());
        }
        // After a huge reply or request, give the memory back instead of keeping it per
        // connection (Redis shrinks idle query buffers too).
        if out.buf.capacity() > 1 << 20 {
            out.buf = BytesMut::with_capacity(READ_CHUNK);
        }
        if input.is_empty() && input.capacity() > 1 << 20 {
            input = BytesMut::with_capacity(READ_CHUNK);
        }
        decoder.set_limits(limits(shared, conn));
        let needed = decoder.bytes_needed(&input).max(READ_CHUNK);
        input.reserve(needed);
        let n = match conn.subs.as_mut() {
            None => tokio::select! {
                read = stream.read_buf(&mut input) => read?,
                _ = info.kill.notified() => return Ok(()),
            },
            Some(subs) => tokio::select! {
                read = stream.read_buf(&mut input) => read?,
                _ = info.kill.notified() => return Ok(()),
                message = subs.rx.recv() => {
                    if let Some(frame) = message {
                        // Drain whatever else is queued into the same write.
                        let mut frames = vec![frame];
                        while let Ok(f) = subs.rx.try_recv() {
                            frames.push(f);
                        }
                        let mut batch = BytesMut::new();
                        for f in &frames {
                            batch.extend_from_slice(f);
                        }
                        // A subscriber that stops reading blocks this write for good: the
                        // output limit's kill must still end the connection (freeing its queue
                        // and subscriptions) instead of waiting behind the write forever.
                        tokio::select! {
                            written = send(&mut stream, &batch) => written?,
                            _ = info.kill.notified() => return Ok(()),
                        }
                        subs.outbox.pending.fetch_sub(batch.len(), Relaxed);
                    }
                    continue;
                }
            },
        };
        if n == 0 || info.killed.load(Relaxed) {
            return Ok(());
        }
        shared
            .stats
            .local()
            .net_input_bytes
            .fetch_add(n as u64, Relaxed);
    }
}

/// What a connection carries from one batch to the next: with a backing store, a frame that
/// must wait (loads, a commit of its keys) is carried over the wait and run again, and
/// write-back replies wait for the journal.
#[derive(Default)]
pub(crate) struct Carry {
    pub args: Option<Vec<Bytes>>,
    pub journaled: bool,
    pub durable_seq: u64,
}

/// Why a batch stopped before running out of complete requests.
pub(crate) struct BatchEnd {
    pub protocol_error: Option<ProtocolError>,
    /// A blocking command parked the connection: its waiter and timeout.
    pub parked: Option<(Arc<blocking::Waiter>, Option<Duration>)>,
    /// The backing store needs an await (a load or a commit) before the connection goes on.
    pub after: Option<Step>,
}

/// Runs every complete request in `input` (holding the gate shared, no .await) until none is
/// left, the connection closes or parks, or the backing store needs an await.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_batch(
    shared: &Shared,
    conn: &mut ConnState,
    decoder: &mut Decoder,
    input: &mut BytesMut,
    out: &mut ReplyBuf,
    carry: &mut Carry,
    now: u64,
    clock: &mut Instant,
) -> BatchEnd {
    let mut end = BatchEnd {
        protocol_error: None,
        parked: None,
        after: None,
    };
    // Shared hold on the transaction gate for this batch; never held across .await.
    let mut gate = Some(shared.gate.read());
    loop {
        // AUTH (or RESET) earlier in this batch changes what the next request may be.
        decoder.set_unauthenticated(!conn.authenticated);
        let args = match carry.args.take() {
            Some(args) => args,
            None => match decoder.decode(input) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    end.protocol_error = Some(e);
                    break;
                }
            },
        };
        let step = run_request(shared, conn, &args, out, now, clock, &mut gate);
        match step {
            Step::Done => {}
            Step::Journaled(seq) => {
                carry.journaled = true;
                carry.durable_seq = carry.durable_seq.max(seq.unwrap_or(0));
            }
            Step::Wait(w) => {
                carry.args = Some(args);
                end.after = Some(Step::Wait(w));
                break;
            }
            commit @ Step::Commit(_) => {
                end.after = Some(commit);
                break;
            }
        }
        if conn.close {
            break;
        }
        if let Some(blocked) = conn.blocked.take() {
            end.parked = Some(blocked);
            break;
        }
    }
    drop(gate);
    crate::tracking::flush_pending();
    end
}

/// Runs one request through the command path a client's request takes (admission, dispatch,
/// EXEC and scripts under the exclusive gate), appending its reply to `out`. `gate` is the
/// batch's shared hold, traded for an exclusive one while EXEC or a script runs. The replica
/// applies its master's stream through here too.
pub(crate) fn run_request<'s>(
    shared: &'s Shared,
    conn: &mut ConnState,
    args: &[Bytes],
    out: &mut ReplyBuf,
    now: u64,
    clock: &mut Instant,
    gate: &mut Option<crate::gate::GateRead<'s>>,
) -> Step {
    // What a write command changed, for the backing store (armed only there).
    let changes = ChangeLog::default();
    let mut ctx = Ctx {
        shared,
        conn: &mut *conn,
        out: &mut *out,
        now,
        clock: &mut *clock,
        changes: &changes,
    };
    let mut step = if shared.backing.is_none() {
        dispatch(&mut ctx, args);
        Step::Done
    } else {
        backing::run_frame(&mut ctx, args)
    };
    if let Some(queue) = ctx.conn.exec_queue.take() {
        // EXEC runs alone: trade the shared hold for an exclusive one.
        drop(gate.take());
        let exclusive = shared.gate.write();
        if shared.backing.is_none() {
            crate::cmd::multi::run(&mut ctx, queue);
        } else {
            step = backing::run_exec(&mut ctx, queue);
        }
        if shared.monitors.active() {
            crate::cmd::monitor::feed(&ctx, args);
        }
        drop(exclusive);
        *gate = Some(shared.gate.read());
        if shared.backing.is_none() {
            // (With a backing store, run_exec served them: their pops are its writes.)
            blocking::serve_ready(shared, ctx.store(), now);
        }
    }
    if let Some(script) = ctx.conn.script.take() {
        // A script runs alone too, like EXEC.
        drop(gate.take());
        let exclusive = shared.gate.write();
        let keys = script.keys.clone();
        if shared.backing.is_none() {
            crate::scripting::run(&mut ctx, *script);
        } else {
            step = backing::run_script(&mut ctx, *script);
        }
        crate::tracking::after_script(&mut ctx, &keys);
        drop(exclusive);
        *gate = Some(shared.gate.read());
        if shared.backing.is_none() {
            blocking::serve_ready(shared, ctx.store(), now);
        }
    }
    step
}

/// Waits for a blocked command's outcome and appends its reply. Input that arrives meanwhile
/// is buffered for later; false when the client went away.
async fn wait_blocked(
    stream: &mut impl Stream,
    input: &mut BytesMut,
    info: &ClientInfo,
    shared: &Shared,
    waiter: &Arc<blocking::Waiter>,
    timeout: Option<std::time::Duration>,
    out: &mut ReplyBuf,
) -> std::io::Result<bool> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let mut timed_out = false;
        tokio::select! {
            _ = waiter.wake.notified() => {}
            _ = sleep => timed_out = true,
            _ = info.kill.notified() => {
                blocking::abandon(shared, waiter);
                return Ok(false);
            }
            read = stream.read_buf(input) => {
                if read? == 0 {
                    blocking::abandon(shared, waiter);
                    return Ok(false);
                }
                continue;
            }
        }
        match blocking::finish(shared, waiter, timed_out) {
            Some(Outcome::Reply(bytes)) => {
                out.buf.extend_from_slice(&bytes);
                return Ok(true);
            }
            Some(Outcome::TimedOut) => {
                out.null_array();
                return Ok(true);
            }
            None => continue,
        }
    }
}
