//! End to end: ACL users (rules, AUTH / HELLO, NOPERM on commands, keys and channels, ACL
//! LIST / GETUSER / DRYRUN / CAT / DELUSER), requirepass as the default user, users from the
//! command line and a TOML file, COMMAND INFO's categories, and protected mode; replies and
//! descriptions compared with the reference Redis (throwaway users with unique names).

mod common;

use std::collections::BTreeSet;

use cache_testkit::local_address;
use common::{node, reference_redis, RawConn};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// A unique user name for the reference Redis (several test runs may share it).
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("fc_{tag}_{}_{nanos}", std::process::id())
}

/// Deletes the reference's throwaway users however the test ends.
struct RefUsers {
    addr: String,
    names: Vec<String>,
}

impl Drop for RefUsers {
    fn drop(&mut self) {
        let mut conn = RawConn::connect(&self.addr);
        for name in &self.names {
            conn.cmd_str(&["ACL", "DELUSER", name]);
        }
    }
}

#[test]
fn users_from_the_command_line_get_noperm_on_commands_keys_and_channels() {
    let n = node(&[
        "--user",
        "alice on >secret ~cache:* &news.* +@read +set +publish +subscribe",
    ]);
    let url = format!("redis://alice:secret@{}/", n.addr);
    let mut alice = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("alice authenticates through the redis crate");
    let _: () = redis::cmd("SET")
        .arg("cache:1")
        .arg("v")
        .query(&mut alice)
        .unwrap();
    let v: String = redis::cmd("GET").arg("cache:1").query(&mut alice).unwrap();
    assert_eq!(v, "v");
    let err = redis::cmd("SET")
        .arg("other")
        .arg("v")
        .query::<()>(&mut alice)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"));
    let mut raw = n.raw();
    assert_eq!(text(&raw.cmd_str(&["AUTH", "alice", "secret"])), "+OK\r\n");
    assert_eq!(
        text(&raw.cmd_str(&["DEL", "cache:1"])),
        "-NOPERM this user has no permissions to run the 'del' command\r\n"
    );
    assert_eq!(
        text(&raw.cmd_str(&["MGET", "cache:1", "secret:1"])),
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    assert_eq!(
        text(&raw.cmd_str(&["CONFIG", "GET", "maxmemory"])),
        "-NOPERM this user has no permissions to run the 'config|get' command\r\n"
    );
    assert_eq!(text(&raw.cmd_str(&["PUBLISH", "news.1", "m"])), ":0\r\n");
    assert_eq!(
        text(&raw.cmd_str(&["PUBLISH", "sport", "m"])),
        "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
    );
    assert_eq!(
        text(&raw.cmd_str(&["SUBSCRIBE", "news.1", "sport"])),
        "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
    );
    // A transaction with a refused command is aborted.
    assert_eq!(
        text(&raw.cmd_str(&["MULTI"])),
        "-NOPERM this user has no permissions to run the 'multi' command\r\n"
    );

    // The default user sees alice in CLIENT LIST, and may kill her by user.
    let mut admin = n.raw();
    let list = text(&admin.cmd_str(&["CLIENT", "LIST"]));
    assert!(list.contains("user=alice"), "{list}");
    assert!(list.contains("user=default"), "{list}");
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "WHOAMI"])),
        "$7\r\ndefault\r\n"
    );
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "USERS"])),
        "*2\r\n$5\r\nalice\r\n$7\r\ndefault\r\n"
    );
    // ACL SETUSER applies to connected clients at once.
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "SETUSER", "alice", "+del"])),
        "+OK\r\n"
    );
    assert_eq!(text(&raw.cmd_str(&["DEL", "cache:1"])), ":1\r\n");
    // ACL DELUSER closes her connections.
    assert_eq!(
        text(&admin.cmd_str(&["ACL", "DELUSER", "alice", "nobody"])),
        ":1\r\n"
    );
    assert!(raw.read_to_close().is_empty());
    let list = text(&admin.cmd_str(&["CLIENT", "LIST"]));
    assert!(!list.contains("user=alice"), "{list}");
}

