//! A node's command path (decoder, batch loop, dispatch, every handler) on arbitrary input,
//! through `cache_node::testing::Session`: no request may panic, and whatever comes back must
//! be a sequence of complete, well-formed RESP replies (checked with the proxy's scanner).
#![no_main]

use bytes::{Bytes, BytesMut};
use cache_node::testing::Session;
use cache_node::Config;
use cache_protocol::{parse_i64, Decoder, ReplyScanner};
use libfuzzer_sys::fuzz_target;

mod common;

/// Requests the target does not run: they change the process (CONFIG SET `dir`, `logfile`, the
/// size limits that keep a reply small) or ask for unbounded work that Redis does just the same
/// (`SRANDMEMBER k -1000000000` answers a billion elements).
fn refused(args: &[Bytes]) -> bool {
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    if is(0, "config") && !is(1, "get") && !is(1, "help") {
        return true;
    }
    let big_count = |i: usize| {
        args.get(i)
            .and_then(|a| parse_i64(a))
            .is_some_and(|n| n.unsigned_abs() > 1000)
    };
    (is(0, "srandmember") || is(0, "hrandfield") || is(0, "zrandmember")) && big_count(2)
}

/// Redis's smallest allowed `proto-max-bulk-len` bounds SETRANGE/SETBIT/APPEND growth.
const CONFIG: &[(&str, &str)] = &[("proto-max-bulk-len", "1mb")];

fuzz_target!(|data: &[u8]| {
    // The node would run these too; the target only refuses inputs it cannot bound.
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::from(data);
    while let Ok(Some(args)) = decoder.decode(&mut buf) {
        if refused(&args) {
            return;
        }
    }
    let node_config = Config::default();
    for (name, value) in CONFIG {
        node_config
            .set_initial(name, value)
            .expect("valid fuzz config");
    }
    let mut session = Session::new(node_config);
    let mut replies = Vec::new();
    for chunk in common::chunks(data, 1024) {
        replies.extend_from_slice(&session.feed(chunk));
    }
    // Every byte written back belongs to one complete reply.
    let mut scanner = ReplyScanner::new();
    let mut at = 0;
    while at < replies.len() {
        match scanner.scan(&replies[at..]) {
            Ok(Some(n)) => at += n,
            Ok(None) => panic!(
                "truncated reply at byte {at}: {:?}",
                String::from_utf8_lossy(&replies[at..])
            ),
            Err(e) => panic!(
                "malformed reply at byte {at} ({e}): {:?}",
                String::from_utf8_lossy(&replies[at..])
            ),
        }
    }
});
