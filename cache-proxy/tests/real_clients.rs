//! Real clients against a cache-node and against a cache-proxy in front of three cache-nodes:
//! the `redis` crate (sync under RESP2 and RESP3, async on tokio), and the scripts under
//! `tests/clients/` — redis-py, ioredis, redis-cli and redis-benchmark — each given the
//! address to use.
//!
//! ```text
//!  test ──spawn──► cache-node ×1                     ◄── client script / redis crate
//!       ──spawn──► cache-node ×3 ◄── cache-proxy     ◄── client script / redis crate
//! ```
//!
//! The scripts run as `common::scripts` says (a skip when a runtime is missing, a time
//! limit); their output is printed when a check fails. Frameworks (BullMQ, rq, Celery…) are
//! in `frameworks.rs`.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::scripts::{run_script, Target};
use redis::{Commands, RedisResult};

#[test]
fn redis_py_through_node() {
    run_script(
        "python3",
        &["tests/clients/redis_py_app.py"],
        &Target::node(),
    );
}

#[test]
fn redis_py_through_proxy() {
    run_script(
        "python3",
        &["tests/clients/redis_py_app.py"],
        &Target::proxy(),
    );
}

/// redis-py's `RedisCluster` given the proxy's address: CLUSTER SLOTS lists the proxy as the
/// one node owning every slot, so the cluster client works unchanged through it.
#[test]
fn redis_py_cluster_client_through_proxy() {
    run_script(
        "python3",
        &["tests/clients/redis_py_cluster.py"],
        &Target::proxy(),
    );
}

#[test]
fn ioredis_through_node() {
    run_script("node", &["tests/clients/ioredis_app.js"], &Target::node());
}

#[test]
fn ioredis_through_proxy() {
    run_script("node", &["tests/clients/ioredis_app.js"], &Target::proxy());
}

#[test]
fn redis_cli_and_benchmark_through_node() {
    run_script(
        "bash",
        &["tests/clients/redis_cli_smoke.sh"],
        &Target::node(),
    );
}

#[test]
fn redis_cli_and_benchmark_through_proxy() {
    run_script(
        "bash",
        &["tests/clients/redis_cli_smoke.sh"],
        &Target::proxy(),
    );
}

