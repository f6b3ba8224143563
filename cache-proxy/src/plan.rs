//! The planner: what to do with one admitted request, decided without sockets from the
//! routing snapshot, the connection's state and the command table's key specs and tips.
//!
//! ```text
//!  Resolved + args ─► plan() ─► Reply / Error            answered here, no node
//!                             ├► Local                    session state (AUTH, HELLO, CLIENT, MULTI…)
//!                             ├► Forward { node }          every key on one node (or keyless: a fixed node)
//!                             ├► Split { parts, merge }    request_policy:multi_shard (MGET, MSET, DEL…)
//!                             ├► FanOut { nodes, merge }   request_policy:all_shards/all_nodes, merged
//!                             │                            by response_policy (agg_sum, all_succeeded…)
//!                             ├► Scan / Info               request or response policy "special"
//!                             └► Alone(…)                  a connection of its own, or a cluster change
//! ```
//!
//! The executor ([`crate::client`]) carries a plan out; nothing here touches a node, a
//! counter or the clock, so every family of commands is unit-tested below.

use std::sync::OnceLock;

use bytes::Bytes;
use cache_protocol::admit::Resolved;
use cache_protocol::command::{
    all_specs, categories, flags, key_flags, Find, RequestPolicy, ResponsePolicy,
};
use cache_protocol::{Cmd, CommandSpec};

use crate::cluster::Routing;
use crate::error::{ErrorKind, ProxyError};
use crate::reply::bulk_bytes;

/// What the planner needs to know of the connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Inside MULTI.
    pub in_multi: bool,
    /// Spreads "any one node" commands (RANDOMKEY) over the nodes: client id + batch position.
    pub pick: usize,
    /// A RESP2 connection with subscriptions: PING answers as an array there.
    pub subscribed: bool,
}

/// One request's plan: the action, and the keys it names (for write marks and tracking).
#[derive(Debug)]
pub struct Plan {
    pub action: Action,
    pub keys: Keys,
    /// Whether it may change its keys (their slots are marked for absent nodes).
    pub write: bool,
}

/// The keys of a request; one key (the common case) without an allocation.
#[derive(Debug, PartialEq, Eq)]
pub enum Keys {
    One(Bytes),
    Many(Vec<Bytes>),
}

impl Keys {
    pub fn as_slice(&self) -> &[Bytes] {
        match self {
            Keys::One(key) => std::slice::from_ref(key),
            Keys::Many(keys) => keys,
        }
    }
}

#[derive(Debug)]
pub enum Action {
    /// The whole reply, made here.
    Reply(Bytes),
    Error(ProxyError),
    /// Answered by the connection's session code (it changes session state).
    Local,
    /// The request as it is, to one node. `reload` says what to restore on the node if it
    /// answers that it lacks a script or function the proxy has seen.
    Forward {
        node: usize,
        reload: Reload,
    },
    /// One request per node, each with its share of the keys, merged into one reply.
    Split {
        parts: Vec<Part>,
        merge: Merge,
    },
    /// The request as it is to every node, merged into one reply. `stale_absent`: the
    /// command changes every key, so nodes that are out now must drop everything on return.
    FanOut {
        nodes: Vec<usize>,
        merge: Merge,
        stale_absent: bool,
    },
    /// SCAN on member `node` with that member's own cursor.
    Scan {
        node: usize,
        cursor: u64,
        members: Vec<bool>,
    },
    /// INFO: the proxy's text and the nodes' keyspace lines.
    Info {
        nodes: Vec<usize>,
    },
    /// Waits on a connection of its own or changes the cluster: runs after the batch so far.
    Alone(Alone),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    None,
    /// EVALSHA: on `-NOSCRIPT`, SCRIPT LOAD the body with this SHA and retry.
    Script(Bytes),
    /// FCALL: on "Function not found", load the libraries the proxy has seen and retry.
    Functions,
    /// Nodes in cluster mode: on `-MOVED`, the same request to the node named.
    Moved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alone {
    Tracking,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Reset,
    Proxy,
    Subscribe,
    /// A blocking command to the node of its keys, on a connection of its own.
    Blocking {
        node: usize,
    },
}

/// How the replies of a split or a fan-out become one, from the response policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// MGET (multi_shard, no response policy): each part's values to its keys' positions.
    Values { total: usize },
    /// agg_sum: the sum of the integers.
    Sum,
    /// all_succeeded: the first error, else the first reply.
    AllSucceeded,
    /// agg_logical_and: arrays of 0/1 ANDed element by element.
    And,
    /// one_succeeded: the first success, else the first error.
    OneSucceeded,
    /// all_shards without a response policy and with nondeterministic order (KEYS): the
    /// arrays end to end.
    Concat,
    /// PUBSUB NUMSUB: `name count` pairs, the counts summed position by position.
    PairSums,
    /// PUBSUB NUMPAT: the largest integer (every node holds the proxy's patterns).
    Max,
    /// CONFIG GET: the nodes' common answer; an error when they differ (the proxy cannot
    /// present two values as one server's).
    Agree,
}

