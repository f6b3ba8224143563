//! The Prometheus endpoint both binaries serve on `metrics-addr`: a latency histogram cheap
//! enough for the hot path, a writer for the text exposition format (version 0.0.4), and a
//! tiny HTTP/1.1 server that answers `GET /metrics` and nothing else.
//!
//! ```text
//!  scraper ──HTTP──► serve(): read one request (bounded) ──► render() ──► 200 text/plain
//!                                                        └─► 404 / 405 / 400 / 431
//! ```
//!
//! One response per connection (`Connection: close`): Prometheus scrapes every few seconds,
//! so keep-alive would save nothing worth the code.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Shutdown;

/// Upper bounds of the latency buckets, in microseconds (the last bucket, `+Inf`, is implied).
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000,
];

const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// A latency histogram of relaxed atomic counters: recording is a few compares and two
/// uncontended increments, no lock and no allocation.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

/// What a [`Histogram`] held at one moment: per-bucket (not cumulative) counts and the sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub buckets: [u64; BUCKETS],
    pub sum_us: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds another snapshot (stripes of one histogram).
    pub fn add(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.sum_us += other.sum_us;
    }
}

impl Histogram {
    pub fn record(&self, us: u64) {
        // Most commands take a few microseconds: the first compare usually ends the search.
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        for (dst, src) in s.buckets.iter_mut().zip(self.buckets.iter()) {
            *dst = src.load(Relaxed);
        }
        s.sum_us = self.sum_us.load(Relaxed);
        s
    }

    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
        self.sum_us.store(0, Relaxed);
    }
}

/// Builds a page in the Prometheus text format: `# HELP` and `# TYPE` once per family, then
/// its samples, with label values escaped.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

/// A sample value: integers print exactly, floats as Prometheus reads them.
pub trait Value {
    fn write_to(&self, out: &mut String);
}

impl Value for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for i64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a metric family. `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape(&mut self.out, help, false);
        let _ = write!(self.out, "\n# TYPE {name} {kind}\n");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        value.write_to(&mut self.out);
        self.out.push('\n');
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Value) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The client-connection families both binaries export, named `{prefix}_connected_clients`,
    /// `{prefix}_connections_received_total` and `{prefix}_rejected_connections_total`.
    pub fn connections(&mut self, prefix: &str, connected: u64, received: u64, rejected: u64) {
        let families = [
            (
                "connected_clients",
                "gauge",
                "Client connections open now.",
                connected,
            ),
            (
                "connections_received_total",
                "counter",
                "Client connections accepted.",
                received,
            ),
            (
                "rejected_connections_total",
                "counter",
                "Client connections refused because of maxclients.",
                rejected,
            ),
        ];
        for (name, kind, help, value) in families {
            self.single(&format!("{prefix}_{name}"), kind, help, value);
        }
    }

    /// The `_bucket`, `_sum` (seconds) and `_count` samples of one histogram of the family.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (i, count) in h.buckets.iter().enumerate() {
            cumulative += count;
            let le = match LATENCY_BOUNDS_US.get(i) {
                Some(us) => format!("{}", *us as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            self.out.push_str(&bucket);
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape(&mut self.out, value, true);
            self.out.push('"');
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The format's escapes: backslash and newline everywhere, and the double quote inside a
/// label value.
fn escape(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Renders the page for one scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The largest request head accepted; a scraper's is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` (`HOST:PORT`; port 0 = any free port) and serves the endpoint on the current
/// runtime until `shutdown`. Returns the bound address.
///
/// # Errors
/// When the address cannot be bound.
pub async fn start(
    addr: &str,
    shutdown: Shutdown,
    render: Render,
) -> std::io::Result<std::net::SocketAddr> {
    let (listener, bound) = crate::bind(addr).await?;
    // Not `addr=`: the tests read the listening address from the first `addr=` logged.
    tracing::info!(metrics_addr = %bound, "serving Prometheus metrics on /metrics");
    tokio::spawn(serve(listener, shutdown, render));
    Ok(bound)
}

