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