#[test]
fn auth_hello_and_requirepass_as_the_default_user() {
    let n = node(&["--requirepass", "pw", "--user", "bob on >bobpw +@all ~*"]);
    let mut c = n.raw();
    assert_eq!(
        text(&c.cmd_str(&["GET", "k"])),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["AUTH", "wrong"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        text(&c.cmd_str(&["AUTH", "bob", "pw"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["AUTH", "pw"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["ACL", "WHOAMI"])), "$7\r\ndefault\r\n");
    // HELLO 3 AUTH switches user.
    let hello = text(&c.cmd_str(&["HELLO", "3", "AUTH", "bob", "bobpw"]));
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    assert_eq!(text(&c.cmd_str(&["ACL", "WHOAMI"])), "$3\r\nbob\r\n");
    assert_eq!(
        text(&c.cmd_str(&["HELLO", "3", "AUTH", "bob", "nope"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    // CONFIG GET shows requirepass, as Redis does, and never the user lines.
    assert_eq!(
        text(&c.cmd_str(&["CONFIG", "GET", "requirepass"])),
        "%1\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"
    );
    let all = text(&c.cmd_str(&["CONFIG", "GET", "*"]));
    assert!(
        !all.contains("bobpw") && !all.contains("\r\nuser\r\n"),
        "{all}"
    );
    // CONFIG SET requirepass changes the default user's password.
    assert_eq!(
        text(&c.cmd_str(&["CONFIG", "SET", "requirepass", "new"])),
        "+OK\r\n"
    );
    let mut d = n.raw();
    assert_eq!(
        text(&d.cmd_str(&["AUTH", "pw"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(text(&d.cmd_str(&["AUTH", "default", "new"])), "+OK\r\n");
    let getuser = text(&d.cmd_str(&["ACL", "GETUSER", "default"]));
    // sha256("new")
    assert!(
        getuser.contains("11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"),
        "{getuser}"
    );
    assert!(!getuser.contains("nopass"), "{getuser}");
    // A disabled user cannot authenticate; RESET goes back to default (not authenticated).
    assert_eq!(
        text(&d.cmd_str(&["ACL", "SETUSER", "bob", "off"])),
        "+OK\r\n"
    );
    let mut e = n.raw();
    assert_eq!(
        text(&e.cmd_str(&["AUTH", "bob", "bobpw"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(text(&d.cmd_str(&["RESET"])), "+RESET\r\n");
    assert_eq!(
        text(&d.cmd_str(&["GET", "k"])),
        "-NOAUTH Authentication required.\r\n"
    );
    // Back to no password: new clients are in at once, and AUTH <pass> says why it fails.
    assert_eq!(
        text(&c.cmd_str(&["CONFIG", "SET", "requirepass", ""])),
        "+OK\r\n"
    );
    let mut f = n.raw();
    assert_eq!(text(&f.cmd_str(&["GET", "k"])), "$-1\r\n");
    assert!(text(&f.cmd_str(&["AUTH", "x"])).starts_with("-ERR AUTH <password> called without"));
}

#[test]
fn users_from_a_toml_file_and_bad_user_lines() {
    let dir = std::env::temp_dir().join(format!("fc-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("node.toml");
    std::fs::write(
        &file,
        "user = [\"reader on >r ~* +@read\", \"writer on >w ~w:* +@write\"]\n",
    )
    .unwrap();
    let n = node(&["--config", file.to_str().unwrap()]);
    let mut c = n.raw();
    assert_eq!(text(&c.cmd_str(&["AUTH", "writer", "w"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["SET", "w:1", "v"])), "+OK\r\n");
    assert_eq!(
        text(&c.cmd_str(&["GET", "w:1"])),
        "-NOPERM this user has no permissions to run the 'get' command\r\n"
    );
    assert_eq!(text(&c.cmd_str(&["AUTH", "reader", "r"])), "+OK\r\n");
    assert_eq!(text(&c.cmd_str(&["GET", "w:1"])), "$1\r\nv\r\n");
    drop(n);
    // A bad rule stops the start, and the message does not repeat a password.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cache-node"))
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
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_cache-node"))
        .arg("--help")
        .output()
        .unwrap();
    let help = text(&help.stdout);
    assert!(
        help.contains("--user") && help.contains("--protected-mode"),
        "{help}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `user NAME rules...` with the single-command tokens (whose order is Redis's hash table's)
/// sorted, everything else in place.
fn normalise(line: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut ordered = Vec::new();
    let mut singles = BTreeSet::new();
    for word in line.split_whitespace() {
        let single =
            (word.starts_with('+') || word.starts_with('-')) && !word[1..].starts_with('@');
        if single {
            singles.insert(word.to_string());
        } else {
            ordered.push(word.to_string());
        }
    }
    (ordered, singles)
}

#[test]
fn acl_list_getuser_and_errors_match_the_reference() {
    let Some(ref_addr) = reference_redis("acl_list_getuser_and_errors_match_the_reference") else {
        return;
    };
    let n = node(&[]);
    let mut ours = n.raw();
    let mut theirs = RawConn::connect(&ref_addr);
    let name = unique("list");
    let _cleanup = RefUsers {
        addr: ref_addr.clone(),
        names: vec![name.clone()],
    };
    let rule_sets: &[&str] = &[
        "on >secret ~cache:* +@read",
        "on nopass %R~r:* %W~w:* %RW~b:* &news.* +get +set -get +config|get",
        "+@all -@admin",
        "+@all -@dangerous",
        "+@hash -hset",
        "+@read +set -get",
        "-@all +@string +@list",
        "+@all -get",
        "+config|get +config",
        "+config +config|get",
        "+@all -config|get",
        "on >a >b <a #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b allchannels",
        "%R~k %W~k ~x ~x",
        "ON NoPass +GET allkeys",
        "skip-sanitize-payload resetchannels &a &b",
    ];
    for rules in rule_sets {
        let mut args = vec!["ACL", "SETUSER", name.as_str(), "reset"];
        args.extend(rules.split_whitespace());
        assert_eq!(
            text(&ours.cmd_str(&args)),
            text(&theirs.cmd_str(&args)),
            "{rules}"
        );
        let find = |list: &[u8]| {
            text(list)
                .split("\r\n")
                .find(|l| l.starts_with(&format!("user {name} ")))
                .map(str::to_string)
                .expect("user listed")
        };
        let a = find(&ours.cmd_str(&["ACL", "LIST"]));
        let b = find(&theirs.cmd_str(&["ACL", "LIST"]));
        assert_eq!(
            normalise(&a),
            normalise(&b),
            "ACL LIST after {rules}:\n{a}\n{b}"
        );
        let a = text(&ours.cmd_str(&["ACL", "GETUSER", &name]));
        let b = text(&theirs.cmd_str(&["ACL", "GETUSER", &name]));
        if !rules.contains("-get") && !rules.contains("+get") {
            assert_eq!(a, b, "ACL GETUSER after {rules}");
        }
    }
    // Errors and the other subcommands, byte for byte.
    let script: Vec<Vec<&str>> = vec![
        vec!["ACL", "SETUSER", &name, "+nosuch"],
        vec!["ACL", "SETUSER", &name, "+@nosuch"],
        vec!["ACL", "SETUSER", &name, "bogus"],
        vec!["ACL", "SETUSER", &name, "+config|nosuch"],
        vec!["ACL", "SETUSER", &name, "#abc"],
        vec!["ACL", "SETUSER", &name, "!abc"],
        vec!["ACL", "SETUSER", &name, "<nomatch"],
        vec!["ACL", "SETUSER", &name, "%X~a"],
        vec!["ACL", "SETUSER", &name, "reset", "allkeys", "~a"],
        vec!["ACL", "SETUSER", &name, "reset", "allchannels", "&a"],
        vec!["ACL", "SETUSER", "bad name", "on"],
        vec![
            "ACL",
            "SETUSER",
            &name,
            "reset",
            "on",
            ">pw",
            "~k:*",
            "&ch",
            "+get",
            "+publish",
            "+config|get",
        ],
        vec!["ACL", "DRYRUN", &name, "get", "k:1"],
        vec!["ACL", "DRYRUN", &name, "get", "x"],
        vec!["ACL", "DRYRUN", &name, "del", "k:1"],
        vec!["ACL", "DRYRUN", &name, "config", "set", "a", "b"],
        vec!["ACL", "DRYRUN", &name, "publish", "x", "m"],
        vec!["ACL", "DRYRUN", &name, "nosuch"],
        vec!["ACL", "DRYRUN", "fc_nobody_here", "get", "a"],
        vec!["ACL", "DRYRUN", &name, "get"],
        vec!["ACL", "DELUSER", "default"],
        vec!["ACL", "DELUSER", "fc_nobody_1", "fc_nobody_2"],
        vec!["ACL", "GETUSER", "fc_nobody_here"],
        vec!["ACL", "CAT"],
        vec!["ACL", "CAT", "nosuch"],
        vec!["ACL", "WHOAMI"],
        vec!["AUTH", &name, "wrong"],
        vec!["AUTH", "wrong"],
        vec!["HELLO", "3", "AUTH", &name, "wrong"],
    ];
    for cmd in &script {
        assert_eq!(
            text(&ours.cmd_str(cmd)),
            text(&theirs.cmd_str(cmd)),
            "{cmd:?}"
        );
    }
    // The same user's NOPERM replies.
    let mut a = n.raw();
    let mut b = RawConn::connect(&ref_addr);
    let auth = ["AUTH", name.as_str(), "pw"];
    assert_eq!(text(&a.cmd_str(&auth)), text(&b.cmd_str(&auth)));
    // A key of the user's pattern that exists on neither server.
    let key = format!("k:{name}");
    let script: Vec<Vec<&str>> = vec![
        vec!["GET", &key],
        vec!["GET", "x"],
        vec!["SET", &key, "v"],
        vec!["CONFIG", "SET", "maxmemory", "0"],
        vec!["PUBLISH", "x", "m"],
        vec!["PUBLISH", "ch", "m"],
        vec!["ACL", "WHOAMI"],
        vec!["CLIENT", "INFO"],
        vec!["MULTI"],
        vec!["PING"],
    ];
    for cmd in &script {
        assert_eq!(text(&a.cmd_str(cmd)), text(&b.cmd_str(cmd)), "{cmd:?}");
    }
}

#[test]
fn command_info_categories_match_the_reference() {
    let Some(ref_addr) = reference_redis("command_info_categories_match_the_reference") else {
        return;
    };
    let n = node(&[]);
    let mut ours = n.client();
    let mut theirs = redis::Client::open(format!("redis://{ref_addr}/"))
        .and_then(|c| c.get_connection())
        .unwrap();
    let names: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut ours).unwrap();
    // (name, categories) of a COMMAND INFO entry and its subcommands.
    fn categories(info: &redis::Value, out: &mut Vec<(String, BTreeSet<String>)>) {
        let redis::Value::Array(fields) = info else {
            return;
        };
        let name: String = redis::from_redis_value(&fields[0]).unwrap();
        let cats: Vec<String> = redis::from_redis_value(&fields[6]).unwrap();
        out.push((name, cats.into_iter().collect()));
        if let redis::Value::Array(subs) = &fields[9] {
            for sub in subs {
                categories(sub, out);
            }
        }
    }
    let mut checked = 0;
    for name in names {
        let info = |c: &mut redis::Connection| -> Vec<(String, BTreeSet<String>)> {
            let v: redis::Value = redis::cmd("COMMAND")
                .arg("INFO")
                .arg(&name)
                .query(c)
                .unwrap();
            let mut out = Vec::new();
            if let redis::Value::Array(items) = &v {
                categories(&items[0], &mut out);
            }
            out
        };
        let theirs = info(&mut theirs);
        for (sub, cats) in info(&mut ours) {
            // ferrocache's own commands (CACHE, CLUSTER DROPSLOTS) have no Redis twin.
            if let Some((_, expected)) = theirs.iter().find(|(n, _)| *n == sub) {
                assert_eq!(&cats, expected, "categories of {sub}");
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "only {checked} commands compared");
}

#[test]
fn protected_mode_refuses_remote_clients_without_a_password() {
    let Some(ip) = local_address() else {
        eprintln!("SKIPPED protected mode: this machine has no non-loopback address");
        return;
    };
    let n = node(&["--bind", "0.0.0.0"]);
    let port = n.addr.port();
    let remote = format!("{ip}:{port}");
    let mut c = RawConn::connect(&remote);
    c.send(&RawConn::encode(&[b"PING"]));
    let reply = text(&c.read_to_close());
    assert!(
        reply.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{reply}"
    );
    assert!(
        reply.ends_with("accepting connections from the outside.\r\n"),
        "{reply}"
    );
    // Loopback is always let in; with a password, or protected mode off, remote clients too.
    let mut local = RawConn::connect(&format!("127.0.0.1:{port}"));
    assert_eq!(text(&local.cmd_str(&["PING"])), "+PONG\r\n");
    assert_eq!(
        text(&local.cmd_str(&["CONFIG", "SET", "requirepass", "pw"])),
        "+OK\r\n"
    );
    let mut c = RawConn::connect(&remote);
    assert_eq!(text(&c.cmd_str(&["AUTH", "pw"])), "+OK\r\n");
    assert_eq!(text(&local.cmd_str(&["AUTH", "pw"])), "+OK\r\n");
    assert_eq!(
        text(&local.cmd_str(&["CONFIG", "SET", "requirepass", ""])),
        "+OK\r\n"
    );
    assert_eq!(
        text(&local.cmd_str(&["CONFIG", "SET", "protected-mode", "no"])),
        "+OK\r\n"
    );
    let mut c = RawConn::connect(&remote);
    assert_eq!(text(&c.cmd_str(&["PING"])), "+PONG\r\n");
    assert_eq!(
        text(&local.cmd_str(&["CONFIG", "GET", "protected-mode"])),
        "*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n"
    );
}
