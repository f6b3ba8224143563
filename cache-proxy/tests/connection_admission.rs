//! Connection admission on the proxy, the layer it shares with cache-node
//! (`cache_net::admission`): protected mode refuses non-loopback clients while the default
//! user has no password, `maxclients` refuses the connection over the limit, and a place is
//! freed however a connection ends.
//!
//! ```text
//!  test ──spawn──► cache-node ◄── cache-proxy (--bind 0.0.0.0)  ◄── raw TCP from loopback
//!                                                               ◄── raw TCP from this host's LAN address
//! ```

mod common;

use std::time::Duration;

use cache_testkit::local_address;
use common::{eventually, node, proxy_for, RawConn};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn info_field(conn: &mut RawConn, section: &str, field: &str) -> u64 {
    let info = text(&conn.cmd_str(&["INFO", section]));
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {info}"))
}

#[test]
fn protected_mode_refuses_remote_clients_of_a_proxy_without_a_password() {
    let Some(ip) = local_address() else {
        eprintln!("SKIPPED protected mode: this machine has no non-loopback address");
        return;
    };
    let n = node(&[]);
    let open = proxy_for(std::slice::from_ref(&n), &["--bind", "0.0.0.0"]);
    let remote = format!("{ip}:{}", open.addr.port());
    let mut c = RawConn::connect(&remote);
    c.send(&RawConn::encode(&[b"PING"]));
    let reply = text(&c.read_to_close());
    assert!(
        reply.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{reply}"
    );
    let mut local = RawConn::connect(&format!("127.0.0.1:{}", open.addr.port()));
    assert_eq!(text(&local.cmd_str(&["PING"])), "+PONG\r\n");
    assert_eq!(info_field(&mut local, "stats", "rejected_connections"), 1);

    // With a password on the default user, or protected mode off, remote clients get in.
    let locked = proxy_for(
        std::slice::from_ref(&n),
        &["--bind", "0.0.0.0", "--requirepass", "pw"],
    );
    let mut c = RawConn::connect(&format!("{ip}:{}", locked.addr.port()));
    assert_eq!(text(&c.cmd_str(&["AUTH", "pw"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["PING"])), "+PONG\r\n");
    let off = proxy_for(
        std::slice::from_ref(&n),
        &["--bind", "0.0.0.0", "--protected-mode", "no"],
    );
    let mut c = RawConn::connect(&format!("{ip}:{}", off.addr.port()));
    assert_eq!(text(&c.cmd_str(&["PING"])), "+PONG\r\n");
}

#[test]
fn proxy_maxclients_refuses_over_the_limit_and_frees_places() {
    let n = node(&[]);
    let p = proxy_for(std::slice::from_ref(&n), &["--maxclients", "2"]);
    let addr = p.addr.to_string();
    let mut admin = RawConn::connect(&addr);
    assert_eq!(text(&admin.cmd_str(&["PING"])), "+PONG\r\n");
    let mut second = RawConn::connect(&addr);
    assert_eq!(text(&second.cmd_str(&["PING"])), "+PONG\r\n");

    let mut over = RawConn::connect(&addr);
    over.send(&RawConn::encode(&[b"PING"]));
    assert_eq!(
        text(&over.read_to_close()),
        "-ERR max number of clients reached\r\n"
    );
    assert_eq!(info_field(&mut admin, "clients", "connected_clients"), 2);
    assert_eq!(info_field(&mut admin, "stats", "rejected_connections"), 1);

    // A client that leaves mid-request (a half-sent frame) frees its place too.
    second.send(b"*2\r\n$3\r\nGET\r\n$10\r\nabc");
    drop(second);
    assert!(
        eventually(Duration::from_secs(5), || {
            info_field(&mut admin, "clients", "connected_clients") == 1
        }),
        "the closed connection still counts"
    );
    let mut again = RawConn::connect(&addr);
    assert_eq!(text(&again.cmd_str(&["PING"])), "+PONG\r\n");
    assert_eq!(
        info_field(&mut admin, "stats", "total_connections_received"),
        4
    );
}
