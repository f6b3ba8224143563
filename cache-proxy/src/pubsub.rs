//! Pub/sub through the proxy: channels live on the node their name hashes to (where PUBLISH
//! goes), patterns on every live node; the proxy answers confirmations itself, with counts
//! over all nodes, and forwards only messages.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use cache_protocol::Cmd;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::backend::{encode_command, Dedicated};
use crate::client::Client;
use crate::cluster::Routing;
use crate::error::ProxyError;
use crate::reply;
use crate::tracking::PushQueue;
use cache_net::tls::send;

pub(crate) struct PubSub {
    pub(crate) channels: hashbrown::HashSet<Bytes>,
    pub(crate) patterns: hashbrown::HashSet<Bytes>,
    /// Write halves of the per-node subscription connections, by node id.
    writers: HashMap<u64, tokio::io::WriteHalf<crate::backend::NodeStream>>,
    /// One unit per confirmation a node sent (the proxy answers the client itself).
    acks: (mpsc::UnboundedSender<()>, mpsc::UnboundedReceiver<()>),
    /// The tasks reading the per-node connections' read halves.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PubSub {
    /// Closes the per-node connections, so the nodes drop the subscriptions now. (A reader
    /// task holds its connection's read half: left running, it kept the node's
    /// subscription, and PUBLISH counted a client that was gone, until the next message.)
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

impl PubSub {
    pub(crate) fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

impl Client {
    /// SUBSCRIBE and friends: channels live on the node their name hashes to (where PUBLISH
    /// goes); patterns are subscribed on every live node. The proxy answers the
    /// confirmations itself, with counts over all nodes, and forwards only messages.
    pub(crate) async fn subscription(&mut self, routing: &Routing, cmd: Cmd, args: &[Bytes]) {
        let kind: &[u8] = match cmd {
            Cmd::Subscribe => b"subscribe",
            Cmd::Psubscribe => b"psubscribe",
            Cmd::Unsubscribe => b"unsubscribe",
            _ => b"punsubscribe",
        };
        let subscribing = matches!(cmd, Cmd::Subscribe | Cmd::Psubscribe);
        if self.pubsub.is_none() {
            if !subscribing {
                // Nothing subscribed: a confirmation per name, or one with a null name for
                // none, as Redis does.
                let mut reply = BytesMut::new();
                match &args[1..] {
                    [] => self.confirm(&mut reply, kind, None, 0),
                    names => {
                        for name in names {
                            self.confirm(&mut reply, kind, Some(name), 0);
                        }
                    }
                }
                self.out.put_slice(&reply);
                return;
            }
            self.pubsub = Some(PubSub {
                channels: Default::default(),
                patterns: Default::default(),
                writers: HashMap::new(),
                acks: mpsc::unbounded_channel(),
                readers: Vec::new(),
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
    ) -> Result<(), ProxyError> {
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
            let reader_task = tokio::task::spawn_local(async move {
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
            pubsub.readers.push(reader_task);
            pubsub.writers.insert(state.id, writer);
        }
        let writer = pubsub.writers.get_mut(&state.id).expect("inserted above");
        send(writer, encoded)
            .await
            .map_err(|e| ProxyError::node_failed(&state.addr, e))
    }
}

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
