//! Test helpers: start the real `cache-node` binary on a free port, talk raw RESP to it, and
//! find the reference Redis for differential tests.
//!
//! ```text
//!  test ──spawn──► cache-node --port 0 ──stdout "addr=127.0.0.1:N"──► NodeProcess { addr }
//!       ──RawConn──► exact reply bytes, compared with the reference Redis's
//! ```

mod redis_server;

pub use redis_server::{have_redis_server, RedisServer, TempDir};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the reference Redis (`127.0.0.1:6379`); `.ci/run` sets it.
pub const REFERENCE_ENV: &str = "FERROCACHE_REFERENCE_REDIS";

/// A `cache-node` process on a free port, killed when dropped.
pub struct NodeProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl NodeProcess {
    /// Starts `bin --bind 127.0.0.1 --port 0 ARGS...` and waits for its "ready" log line.
    ///
    /// # Panics
    /// When the binary does not start or does not report its address within 20 seconds.
    pub fn start(bin: &str, args: &[&str]) -> NodeProcess {
        let mut child = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", "0", "--loglevel", "notice"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut sent = false;
            // Keep draining after the address is found so the child never blocks on a full pipe.
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if !sent {
                    if let Some(addr) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                line.clear();
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("node did not report its address");
        NodeProcess { addr, child }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// A `redis` crate connection.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to node")
    }

    pub fn raw(&self) -> RawConn {
        RawConn::connect(&self.addr.to_string())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `KILL`): freeze a node, thaw it, kill it.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference Redis's address, or None (after saying the test is skipped) when the
/// environment does not name one.
pub fn reference_redis(test: &str) -> Option<String> {
    match std::env::var(REFERENCE_ENV) {
        Ok(addr) if !addr.is_empty() => Some(addr),
        _ => {
            eprintln!("SKIPPED {test}: set {REFERENCE_ENV}=127.0.0.1:6379 to compare with Redis");
            None
        }
    }
}

/// A plain TCP connection that sends requests and returns replies as exact bytes.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    /// # Panics
    /// When the address does not accept connections.
    pub fn connect(addr: &str) -> RawConn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set timeout");
        let _ = stream.set_nodelay(true);
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Encodes `args` as a RESP multibulk.
    pub fn encode(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one command and returns its reply's bytes.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&Self::encode(args));
        self.read_reply()
    }

    /// Like [`cmd`](Self::cmd) with string arguments.
    pub fn cmd_str(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd(&args)
    }

    /// Reads exactly one reply.
    ///
    /// # Panics
    /// On timeout or a closed connection.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = reply_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).expect("read reply");
            assert!(
                n > 0,
                "connection closed; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the peer closes; returns what arrived.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        let _ = self.stream.read_to_end(&mut rest);
        rest
    }
}

/// Sends one raw HTTP request to `addr` and returns (status code, head, body) of the reply;
/// the server closes the connection after it.
///
/// # Panics
/// When the address does not accept connections or the reply is not HTTP.
/// Redis's limits before AUTH (networking.c), on a server that requires a password: more than
/// 10 arguments, or an argument over 16384 bytes (a bare `$536870912` header), is refused
/// with Redis's text and the connection closes.
pub fn assert_unauthenticated_limits(connect: impl Fn() -> RawConn) {
    for (input, error) in [
        (&b"*11\r\n"[..], "unauthenticated multibulk length"),
        (b"*1\r\n$536870912\r\n", "unauthenticated bulk length"),
        (b"*1\r\n$16385\r\n", "unauthenticated bulk length"),
    ] {
        let mut c = connect();
        c.send(input);
        assert_eq!(
            String::from_utf8_lossy(&c.read_to_close()),
            format!("-ERR Protocol error: {error}\r\n")
        );
    }
}

pub fn http_request(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    stream.write_all(request).expect("write request");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read response");
    let reply = String::from_utf8(reply).expect("utf-8 response");
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {reply:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_string(), body.to_string())
}

/// `GET /metrics` from a metrics endpoint: the page (asserting a 200).
pub fn scrape(addr: &str) -> String {
    let (status, head, body) = http_request(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: test\r\nAccept: text/plain\r\n\r\n",
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

/// The value of the sample written exactly as `series` (`name` or `name{label="v"}`) in a
/// Prometheus text page.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Checks a page against the text format: every sample line is `name[{labels}] value`, and
/// its family was announced with `# HELP` and `# TYPE` before it.
///
/// # Panics
/// On the first line that breaks the format.
pub fn check_exposition(page: &str) {
    let mut typed: Vec<String> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap_or_default().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let name = words.next().unwrap_or_default().to_string();
            let kind = words.next().unwrap_or_default();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "bad TYPE line {line:?}"
            );
            assert_eq!(helped.last(), Some(&name), "TYPE without HELP: {line:?}");
            typed.push(name);
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line:?}");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value in {line:?}"
        );
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            name.starts_with("ferrocache_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "bad labels in {line:?}"
                );
            }
        }
        let family = typed
            .last()
            .unwrap_or_else(|| panic!("sample before any TYPE: {line:?}"));
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| b == family))
            .unwrap_or(name);
        assert_eq!(base, family, "sample outside its family: {line:?}");
    }
}

/// Length of the first complete RESP2/RESP3 reply in `buf`, if it is all there.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let items = if matches!(buf[0], b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut pos = after;
            for _ in 0..items {
                pos += reply_len(&buf[pos..])?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// A non-loopback address of this machine (for protected-mode tests), found without sending
/// anything.
pub fn local_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::reply_len;

    #[test]
    fn frames_replies() {
        assert_eq!(reply_len(b"+OK\r\n+x"), Some(5));
        assert_eq!(reply_len(b"$3\r\nabc\r\n"), Some(9));
        assert_eq!(reply_len(b"$3\r\nab"), None);
        assert_eq!(reply_len(b"*2\r\n:1\r\n$-1\r\n"), Some(13));
        assert_eq!(reply_len(b"%1\r\n+a\r\n:1\r\n"), Some(12));
    }
}
