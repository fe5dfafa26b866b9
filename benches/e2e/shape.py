#!/usr/bin/env python3
"""A TCP proxy that makes the local S3 server look like real S3 on the network: a
first-byte latency per request and a bandwidth cap per connection.

    shape.py --upstream http://127.0.0.1:8333 [--listen-port 0] [--latency-ms 30]
             [--bandwidth-mbps 40] [--burst-kib 256] [--port-file PATH]
             [--stats-file PATH]

Prints "ready PORT" on stdout once it listens on 127.0.0.1:PORT (--listen-port 0: a
free port; --port-file also gets the port, written atomically). Every accepted
connection is forwarded to the upstream's host and port, bytes unchanged (plain
HTTP/1.1; the Host header the client signed is passed through, so SigV4 still holds).
Python 3 standard library only.

The model, per connection:

- Connection set-up: the upstream connection is opened L ms after the client's is
  accepted, and no byte moves in either direction before that. It stands in for the
  TCP + TLS handshake to S3; in-region round trips are a few ms at most, so charging a
  full L over-prices it somewhat, but it makes a new connection visibly dearer than a
  kept-alive one, which is the property that matters for connection reuse. A request
  on a new connection therefore waits 2 L; later requests on it wait L.
- Latency: the first client->server bytes of each request are held L ms before they
  are forwarded (a request's own later bytes queue behind them, in order). A request
  starts with the first bytes of the connection, and with the first client bytes
  after the server has sent a response's bytes; an interim "HTTP/1.x 1xx" response
  (100 Continue) does not end the request, so a body sent after it is not delayed
  again. No HTTP parsing beyond that: pipelined requests (which S3 clients do not
  send) would share one delay. So each request's time to first byte grows by L (S3's
  time to first byte is typically tens of ms, mostly server-side), however the
  request is sized.
- Bandwidth: each direction of each connection has its own token bucket of B bytes/s
  with a burst of --burst-kib (default 256 KiB). Bytes are read in chunks of at most
  64 KiB (never more than the burst); a chunk is forwarded once the bucket has paid
  for it (the bucket may go into debt by one chunk and the pump sleeps it off). N
  connections at once therefore get N x B in total, like S3's per-connection limit;
  over any T seconds one direction of a connection moves at most B x T + burst + one
  chunk.
- Backpressure: a pump reads its next chunk only after the previous one was written
  and drained (writer.drain()), so a connection holds at most one chunk plus the
  transport's write buffer per direction, whatever the speeds of the two ends.
- Closing: EOF from one side is passed on as a half-close (write_eof) and the other
  direction keeps flowing; the connection is closed when both directions ended. A
  reset or error on either side aborts both (the other peer sees a reset too),
  never leaving a half-dead connection behind.

KMS traffic is not shaped (only what is sent through this proxy is).

Counters: connections accepted, requests started (as the latency rule counts them),
bytes each way, the most connections open at once. SIGUSR1 writes the counters since
the previous SIGUSR1 (or the start) as JSON to --stats-file (atomically) and resets
them; SIGTERM or SIGINT stops the proxy and prints the run's totals on stderr.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from urllib.parse import urlsplit

CHUNK = 64 << 10


class Counters:
    def __init__(self):
        self.open = 0
        self.reset()

    def reset(self):
        self.connections = 0
        self.requests = 0
        self.bytes_up = 0      # client -> server
        self.bytes_down = 0    # server -> client
        self.max_open = self.open

    def snapshot(self):
        return dict(connections=self.connections, requests=self.requests,
                    bytes_up=self.bytes_up, bytes_down=self.bytes_down,
                    max_open_connections=self.max_open)


class Bucket:
    """Token bucket: `rate` bytes/s, at most `burst` saved up; 0 = unlimited."""

    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, time.monotonic()

    async def pay(self, n):
        if not self.rate:
            return
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate) - n
        self.last = now
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


def interim_only(data):
    """Whether `data`, the first bytes of a response, is one interim (1xx) response
    and nothing after it (a final response sent in the same segment is not)."""
    if data[:9] not in (b"HTTP/1.1 ", b"HTTP/1.0 ") or data[9:10] != b"1":
        return False
    end = data.find(b"\r\n\r\n")
    return end < 0 or end + 4 == len(data)


class Link:
    """One proxied connection: the request-start state shared by its two pumps."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.new_request = True      # the next client bytes start a request
        self.response_start = False  # the next server bytes start a response


