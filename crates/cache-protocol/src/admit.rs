//! Admission: what a server decides about a request before it runs anything, in the order
//! Redis 7.0's `processCommand` decides it, with its exact errors. Node and proxy both call
//! [`admit`]; what differs between them (who is logged in, what the ACL says, whether memory
//! is short) is asked of their [`Session`].
//!
//! ```text
//!  args ─► resolve (name, arity, subcommand, served here?) ─► NOAUTH ─► no_multi ─► ACL
//!       ─► cluster redirection (node in cluster mode) ─► OOM (node) ─► RESP2 subscribed mode ─► MULTI queueing ─► Run | Queue | Refuse
//! ```
//!
//! A refusal inside MULTI makes the transaction fail at EXEC (Redis's `flagTransaction`);
//! the caller does that when it sees [`Admission::Refuse`] while queueing.

use crate::command::{flags, resolve_counted, Cmd, CommandSpec, Role};

/// A request the table knows, with its subcommand when it has one.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub cmd: Cmd,
    pub sub: Option<&'static CommandSpec>,
}

impl Resolved {
    /// The spec that describes this call: the subcommand's when there is one.
    pub fn spec(&self) -> &'static CommandSpec {
        self.sub.unwrap_or_else(|| self.cmd.spec())
    }

    /// `get`, or `client|id` for a subcommand: the name Redis puts in its errors.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    /// The dense id of this command or subcommand (statistics, ACL bitmaps).
    pub fn id(&self) -> usize {
        crate::command::spec_id(self.cmd, self.sub)
    }
}

/// What the server asks of the connection (and of itself) while admitting a request.
pub trait Session {
    /// Logged in, or no login is needed.
    fn authenticated(&self) -> bool;
    /// The ACL's verdict for this user: `Err` carries the whole `-NOPERM` message.
    fn acl_check(&mut self, call: Resolved, args: &[bytes::Bytes]) -> Result<(), String>;
    /// A RESP2 connection with subscriptions (it may only (un)subscribe, PING, QUIT, RESET).
    fn resp2_subscribed(&self) -> bool;
    /// Inside MULTI (and not running EXEC's queue).
    fn queueing(&self) -> bool;
    /// Whether a command queued since MULTI is `denyoom` (then EXEC is, as in Redis).
    fn queued_denyoom(&self) -> bool {
        false
    }
    /// Asked only when Redis would refuse the command under memory pressure: true when
    /// memory is over the limit and nothing could be evicted. The proxy holds no data.
    fn out_of_memory(&mut self, _call: Resolved, _args: &[bytes::Bytes]) -> bool {
        false
    }
    /// Cluster mode: Redis Cluster's redirection of a keyed request (EXEC: of its queue),
    /// `Err` carrying the whole `-MOVED` / `-CROSSSLOT` / `-CLUSTERDOWN` message.
    fn cluster_redirect(&mut self, _call: Resolved, _args: &[bytes::Bytes]) -> Result<(), String> {
        Ok(())
    }
}

/// The decision.
#[derive(Debug)]
pub enum Admission {
    /// Run it now.
    Run(Resolved),
    /// Inside MULTI: reply `+QUEUED` and keep it for EXEC.
    Queue(Resolved),
    /// Reply with `error` (Redis's text, code included). `call` is set when the name was
    /// known (for per-command statistics).
    Refuse {
        error: String,
        call: Option<Resolved>,
    },
}

/// Commands that are never queued: they act on the transaction itself.
fn acts_on_transaction(cmd: Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Exec | Cmd::Discard | Cmd::Multi | Cmd::Watch | Cmd::Quit | Cmd::Reset
    )
}

/// Whether Redis would refuse `call` when memory is short: a `denyoom` command (EXEC when it
/// would run one), and inside MULTI anything but EXEC, DISCARD, QUIT and RESET (queueing
/// itself takes memory).
pub fn refused_when_oom(call: Resolved, queueing: bool, queued_denyoom: bool) -> bool {
    call.spec().has(flags::DENYOOM)
        || call.cmd.spec().has(flags::DENYOOM)
        || (call.cmd == Cmd::Exec && queued_denyoom)
        || (queueing && !matches!(call.cmd, Cmd::Exec | Cmd::Discard | Cmd::Quit | Cmd::Reset))
}

