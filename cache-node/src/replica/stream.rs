//! The master's command stream, applied in order through the clients' command path
//! (`conn::run_request`) as one connection flagged `from_master`: SELECT, MULTI/EXEC, the
//! master's rewrites (PEXPIREAT, DEL of expired keys), PING. REPLCONF GETACK is answered here,
//! `REPLCONF ACK <offset>` goes out every second, and a master silent for `repl-timeout` is
//! dropped.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_protocol::{Decoder, ReplyBuf};
use tokio::io::AsyncReadExt;

use super::link::Link;
use super::lock;
use crate::cmd::ConnState;
use crate::{now_ms, Shared};

/// Applies the stream until the link fails; `db` is the database it had selected.
pub(super) async fn follow(
    shared: &Arc<Shared>,
    link: &mut Link,
    db: usize,
    timeout: Duration,
) -> Result<(), String> {
    let r = &shared.replica;
    let id = shared.clients.next_id();
    let peer = link
        .stream
        .peer_addr()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let local = link.stream.local_addr().unwrap_or(shared.addr);
    let info = shared.clients.register(id, peer, local);
    let _registration = crate::conn::Registration { shared, id };
    let mut conn = ConnState::new(info, shared.acl.default_user(), true);
    conn.from_master = true;
    conn.db = db;
    // The master's stream is exempt from the query buffer limit, as in Redis.
    let mut decoder = Decoder::new(cache_protocol::Limits {
        max_query_len: usize::MAX,
        ..crate::conn::limits(shared, &conn)
    });
    let mut out = ReplyBuf::new();
    let mut input = std::mem::take(&mut link.buf);
    // Bytes of a request the decoder has taken but not completed yet.
    let mut partial = 0usize;
    // The first ACK right away: a diskless master starts the stream once it has one.
    send_ack(shared, link).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        let getack = apply(
            shared,
            &mut conn,
            &mut decoder,
            &mut input,
            &mut out,
            &mut partial,
        )?;
        if let Some(c) = lock(&r.cached).as_mut() {
            c.db = conn.db;
        }
        if getack {
            send_ack(shared, link).await?;
        }
        input.reserve(64 * 1024);
        tokio::select! {
            read = link.stream.read_buf(&mut input) => {
                let n = read.map_err(|e| format!("reading from MASTER: {e}"))?;
                if n == 0 {
                    return Err("MASTER closed the connection".into());
                }
                r.read_offset.fetch_add(n as i64, Relaxed);
                r.last_io_ms.store(now_ms(), Relaxed);
                shared.stats.local().net_input_bytes.fetch_add(n as u64, Relaxed);
            }
            _ = ticker.tick() => {
                let silent = now_ms().saturating_sub(r.last_io_ms.load(Relaxed));
                if silent > timeout.as_millis() as u64 {
                    return Err("MASTER timeout: no data nor PING received".into());
                }
                send_ack(shared, link).await?;
            }
        }
    }
}

/// Runs every complete request in `input`; true when the master asked for an ACK.
fn apply(
    shared: &Shared,
    conn: &mut ConnState,
    decoder: &mut Decoder,
    input: &mut bytes::BytesMut,
    out: &mut ReplyBuf,
    partial: &mut usize,
) -> Result<bool, String> {
    let r = &shared.replica;
    let mut getack = false;
    let now = now_ms();
    let mut clock = Instant::now();
    let mut gate = Some(shared.gate.read());
    loop {
        let before = input.len();
        let decoded = decoder
            .decode(input)
            .map_err(|e| format!("protocol error from MASTER: {e}"))?;
        *partial += before - input.len();
        let Some(args) = decoded else { break };
        let size = std::mem::take(partial) as i64;
        if is(&args[0], b"replconf") {
            getack |= args.get(1).is_some_and(|a| is(a, b"getack"));
        } else {
            // No backing store on a replica: every request is done when run_request returns.
            let _ = crate::conn::run_request(shared, conn, &args, out, now, &mut clock, &mut gate);
            out.buf.clear();
        }
        r.offset.fetch_add(size, Relaxed);
    }
    drop(gate);
    crate::tracking::flush_pending();
    Ok(getack)
}

fn is(arg: &Bytes, name: &[u8]) -> bool {
    arg.eq_ignore_ascii_case(name)
}

async fn send_ack(shared: &Shared, link: &mut Link) -> Result<(), String> {
    let offset = shared.replica.offset.load(Relaxed).to_string();
    link.send(&[b"REPLCONF", b"ACK", offset.as_bytes()]).await
}
