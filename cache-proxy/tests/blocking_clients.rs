//! A client that leaves while its blocking pop waits: Redis frees it at once (it reads the
//! EOF), so a later push stays in the list for the next consumer. Job queues depend on it —
//! Celery and rq workers wait in BRPOP/BLMOVE, BullMQ's in BZPOPMIN, and ioredis closes a
//! blocked connection with a half-close (`disconnect()` waits for the server's FIN).
//!
//! Found by the BullMQ test through the proxy: each closed Worker took 2 s more to close, and
//! an element pushed after its BLPOP's client had gone was popped for nobody.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::scripts::Target;
use common::*;

const BLPOP_10S: &[u8] = b"*3\r\n$5\r\nBLPOP\r\n$4\r\njobs\r\n$2\r\n10\r\n";

/// Blocked clients over every node behind the target (INFO `blocked_clients`).
fn blocked(target: &Target) -> i64 {
    let nodes: Vec<&NodeProcess> = match target {
        Target::Node(n) => vec![n],
        Target::Proxy(c) => c.nodes.iter().collect(),
    };
    nodes
        .iter()
        .map(|n| {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut n.client())
                .expect("INFO clients");
            info.lines()
                .find_map(|l| l.strip_prefix("blocked_clients:"))
                .and_then(|v| v.trim().parse::<i64>().ok())
                .expect("blocked_clients in INFO")
        })
        .sum()
}

/// Sends BLPOP and waits until the server has it blocked.
fn blocked_pop(target: &Target) -> TcpStream {
    let mut conn = TcpStream::connect(target.addr()).expect("connect");
    conn.write_all(BLPOP_10S).expect("send BLPOP");
    assert!(
        eventually(Duration::from_secs(5), || blocked(target) == 1),
        "{}: the BLPOP never blocked",
        target.name()
    );
    conn
}

fn half_close_ends_blocked_client(target: Target) {
    let mut conn = blocked_pop(&target);
    let started = Instant::now();
    conn.shutdown(Shutdown::Write).expect("half-close");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut reply = Vec::new();
    let read = conn.read_to_end(&mut reply);
    assert!(
        read.is_ok() && reply.is_empty() && started.elapsed() < Duration::from_secs(2),
        "{}: after the client's FIN the server should close at once without a reply; got \
         {read:?} {:?} after {:?}",
        target.name(),
        String::from_utf8_lossy(&reply),
        started.elapsed()
    );
}

fn push_after_client_left_is_kept(target: Target) {
    drop(blocked_pop(&target));
    // The leaving client's wait ends on the server (on every node, through the proxy).
    let freed = eventually(Duration::from_secs(3), || blocked(&target) == 0);
    let mut con = redis::Client::open(target.url(false))
        .expect("client")
        .get_connection()
        .expect("connect");
    let _: i64 = redis::cmd("LPUSH")
        .arg("jobs")
        .arg("job-1")
        .query(&mut con)
        .expect("LPUSH");
    let next: Option<String> = redis::cmd("LPOP")
        .arg("jobs")
        .query(&mut con)
        .expect("LPOP");
    assert_eq!(
        (freed, next.as_deref()),
        (true, Some("job-1")),
        "{}: a push after the blocked client left must wait for the next consumer",
        target.name()
    );
}

#[test]
fn half_close_ends_blocked_client_on_node() {
    half_close_ends_blocked_client(Target::node());
}

#[test]
fn half_close_ends_blocked_client_through_proxy() {
    half_close_ends_blocked_client(Target::proxy());
}

#[test]
fn push_after_client_left_is_kept_on_node() {
    push_after_client_left_is_kept(Target::node());
}

#[test]
fn push_after_client_left_is_kept_through_proxy() {
    push_after_client_left_is_kept(Target::proxy());
}
