//! End to end: the proxy's own ACL users (`user` lines, `requirepass` as its default user):
//! AUTH / HELLO AUTH, NOPERM on commands, keys and channels before anything is routed, the
//! ACL command managing the proxy's users, and a bad `user` line refused at start.

mod common;

use common::*;

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

#[test]
fn proxy_users_are_checked_before_routing() {
    let cluster = Cluster::start(&[
        "--requirepass",
        "admin-pw",
        "--user",
        "app on >app-pw ~app:* &app.* +@read +@write -@dangerous +publish",
    ]);
    let mut c = cluster.proxy.raw();
    assert_eq!(
        text(&c.cmd_str(&["GET", "app:1"])),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["AUTH", "app", "wrong"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["AUTH", "app", "app-pw"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["SET", "app:1", "v"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["GET", "app:1"])), "$1\r\nv\r\n");
    assert_eq!(
        text(&c.cmd_str(&["SET", "other", "v"])),
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["MGET", "app:1", "other"])),
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["FLUSHALL"])),
        "-NOPERM this user has no permissions to run the 'flushall' command\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["PUBLISH", "news", "m"])),
        "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["ACL", "WHOAMI"])),
        "-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n"
    );
    // Nothing refused reached a node: `other` exists nowhere.
    let holders = cluster.holders("other");
    assert!(holders.is_empty(), "{holders:?}");

    // The redis crate authenticates with user and password from the URL; HELLO 3 AUTH too.
    let url = format!("redis://app:app-pw@{}/", cluster.proxy.addr);
    let mut app = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .unwrap();
    let v: String = redis::cmd("GET").arg("app:1").query(&mut app).unwrap();
    assert_eq!(v, "v");
    let mut h = cluster.proxy.raw();
    let hello = text(&h.cmd_str(&["HELLO", "3", "AUTH", "app", "app-pw"]));
    assert!(hello.starts_with("%7\r\n"), "{hello}");

    // requirepass is the proxy's default user; the ACL command manages the proxy's users.
    let mut admin = cluster.proxy.raw();
    assert_eq!(text(&admin.cmd_str(&["AUTH", "admin-pw"])), "+OK\r\n");
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "WHOAMI"])),
        "$7\r\ndefault\r\n"
    );
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "USERS"])),
        "*2\r\n$3\r\napp\r\n$7\r\ndefault\r\n"
    );
    let list = text(&admin.cmd_str(&["ACL", "LIST"]));
    assert!(
        list.contains("user app on sanitize-payload #") && !list.contains("app-pw"),
        "{list}"
    );
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "SETUSER", "app", "-set"])),
        "+OK\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["SET", "app:1", "w"])),
        "-NOPERM this user has no permissions to run the 'set' command\r\n"
    );
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "DRYRUN", "app", "get", "zzz"])),
        "$52\r\nThis user has no permissions to access the 'zzz' key\r\n"
    );
    // Deleting the user closes its connections at their next command.
    assert_eq!(text(&admin.cmd_str(&["ACL", "DELUSER", "app"])), ":1\r\n");
    c.send(&RawConn::encode(&[b"GET", b"app:1"]));
    assert!(c.read_to_close().is_empty());
    let mut d = cluster.proxy.raw();
    assert_eq!(
        text(&d.cmd_str(&["AUTH", "app", "app-pw"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
}

#[test]
fn a_bad_user_line_stops_the_proxy() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cache-proxy"))
        .args(["--port", "0", "--user", "eve on <topsecret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("The password you are trying to remove"),
        "{stderr}"
    );
    assert!(!stderr.contains("topsecret"), "{stderr}");
}
