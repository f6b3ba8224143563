//! One NOAUTH / ACL matrix against both binaries: every class of command (reads, writes,
//! dangerous server commands, connection commands, the node's CACHE and CLUSTER commands, the
//! proxy's PROXY command) × no login, a restricted user and the admin, over RESP2 and RESP3.
//! Node and proxy share one admission path, so the same cell must give the same verdict on
//! both, except where a command belongs to one binary only (then the other does not know it,
//! whoever asks).

mod common;

use common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// `-NOAUTH`
    NoAuth,
    /// `-NOPERM`
    NoPerm,
    /// `-ERR unknown command` / `unknown subcommand`: this binary does not serve it.
    Unknown,
    /// Anything else: admission let it through (the command's own reply, error or not).
    Ran,
}

use Verdict::*;

fn verdict(reply: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(reply);
    if text.starts_with("-NOAUTH") {
        NoAuth
    } else if text.starts_with("-NOPERM") {
        NoPerm
    } else if text.starts_with("-ERR unknown command")
        || text.starts_with("-ERR unknown subcommand")
    {
        Unknown
    } else {
        Ran
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Served {
    Both,
    NodeOnly,
    ProxyOnly,
}

/// (command, who serves it, verdict for the restricted user `app`). Without a login every
/// served command but AUTH/HELLO is NOAUTH; the admin runs everything served.
const MATRIX: &[(&str, Served, Verdict)] = &[
    ("GET app:1", Served::Both, Ran),
    ("SET app:1 v", Served::Both, Ran),
    ("GET other", Served::Both, NoPerm),
    ("MGET app:1 other", Served::Both, NoPerm),
    ("DEL app:gone", Served::Both, Ran),
    ("PING", Served::Both, NoPerm),
    ("FLUSHALL", Served::Both, NoPerm),
    ("CONFIG GET port", Served::Both, NoPerm),
    ("KEYS app:*", Served::Both, NoPerm),
    ("CLIENT ID", Served::Both, NoPerm),
    ("ACL WHOAMI", Served::Both, NoPerm),
    ("CLUSTER KEYSLOT a", Served::Both, NoPerm),
    ("CLUSTER DROPSLOTS 16383 16383", Served::NodeOnly, NoPerm),
    ("CACHE FORGET app:nothing", Served::NodeOnly, NoPerm),
    ("CACHE INVALIDATE app:nothing*", Served::NodeOnly, NoPerm),
    ("PROXY NODES", Served::ProxyOnly, NoPerm),
    ("PROXY ADD 127.0.0.1:1", Served::ProxyOnly, NoPerm),
    ("PROXY REMOVE 127.0.0.1:1", Served::ProxyOnly, NoPerm),
    ("PROXY INVALIDATE app:nothing*", Served::ProxyOnly, NoPerm),
];

const USERS: &[&str] = &[
    "--requirepass",
    "admin-pw",
    "--user",
    "app on >app-pw ~app:* +@read +@write -@dangerous",
];

#[derive(Clone, Copy, Debug)]
enum Login {
    None,
    App,
    Admin,
}

fn connect(server: &NodeProcess, login: Login, resp3: bool) -> RawConn {
    let mut c = server.raw();
    let (user, pass) = match login {
        Login::None => return c,
        Login::App => ("app", "app-pw"),
        Login::Admin => ("default", "admin-pw"),
    };
    let reply = if resp3 {
        c.cmd_str(&["HELLO", "3", "AUTH", user, pass])
    } else {
        c.cmd_str(&["AUTH", user, pass])
    };
    assert!(
        !reply.starts_with(b"-"),
        "{login:?}: {}",
        String::from_utf8_lossy(&reply)
    );
    c
}

fn expected(served_here: bool, login: Login, app: Verdict) -> Verdict {
    if !served_here {
        return Unknown;
    }
    match login {
        Login::None => NoAuth,
        Login::App => app,
        Login::Admin => Ran,
    }
}

fn run_matrix(name: &str, server: &NodeProcess, is_proxy: bool) {
    for login in [Login::None, Login::App, Login::Admin] {
        // Without a login HELLO 3 is refused, so that row is RESP2 only.
        let protocols: &[bool] = match login {
            Login::None => &[false],
            _ => &[false, true],
        };
        for &resp3 in protocols {
            let mut c = connect(server, login, resp3);
            for &(command, served, app) in MATRIX {
                let served_here = match served {
                    Served::Both => true,
                    Served::NodeOnly => !is_proxy,
                    Served::ProxyOnly => is_proxy,
                };
                let words: Vec<&str> = command.split(' ').collect();
                let reply = c.cmd_str(&words);
                assert_eq!(
                    verdict(&reply),
                    expected(served_here, login, app),
                    "{name}, {login:?}, resp3={resp3}: {command} -> {}",
                    String::from_utf8_lossy(&reply)
                );
            }
        }
    }
}

#[test]
fn node_and_proxy_admit_alike() {
    let alone = node(USERS);
    run_matrix("node", &alone, false);

    let backend = node(&["--requirepass", "node-pw"]);
    let backend_addr = backend.addr.to_string();
    let mut args = vec!["--node", &backend_addr, "--node-password", "node-pw"];
    args.extend_from_slice(USERS);
    let proxy = proxy(&args);
    run_matrix("proxy", &proxy, true);
    // Nothing the matrix refused changed the ring: PROXY ADD without a login was the hole.
    let mut admin = connect(&proxy, Login::Admin, false);
    let nodes = String::from_utf8_lossy(&admin.cmd_str(&["PROXY", "NODES"])).into_owned();
    assert!(
        nodes.contains(&backend_addr) && !nodes.contains("127.0.0.1:1 "),
        "{nodes}"
    );
}
