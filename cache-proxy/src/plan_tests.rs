//! The planner over every command family, on a three-node snapshot: no sockets.

use super::*;
use cache_protocol::command::{resolve_for, Role};

const NODES: &[&str] = &["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];

fn routing() -> Routing {
    Routing::for_test(NODES, &[true, true, true])
}

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn plan_line(routing: &Routing, view: &View, line: &str) -> Plan {
    let args = args(line);
    let (cmd, sub) = resolve_for(Role::Proxy, &args).expect("a valid request");
    plan(routing, view, Resolved { cmd, sub }, &args)
}

fn planned(line: &str) -> Plan {
    plan_line(&routing(), &View::default(), line)
}

/// Two keys that live on different nodes, and one that lives with the first.
fn keys_apart(r: &Routing) -> (String, String, String) {
    let names: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let a = names[0].clone();
    let home = r.route(a.as_bytes()).unwrap();
    let b = names
        .iter()
        .find(|k| r.route(k.as_bytes()).unwrap() != home)
        .unwrap()
        .clone();
    let c = names[1..]
        .iter()
        .find(|k| r.route(k.as_bytes()).unwrap() == home)
        .unwrap()
        .clone();
    (a, b, c)
}

fn error_text(plan: &Plan) -> String {
    match &plan.action {
        Action::Error(e) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn answered_here() {
    assert!(matches!(planned("PING").action, Action::Reply(ref b) if &b[..] == b"+PONG\r\n"));
    assert!(matches!(planned("ECHO hi").action, Action::Reply(ref b) if &b[..] == b"$2\r\nhi\r\n"));
    assert_eq!(
        error_text(&planned("PING x y z")),
        "ERR wrong number of arguments for 'ping' command"
    );
    assert!(matches!(planned("SELECT 0").action, Action::Reply(_)));
    assert_eq!(
        error_text(&planned("SELECT 1")),
        "ERR the proxy serves database 0 only"
    );
    for line in [
        "AUTH pw",
        "HELLO 3",
        "CLIENT SETNAME x",
        "MULTI",
        "QUIT",
        "ACL WHOAMI",
    ] {
        assert!(matches!(planned(line).action, Action::Local), "{line}");
    }
    assert_eq!(error_text(&planned("DISCARD")), "ERR DISCARD without MULTI");
    assert_eq!(
        error_text(&planned("SWAPDB 0 1")),
        "ERR 'swapdb' is not supported by the proxy"
    );
}

#[test]
fn one_key_goes_to_its_node() {
    let r = routing();
    let plan = plan_line(&r, &View::default(), "SET k v");
    let node = r.route(b"k").unwrap();
    assert!(matches!(plan.action, Action::Forward { node: n, reload: Reload::None } if n == node));
    assert!(plan.write);
    assert_eq!(plan.keys.as_slice(), &[Bytes::from_static(b"k")]);
    assert!(!plan_line(&r, &View::default(), "GET k").write);
}

#[test]
fn multi_key_commands_split_by_their_policy() {
    let r = routing();
    let (a, b, c) = keys_apart(&r);
    let plan = plan_line(&r, &View::default(), &format!("MGET {a} {b} {c}"));
    let Action::Split { parts, merge } = plan.action else {
        panic!("MGET over two nodes splits");
    };
    assert_eq!(merge, Merge::Values { total: 3 });
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].positions, vec![0, 2]);
    assert_eq!(parts[1].positions, vec![1]);
    assert_eq!(parts[0].args, args(&format!("MGET {a} {c}")));

    let plan = plan_line(&r, &View::default(), &format!("MSET {a} 1 {b} 2"));
    let Action::Split { parts, merge } = plan.action else {
        panic!("MSET splits");
    };
    assert_eq!(merge, Merge::AllSucceeded);
    assert_eq!(parts[1].args, args(&format!("MSET {b} 2")));
    assert!(plan.write);

    for name in ["DEL", "UNLINK", "EXISTS", "TOUCH"] {
        let plan = plan_line(&r, &View::default(), &format!("{name} {a} {b}"));
        assert!(
            matches!(
                plan.action,
                Action::Split {
                    merge: Merge::Sum,
                    ..
                }
            ),
            "{name}"
        );
    }
    // One node holds them all: the request goes whole.
    let plan = plan_line(&r, &View::default(), &format!("DEL {a} {c}"));
    assert!(matches!(plan.action, Action::Forward { .. }));
    // MSETNX is all-or-nothing: one node only.
    let plan = plan_line(&r, &View::default(), &format!("MSETNX {a} 1 {b} 2"));
    assert!(error_text(&plan).starts_with("CROSSSLOT"));
    assert_eq!(
        error_text(&plan_line(&r, &View::default(), "MSET a 1 b")),
        "ERR wrong number of arguments for 'mset' command"
    );
}

#[test]
fn cluster_wide_commands_fan_out_and_merge_by_their_tips() {
    let cases = [
        ("DBSIZE", Merge::Sum),
        ("FLUSHALL", Merge::AllSucceeded),
        ("FLUSHDB", Merge::AllSucceeded),
        ("KEYS *", Merge::Concat),
        ("SCRIPT EXISTS abc", Merge::And),
        ("SCRIPT LOAD return", Merge::AllSucceeded),
        ("SCRIPT FLUSH", Merge::AllSucceeded),
        ("SCRIPT KILL", Merge::OneSucceeded),
        ("FUNCTION LOAD code", Merge::AllSucceeded),
        ("FUNCTION DELETE lib", Merge::AllSucceeded),
        ("FUNCTION FLUSH", Merge::AllSucceeded),
    ];
    for (line, expected) in cases {
        let Action::FanOut {
            nodes,
            merge,
            stale_absent,
        } = planned(line).action
        else {
            panic!("{line} fans out");
        };
        assert_eq!(merge, expected, "{line}");
        assert_eq!(nodes, vec![0, 1, 2], "{line}");
        assert_eq!(stale_absent, line.starts_with("FLUSH"), "{line}");
    }
    // Only live nodes are asked.
    let r = Routing::for_test(NODES, &[true, false, true]);
    let Action::FanOut { nodes, .. } = plan_line(&r, &View::default(), "DBSIZE").action else {
        panic!("DBSIZE fans out");
    };
    assert_eq!(nodes, vec![0, 2]);
    // RANDOMKEY: any one node, spread by the view's pick.
    let plan = plan_line(
        &routing(),
        &View {
            pick: 4,
            ..View::default()
        },
        "RANDOMKEY",
    );
    assert!(matches!(plan.action, Action::Forward { node: 1, .. }));
    assert!(matches!(planned("INFO").action, Action::Info { ref nodes } if nodes.len() == 3));
}

#[test]
fn scan_walks_the_members() {
    assert!(matches!(
        planned("SCAN 0").action,
        Action::Scan {
            node: 0,
            cursor: 0,
            ..
        }
    ));
    // Member 2, node cursor 7.
    let cursor = 7 * SCAN_NODES + 2;
    assert!(matches!(
        planned(&format!("SCAN {cursor} COUNT 10")).action,
        Action::Scan {
            node: 2,
            cursor: 7,
            ..
        }
    ));
    // A member that is out is skipped.
    let r = Routing::for_test(NODES, &[true, false, true]);
    assert!(matches!(
        plan_line(&r, &View::default(), "SCAN 1").action,
        Action::Scan {
            node: 2,
            cursor: 0,
            ..
        }
    ));
    assert_eq!(error_text(&planned("SCAN x")), "ERR invalid cursor");
}

#[test]
fn scripts_go_to_their_keys_node() {
    let r = routing();
    let (a, b, c) = keys_apart(&r);
    let home = r.route(a.as_bytes()).unwrap();
    let plan = plan_line(&r, &View::default(), &format!("EVALSHA abc 2 {a} {c} arg"));
    assert!(
        matches!(plan.action, Action::Forward { node, reload: Reload::Script(ref sha) } if node == home && &sha[..] == b"abc")
    );
    assert!(plan.write, "a script's keys are RW");
    let plan = plan_line(&r, &View::default(), &format!("EVAL_RO body 1 {a}"));
    assert!(matches!(plan.action, Action::Forward { node, reload: Reload::None } if node == home));
    assert!(!plan.write);
    for line in [
        format!("EVAL body 2 {a} {b}"),
        format!("EVALSHA abc 2 {a} {b}"),
        format!("FCALL f 2 {a} {b}"),
        format!("FCALL_RO f 2 {a} {b}"),
    ] {
        assert_eq!(
            error_text(&plan_line(&r, &View::default(), &line)),
            "CROSSSLOT Keys in request don't hash to the same slot",
            "{line}"
        );
    }
    // Keyless: always the same node (the first live one).
    assert!(matches!(
        planned("EVAL body 0").action,
        Action::Forward { node: 0, .. }
    ));
    let r = Routing::for_test(NODES, &[false, true, true]);
    assert!(matches!(
        plan_line(&r, &View::default(), "FCALL f 0").action,
        Action::Forward {
            node: 1,
            reload: Reload::Functions
        }
    ));
    // Listing and dumping need one node's view.
    assert!(matches!(
        planned("FUNCTION LIST").action,
        Action::Forward { node: 0, .. }
    ));
}

#[test]
fn streams() {
    let r = routing();
    let (a, b, c) = keys_apart(&r);
    let home = r.route(a.as_bytes()).unwrap();
    for line in [
        format!("XADD {a} * f v"),
        format!("XLEN {a}"),
        format!("XACK {a} g 1-1"),
        format!("XGROUP CREATE {a} g $"),
        format!("XREAD COUNT 1 STREAMS {a} {c} 0 0"),
        format!("XREADGROUP GROUP g c STREAMS {a} >"),
    ] {
        let plan = plan_line(&r, &View::default(), &line);
        assert!(
            matches!(plan.action, Action::Forward { node, .. } if node == home),
            "{line}: {plan:?}"
        );
    }
    assert_eq!(
        error_text(&plan_line(
            &r,
            &View::default(),
            &format!("XREAD STREAMS {a} {b} 0 0")
        )),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    // BLOCK waits on a connection of its own.
    let plan = plan_line(
        &r,
        &View::default(),
        &format!("XREAD BLOCK 0 STREAMS {a} $"),
    );
    assert!(matches!(plan.action, Action::Alone(Alone::Blocking { node }) if node == home));
    let plan = plan_line(
        &r,
        &View::default(),
        &format!("XREADGROUP GROUP g c BLOCK 10 STREAMS {a} >"),
    );
    assert!(matches!(plan.action, Action::Alone(Alone::Blocking { .. })));
    assert!(plan.write);
}

#[test]
fn dedicated_connections() {
    let r = routing();
    let (a, b, _) = keys_apart(&r);
    assert!(matches!(
        plan_line(&r, &View::default(), &format!("BLPOP {a} 0")).action,
        Action::Alone(Alone::Blocking { .. })
    ));
    assert!(error_text(&plan_line(
        &r,
        &View::default(),
        &format!("BLPOP {a} {b} 0")
    ))
    .starts_with("CROSSSLOT"));
    for (line, alone) in [
        ("EXEC", Alone::Exec),
        ("WATCH k", Alone::Watch),
        ("UNWATCH", Alone::Unwatch),
        ("RESET", Alone::Reset),
        ("SUBSCRIBE c", Alone::Subscribe),
        ("PUNSUBSCRIBE", Alone::Subscribe),
        ("CLIENT TRACKING on", Alone::Tracking),
        ("PROXY NODES", Alone::Proxy),
    ] {
        assert!(
            matches!(planned(line).action, Action::Alone(a) if a == alone),
            "{line}"
        );
    }
    let in_multi = View {
        in_multi: true,
        ..View::default()
    };
    assert!(matches!(
        plan_line(&r, &in_multi, "DISCARD").action,
        Action::Alone(Alone::Discard)
    ));
}

#[test]
fn keys_on_many_nodes_and_absent_nodes() {
    let r = routing();
    let (a, b, _) = keys_apart(&r);
    // Store commands name their destination: one node for all.
    let plan = plan_line(&r, &View::default(), &format!("SUNIONSTORE {a} {b}"));
    assert!(error_text(&plan).contains("{hash tag}"));
    let plan = plan_line(&r, &View::default(), &format!("SORT {a} STORE {b}"));
    assert!(error_text(&plan).starts_with("CROSSSLOT"));
    assert!(plan.write);
    // PUBLISH goes to the channel's node.
    let plan = planned("PUBLISH chan msg");
    assert!(
        matches!(plan.action, Action::Forward { node, .. } if node == r.route(b"chan").unwrap())
    );
    // No node at all.
    let none = Routing::for_test(NODES, &[false, false, false]);
    assert_eq!(
        error_text(&plan_line(&none, &View::default(), "GET k")),
        "ERR no node is available"
    );
    assert_eq!(
        error_text(&plan_line(&none, &View::default(), "TIME")),
        "ERR no node is available"
    );
}

/// Every command and subcommand the proxy serves, at its arity (or one more argument for a
/// variadic one), plans without panicking, and every plan names only live members.
#[test]
fn every_command_plans() {
    let r = Routing::for_test(NODES, &[true, false, true]);
    for &cmd in Cmd::ALL {
        let spec = cmd.spec();
        if !Role::Proxy.serves(spec) {
            continue;
        }
        let mut calls: Vec<Vec<Bytes>> = Vec::new();
        let with_arity = |name: &str, arity: i32, prefix: &[&str]| {
            let n = arity.unsigned_abs() as usize + usize::from(arity < 0);
            let mut args: Vec<Bytes> = prefix
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect();
            if args.is_empty() {
                args.push(Bytes::copy_from_slice(name.as_bytes()));
            }
            while args.len() < n {
                args.push(Bytes::from(format!("k{}", args.len())));
            }
            args
        };
        if spec.subcommands.is_empty() {
            calls.push(with_arity(spec.name, spec.arity, &[]));
        } else {
            for sub in spec.subcommands.iter().filter(|s| Role::Proxy.serves(s)) {
                let (parent, child) = sub.name.split_once('|').expect("parent|child");
                calls.push(with_arity(sub.name, sub.arity, &[parent, child]));
            }
        }
        for args in calls {
            let Ok((cmd, sub)) = resolve_for(Role::Proxy, &args) else {
                continue; // a subcommand whose arity needs a shape we do not build
            };
            let plan = plan(&r, &View::default(), Resolved { cmd, sub }, &args);
            let nodes: Vec<usize> = match &plan.action {
                Action::Forward { node, .. } | Action::Scan { node, .. } => vec![*node],
                Action::Alone(Alone::Blocking { node }) => vec![*node],
                Action::Split { parts, .. } => parts.iter().map(|p| p.node).collect(),
                Action::FanOut { nodes, .. } | Action::Info { nodes } => nodes.clone(),
                _ => Vec::new(),
            };
            assert!(
                nodes.iter().all(|&n| r.live[n]),
                "{args:?} planned onto an absent node: {plan:?}"
            );
        }
    }
}

#[test]
fn config_speaks_for_every_node() {
    for (line, want) in [
        ("CONFIG SET hz 50", Merge::AllSucceeded),
        ("CONFIG RESETSTAT", Merge::AllSucceeded),
        ("CONFIG GET hz", Merge::Agree),
    ] {
        match planned(line).action {
            Action::FanOut { nodes, merge, .. } => {
                assert_eq!(nodes, vec![0, 1, 2], "{line}");
                assert_eq!(merge, want, "{line}");
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    assert!(matches!(
        planned("CONFIG HELP").action,
        Action::Forward { .. }
    ));
}
