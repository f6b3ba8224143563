//! Commands that hold a node connection of their own: WATCH … EXEC (pinned to the keys'
//! node), transactions (one piece down a shared connection), and blocking commands.

use bytes::{Bytes, BytesMut};
use cache_protocol::command::flags;
use cache_protocol::Cmd;
use tokio::io::AsyncReadExt;

use crate::backend::{encode_command, Batch, Dedicated};
use crate::client::Client;
use crate::cluster::Routing;
use crate::error::{ProxyError, CROSSNODE};
use crate::plan::same_node;
use crate::reply::error_bytes;

impl Client {
    /// Runs a batch; true when the client went away meanwhile. While a blocking command
    /// waits on its node, the client's socket is still read: a client that goes away (EOF,
    /// reset) ends the wait at once, as Redis frees it, or the abandoned pop would take the
    /// next element for nobody. Dropping the run closes its dedicated node connection, which
    /// unblocks the node. Input that arrives meanwhile is kept for the next batch.
    pub(crate) async fn run_watching(
        &mut self,
        requests: Vec<Vec<Bytes>>,
        stream: &mut impl cache_net::tls::Stream,
        input: &mut BytesMut,
        limit: usize,
    ) -> bool {
        if !crate::plan::may_block(&requests) {
            self.run(requests).await;
            return false;
        }
        let run = self.run(requests);
        tokio::pin!(run);
        loop {
            if input.len() > limit {
                run.as_mut().await;
                return false;
            }
            input.reserve(16 * 1024);
            tokio::select! {
                biased;
                () = &mut run => return false,
                read = stream.read_buf(input) => {
                    if matches!(read, Ok(0) | Err(_)) {
                        return true;
                    }
                }
            }
        }
    }

    pub(crate) async fn exec(&mut self, routing: &Routing) -> Bytes {
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
        // A transaction of keyless commands (or none at all) runs on any node: the pinned
        // one below, else the first that is up.
        let node = match same_node(routing, &keys, false) {
            Ok(n) => n,
            Err(_) if keys.is_empty() && routing.live_nodes().next().is_some() => {
                routing.live_nodes().next().unwrap_or(0)
            }
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
                Ok::<Bytes, ProxyError>(last)
            }
            .await;
            return result.unwrap_or_else(|e| e.reply());
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

    pub(crate) async fn watch(&mut self, routing: &Routing, args: &[Bytes]) -> Bytes {
        if self.multi.is_some() {
            return Bytes::from_static(b"-ERR WATCH inside MULTI is not allowed\r\n");
        }
        let node = match same_node(routing, &args[1..], false) {
            Ok(n) => n,
            Err(e) => return e.reply(),
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
                Err(e) => return e.reply(),
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
            e.reply()
        })
    }

    pub(crate) async fn unwatch(&mut self) {
        // Closing the pinned connection ends its WATCH on the node.
        self.watch = None;
    }

    /// Blocking commands get a connection of their own to the keys' node (the plan chose
    /// it): the wait holds that connection, never a shared one.
    pub(crate) async fn blocking(
        &mut self,
        routing: &Routing,
        node: usize,
        args: &[Bytes],
    ) -> Bytes {
        let state = routing.nodes[node].clone();
        let mut conn = match self.blocking.remove(&state.id) {
            Some(conn) => conn,
            None => match Dedicated::open(&self.worker.cluster, state.clone(), self.resp3).await {
                Ok(conn) => conn,
                Err(e) => return e.reply(),
            },
        };
        let mut encoded = BytesMut::new();
        encode_command(&mut encoded, args);
        // Counted while it waits, however the wait ends (a client that goes away drops it).
        struct Blocked<'a>(&'a std::sync::atomic::AtomicU64);
        impl Drop for Blocked<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stats = &self.worker.cluster.stats;
        stats
            .blocked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let blocked = Blocked(&stats.blocked);
        let result = async {
            conn.send(&encoded).await?;
            conn.next_reply().await
        }
        .await;
        drop(blocked);
        match result {
            Ok(reply) => {
                self.blocking.insert(state.id, conn);
                reply
            }
            Err(e) => e.reply(),
        }
    }
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
