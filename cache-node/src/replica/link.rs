//! The connection to the master: connect, the handshake Redis's replica makes
//! (`syncWithMaster`), and the retry loop around sync and stream.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{lock, Cached, Master, CONNECTED, CONNECTING, HANDSHAKE, SYNC};
use crate::{now_ms, Shared};

/// Longest status line the master may send in the handshake.
const MAX_LINE: usize = 64 * 1024;

/// A connection to the master with what was read but not used yet.
pub(super) struct Link {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

/// How the master answered PSYNC.
enum Psync {
    Full { replid: String, offset: i64 },
    Continue { replid: Option<String> },
}

impl Link {
    async fn connect(master: &Master, timeout: Duration) -> Result<Link, String> {
        let addr = format!("{}:{}", master.host, master.port);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| format!("timeout connecting to {addr}"))?
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Link {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
        })
    }

    /// Sends one command as a RESP array.
    pub async fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut frame = Vec::with_capacity(64);
        frame.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            frame.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            frame.extend_from_slice(a);
            frame.extend_from_slice(b"\r\n");
        }
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| format!("writing to MASTER: {e}"))
    }

    /// Reads more bytes into `buf`, within `timeout`.
    pub async fn fill(&mut self, timeout: Duration) -> Result<usize, String> {
        self.buf.reserve(64 * 1024);
        let n = tokio::time::timeout(timeout, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| "timeout: no data from MASTER".to_string())?
            .map_err(|e| format!("reading from MASTER: {e}"))?;
        if n == 0 {
            return Err("MASTER closed the connection".into());
        }
        Ok(n)
    }

    /// One line without its CRLF.
    pub async fn line(&mut self, timeout: Duration) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(end + 1);
                let text = String::from_utf8_lossy(&line[..end]);
                return Ok(text.trim_end_matches('\r').to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err("MASTER sent a line that is too long".into());
            }
            self.fill(timeout).await?;
        }
    }

    /// Sends a command and reads its one-line reply.
    async fn ask(&mut self, args: &[&[u8]], timeout: Duration) -> Result<String, String> {
        self.send(args).await?;
        self.line(timeout).await
    }
}

/// `repl-timeout` (seconds, at least one).
pub(super) fn repl_timeout(shared: &Shared) -> Duration {
    let secs = shared
        .config
        .get("repl-timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(60)
        .max(1);
    Duration::from_secs(secs)
}

/// Follows `master` until the task is aborted (REPLICAOF again, or NO ONE).
pub(super) async fn run(shared: Arc<Shared>, master: Master) {
    let r = &shared.replica;
    loop {
        match attempt(&shared, &master).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(host = %master.host, port = master.port, error = %e, "replication link")
            }
        }
        r.set_down();
        tokio::time::sleep(Duration::from_secs(1)).await;
        tracing::info!(host = %master.host, port = master.port, "reconnecting to MASTER");
    }
}

/// One connection: handshake, sync when needed, then the stream until it fails.
async fn attempt(shared: &Arc<Shared>, master: &Master) -> Result<(), String> {
    let r = &shared.replica;
    let timeout = repl_timeout(shared);
    r.state.store(CONNECTING, Relaxed);
    let mut link = Link::connect(master, timeout).await?;
    r.state.store(HANDSHAKE, Relaxed);
    let psync = handshake(shared, &mut link, timeout).await?;
    let db = match psync {
        Psync::Full { replid, offset } => {
            tracing::info!(%replid, offset, "full resync from MASTER");
            r.state.store(SYNC, Relaxed);
            let data = super::sync::receive(shared, &mut link, timeout).await?;
            super::sync::load(shared, data).await?;
            r.offset.store(offset, Relaxed);
            r.read_offset.store(offset, Relaxed);
            *lock(&r.cached) = Some(Cached { replid, db: 0 });
            *lock(&r.replid2) = None;
            r.full_syncs.fetch_add(1, Relaxed);
            0
        }
        Psync::Continue { replid } => {
            let mut cached = lock(&r.cached);
            let c = cached.get_or_insert_with(Cached::default);
            if let Some(id) = replid {
                c.replid = id;
            }
            r.partial_syncs.fetch_add(1, Relaxed);
            tracing::info!(
                offset = r.offset.load(Relaxed),
                "MASTER accepted a partial resynchronization"
            );
            c.db
        }
    };
    r.last_io_ms.store(now_ms(), Relaxed);
    r.state.store(CONNECTED, Relaxed);
    tracing::info!("MASTER <-> REPLICA sync: finished, link up");
    super::stream::follow(shared, &mut link, db, timeout).await
}