/// One node's share of a split command.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    pub node: usize,
    pub args: Vec<Bytes>,
    /// Which keys (in request order, counting from 0) this part carries.
    pub positions: Vec<usize>,
}

/// Low bits of a proxy SCAN cursor that name the member being scanned.
pub const SCAN_NODES: u64 = 1024;

fn plan_of(action: Action) -> Plan {
    Plan {
        action,
        keys: Keys::Many(Vec::new()),
        write: false,
    }
}

fn error(e: ProxyError) -> Plan {
    plan_of(Action::Error(e))
}

/// Plans one admitted request.
pub fn plan(routing: &Routing, view: &View, call: Resolved, args: &[Bytes]) -> Plan {
    let cmd = call.cmd;
    let ok = || plan_of(Action::Reply(Bytes::from_static(b"+OK\r\n")));
    match cmd {
        // PING's arity (-1) admits any count; Redis's own check is in the command.
        Cmd::Ping if args.len() > 2 => error(ProxyError::client(
            "ERR wrong number of arguments for 'ping' command",
        )),
        Cmd::Ping if view.subscribed => {
            let msg = args.get(1).map_or(Bytes::new(), Bytes::clone);
            let mut reply = b"*2\r\n$4\r\npong\r\n".to_vec();
            reply.extend_from_slice(&bulk_bytes(&msg));
            plan_of(Action::Reply(Bytes::from(reply)))
        }
        Cmd::Ping => plan_of(Action::Reply(match args.get(1) {
            Some(msg) => bulk_bytes(msg),
            None => Bytes::from_static(b"+PONG\r\n"),
        })),
        Cmd::Echo => plan_of(Action::Reply(bulk_bytes(&args[1]))),
        Cmd::Select if &args[1][..] == b"0" => ok(),
        Cmd::Select => error(ProxyError::client("ERR the proxy serves database 0 only")),
        Cmd::Quit | Cmd::Auth | Cmd::Acl | Cmd::Hello | Cmd::Multi => plan_of(Action::Local),
        Cmd::Client if is_sub(args, b"tracking") => plan_of(Action::Alone(Alone::Tracking)),
        Cmd::Client => plan_of(Action::Local),
        Cmd::Discard if !view.in_multi => error(ProxyError::client("ERR DISCARD without MULTI")),
        Cmd::Discard => plan_of(Action::Alone(Alone::Discard)),
        Cmd::Exec => plan_of(Action::Alone(Alone::Exec)),
        Cmd::Watch => plan_of(Action::Alone(Alone::Watch)),
        Cmd::Unwatch => plan_of(Action::Alone(Alone::Unwatch)),
        Cmd::Reset => plan_of(Action::Alone(Alone::Reset)),
        Cmd::Proxy => plan_of(Action::Alone(Alone::Proxy)),
        // A cluster client given the proxy's address sees one node owning every slot.
        Cmd::Cluster if crate::cluster_mode::answers(args) => plan_of(Action::Local),
        Cmd::Asking | Cmd::Readonly | Cmd::Readwrite => ok(),
        Cmd::Subscribe | Cmd::Psubscribe | Cmd::Unsubscribe | Cmd::Punsubscribe => {
            plan_of(Action::Alone(Alone::Subscribe))
        }
        // A channel lives on the node its name hashes to (where SUBSCRIBE went).
        Cmd::Publish => match routing.route(&args[1]) {
            Ok(node) => plan_of(Action::Forward {
                node,
                reload: Reload::None,
            }),
            Err(e) => error(e),
        },
        // A channel's subscribers are on its node and patterns on every node (pubsub.rs):
        // the nodes' answers together are the cluster's.
        Cmd::Pubsub if !is_sub(args, b"help") => {
            let merge = if is_sub(args, b"numsub") {
                Merge::PairSums
            } else if is_sub(args, b"numpat") {
                Merge::Max
            } else {
                Merge::Concat
            };
            plan_of(Action::FanOut {
                nodes: routing.live_nodes().collect(),
                merge,
                stale_absent: false,
            })
        }
        Cmd::Info => plan_of(Action::Info {
            nodes: routing.live_nodes().collect(),
        }),
        // The nodes' parameters, as if one server's: SET, RESETSTAT and REWRITE on every
        // node (all must succeed), GET answered where they agree. (The proxy's own
        // parameters are its command line's.)
        Cmd::Config if !is_sub(args, b"help") => plan_of(Action::FanOut {
            nodes: routing.live_nodes().collect(),
            merge: if is_sub(args, b"get") {
                Merge::Agree
            } else {
                Merge::AllSucceeded
            },
            stale_absent: false,
        }),
        Cmd::Config => match routing.live_nodes().next() {
            Some(node) => plan_of(Action::Forward {
                node,
                reload: Reload::None,
            }),
            None => error(ProxyError::new(ErrorKind::Unsupported(cmd.spec().name))),
        },
        // Per-database or per-node state the proxy cannot present as one server's; the
        // per-node diagnostics are asked of the node itself (PROXY NODES lists them).
        Cmd::Swapdb
        | Cmd::Move
        | Cmd::Shutdown
        | Cmd::Cluster
        | Cmd::Cache
        // Each node snapshots its own keys: ask the node.
        | Cmd::Save
        | Cmd::Bgsave
        | Cmd::Slowlog
        | Cmd::Latency => error(ProxyError::new(ErrorKind::Unsupported(cmd.spec().name))),
        _ => by_table(routing, view, call, args),
    }
}

