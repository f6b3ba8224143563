//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and keyspace
//! notifications, which are publishes the node makes itself.
//!
//! ```text
//!  PUBLISH ch msg ─► registry: channel → subscribers, pattern → subscribers
//!                 ─► each subscriber's Outbox (unbounded queue + byte count)
//!  subscriber's connection task ─► writes queued messages as they arrive
//! ```
//!
//! A subscriber that does not read has its queued bytes counted; past its class's output
//! limit (`client-output-buffer-limit`: pubsub 32 MB hard, 8 MB for 60 s, by default) it is
//! disconnected instead of growing memory.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use cache_protocol::glob::glob_match;
use cache_protocol::{Protocol, ReplyBuf};
use hashbrown::HashMap;
use tokio::sync::mpsc;

use super::{is, CmdError, CmdResult, Ctx};
use crate::client::ClientInfo;
use crate::config::output::{ClientClass, OutputLimits};

/// Where messages for one subscribed connection go.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Bytes>,
    pub pending: AtomicUsize,
    client: Arc<ClientInfo>,
    protocol: Mutex<Protocol>,
    /// The connection has at least one subscription (RESP2 pub/sub mode): client tracking
    /// may then redirect invalidations to it as `__redis__:invalidate` messages.
    subscribed: AtomicBool,
    limits: Arc<OutputLimits>,
    /// Since when `pending` is over the soft limit (0: it is not).
    soft_since: AtomicU64,
}

impl Outbox {
    pub fn protocol(&self) -> Protocol {
        *self.protocol.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Relaxed)
    }

    /// Queues a message; disconnects the client instead when that puts it over its output
    /// limit (a subscriber's are the pubsub class's; MONITOR's and tracking's, normal).
    pub fn send(&self, frame: Bytes) -> bool {
        let pending = self.pending.fetch_add(frame.len(), Relaxed) + frame.len();
        let class = if self.subscribed() {
            ClientClass::PubSub
        } else {
            ClientClass::Normal
        };
        if let Some(limit) =
            self.limits
                .exceeded(class, pending as u64, &self.soft_since, crate::now_ms)
        {
            tracing::warn!(
                id = self.client.id,
                pending,
                ?class,
                limit,
                "closing client over its output buffer limit"
            );
            self.client.request_kill();
            return false;
        }
        self.tx.send(frame).is_ok()
    }
}

/// A connection's subscriptions.
pub struct Subscriptions {
    pub outbox: Arc<Outbox>,
    pub rx: mpsc::UnboundedReceiver<Bytes>,
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
}

impl Subscriptions {
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

type Subscribers = HashMap<Bytes, HashMap<u64, Arc<Outbox>>>;

/// All subscriptions of the node.
#[derive(Default)]
pub struct PubSub {
    channels: Mutex<Subscribers>,
    patterns: Mutex<Subscribers>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn frame(protocol: Protocol, parts: &[&[u8]]) -> Bytes {
    let mut out = ReplyBuf {
        buf: BytesMut::new(),
        protocol,
    };
    out.push(parts.len());
    for p in parts {
        out.bulk(p);
    }
    out.buf.freeze()
}

impl PubSub {
    /// Delivers `message` to every subscriber of `channel` and of matching patterns.
    /// Returns how many received it.
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        let mut receivers = 0;
        // Frames are encoded once per protocol, not once per subscriber.
        let mut cache: [Option<Bytes>; 2] = [None, None];
        {
            let channels = lock(&self.channels);
            if let Some(subs) = channels.get(channel) {
                for outbox in subs.values() {
                    let p = outbox.protocol();
                    let slot = &mut cache[(p == Protocol::Resp3) as usize];
                    let f = slot
                        .get_or_insert_with(|| frame(p, &[b"message", channel, message]))
                        .clone();
                    if outbox.send(f) {
                        receivers += 1;
                    }
                }
            }
        }
        let patterns = lock(&self.patterns);
        for (pattern, subs) in patterns.iter() {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for outbox in subs.values() {
                let f = frame(outbox.protocol(), &[b"pmessage", pattern, channel, message]);
                if outbox.send(f) {
                    receivers += 1;
                }
            }
        }
        receivers
    }

    pub fn channel_names(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        lock(&self.channels)
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        lock(&self.channels).get(channel).map_or(0, |s| s.len())
    }

    /// Channels with at least one subscriber (INFO's `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }

    pub fn numpat(&self) -> usize {
        lock(&self.patterns).len()
    }

    /// Removes every subscription of a closing connection.
    pub fn drop_client(&self, id: u64, subs: &Subscriptions) {
        for (registry, names) in [
            (&self.channels, &subs.channels),
            (&self.patterns, &subs.patterns),
        ] {
            let mut registry = lock(registry);
            for name in names {
                if let Some(s) = registry.get_mut(name) {
                    s.remove(&id);
                    if s.is_empty() {
                        registry.remove(name);
                    }
                }
            }
        }
    }
}

/// The connection's message queue, created on first use (a subscription, CLIENT TRACKING,
/// HELLO 3) and then kept: the connection task writes whatever arrives in it.
pub fn subscriptions<'c>(ctx: &'c mut Ctx<'_>) -> &'c mut Subscriptions {
    let protocol = ctx.out.protocol;
    let info = ctx.conn.info.clone();
    let limits = &ctx.shared.config.output_limits;
    ctx.conn.subs.get_or_insert_with(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Arc::new(Outbox {
            tx,
            pending: AtomicUsize::new(0),
            client: info.clone(),
            protocol: Mutex::new(protocol),
            subscribed: AtomicBool::new(false),
            limits: limits.clone(),
            soft_since: AtomicU64::new(0),
        });
        let _ = info.outbox.set(Arc::downgrade(&outbox));
        Subscriptions {
            outbox,
            rx,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
        }
    })
}

