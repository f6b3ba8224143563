//! One client connection: read, decode every complete request, run each, write once.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use cache_protocol::{Decoder, Limits, ReplyBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cmd::{dispatch, ConnState, Ctx};
use crate::Shared;

const READ_CHUNK: usize = 16 * 1024;

pub fn spawn(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let stats = &shared.stats;
    stats.connections_received.fetch_add(1, Relaxed);
    if shared.clients.len() as u64 >= shared.config.maxclients.load(Relaxed) {
        stats.rejected_connections.fetch_add(1, Relaxed);
        tokio::spawn(async move {
            let mut stream = stream;
            let _ = stream
                .write_all(b"-ERR max number of clients reached\r\n")
                .await;
        });
        return;
    }
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(peer);
    let info = shared.clients.register(peer, local);
    tokio::spawn(async move {
        let id = info.id;
        if let Err(e) = serve(stream, info, &shared).await {
            tracing::debug!(id, error = %e, "connection ended with an error");
        }
        shared.clients.unregister(id);
    });
}

fn limits(shared: &Shared) -> Limits {
    Limits {
        max_bulk_len: shared.config.proto_max_bulk_len.load(Relaxed) as usize,
        ..Limits::default()
    }
}

async fn serve(
    mut stream: TcpStream,
    info: Arc<crate::client::ClientInfo>,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut conn = ConnState {
        authenticated: shared
            .config
            .get("requirepass")
            .is_none_or(|p| p.is_empty()),
        info: info.clone(),
        db: 0,
        close: false,
    };
    let mut decoder = Decoder::new(limits(shared));
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut out = ReplyBuf::new();
    loop {
        // Reserve the whole of a large argument at once instead of growing read by read.
        decoder.set_limits(limits(shared));
        let needed = decoder.bytes_needed(&input).max(READ_CHUNK);
        input.reserve(needed);
        let n = tokio::select! {
            read = stream.read_buf(&mut input) => read?,
            _ = info.kill.notified() => return Ok(()),
        };
        if n == 0 || info.killed.load(Relaxed) {
            return Ok(());
        }
        let stripe = shared.stats.local();
        stripe.net_input_bytes.fetch_add(n as u64, Relaxed);
        let mut protocol_error = None;
        let now = crate::now_ms();
        let mut clock = Instant::now();
        info.mark_active(clock);
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(args)) => {
                    let mut ctx = Ctx {
                        shared,
                        conn: &mut conn,
                        out: &mut out,
                        now,
                        clock: &mut clock,
                    };
                    dispatch(&mut ctx, &args);
                    if conn.close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
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
            stream.write_all(&out.buf).await?;
            stripe.net_output_bytes.fetch_add(out.len() as u64, Relaxed);
            out.buf.clear();
        }
        if conn.close || protocol_error.is_some() || over_limit {
            let _ = stream.shutdown().await;
            return Ok(());
        }
        // After a huge reply, give the memory back instead of keeping it per connection.
        if out.buf.capacity() > 1 << 20 {
            out.buf = BytesMut::with_capacity(READ_CHUNK);
        }
    }
}