fn is_sub(args: &[Bytes], name: &[u8]) -> bool {
    args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(name))
}

/// Everything else, from the table: blocking, request and response policies, key specs.
fn by_table(routing: &Routing, view: &View, call: Resolved, args: &[Bytes]) -> Plan {
    let (cmd, spec) = (call.cmd, call.spec());
    if blocks(cmd, spec, args) {
        let mut plan = keyed(routing, cmd, spec, args);
        if let Action::Forward { node, .. } = plan.action {
            plan.action = Action::Alone(Alone::Blocking { node });
        }
        return plan;
    }
    let policies = policies(call);
    match (policies.request, policies.response) {
        (Some(RequestPolicy::MultiShard), None) => {
            return split(routing, spec, args, Merge::Values { total: 0 })
        }
        (Some(RequestPolicy::MultiShard), Some(ResponsePolicy::AggSum)) => {
            return split(routing, spec, args, Merge::Sum)
        }
        (Some(RequestPolicy::MultiShard), Some(ResponsePolicy::AllSucceeded)) => {
            return split(routing, spec, args, Merge::AllSucceeded)
        }
        // MSETNX (agg_min) is all-or-nothing: it runs only where one node holds every key.
        (Some(RequestPolicy::AllShards | RequestPolicy::AllNodes), response) => {
            let merge = match response {
                Some(ResponsePolicy::AggSum) => Some(Merge::Sum),
                Some(ResponsePolicy::AllSucceeded) => Some(Merge::AllSucceeded),
                Some(ResponsePolicy::AggLogicalAnd) => Some(Merge::And),
                Some(ResponsePolicy::OneSucceeded) => Some(Merge::OneSucceeded),
                None if policies.any_order => Some(Merge::Concat),
                None => {
                    // Any shard's answer will do (RANDOMKEY): spread them.
                    let live: Vec<usize> = routing.live_nodes().collect();
                    if live.is_empty() {
                        return error(ProxyError::new(ErrorKind::NoNode));
                    }
                    let node = live[view.pick % live.len()];
                    return plan_of(Action::Forward {
                        node,
                        reload: Reload::None,
                    });
                }
                // A special (or min/max) merge the proxy does not do: one node answers.
                Some(_) => None,
            };
            if let Some(merge) = merge {
                return plan_of(Action::FanOut {
                    nodes: routing.live_nodes().collect(),
                    merge,
                    stale_absent: spec.is_write() && spec.categories() & categories::KEYSPACE != 0,
                });
            }
        }
        (Some(RequestPolicy::Special), _) => return scan(routing, args),
        _ => {}
    }
    keyed(routing, cmd, spec, args)
}