/// Typical application code on one synchronous `redis` crate connection; every value is read
/// back. Multi-key commands keep their keys in one `{hash tag}` so the proxy can run them.
fn sync_app(url: &str, run: &str, resp3: bool) -> RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_connection()?;
    let p = format!("rs:{run}:");

    // Strings, counters, expiry.
    let _: () = con.set(format!("{p}s"), "v1")?;
    assert_eq!(
        con.get::<_, Option<String>>(format!("{p}s"))?,
        Some("v1".into())
    );
    assert_eq!(con.get::<_, Option<String>>(format!("{p}none"))?, None);
    assert_eq!(con.incr::<_, _, i64>(format!("{p}n"), 5)?, 5);
    let _: () = con.set_ex(format!("{p}e"), "x", 100)?;
    let ttl: i64 = con.ttl(format!("{p}e"))?;
    assert!((90..=100).contains(&ttl), "ttl {ttl}");
    let _: () = redis::cmd("SET")
        .arg(format!("{p}short"))
        .arg("x")
        .arg("PX")
        .arg(100)
        .query(&mut con)?;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(con.get::<_, Option<String>>(format!("{p}short"))?, None);

    // Keys spread over the nodes: MSET/MGET/DEL split and merged by the proxy.
    let keys: Vec<String> = (0..30).map(|i| format!("{p}spread{i}")).collect();
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), k.as_str())).collect();
    let _: () = con.mset(&pairs)?;
    assert_eq!(con.mget::<_, Vec<String>>(&keys)?, keys);
    assert_eq!(con.del::<_, i64>(&keys)?, 30);

    // Hashes, lists, sets, sorted sets.
    let h = format!("{p}user");
    let _: () = con.hset_multiple(&h, &[("name", "ada"), ("lang", "rust")])?;
    let all: HashMap<String, String> = con.hgetall(&h)?;
    assert_eq!(all.len(), 2);
    assert_eq!(all["name"], "ada");
    assert_eq!(con.hincr::<_, _, _, i64>(&h, "visits", 3)?, 3);
    let _: () = con.rpush(format!("{p}l"), &["a", "b", "c"])?;
    assert_eq!(
        con.lrange::<_, Vec<String>>(format!("{p}l"), 0, -1)?,
        ["a", "b", "c"]
    );
    let _: () = con.sadd(format!("{p}{{s}}1"), &["x", "y"])?;
    let _: () = con.sadd(format!("{p}{{s}}2"), &["y", "z"])?;
    let inter: HashSet<String> = con.sinter(&[format!("{p}{{s}}1"), format!("{p}{{s}}2")])?;
    assert_eq!(inter, HashSet::from(["y".to_string()]));
    let _: () = con.zadd_multiple(format!("{p}z"), &[(1.0, "a"), (2.5, "b")])?;
    let ranked: Vec<(String, f64)> = con.zrange_withscores(format!("{p}z"), 0, -1)?;
    assert_eq!(ranked, [("a".to_string(), 1.0), ("b".to_string(), 2.5)]);

    // A pipeline, and a MULTI/EXEC pipeline on one hash tag.
    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.set(format!("{p}pipe{i}"), i).ignore();
    }
    for i in 0..100 {
        pipe.get(format!("{p}pipe{i}"));
    }
    let values: Vec<i64> = pipe.query(&mut con)?;
    assert_eq!(values, (0..100).collect::<Vec<i64>>());
    let (a, b): (i64, Vec<String>) = redis::pipe()
        .atomic()
        .incr(format!("{p}{{tx}}a"), 2)
        .rpush(format!("{p}{{tx}}l"), "x")
        .ignore()
        .lrange(format!("{p}{{tx}}l"), 0, -1)
        .query(&mut con)?;
    assert_eq!((a, b), (2, vec!["x".to_string()]));

    // WATCH with the crate's optimistic retry loop; another client interferes once.
    let key = format!("{p}{{w}}balance");
    let _: () = con.set(&key, 100)?;
    let mut other = client.get_connection()?;
    let mut attempts = 0;
    let (new,): (i64,) = redis::transaction(&mut con, &[&key], |con, pipe| {
        let current: i64 = con.get(&key)?;
        attempts += 1;
        if attempts == 1 {
            let _: () = other.incr(&key, 5)?;
        }
        pipe.set(&key, current - 30).ignore().get(&key).query(con)
    })?;
    assert_eq!((new, attempts), (75, 2));

    // SCAN with MATCH visits every key once.
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.set(format!("{p}scan:{i}"), 1).ignore();
    }
    let _: () = pipe.query(&mut con)?;
    let found: Vec<String> = con.scan_match(format!("{p}scan:*"))?.collect();
    assert_eq!(found.len(), 200);
    assert_eq!(found.iter().collect::<HashSet<_>>().len(), 200);

    // A 1 MB value.
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let _: () = con.set(format!("{p}big"), &big)?;
    assert_eq!(con.get::<_, Vec<u8>>(format!("{p}big"))?, big);

    // Pub/sub: a subscriber connection and a publisher.
    let mut sub_con = client.get_connection()?;
    let mut sub = sub_con.as_pubsub();
    sub.subscribe(format!("{p}news"))?;
    sub.set_read_timeout(Some(Duration::from_secs(5)))?;
    let receivers = publish_to_one(&mut con, &format!("{p}news"), "hello", resp3)?;
    assert_eq!(
        receivers, 1,
        "PUBLISH {p}news hello: subscribers reached ({url})"
    );
    let msg = sub.get_message()?;
    assert_eq!(msg.get_channel_name(), format!("{p}news"));
    assert_eq!(msg.get_payload::<String>()?, "hello");
    Ok(())
}

