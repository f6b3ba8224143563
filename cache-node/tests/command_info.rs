//! `COMMAND INFO` reports Redis 7.0.15's key specs and command tips: for every command (and
//! subcommand) of our table that Redis knows, both servers give the same tips and key specs.
mod common;

use cache_protocol::command::{all_specs, Role};
use common::{node, reference_redis};

/// Element 7 (tips) and 8 (key specs) of a `COMMAND INFO name` reply, as redis-rs values.
fn tips_and_specs(
    conn: &mut redis::Connection,
    name: &str,
) -> Option<(redis::Value, redis::Value)> {
    let reply: Vec<redis::Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(name)
        .query(conn)
        .ok()?;
    match reply.into_iter().next()? {
        redis::Value::Array(fields) if fields.len() == 10 => {
            let mut fields = fields.into_iter().skip(7);
            Some((fields.next()?, fields.next()?))
        }
        _ => None,
    }
}

#[test]
fn key_specs_and_tips_match_redis() {
    let Some(addr) = reference_redis("command_info::key_specs_and_tips_match_redis") else {
        return;
    };
    let theirs = redis::Client::open(format!("redis://{addr}/")).expect("reference url");
    let mut theirs = theirs.get_connection().expect("reference Redis");
    let ours = node(&[]);
    let mut ours = ours.client();
    let mut compared = 0;
    for spec in all_specs().filter(|s| Role::Node.serves(s)) {
        let Some(expected) = tips_and_specs(&mut theirs, spec.name) else {
            continue; // not a Redis 7.0 command
        };
        let got = tips_and_specs(&mut ours, spec.name).expect("our COMMAND INFO");
        assert_eq!(
            got, expected,
            "COMMAND INFO {}: tips and key specs",
            spec.name
        );
        compared += 1;
    }
    assert!(compared > 200, "only {compared} commands compared");
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS answer as Redis: the keys of each call with their
/// key-spec flags (argument-dependent ones resolved), and Redis's errors.
#[test]
fn getkeys_and_flags_match_redis() {
    let Some(addr) = reference_redis("command_info::getkeys_and_flags_match_redis") else {
        return;
    };
    let mut theirs = common::RawConn::connect(&addr);
    let ours = node(&[]);
    let mut ours = ours.raw();
    let calls = [
        "set k v",
        "set k v GET",
        "setnx k v",
        "mset a 1 b 2",
        "msetnx a 1 b 2",
        "lmove a b left right",
        "sort s store d",
        "sort_ro s",
        "rename a b",
        "copy a b",
        "del a b",
        "exists a b",
        "getdel k",
        "eval body 2 a b x",
        "eval body 0",
        "fcall f 1 a",
        "xread count 1 streams a b 0 0",
        "xreadgroup group g c streams a >",
        "georadius g 0 0 1 km store d",
        "bitfield k get u8 0",
        "bitfield k set u8 0 1",
        "zunionstore d 2 a b",
        "zinter 2 a b",
        "lmpop 2 a b left",
        "blpop a b 0",
        "object encoding k",
        "memory usage k",
        "xgroup create k g $",
        "pfmerge d a b",
        "bitop and d a b",
        "smove a b m",
        "incr k",
        "ping",
        "get",
        "nosuchcommand k",
    ];
    for line in calls {
        for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
            let mut args: Vec<&[u8]> = vec![b"COMMAND", sub.as_bytes()];
            args.extend(line.split(' ').map(str::as_bytes));
            let (a, b) = (ours.cmd(&args), theirs.cmd(&args));
            assert_eq!(
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b),
                "COMMAND {sub} {line}"
            );
        }
    }
}