/// A command's tips, parsed once: the hot path indexes a table instead of reading strings.
struct Policies {
    request: Option<RequestPolicy>,
    response: Option<ResponsePolicy>,
    /// `nondeterministic_output_order`: the parts' arrays may be concatenated (KEYS).
    any_order: bool,
}

fn policies(call: Resolved) -> &'static Policies {
    static TABLE: OnceLock<Vec<Policies>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        all_specs()
            .map(|spec| Policies {
                request: spec.request_policy(),
                response: spec.response_policy(),
                any_order: spec.tips().contains(&"nondeterministic_output_order"),
            })
            .collect()
    });
    &table[call.id()]
}

/// Whether this call waits on the node: blocking commands, except XREAD/XREADGROUP without
/// BLOCK (they answer at once, like any read).
fn blocks(cmd: Cmd, spec: &CommandSpec, args: &[Bytes]) -> bool {
    if !spec.has(flags::BLOCKING) {
        return false;
    }
    match cmd {
        Cmd::Xread | Cmd::Xreadgroup => {
            let streams = args
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"streams"))
                .unwrap_or(args.len());
            args[..streams]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(b"block"))
        }
        _ => true,
    }
}

/// A command whose keys must share a node; keyless ones go to a fixed node (the first live
/// one), so scripts without keys always find the same script cache.
fn keyed(routing: &Routing, cmd: Cmd, spec: &CommandSpec, args: &[Bytes]) -> Plan {
    let reload = match cmd {
        Cmd::Evalsha | Cmd::EvalshaRo => Reload::Script(args[1].clone()),
        Cmd::Fcall | Cmd::FcallRo => Reload::Functions,
        _ => Reload::None,
    };
    // The common case (GET, SET, HSET…): one key at 1, no options naming more.
    let simple = spec.first_key == 1
        && spec.last_key == 1
        && spec.subcommands.is_empty()
        && !spec.has(flags::MOVABLE_KEYS);
    if simple {
        let key = &args[1];
        let action = match routing.route(key) {
            Ok(node) => Action::Forward { node, reload },
            Err(e) => Action::Error(e),
        };
        return Plan {
            action,
            keys: Keys::One(key.clone()),
            write: spec.is_write(),
        };
    }
    let flagged = cmd.key_flags(args);
    // Scripts are not flagged write, but their keys are RW (key specs say so).
    let write = spec.is_write()
        || flagged
            .iter()
            .any(|(_, f)| f & (key_flags::INSERT | key_flags::UPDATE | key_flags::DELETE) != 0);
    let keys: Vec<Bytes> = flagged.iter().map(|&(i, _)| args[i].clone()).collect();
    if keys.is_empty() {
        return match routing.live_nodes().next() {
            Some(node) => plan_of(Action::Forward { node, reload }),
            None => error(ProxyError::new(ErrorKind::NoNode)),
        };
    }
    // Scripts and streams get Redis Cluster's exact text: their client libraries match it.
    let exact = matches!(spec.group, "scripting" | "stream");
    let action = match same_node(routing, &keys, exact) {
        Ok(node) => Action::Forward { node, reload },
        Err(e) => Action::Error(e),
    };
    Plan {
        action,
        keys: Keys::Many(keys),
        write,
    }
}