/// Serves `GET /metrics` on `listener` until `shutdown`, one task per connection.
pub async fn serve(listener: TcpListener, shutdown: Shutdown, render: Render) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let render = render.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, render)).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.wait() => return,
        }
    }
}

/// Reads one request head and writes one response.
async fn answer(mut stream: TcpStream, render: Render) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let response = loop {
        if let Some(end) = find(&head, b"\r\n\r\n").or_else(|| find(&head, b"\n\n")) {
            head.truncate(end);
            break respond(&head, &render);
        }
        if head.len() > MAX_REQUEST {
            break plain(
                431,
                "Request Header Fields Too Large",
                "request too large\n",
            );
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn respond(head: &[u8], render: &Render) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return plain(400, "Bad Request", "bad request\n");
    };
    if !version.starts_with("HTTP/1.") {
        return plain(400, "Bad Request", "bad request\n");
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return plain(404, "Not Found", "not found: try /metrics\n");
    }
    match method {
        "GET" => response(200, "OK", CONTENT_TYPE, render().as_bytes(), true),
        "HEAD" => response(200, "OK", CONTENT_TYPE, render().as_bytes(), false),
        _ => {
            let mut r = plain(405, "Method Not Allowed", "use GET\n");
            // Allow belongs to a 405: put it before the blank line.
            let at = find(&r, b"\r\n").unwrap_or(0) + 2;
            r.splice(at..at, b"Allow: GET, HEAD\r\n".iter().copied());
            r
        }
    }
}

fn plain(status: u16, reason: &str, body: &str) -> Vec<u8> {
    response(
        status,
        reason,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        true,
    )
}

fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_matches() {
        let h = Histogram::default();
        for us in [1, 10, 11, 2_000_000] {
            h.record(us);
        }
        let mut page = Exposition::new();
        page.family("t_seconds", "histogram", "test");
        page.histogram("t_seconds", &[("cmd", "get")], &h.snapshot());
        let text = page.finish();
        assert!(
            text.contains("t_seconds_bucket{cmd=\"get\",le=\"0.00001\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{cmd=\"get\",le=\"0.000025\"} 3\n"));
        assert!(text.contains("t_seconds_bucket{cmd=\"get\",le=\"1\"} 3\n"));
        assert!(text.contains("t_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 4\n"));
        assert!(text.contains("t_seconds_count{cmd=\"get\"} 4\n"));
        assert!(text.contains("t_seconds_sum{cmd=\"get\"} 2.000022\n"));
    }

    #[test]
    fn labels_and_help_are_escaped() {
        let mut page = Exposition::new();
        page.family("x", "gauge", "a \\ b\nc");
        page.sample("x", &[("node", "a\"b\\c\nd")], 1.5);
        assert_eq!(
            page.finish(),
            "# HELP x a \\\\ b\\nc\n# TYPE x gauge\nx{node=\"a\\\"b\\\\c\\nd\"} 1.5\n"
        );
    }

    #[test]
    fn only_get_metrics_is_served() {
        let render: Render = Arc::new(|| "m 1\n".to_string());
        let ok =
            String::from_utf8(respond(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a", &render)).unwrap();
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("\r\n\r\nm 1\n"),
            "{ok}"
        );
        assert!(ok.contains("Content-Length: 4\r\n"));
        let head = String::from_utf8(respond(b"HEAD /metrics HTTP/1.0", &render)).unwrap();
        assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"));
        let missing = String::from_utf8(respond(b"GET / HTTP/1.1", &render)).unwrap();
        assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"));
        let post = String::from_utf8(respond(b"POST /metrics HTTP/1.1", &render)).unwrap();
        assert!(post.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
        let junk = String::from_utf8(respond(b"hello", &render)).unwrap();
        assert!(junk.starts_with("HTTP/1.1 400"));
    }
}