/// PUBLISH expecting exactly one subscriber. Under RESP3, redis-rs 0.27's sync
/// `PubSub::subscribe` sends SUBSCRIBE without waiting for its confirmation
/// (`cache_messages_until_received_response` sets `no_response`), so a PUBLISH right after it
/// can overtake the subscription on any server; there, retry briefly. Under RESP2 the
/// confirmation was read, so the first PUBLISH must reach the subscriber.
fn publish_to_one(
    con: &mut redis::Connection,
    channel: &str,
    message: &str,
    resp3: bool,
) -> RedisResult<i64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = con.publish(channel, message)?;
        if n != 0 || !resp3 || Instant::now() > deadline {
            return Ok(n);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Redis's guarantee: once SUBSCRIBE is confirmed, a PUBLISH from another client reaches the
/// subscriber, on a node and through the proxy (which waits for the node's confirmation).
#[test]
fn subscription_confirmed_before_publish() {
    for target in [Target::node(), Target::proxy()] {
        let client = redis::Client::open(target.url(false)).expect("client");
        let mut publisher = client.get_connection().expect("connect");
        let mut missed = 0;
        for i in 0..50 {
            let mut con = client.get_connection().expect("connect");
            let mut sub = con.as_pubsub();
            sub.subscribe(format!("race{i}")).expect("subscribe");
            let n: i64 = publisher.publish(format!("race{i}"), "m").expect("publish");
            if n != 1 {
                missed += 1;
            }
        }
        assert_eq!(
            missed,
            0,
            "{}: confirmed subscriptions missed",
            target.name()
        );
    }
}

#[test]
fn redis_crate_sync_resp2_and_resp3() {
    for target in [Target::node(), Target::proxy()] {
        for resp3 in [false, true] {
            let url = target.url(resp3);
            if let Err(e) = sync_app(&url, &format!("resp3={resp3}"), resp3) {
                panic!(
                    "redis crate (sync) against the {} at {url}: {e}",
                    target.name()
                );
            }
        }
    }
}

/// Many tasks sharing one multiplexed connection, plus pipelines: the async client's way.
async fn async_app(url: &str, run: &str) -> RedisResult<()> {
    use redis::AsyncCommands;

    let client = redis::Client::open(url)?;
    let con = client.get_multiplexed_async_connection().await?;
    let p = format!("rsa:{run}:");
    let mut tasks = Vec::new();
    for t in 0..32 {
        let mut con = con.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let key = format!("{p}{t}:{i}");
                let _: () = con.set(&key, format!("{t}-{i}")).await?;
                let got: String = con.get(&key).await?;
                assert_eq!(got, format!("{t}-{i}"));
                let _: i64 = con.incr(format!("{p}counter"), 1).await?;
            }
            RedisResult::Ok(())
        }));
    }
    for task in tasks {
        task.await.expect("task")?;
    }
    let mut con = con;
    assert_eq!(con.get::<_, i64>(format!("{p}counter")).await?, 32 * 50);
    let (a, b): (Vec<String>, i64) = redis::pipe()
        .atomic()
        .set(format!("{p}{{tx}}k"), "v")
        .ignore()
        .mget(&[format!("{p}{{tx}}k"), format!("{p}{{tx}}none")])
        .del(format!("{p}{{tx}}k"))
        .query_async(&mut con)
        .await
        .map(|(v, d): (Vec<Option<String>>, i64)| (v.into_iter().flatten().collect(), d))?;
    assert_eq!((a, b), (vec!["v".to_string()], 1));
    let all: HashMap<String, i64> = {
        let _: () = con
            .hset_multiple(format!("{p}h"), &[("a", 1), ("b", 2)])
            .await?;
        con.hgetall(format!("{p}h")).await?
    };
    assert_eq!(all, HashMap::from([("a".into(), 1), ("b".into(), 2)]));
    Ok(())
}

#[test]
fn redis_crate_async_tokio() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for target in [Target::node(), Target::proxy()] {
        for resp3 in [false, true] {
            let url = target.url(resp3);
            if let Err(e) = runtime.block_on(async_app(&url, &format!("resp3={resp3}"))) {
                panic!(
                    "redis crate (async) against the {} at {url}: {e}",
                    target.name()
                );
            }
        }
    }
}