/// The node every key lives on.
///
/// # Errors
/// CROSSSLOT when they live on different nodes; the routing error of an unavailable node.
pub fn same_node(routing: &Routing, keys: &[Bytes], exact: bool) -> Result<usize, ProxyError> {
    let mut node = None;
    for key in keys {
        let n = routing.route(key)?;
        match node {
            None => node = Some(n),
            Some(m) if m != n => return Err(ProxyError::cross_slot(exact)),
            Some(_) => {}
        }
    }
    node.ok_or_else(|| ProxyError::client("ERR no key to route by"))
}

/// request_policy:multi_shard: the keys (each followed by its values, as the key spec's step
/// says) grouped per node in first-seen order; whole when one node holds them all.
fn split(routing: &Routing, spec: &CommandSpec, args: &[Bytes], merge: Merge) -> Plan {
    let per_key = match spec.key_specs().first().map(|s| s.find) {
        Some(Find::Range(_, step, _)) if step > 0 => step as usize,
        _ => 1,
    };
    if !(args.len() - 1).is_multiple_of(per_key) {
        return error(ProxyError::client(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    let keys: Vec<Bytes> = args[1..].iter().step_by(per_key).cloned().collect();
    let write = spec.is_write();
    let mut parts: Vec<Part> = Vec::new();
    for (position, group) in args[1..].chunks(per_key).enumerate() {
        let node = match routing.route(&group[0]) {
            Ok(n) => n,
            Err(e) => {
                return Plan {
                    action: Action::Error(e),
                    keys: Keys::Many(keys),
                    write,
                }
            }
        };
        let part = match parts.iter().position(|p| p.node == node) {
            Some(i) => &mut parts[i],
            None => {
                parts.push(Part {
                    node,
                    args: vec![args[0].clone()],
                    positions: Vec::new(),
                });
                parts.last_mut().expect("pushed")
            }
        };
        part.args.extend_from_slice(group);
        part.positions.push(position);
    }
    let action = if parts.len() == 1 {
        Action::Forward {
            node: parts[0].node,
            reload: Reload::None,
        }
    } else {
        let merge = match merge {
            Merge::Values { .. } => Merge::Values { total: keys.len() },
            other => other,
        };
        Action::Split { parts, merge }
    };
    Plan {
        action,
        keys: Keys::Many(keys),
        write,
    }
}

/// SCAN with a cursor that carries the member index in its low bits.
fn scan(routing: &Routing, args: &[Bytes]) -> Plan {
    let Some(cursor) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
    else {
        return error(ProxyError::client("ERR invalid cursor"));
    };
    let members = routing.live.clone();
    let mut node = if cursor == 0 {
        0
    } else {
        (cursor % SCAN_NODES) as usize
    };
    // Skip members that are out (their keys are served elsewhere meanwhile).
    while node < members.len() && !members[node] {
        node += 1;
    }
    if node >= members.len() {
        return plan_of(Action::Reply(crate::merge::scan_reply(b"0", &[])));
    }
    plan_of(Action::Scan {
        node,
        cursor: cursor / SCAN_NODES,
        members,
    })
}

/// Whether a batch holds a command that may wait on its node (BLPOP, XREAD BLOCK, WAIT...).
pub fn may_block(requests: &[Vec<Bytes>]) -> bool {
    requests.iter().any(|r| {
        r.first()
            .and_then(|name| Cmd::lookup(name))
            .is_some_and(|c| c.spec().has(cache_protocol::command::flags::BLOCKING))
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