/// PING, AUTH, REPLCONF listening-port / ip-address / capa, PSYNC.
async fn handshake(shared: &Shared, link: &mut Link, timeout: Duration) -> Result<Psync, String> {
    let reply = link.ask(&[b"PING"], timeout).await?;
    // A master that wants AUTH answers PING with -NOAUTH: fine, AUTH follows.
    if reply.starts_with('-')
        && !reply.starts_with("-NOAUTH")
        && !reply.starts_with("-NOPERM")
        && !reply.starts_with("-ERR operation not permitted")
    {
        return Err(format!("error reply to PING from master: '{reply}'"));
    }
    let get = |name: &str| shared.config.get(name).unwrap_or_default();
    let (user, pass) = (get("masteruser"), get("masterauth"));
    if !pass.is_empty() {
        let reply = if user.is_empty() {
            link.ask(&[b"AUTH", pass.as_bytes()], timeout).await?
        } else {
            link.ask(&[b"AUTH", user.as_bytes(), pass.as_bytes()], timeout)
                .await?
        };
        if reply.starts_with('-') {
            return Err(format!("unable to AUTH to MASTER: {reply}"));
        }
    }
    let port = match get("replica-announce-port").parse::<u16>() {
        Ok(p) if p != 0 => p,
        _ => shared.addr.port(),
    };
    let port = port.to_string();
    let reply = link
        .ask(&[b"REPLCONF", b"listening-port", port.as_bytes()], timeout)
        .await?;
    if reply.starts_with('-') {
        tracing::info!(%reply, "(non critical) MASTER does not understand REPLCONF listening-port");
    }
    let ip = get("replica-announce-ip");
    if !ip.is_empty() {
        let reply = link
            .ask(&[b"REPLCONF", b"ip-address", ip.as_bytes()], timeout)
            .await?;
        if reply.starts_with('-') {
            tracing::info!(%reply, "(non critical) MASTER does not understand REPLCONF ip-address");
        }
    }
    let reply = link
        .ask(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"], timeout)
        .await?;
    if reply.starts_with('-') {
        tracing::info!(%reply, "(non critical) MASTER does not understand REPLCONF capa");
    }
    let r = &shared.replica;
    let cached = lock(&r.cached).clone();
    let reply = match &cached {
        Some(c) if !c.replid.is_empty() => {
            let next = (r.offset.load(Relaxed) + 1).to_string();
            tracing::info!(replid = %c.replid, offset = %next, "trying a partial resynchronization");
            link.ask(&[b"PSYNC", c.replid.as_bytes(), next.as_bytes()], timeout)
                .await?
        }
        _ => link.ask(&[b"PSYNC", b"?", b"-1"], timeout).await?,
    };
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
        let mut words = rest.split_whitespace();
        let replid = words.next().unwrap_or_default().to_string();
        let offset = words.next().and_then(|o| o.parse().ok());
        return match offset {
            Some(offset) if replid.len() == 40 => Ok(Psync::Full { replid, offset }),
            _ => Err(format!("bad +FULLRESYNC reply: '{reply}'")),
        };
    }
    if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let replid = rest.split_whitespace().next().map(str::to_string);
        return Ok(Psync::Continue { replid });
    }
    Err(format!("unexpected reply to PSYNC from master: '{reply}'"))
}
