//! Ketama placement checked against twemproxy's: `data/ketama_golden.txt` records where a running
//! nutcracker put `golden_key(0..keys)` for several configurations (hash functions, weights,
//! server names, a hash tag, an ejected server). `ketama_golden.sh` records it afresh and runs
//! this test on the new table through `$KETAMA_GOLDEN`.

use cache_routing::{Distribution, HashTag, KeyHash, Router, TwemproxyServer};

/// The keys of the table. Keep in step with `golden_key` in ketama_golden.sh.
fn golden_key(i: usize) -> Vec<u8> {
    if i == 0 {
        return Vec::new(); // twemproxy dispatches hash 0 for an empty key
    }
    match i % 5 {
        0 => format!("key:{i}").into_bytes(),
        1 => format!("obj:{{{}}}:{i}", i % 97).into_bytes(),
        2 => {
            // Bytes >= 0x80: twemproxy widens signed chars.
            let mut k = vec![0x80 | (i * 7 % 128) as u8];
            k.extend_from_slice(format!("k{i}").as_bytes());
            k.push(0xff - (i % 64) as u8);
            k
        }
        // Every tail length of the 4- and 12-byte block hashes.
        3 => format!("{}:{i}", "L".repeat(i % 41)).into_bytes(),
        _ if i % 10 == 4 => format!("{{}}{i}").into_bytes(),
        _ => format!("x{{{i}").into_bytes(),
    }
}

struct Config {
    name: String,
    hash: KeyHash,
    hash_tag: Option<HashTag>,
    live: Vec<bool>,
    servers: Vec<TwemproxyServer>,
    placement: Vec<usize>,
}

fn parse(table: &str) -> (usize, Vec<Config>) {
    let mut keys = 0;
    let mut configs: Vec<Config> = Vec::new();
    for line in table
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (field, value) = line.split_once(' ').expect("'field value' lines");
        if field == "keys" {
            keys = value.parse().expect("key count");
            continue;
        }
        if field == "config" {
            configs.push(Config {
                name: value.to_owned(),
                hash: KeyHash::Fnv1a_64,
                hash_tag: None,
                live: Vec::new(),
                servers: Vec::new(),
                placement: Vec::new(),
            });
            continue;
        }
        let c = configs.last_mut().expect("a config line first");
        match field {
            "hash" => c.hash = KeyHash::parse(value).expect("known hash"),
            "hash_tag" if value == "-" => c.hash_tag = None,
            "hash_tag" => c.hash_tag = Some(HashTag::parse(value).expect("two characters")),
            "live" => c.live = value.bytes().map(|b| b == b'1').collect(),
            "server" => c
                .servers
                .push(TwemproxyServer::parse(value).expect("twemproxy server entry")),
            "placement" => {
                c.placement = value.bytes().map(|b| usize::from(b - b'0')).collect();
            }
            _ => panic!("unknown field {field}"),
        }
    }
    (keys, configs)
}

#[test]
fn ketama_matches_nutcracker() {
    let table = match std::env::var("KETAMA_GOLDEN") {
        Ok(path) => std::fs::read_to_string(&path).expect("readable $KETAMA_GOLDEN"),
        Err(_) => include_str!("data/ketama_golden.txt").to_owned(),
    };
    let (keys, configs) = parse(&table);
    assert!(
        keys > 0 && configs.len() >= 5,
        "a table with keys and configurations"
    );
    let mut failures = Vec::new();
    for c in &configs {
        assert_eq!(c.placement.len(), keys, "{}: one digit per key", c.name);
        assert_eq!(c.live.len(), c.servers.len(), "{}", c.name);
        let nodes: Vec<_> = c.servers.iter().map(|s| s.node.clone()).collect();
        let dist = Distribution::Ketama {
            hash: c.hash,
            hash_tag: c.hash_tag,
        };
        let router = Router::build(&dist, &nodes, &c.live, 1);
        let wrong: Vec<usize> = (0..keys)
            .filter(|&i| router.node_for_key(&golden_key(i)) != Some(c.placement[i]))
            .collect();
        if let Some(&first) = wrong.first() {
            failures.push(format!(
                "{}: {} of {keys} keys misplaced, first {:?}: nutcracker {}, router {:?}",
                c.name,
                wrong.len(),
                String::from_utf8_lossy(&golden_key(first)),
                c.placement[first],
                router.node_for_key(&golden_key(first)),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
