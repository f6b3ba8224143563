#!/usr/bin/env python3
"""Invalidation delay: a write on one connection -> the push on another (client tracking).

Usage: benches/tracking_latency.py HOST:PORT [--writes N] [--mode default|bcast] [--db D]

default mode: the listener (RESP3, CLIENT TRACKING ON) reads the key, then the writer SETs
it; the delay runs from just before the SET is sent to the moment the listener has the whole
`invalidate` push. bcast mode: the listener has CLIENT TRACKING ON BCAST PREFIX <prefix> and
reads nothing. Prints p50/p90/p99/max in microseconds. Plain sockets, standard library only;
the Python client's own overhead (a few tens of microseconds) is included in every figure.
"""

import argparse
import socket
import time


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self):
        """One RESP2/RESP3 frame as nested Python values; pushes as ('push', [...])."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-", b":", b",", b"#", b"("):
            return rest
        if kind == b"_":
            return None
        if kind in (b"$", b"=", b"!"):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n + 2)[:-2]
            return data
        if kind in (b"*", b"~", b">", b"%", b"|"):
            n = int(rest)
            if n < 0:
                return None
            if kind in (b"%", b"|"):
                n *= 2
            items = [self.read() for _ in range(n)]
            return ("push", items) if kind == b">" else items
        raise ValueError("bad frame %r" % line)

    def cmd(self, *args):
        self.send(*args)
        while True:
            frame = self.read()
            if not (isinstance(frame, tuple) and frame[0] == "push"):
                return frame


def percentile(sorted_values, p):
    i = min(len(sorted_values) - 1, int(round(p / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("--writes", type=int, default=10000)
    ap.add_argument("--mode", choices=["default", "bcast"], default="default")
    ap.add_argument("--db", type=int, default=0)
    args = ap.parse_args()
    host, port = args.addr.rsplit(":", 1)
    port = int(port)

    listener = Conn(host, port)
    listener.cmd("HELLO", "3")
    writer = Conn(host, port)
    writer.cmd("SELECT", args.db)
    listener.cmd("SELECT", args.db)
    prefix = "bench:lat:%d:" % int(time.time() * 1000)
    if args.mode == "bcast":
        listener.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix)
    else:
        listener.cmd("CLIENT", "TRACKING", "ON")
    keys = [prefix + str(i % 100) for i in range(args.writes)]
    delays = []
    for i, key in enumerate(keys):
        if args.mode == "default":
            listener.cmd("GET", key)
        start = time.perf_counter()
        writer.send("SET", key, i)
        while True:
            frame = listener.read()
            if isinstance(frame, tuple) and frame[1][0] == b"invalidate":
                if frame[1][1] == [key.encode()]:
                    break
        delays.append((time.perf_counter() - start) * 1e6)
        writer.read()
    writer.send("DEL", *sorted(set(keys)))
    writer.read()
    delays.sort()
    print(
        "mode=%s writes=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f"
        % (
            args.mode,
            len(delays),
            percentile(delays, 50),
            percentile(delays, 90),
            percentile(delays, 99),
            delays[-1],
        )
    )


if __name__ == "__main__":
    main()