/// Keeps the outbox's protocol in step with HELLO.
pub fn protocol_changed(ctx: &mut Ctx<'_>) {
    if let Some(s) = &ctx.conn.subs {
        *s.outbox.protocol.lock().unwrap_or_else(|e| e.into_inner()) = ctx.out.protocol;
    }
}

fn confirm(out: &mut ReplyBuf, kind: &[u8], name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(kind);
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

pub fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes], pattern: bool) -> CmdResult {
    let id = ctx.conn.info.id;
    let registry = if pattern {
        &ctx.shared.pubsub.patterns
    } else {
        &ctx.shared.pubsub.channels
    };
    for name in &args[1..] {
        let subs = subscriptions(ctx);
        let outbox = subs.outbox.clone();
        let set = if pattern {
            &mut subs.patterns
        } else {
            &mut subs.channels
        };
        if set.insert(name.clone()) {
            lock(registry)
                .entry(name.clone())
                .or_default()
                .insert(id, outbox);
        }
        let count = subs.count();
        subs.outbox.subscribed.store(count > 0, Relaxed);
        confirm(
            ctx.out,
            if pattern { b"psubscribe" } else { b"subscribe" },
            Some(name),
            count,
        );
    }
    Ok(())
}

pub fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes], pattern: bool) -> CmdResult {
    let id = ctx.conn.info.id;
    let kind: &[u8] = if pattern {
        b"punsubscribe"
    } else {
        b"unsubscribe"
    };
    let registry = if pattern {
        &ctx.shared.pubsub.patterns
    } else {
        &ctx.shared.pubsub.channels
    };
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        match &ctx.conn.subs {
            Some(s) if pattern => s.patterns.iter().cloned().collect(),
            Some(s) => s.channels.iter().cloned().collect(),
            None => Vec::new(),
        }
    };
    if names.is_empty() {
        let count = ctx.conn.subs.as_ref().map_or(0, Subscriptions::count);
        confirm(ctx.out, kind, None, count);
        return Ok(());
    }
    for name in names {
        let count = match ctx.conn.subs.as_mut() {
            Some(subs) => {
                let set = if pattern {
                    &mut subs.patterns
                } else {
                    &mut subs.channels
                };
                if set.remove(&name) {
                    let mut reg = lock(registry);
                    if let Some(s) = reg.get_mut(&name) {
                        s.remove(&id);
                        if s.is_empty() {
                            reg.remove(&name);
                        }
                    }
                }
                subs.outbox.subscribed.store(subs.count() > 0, Relaxed);
                subs.count()
            }
            None => 0,
        };
        confirm(ctx.out, kind, Some(&name), count);
    }
    Ok(())
}

pub fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = ctx.shared.pubsub.publish(&args[1], &args[2]);
    ctx.out.int(n as i64);
    Ok(())
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "HELP",
    "    Print this help.",
];

pub fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let registry = &ctx.shared.pubsub;
    if is(sub, "channels") {
        if args.len() > 3 {
            return Err(CmdError::Msg(
                "ERR wrong number of arguments for 'pubsub|channels' command",
            ));
        }
        let names = registry.channel_names(args.get(2).map(|p| &p[..]));
        ctx.out.array(names.len());
        for n in names {
            ctx.out.bulk(&n);
        }
    } else if is(sub, "numsub") {
        // A flat array in both protocols: Redis 7.0 replies so (redis-py's RESP3 parser
        // expects it), though its docs call it a map.
        ctx.out.array(2 * (args.len() - 2));
        for c in &args[2..] {
            ctx.out.bulk(c);
            ctx.out.int(registry.numsub(c) as i64);
        }
    } else if is(sub, "numpat") {
        ctx.out.int(registry.numpat() as i64);
    } else {
        super::connection::help(ctx, PUBSUB_HELP);
    }
    Ok(())
}

/// Keyspace-notification classes (`notify-keyspace-events` letters).
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 12; // d
    pub const NEW: u32 = 1 << 13; // n
    const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Parses the flag letters; None for an unknown letter.
    pub fn parse(text: &str) -> Option<u32> {
        let mut flags = 0;
        for c in text.chars() {
            flags |= match c {
                'A' => ALL,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => return None,
            };
        }
        Some(flags)
    }

    /// The canonical text Redis reports for a set of flags.
    pub fn format(flags: u32) -> String {
        let mut s = String::new();
        if flags & ALL == ALL {
            s.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
            ] {
                if flags & bit != 0 {
                    s.push(c);
                }
            }
        }
        for (bit, c) in [
            (KEYSPACE, 'K'),
            (KEYEVENT, 'E'),
            (KEY_MISS, 'm'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
        s
    }
}

/// Publishes a keyspace notification if its class is enabled.
pub fn notify_event(
    shared: &crate::Shared,
    flags: u32,
    db: usize,
    class: u32,
    event: &str,
    key: &[u8],
) {
    if flags & class == 0 || flags & (notify::KEYSPACE | notify::KEYEVENT) == 0 {
        return;
    }
    if flags & notify::KEYSPACE != 0 {
        let mut channel = BytesMut::new();
        channel.put_slice(format!("__keyspace@{db}__:").as_bytes());
        channel.put_slice(key);
        shared.pubsub.publish(&channel, event.as_bytes());
    }
    if flags & notify::KEYEVENT != 0 {
        let channel = format!("__keyevent@{db}__:{event}");
        shared.pubsub.publish(channel.as_bytes(), key);
    }
}
