//! The connection's own state, answered by the proxy itself: AUTH, HELLO, ACL, MULTI, QUIT,
//! CLIENT (names, ids, caching and tracking) and RESET.

use bytes::Bytes;
use cache_protocol::admit::Resolved;
use cache_protocol::command::flags;
use cache_protocol::Cmd;

use crate::client::{Client, Item};
use crate::merge::null;
use crate::reply::{self, bulk_bytes, error_bytes};
use crate::tracking::{self, Mode, PushQueue, Tracked};

impl Client {
    /// A request the plan left to the session ([`crate::plan::Action::Local`]).
    pub(crate) fn local(&mut self, call: Resolved, args: &[Bytes]) {
        match call.cmd {
            Cmd::Quit => {
                self.ready(Bytes::from_static(b"+OK\r\n"));
                self.quit = true;
            }
            Cmd::Auth => self.auth(args),
            Cmd::Hello => self.hello(args),
            Cmd::Client => self.client_command(args),
            Cmd::Cluster => self.cluster_command(args),
            Cmd::Multi => {
                if self.multi.is_some() {
                    self.error("ERR MULTI calls can not be nested");
                } else {
                    self.multi = Some(Vec::new());
                    self.multi_failed = false;
                    self.ready(Bytes::from_static(b"+OK\r\n"));
                }
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
            }
            _ => self.error(&format!(
                "ERR '{}' is not supported by the proxy",
                call.name()
            )),
        }
    }

    /// RESET: the connection as it was when it opened.
    pub(crate) async fn reset(&mut self) {
        self.unwatch().await;
        self.multi = None;
        self.pubsub = None;
        self.worker.tracking.disable(self.id);
        self.caching_next = None;
        self.replies = ReplyMode::On;
        self.resp3 = false;
        self.name = None;
        self.user = self.worker.cluster.acl.default_user();
        self.authenticated = self.worker.cluster.acl.default_open();
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
            // OFF and SKIP are not answered; ON is (`mutes` lets CLIENT REPLY through).
            (b"reply", 3) => match &args[2].to_ascii_lowercase()[..] {
                b"on" => {
                    self.replies = ReplyMode::On;
                    self.ready(Bytes::from_static(b"+OK\r\n"));
                }
                b"off" => self.replies = ReplyMode::Off,
                b"skip" if self.replies == ReplyMode::On => self.replies = ReplyMode::Skip,
                b"skip" => {}
                _ => self.error("ERR syntax error"),
            },
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

    /// `CLIENT TRACKING ON|OFF [BCAST] [PREFIX p]... [OPTIN] [OPTOUT] [NOLOOP]` (RESP3 only).
    pub(crate) async fn tracking_command(&mut self, args: &[Bytes]) -> Bytes {
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
    pub(crate) fn track(&mut self, spec: &cache_protocol::CommandSpec, keys: &[Bytes]) {
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

/// `CLIENT REPLY`: whether replies reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyMode {
    On,
    Off,
    /// The next command's reply is dropped, then replies are on again.
    Skip,
}

impl Client {
    /// Whether the reply of `args`, about to run, is kept from the client. CLIENT REPLY's
    /// own answer is its own business (ON answers, OFF and SKIP do not), and subscription
    /// confirmations are pushes, which CLIENT REPLY does not hold back (as Redis's
    /// CLIENT_PUSHING), in RESP2 too.
    pub(crate) fn mutes(&mut self, args: &[Bytes]) -> bool {
        if args.len() > 1
            && args[0].eq_ignore_ascii_case(b"client")
            && args[1].eq_ignore_ascii_case(b"reply")
        {
            return false;
        }
        let muted = match self.replies {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::Skip => {
                self.replies = ReplyMode::On;
                true
            }
        };
        muted
            && !matches!(
                Cmd::lookup(&args[0]),
                Some(Cmd::Subscribe | Cmd::Psubscribe | Cmd::Unsubscribe | Cmd::Punsubscribe)
            )
    }

    /// Drops what a muted command answered: items planned from `items` on, and what it
    /// wrote directly after `out`.
    pub(crate) fn mute_from(&mut self, mute: bool, items: usize, out: usize) {
        if !mute {
            return;
        }
        for item in &mut self.items[items..] {
            let inner = std::mem::replace(item, Item::Ready(Bytes::new()));
            *item = Item::Muted(Box::new(inner));
        }
        self.out.truncate(out);
    }
}
