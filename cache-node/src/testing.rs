//! A socket-free way into the node's command path, for the fuzz targets (`fuzz/`) and tests:
//! bytes in, the exact bytes a connection would write back out. Not part of the node's API.
//!
//! A [`Session`] is one client of a node that has no listener: the same decoder, batch loop
//! ([`conn::run_batch`](crate::conn)) and dispatch as a real connection. What needs a socket or
//! time to pass is collapsed: a blocking command that would park times out at once (no other
//! client can serve it), and messages queued for the client (pub/sub, tracking pushes) are
//! appended after the batch's replies.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use cache_protocol::{Decoder, ReplyBuf};

use crate::cmd::blocking::{self, Outcome};
use crate::cmd::ConnState;
use crate::conn::{self, BatchEnd, Carry};
use crate::{Config, Shared};

/// One client connected to an in-process node without sockets.
pub struct Session {
    shared: Arc<Shared>,
    conn: ConnState,
    decoder: Decoder,
    input: BytesMut,
    /// Kept across feeds: it holds the protocol HELLO chose.
    out: ReplyBuf,
    closed: bool,
}

impl Session {
    /// A fresh node (empty store) built from `config`, and one client of it.
    pub fn new(config: Config) -> Session {
        let local = SocketAddr::from(([127, 0, 0, 1], config.port()));
        let acl = crate::acl_from_config(&config).expect("valid user lines");
        let shared = Shared::build(config, acl, local, None, None);
        let id = shared.clients.next_id();
        let info = shared
            .clients
            .register(id, SocketAddr::from(([127, 0, 0, 1], 1)), local);
        let conn = ConnState::new(info, shared.acl.default_user(), shared.acl.default_open());
        Session {
            decoder: Decoder::new(conn::limits(&shared, &conn)),
            conn,
            shared,
            input: BytesMut::new(),
            out: ReplyBuf::new(),
            closed: false,
        }
    }

    /// The node's shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Whether the connection would have closed (QUIT, SHUTDOWN, a protocol error, a kill).
    /// A closed session ignores further input.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Feeds `bytes` as one read: runs every complete request buffered so far and returns
    /// what the connection would write back.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.closed {
            return Vec::new();
        }
        self.input.extend_from_slice(bytes);
        let out = &mut self.out;
        out.buf.clear();
        // No backing store here: nothing is ever carried over an await.
        let mut carry = Carry::default();
        loop {
            let mut clock = Instant::now();
            let BatchEnd {
                protocol_error,
                parked,
                after: _,
            } = conn::run_batch(
                &self.shared,
                &mut self.conn,
                &mut self.decoder,
                &mut self.input,
                out,
                &mut carry,
                crate::now_ms(),
                &mut clock,
            );
            if let Some((waiter, _)) = parked {
                match blocking::finish(&self.shared, &waiter, true) {
                    Some(Outcome::Reply(bytes)) => out.buf.extend_from_slice(&bytes),
                    Some(Outcome::TimedOut) | None => out.null_array(),
                }
                continue;
            }
            if let Some(e) = protocol_error {
                out.error(&format!("ERR {e}"));
                self.closed = true;
            }
            break;
        }
        if let Some(subs) = self.conn.subs.as_mut() {
            while let Ok(frame) = subs.rx.try_recv() {
                out.buf.extend_from_slice(&frame);
                subs.outbox.pending.fetch_sub(frame.len(), Relaxed);
            }
        }
        if self.conn.close || self.conn.info.killed.load(Relaxed) {
            self.closed = true;
        }
        self.decoder
            .set_limits(conn::limits(&self.shared, &self.conn));
        out.buf.to_vec()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        conn::release(&self.shared, &mut self.conn);
        self.shared.clients.unregister(self.conn.info.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_pipelines_and_times_out_blocking_commands() {
        let mut s = Session::new(Config::default());
        let got = s.feed(
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\nBLPOP nolist 0\r\nINCR k\r\n",
        );
        assert_eq!(
            got,
            b"+OK\r\n$1\r\nv\r\n*-1\r\n-ERR value is not an integer or out of range\r\n"
        );
        // A partial request waits for the rest.
        assert_eq!(s.feed(b"*1\r\n$4\r\nPI"), b"");
        assert_eq!(s.feed(b"NG\r\n"), b"+PONG\r\n");
        assert_eq!(
            s.feed(b"*1\r\nx\r\n"),
            b"-ERR Protocol error: expected '$', got 'x'\r\n"
        );
        assert!(s.closed());
        assert_eq!(s.feed(b"PING\r\n"), b"");
    }

    #[test]
    fn delivers_its_own_pubsub_messages() {
        let mut s = Session::new(Config::default());
        let got = s.feed(b"HELLO 3\r\n");
        assert!(got.starts_with(b"%"), "{}", String::from_utf8_lossy(&got));
        let got = s.feed(b"SUBSCRIBE ch\r\nPUBLISH ch hi\r\n");
        assert_eq!(
            got,
            b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
    }
}
