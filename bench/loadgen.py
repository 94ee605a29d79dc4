"""HTTP load for the HTTP scenarios: ``wrk`` when it is installed, else an in-repo asyncio generator.

Both keep ``connections`` keep-alive connections busy for ``duration_s`` seconds, one request in
flight per connection (closed loop, as ``wrk -t1 -cN -dDs --latency``), and report requests/s and the
p50/p99 latency. The fallback runs in its own process (``python -m bench.loadgen URL ...``) so it
never shares an event loop, or a core's worth of GIL, with what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import cast
from urllib.parse import urlsplit

from bench.stats import percentile


@dataclass(frozen=True, slots=True)
class Load:
    """One load run: ``tool`` is ``wrk`` or ``python``; ``errors`` counts non-2xx/3xx and socket errors."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    tool: str


_choice = "auto"


def choose(tool: str) -> None:
    """``auto`` (wrk when installed), ``wrk`` or ``python``, for every later ``run``."""
    global _choice
    if tool not in ("auto", "wrk", "python"):
        raise ValueError(f"unknown load generator {tool!r}")
    if tool == "wrk" and shutil.which("wrk") is None:
        raise FileNotFoundError("wrk is not installed (apt-get install -y wrk)")
    _choice = tool


def wrk_path() -> str | None:
    return None if _choice == "python" else shutil.which("wrk")


def tool_name() -> str:
    return "wrk" if wrk_path() else "python"


def run(url: str, *, connections: int, duration_s: float, warmup_s: float = 0.0, host: str | None = None) -> Load:
    """Load ``url``; a warm-up run of ``warmup_s`` seconds first (not counted). ``host``: the ``Host``
    header to send instead of the URL's (virtual hosts, e.g. ``wash host``)."""
    if warmup_s > 0:
        _run_once(url, connections, warmup_s, host)
    return _run_once(url, connections, duration_s, host)


def _run_once(url: str, connections: int, duration_s: float, host: str | None = None) -> Load:
    wrk = wrk_path()
    if wrk:
        seconds = max(1, round(duration_s))
        args = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s", url]
        if host:
            args[1:1] = ["-H", f"Host: {host}"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30, check=False)
        return parse_wrk(out.stdout + out.stderr)
    args = [sys.executable, "-m", "bench.loadgen", url, "-c", str(connections), "-d", str(duration_s)]
    args += ["--host", host] if host else []
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration_s + 30, check=True)
    return Load(**json.loads(out.stdout.strip().splitlines()[-1]))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(text: str) -> Load:
    """Requests/s, p50/p99 and errors from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    p50 = re.search(r"^\s*50(?:\.000)?%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s*99(?:\.000)?%\s+(\S+)", text, re.M)
    if not (rps and total and p50 and p99):
        raise ValueError(f"unreadable wrk output:\n{text[-1000:]}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return Load(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), int(total.group(1)), errors, "wrk")


# --- the fallback generator (runs in its own process) --------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending ``request`` again as soon as each response is complete."""

    def __init__(self, request: bytes, stop_at: float, latencies: list[float], done: asyncio.Future[int]) -> None:
        self.request, self.stop_at, self.latencies, self.done = request, stop_at, latencies, done
        self.buffer = b""
        self.errors = 0
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length_match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if length_match:
                total = end + 4 + int(length_match.group(1))
            elif b"transfer-encoding: chunked" in head:
                tail = self.buffer.find(b"0\r\n\r\n", end + 4)
                if tail < 0:
                    return
                total = tail + 5
            else:
                total = end + 4
            if len(self.buffer) < total:
                return
            status = head[9:12]
            self.buffer = self.buffer[total:]
            self.latencies.append((time.perf_counter() - self.sent_at) * 1000)
            if not status.startswith((b"2", b"3")):
                self.errors += 1
            if time.perf_counter() >= self.stop_at:
                self._finish()
                return
            self._send()

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(self.errors)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.errors + (1 if time.perf_counter() < self.stop_at else 0))


async def generate(url: str, connections: int, duration_s: float, host_header: str | None = None) -> Load:
    """The fallback: ``connections`` closed-loop keep-alive connections for ``duration_s`` seconds."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host_header or f'{host}:{port}'}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = time.perf_counter()
    stop_at = start + duration_s
    futures: list[asyncio.Future[int]] = []
    for _ in range(connections):
        done: asyncio.Future[int] = loop.create_future()
        futures.append(done)
        try:
            await loop.create_connection(lambda d=done: _Connection(request, stop_at, latencies, d), host, port)
        except OSError:
            done.set_result(1)
    errors = 0
    with contextlib.suppress(TimeoutError):
        errors = sum(await asyncio.wait_for(asyncio.gather(*futures), duration_s + 10))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return Load(
        len(latencies) / elapsed,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        len(latencies),
        errors,
        "python",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description="Closed-loop HTTP load (JSON out).")
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--host", default=None, help="Host header to send (default: the URL's)")
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(generate(args.url, args.connections, args.duration, args.host))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
