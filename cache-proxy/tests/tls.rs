//! TLS end to end: redis-cli `--tls` against a node's `tls-port` (with and without client
//! certificates), and through a proxy that takes TLS clients and reaches its nodes over TLS.
//! Certificates are made for each run with the openssl command-line tool.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{node, proxy};

/// A throwaway CA with a server certificate for 127.0.0.1/localhost and a client certificate.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make() -> Certs {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ferrocache-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("the openssl command-line tool is needed for the TLS tests");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=ferrocache test CA",
        ]);
        for name in ["server", "client"] {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        Certs { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// redis-cli over TLS; `client_cert` adds --cert/--key. Returns (success, stdout+stderr).
fn tls_cli(certs: &Certs, port: u16, client_cert: bool, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .args(["--cacert", &certs.path("ca.crt")]);
    if client_cert {
        cmd.args(["--cert", &certs.path("client.crt")])
            .args(["--key", &certs.path("client.key")]);
    }
    let out = cmd.args(args).output().expect("redis-cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && !text.contains("Error"),
        text.trim().to_string(),
    )
}

fn server_tls_args(certs: &Certs, port: u16, auth_clients: &str) -> Vec<String> {
    vec![
        "--tls-port".into(),
        port.to_string(),
        "--tls-cert-file".into(),
        certs.path("server.crt"),
        "--tls-key-file".into(),
        certs.path("server.key"),
        "--tls-ca-cert-file".into(),
        certs.path("ca.crt"),
        "--tls-auth-clients".into(),
        auth_clients.into(),
    ]
}

fn start_node(args: &[String]) -> common::NodeProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    node(&args)
}

#[test]
fn node_tls_port_with_and_without_client_certificates() {
    let certs = Certs::make();
    let port = free_port();
    let n = start_node(&server_tls_args(&certs, port, "yes"));

    // With a client certificate signed by the CA: served, and the plain port sees the same data.
    assert_eq!(
        tls_cli(&certs, port, true, &["SET", "tls:key", "secret value"]),
        (true, "OK".to_string())
    );
    let (ok, value) = tls_cli(&certs, port, true, &["GET", "tls:key"]);
    assert!(ok, "{value}");
    assert_eq!(value, "secret value");
    let mut plain = n.client();
    let got: String = redis::cmd("GET").arg("tls:key").query(&mut plain).unwrap();
    assert_eq!(got, "secret value");
    let tls_port: String = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-port")
        .query::<Vec<String>>(&mut plain)
        .unwrap()
        .remove(1);
    assert_eq!(tls_port, port.to_string());

    // tls-auth-clients yes: no certificate, no service.
    let (ok, text) = tls_cli(&certs, port, false, &["PING"]);
    assert!(!ok, "a client without a certificate was served: {text}");

    // Plain RESP sent to the TLS port is not a TLS handshake: the connection is closed.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    use std::io::{Read, Write};
    raw.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n_read = raw.read(&mut buf).unwrap_or(0);
    assert!(
        !buf[..n_read].starts_with(b"+PONG"),
        "plain text answered on the TLS port"
    );

    // tls-auth-clients no: a client without a certificate is served.
    let port2 = free_port();
    let _open = start_node(&server_tls_args(&certs, port2, "no"));
    assert_eq!(
        tls_cli(&certs, port2, false, &["PING"]),
        (true, "PONG".to_string())
    );
}

#[test]
fn node_refuses_to_start_with_a_missing_certificate() {
    let out = Command::new(common::node_bin())
        .args(["--port", "0", "--tls-port", &free_port().to_string()])
        .args(["--tls-cert-file", "/nonexistent/server.crt"])
        .args(["--tls-key-file", "/nonexistent/server.key"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/nonexistent/server.crt"), "{text}");
}

#[test]
fn proxy_takes_tls_clients_and_reaches_tls_nodes() {
    let certs = Certs::make();
    // Nodes that accept only TLS clients with a certificate on their TLS port.
    let node_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<_> = node_ports
        .iter()
        .map(|&p| start_node(&server_tls_args(&certs, p, "yes")))
        .collect();
    let proxy_tls = free_port();
    let mut args: Vec<String> = Vec::new();
    for p in &node_ports {
        args.push("--node".into());
        args.push(format!("127.0.0.1:{p}"));
    }
    args.extend(server_tls_args(&certs, proxy_tls, "optional"));
    args.extend([
        "--node-tls".to_string(),
        "yes".into(),
        "--tls-client-cert-file".into(),
        certs.path("client.crt"),
        "--tls-client-key-file".into(),
        certs.path("client.key"),
    ]);
    let p = proxy(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // A TLS client of the proxy (no certificate: optional) writes 30 keys...
    for i in 0..30 {
        let key = format!("tls:{i}");
        let (ok, text) = tls_cli(&certs, proxy_tls, false, &["SET", &key, &format!("v{i}")]);
        assert!(
            ok && text == "OK",
            "SET {key} through the TLS proxy: {text}"
        );
    }
    // ...a plain client of the proxy reads them back, spread over the TLS-only nodes.
    let mut c = p.client();
    let values: Vec<String> = redis::cmd("MGET")
        .arg((0..30).map(|i| format!("tls:{i}")).collect::<Vec<_>>())
        .query(&mut c)
        .unwrap();
    assert_eq!(values, (0..30).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let per_node: Vec<i64> = nodes
        .iter()
        .map(|n| redis::cmd("DBSIZE").query(&mut n.client()).unwrap())
        .collect();
    assert_eq!(per_node.iter().sum::<i64>(), 30);
    assert!(
        per_node.iter().all(|&k| k > 0),
        "keys per node: {per_node:?}"
    );

    // Pub/sub and a blocking pop use dedicated node connections: over TLS too.
    let (ok, text) = tls_cli(&certs, proxy_tls, true, &["RPUSH", "tls:list", "a"]);
    assert!(ok, "{text}");
    let popped: (String, String) = redis::cmd("BLPOP")
        .arg("tls:list")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(popped.1, "a");
}

#[test]
fn proxy_node_tls_refuses_an_untrusted_node() {
    let certs = Certs::make();
    let other = Certs {
        dir: certs.dir.with_extension("other"),
    };
    std::fs::create_dir_all(&other.dir).unwrap();
    // A CA that did not sign the node's certificate.
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(other.dir.join("ca.key"))
        .arg("-out")
        .arg(other.dir.join("ca.crt"))
        .args(["-days", "2", "-subj", "/CN=someone else"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let node_port = free_port();
    let _n = start_node(&server_tls_args(&certs, node_port, "no"));
    let p = proxy(&[
        "--node",
        &format!("127.0.0.1:{node_port}"),
        "--node-tls",
        "yes",
        "--tls-ca-cert-file",
        &other.path("ca.crt"),
        "--timeout",
        "500",
    ]);
    let mut c = p.client();
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate") || err.to_string().contains("TLS"),
        "{err}"
    );
    assert!(Path::new(&other.path("ca.crt")).exists());
}