class Proxy:
    def __init__(self, host, port, latency, rate, burst):
        self.host, self.port = host, port
        self.latency, self.rate, self.burst = latency, rate, burst
        self.read_size = max(1, min(CHUNK, burst)) if rate else CHUNK
        self.stats = Counters()
        self.total = Counters()
        self.tasks = set()

    async def handle(self, c_reader, c_writer):
        task = asyncio.current_task()
        self.tasks.add(task)
        for s in (self.stats, self.total):
            s.open += 1
            s.connections += 1
            s.max_open = max(s.max_open, s.open)
        u_writer = None
        try:
            if self.latency:
                await asyncio.sleep(self.latency)  # the handshake stand-in
            try:
                u_reader, u_writer = await asyncio.open_connection(
                    self.host, self.port, limit=CHUNK)
            except OSError as e:
                print(f"shape: upstream {self.host}:{self.port}: {e}", file=sys.stderr)
                c_writer.transport.abort()
                return
            link = Link(self)
            pumps = [asyncio.ensure_future(self.pump(link, c_reader, u_writer, up=True)),
                     asyncio.ensure_future(self.pump(link, u_reader, c_writer, up=False))]
            try:
                done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
                errors = [t.exception() for t in done if not t.cancelled() and t.exception()]
                for e in errors:
                    if not isinstance(e, OSError):  # resets are normal; anything else is not
                        print(f"shape: connection failed: {e!r}", file=sys.stderr)
                if errors:
                    for t in pending:
                        t.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    for w in (c_writer, u_writer):
                        w.transport.abort()
                    return
            except asyncio.CancelledError:
                for t in pumps:
                    t.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                raise
            for w in (c_writer, u_writer):
                w.close()
        except asyncio.CancelledError:
            # Shutting down. Not re-raised: asyncio's stream server (3.11) reports a
            # cancelled handler as an "exception in callback".
            pass
        finally:
            for s in (self.stats, self.total):
                s.open -= 1
            for w in (c_writer, u_writer):
                if w is not None and not w.is_closing():
                    w.transport.abort()
            self.tasks.discard(task)

    async def pump(self, link, reader, writer, up):
        bucket = Bucket(self.rate, self.burst)
        while True:
            data = await reader.read(self.read_size)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            if up:
                if link.new_request:
                    link.new_request = False
                    link.response_start = True
                    for s in (self.stats, self.total):
                        s.requests += 1
                    if self.latency:
                        await asyncio.sleep(self.latency)
                for s in (self.stats, self.total):
                    s.bytes_up += len(data)
            else:
                if link.response_start:
                    # After an interim response the next server bytes start the real one.
                    link.response_start = interim_only(data)
                # Any other server bytes: the client's next bytes start a request.
                link.new_request = not link.response_start
                for s in (self.stats, self.total):
                    s.bytes_down += len(data)
            await bucket.pay(len(data))
            writer.write(data)
            await writer.drain()

    def write_stats(self, path):
        snap = dict(latency_ms=round(self.latency * 1000, 3),
                    bandwidth_MBps=round(self.rate / 1e6, 3), burst_bytes=self.burst,
                    **self.stats.snapshot())
        self.stats.reset()
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps(snap) + "\n")
            os.replace(tmp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="http://HOST:PORT of the S3 server")
    p.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (0: any)")
    p.add_argument("--latency-ms", type=float, default=30.0,
                   help="delay of each request's first byte and of each new connection")
    p.add_argument("--bandwidth-mbps", type=float, default=40.0,
                   help="MB/s (1e6 bytes) per connection and direction; 0: unlimited")
    p.add_argument("--burst-kib", type=int, default=256, help="token bucket burst, KiB")
    p.add_argument("--port-file", help="write the listening port here")
    p.add_argument("--stats-file", help="SIGUSR1 writes the counters here")
    a = p.parse_args(argv)
    u = urlsplit(a.upstream)
    if u.scheme != "http" or not u.hostname or u.path not in ("", "/"):
        p.error(f"--upstream {a.upstream!r}: expected http://HOST:PORT")
    if a.latency_ms < 0 or a.bandwidth_mbps < 0 or a.burst_kib < 1:
        p.error("latency and bandwidth must be >= 0, the burst >= 1 KiB")
    return a, u.hostname, u.port or 80


async def main(argv):
    a, host, port = parse_args(argv)
    proxy = Proxy(host, port, a.latency_ms / 1000, a.bandwidth_mbps * 1e6, a.burst_kib << 10)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", a.listen_port,
                                        backlog=1024, limit=CHUNK)
    listen = server.sockets[0].getsockname()[1]
    if a.port_file:
        tmp = f"{a.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{listen}\n")
        os.replace(tmp, a.port_file)
    print(f"ready {listen}", flush=True)

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.add_signal_handler(signal.SIGUSR1, proxy.write_stats, a.stats_file)
    async with server:
        await stop
        server.close()
        for t in list(proxy.tasks):
            t.cancel()
        await asyncio.gather(*proxy.tasks, return_exceptions=True)
    t = proxy.total.snapshot()
    print(f"shape: stopped after {t['connections']} connections (max {t['max_open_connections']} "
          f"open), {t['requests']} requests, {t['bytes_up'] / 1e6:.1f} MB up, "
          f"{t['bytes_down'] / 1e6:.1f} MB down", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
