//! The deployment files, checked without a Docker engine: `tests/deploy/check_compose.py`
//! reads docker-compose.yml and the Dockerfile (structure, health checks, ports, the proxy's
//! node list against the node services); then every config the compose file mounts is given
//! to the real binary, which must start with it and apply it. `docker compose config` runs
//! too when the compose plugin is there (it is optional: the engine may be absent).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `./config/NAME.toml` files docker-compose.yml mounts, found by a plain text scan (so
/// this test needs no YAML parser).
fn mounted_configs() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).expect("read compose");
    let mut found: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ./config/"))
        .filter_map(|rest| rest.split(':').next())
        .map(|file| format!("config/{file}"))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Services whose name is `node` plus a number, in the compose file's order.
fn node_services() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).expect("read compose");
    text.lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|name| {
            name.strip_prefix("node")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn compose_file_and_dockerfile_are_consistent() {
    let output = match Command::new("python3")
        .arg("tests/deploy/check_compose.py")
        .current_dir(root())
        .output()
    {
        Ok(output) => output,
        Err(e) => return skip(&format!("SKIPPED compose check: cannot run python3: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(3) {
        return skip(stdout.trim());
    }
    assert!(
        output.status.success(),
        "tests/deploy/check_compose.py found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", stdout.trim());
}

#[test]
fn every_mounted_config_starts_its_binary() {
    let configs = mounted_configs();
    assert!(
        configs.iter().any(|c| c.contains("node")) && configs.iter().any(|c| c.contains("proxy")),
        "docker-compose.yml should mount a node and a proxy config, found {configs:?}"
    );
    for config in &configs {
        let path = root().join(config);
        assert!(path.is_file(), "{config} is mounted but does not exist");
        let path = path.to_string_lossy().into_owned();
        // NodeProcess puts `--bind 127.0.0.1 --port 0` on the command line, which wins over
        // the file's 0.0.0.0 and fixed port; everything else comes from the file.
        if config.contains("proxy") {
            let process = proxy(&["--config", &path]);
            let mut conn = process.client();
            let pong: String = redis::cmd("PING").query(&mut conn).expect("PING the proxy");
            assert_eq!(pong, "PONG");
            assert!(
                healthy(process.addr.port()),
                "ferrocache-health against the proxy"
            );
            // The node list the file gives is the compose file's node services (they do not
            // resolve here, so the proxy lists them without reaching them).
            let text: String = redis::cmd("PROXY")
                .arg("NODES")
                .query(&mut conn)
                .expect("PROXY NODES");
            for service in node_services() {
                assert!(
                    text.contains(&format!("{service}:6379")),
                    "{config}: PROXY NODES lacks the service {service}:\n{text}"
                );
            }
            assert_eq!(
                text.lines().filter(|l| !l.trim().is_empty()).count(),
                node_services().len(),
                "{config}: PROXY NODES should list exactly the node services:\n{text}"
            );
        } else {
            let process = NodeProcess::start(&node_bin(), &["--config", &path]);
            let mut conn = process.client();
            assert!(
                healthy(process.addr.port()),
                "ferrocache-health against the node"
            );
            let _: () = redis::cmd("SET")
                .arg("k")
                .arg("v")
                .query(&mut conn)
                .expect("SET");
            let (_, maxmemory): (String, String) = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory")
                .query(&mut conn)
                .expect("CONFIG GET maxmemory");
            let file = std::fs::read_to_string(root().join(config)).expect("read config");
            if file.contains("maxmemory = \"256mb\"") {
                assert_eq!(
                    maxmemory,
                    (256u64 << 20).to_string(),
                    "{config} not applied"
                );
            }
        }
    }
}

/// `config/node.toml` and `config/proxy.toml` are the commented samples of every option: each
/// parameter `--help` lists appears in them, and the binaries start with them.
#[test]
fn sample_configs_cover_every_option_and_start() {
    for (bin, sample) in [
        (node_bin(), "config/node.toml"),
        (
            env!("CARGO_BIN_EXE_cache-proxy").to_string(),
            "config/proxy.toml",
        ),
    ] {
        let help = Command::new(&bin).arg("--help").output().expect("--help");
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        let text = std::fs::read_to_string(root().join(sample)).expect("read sample");
        // Parameters are the `--NAME` lines after the "Parameters" heading.
        let params = help
            .split_once("Parameters")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let names: Vec<&str> = params
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("--")?.split_whitespace().next())
            .collect();
        assert!(names.len() > 5, "{bin} --help lists parameters: {help}");
        let missing: Vec<&&str> = names
            .iter()
            .filter(|name| {
                !text.lines().any(|l| {
                    let l = l.trim_start_matches(['#', ' ']);
                    l.strip_prefix(**name)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
            })
            .collect();
        assert!(
            missing.is_empty(),
            "{sample} should show (set or commented out) every parameter of `{bin} --help`; missing {missing:?}"
        );
        let path = root().join(sample).to_string_lossy().into_owned();
        let process = NodeProcess::start(&bin, &["--config", &path]);
        let pong: String = redis::cmd("PING")
            .query(&mut process.client())
            .expect("PING");
        assert_eq!(pong, "PONG", "{bin} with {sample}");
    }
}

/// The image's health check script (`deploy/healthcheck.sh`) against 127.0.0.1:`port`.
fn healthy(port: u16) -> bool {
    Command::new("bash")
        .arg(root().join("deploy/healthcheck.sh"))
        .arg(port.to_string())
        .status()
        .expect("run deploy/healthcheck.sh")
        .success()
}

#[test]
fn health_check_fails_without_a_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    assert!(!healthy(port), "nothing listens on {port}");
    // Something that accepts but does not speak RESP is unhealthy too (after the timeout).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    assert!(!healthy(silent.local_addr().expect("addr").port()));
}

/// `docker compose config -q` validates the file against the compose specification. Only
/// when the compose plugin is installed; a missing engine does not matter for this.
#[test]
fn docker_compose_config_when_available() {
    let has_compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_compose {
        eprintln!("SKIPPED docker compose config: the docker compose plugin is not installed");
        return;
    }
    let output = Command::new("docker")
        .args(["compose", "-f", "docker-compose.yml", "config", "-q"])
        .current_dir(root())
        .output()
        .expect("run docker compose config");
    assert!(
        output.status.success(),
        "docker compose config rejected docker-compose.yml:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A missing PyYAML is a skip, unless `.ci/run` (which installs it) asks for everything.
fn skip(message: &str) {
    if std::env::var("FERROCACHE_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!("{message} (FERROCACHE_REQUIRE_CLIENTS=1)");
    }
    eprintln!("{message}");
}