/// Whether a refusal of `call` ends the transaction: a refused EXEC discards it and answers
/// `-EXECABORT` with the reason (Redis's `execCommandAbort`). The caller clears its MULTI
/// and WATCH state.
pub fn aborts_transaction(call: Option<Resolved>, queueing: bool) -> bool {
    queueing && call.is_some_and(|c| c.cmd == Cmd::Exec)
}

/// Redis's reply to a command refused for memory.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Decides what to do with `args` on a server playing `role`.
pub fn admit(role: Role, args: &[bytes::Bytes], session: &mut impl Session) -> Admission {
    let call = match resolve_counted(role, args) {
        Ok((cmd, sub)) => Resolved { cmd, sub },
        Err((error, known)) => {
            let call = known.map(|(cmd, sub)| Resolved { cmd, sub });
            return Admission::Refuse { error, call };
        }
    };
    let queueing = session.queueing();
    let refuse = |error: String| Admission::Refuse {
        error: if aborts_transaction(Some(call), queueing) {
            format!("EXECABORT Transaction discarded because of: {error}")
        } else {
            error
        },
        call: Some(call),
    };
    let spec = call.cmd.spec();
    if !session.authenticated() && !spec.has(flags::NO_AUTH) {
        return refuse("NOAUTH Authentication required.".into());
    }
    if queueing && call.spec().has(flags::NO_MULTI) {
        return refuse("ERR Command not allowed inside a transaction".into());
    }
    if let Err(denied) = session.acl_check(call, args) {
        return refuse(denied);
    }
    if let Err(error) = session.cluster_redirect(call, args) {
        // As Redis: a redirected EXEC discards the transaction with the redirection itself
        // (no EXECABORT); a redirected command inside MULTI fails the EXEC.
        return Admission::Refuse {
            error,
            call: Some(call),
        };
    }
    if refused_when_oom(call, queueing, session.queued_denyoom())
        && session.out_of_memory(call, args)
    {
        return refuse(OOM_ERROR.into());
    }
    if session.resp2_subscribed() && !spec.has(flags::PUBSUB_OK) {
        return refuse(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            call.name()
        ));
    }
    if queueing && !acts_on_transaction(call.cmd) {
        return Admission::Queue(call);
    }
    Admission::Run(call)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[derive(Default)]
    struct Fake {
        authenticated: bool,
        denied: bool,
        subscribed: bool,
        multi: bool,
        oom: bool,
    }

    impl Session for Fake {
        fn authenticated(&self) -> bool {
            self.authenticated
        }
        fn acl_check(&mut self, call: Resolved, _: &[Bytes]) -> Result<(), String> {
            if self.denied {
                Err(format!("NOPERM {}", call.name()))
            } else {
                Ok(())
            }
        }
        fn resp2_subscribed(&self) -> bool {
            self.subscribed
        }
        fn queueing(&self) -> bool {
            self.multi
        }
        fn out_of_memory(&mut self, _: Resolved, _: &[Bytes]) -> bool {
            self.oom
        }
    }

    fn args(words: &str) -> Vec<Bytes> {
        words
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn error(role: Role, s: &mut Fake, words: &str) -> String {
        match admit(role, &args(words), s) {
            Admission::Refuse { error, .. } => error,
            other => panic!("{words}: {other:?}"),
        }
    }

    fn open() -> Fake {
        Fake {
            authenticated: true,
            ..Fake::default()
        }
    }

    #[test]
    fn proxy_commands_exist_only_on_the_proxy() {
        let mut s = open();
        assert!(matches!(
            admit(Role::Proxy, &args("PROXY NODES"), &mut s),
            Admission::Run(_)
        ));
        assert!(error(Role::Node, &mut s, "PROXY NODES").starts_with("ERR unknown command 'PROXY'"));
        assert!(matches!(
            admit(Role::Node, &args("CACHE HELP"), &mut s),
            Admission::Run(_)
        ));
        assert!(error(Role::Proxy, &mut s, "CACHE HELP").starts_with("ERR unknown command 'CACHE'"));
    }

    #[test]
    fn authentication_comes_before_everything_but_the_name() {
        let mut s = Fake::default();
        for role in [Role::Node, Role::Proxy] {
            assert_eq!(
                error(role, &mut s, "GET a"),
                "NOAUTH Authentication required."
            );
            assert!(matches!(
                admit(role, &args("AUTH pw"), &mut s),
                Admission::Run(_)
            ));
            assert!(error(role, &mut s, "GET").starts_with("ERR wrong number"));
        }
        assert_eq!(
            error(Role::Proxy, &mut s, "PROXY ADD 127.0.0.1:1"),
            "NOAUTH Authentication required."
        );
    }

    #[test]
    fn acl_then_subscribed_mode_then_queueing() {
        let mut s = open();
        s.denied = true;
        assert_eq!(
            error(Role::Proxy, &mut s, "PROXY ADD x"),
            "NOPERM proxy|add"
        );
        s.denied = false;
        s.subscribed = true;
        assert!(error(Role::Node, &mut s, "CLIENT ID").contains("'client|id'"));
        assert!(matches!(
            admit(Role::Node, &args("PING"), &mut s),
            Admission::Run(_)
        ));
        s.subscribed = false;
        s.multi = true;
        assert!(matches!(
            admit(Role::Node, &args("SET a b"), &mut s),
            Admission::Queue(_)
        ));
        assert!(matches!(
            admit(Role::Node, &args("EXEC"), &mut s),
            Admission::Run(_)
        ));
        assert_eq!(
            error(Role::Node, &mut s, "SHUTDOWN"),
            "ERR Command not allowed inside a transaction"
        );
    }

    #[test]
    fn cluster_redirection_follows_the_acl_and_is_not_an_execabort() {
        struct Redirecting(Fake);
        impl Session for Redirecting {
            fn authenticated(&self) -> bool {
                self.0.authenticated()
            }
            fn acl_check(&mut self, call: Resolved, args: &[Bytes]) -> Result<(), String> {
                self.0.acl_check(call, args)
            }
            fn resp2_subscribed(&self) -> bool {
                false
            }
            fn queueing(&self) -> bool {
                self.0.multi
            }
            fn cluster_redirect(&mut self, call: Resolved, _: &[Bytes]) -> Result<(), String> {
                Err(format!("MOVED 1 h:1 ({})", call.name()))
            }
        }
        let mut s = Redirecting(open());
        s.0.denied = true;
        assert!(matches!(
            admit(Role::Node, &args("GET a"), &mut s),
            Admission::Refuse { error, .. } if error == "NOPERM get"
        ));
        s.0.denied = false;
        s.0.multi = true;
        for (words, want) in [
            ("GET a", "MOVED 1 h:1 (get)"),
            ("EXEC", "MOVED 1 h:1 (exec)"),
        ] {
            assert!(matches!(
                admit(Role::Node, &args(words), &mut s),
                Admission::Refuse { error, .. } if error == want
            ));
        }
    }

    #[test]
    fn memory_is_asked_only_where_redis_refuses() {
        let mut s = open();
        s.oom = true;
        assert_eq!(error(Role::Node, &mut s, "SET a b"), OOM_ERROR);
        assert!(matches!(
            admit(Role::Node, &args("GET a"), &mut s),
            Admission::Run(_)
        ));
        assert!(matches!(
            admit(Role::Node, &args("MULTI"), &mut s),
            Admission::Run(_)
        ));
        s.multi = true;
        assert_eq!(error(Role::Node, &mut s, "GET a"), OOM_ERROR);
        assert!(matches!(
            admit(Role::Node, &args("DISCARD"), &mut s),
            Admission::Run(_)
        ));
    }
}
