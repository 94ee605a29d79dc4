"""``python -m bench --tiny`` end to end: it runs every scenario and writes flat JSON of numbers.

No timing is asserted: the machine's speed is not the behaviour under test, the report's shape is.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadgen import generate, parse_wrk
from bench.report import best_peer, evaluate, table, with_verdicts
from bench.stats import percentile

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = [
    "raw_instantiate_us_p50",
    "instantiate_us_p50",
    "raw_call_us_p50",
    "wapc_echo_us_p50",
    "raw_nats_us_p50",
    "nats_actor_call_us_p50",
    "uvicorn_rps",
    "uvicorn_p50_ms",
    "uvicorn_p99_ms",
    "http_local_rps",
    "http_local_p50_ms",
    "http_local_p99_ms",
    "http_remote_rps",
    "http_remote_p50_ms",
    "http_remote_p99_ms",
    "cold_start_ms",
    "idle_instance_kib",
    "failover_s",
    "failover_heartbeat_s",
    "wasi_http_hello_rps",
    "loadgen_wrk",
    "goals_met",
    "goals_total",
]


@pytest.mark.timeout(180)
def test_tiny_run_writes_latest_and_dated_json_with_every_key_as_a_number(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    missing = [k for k in EXPECTED if k not in data]
    assert missing == [], out.stdout[-3000:]
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in data.values()), data
    dated = [p for p in tmp_path.glob("*.json") if p.name != "latest.json"]
    assert len(dated) == 1 and json.loads(dated[0].read_text()) == data
    assert "metric" in out.stdout and "met?" in out.stdout
    assert ("load generator: wrk" in out.stdout) == (data["loadgen_wrk"] == 1)


def test_percentiles_are_nearest_rank_on_sorted_samples() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 0.5) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_wrk_output_is_parsed_with_units_and_errors() -> None:
    text = """Running 1s test @ http://127.0.0.1:1/
  Latency Distribution
     50%  390.00us
     75%  500.00us
     90%  800.00us
     99%    1.20ms
  34500 requests in 1.00s, 3.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:  34500.12
"""
    load = parse_wrk(text)
    assert (load.rps, load.p50_ms, load.p99_ms, load.requests, load.errors) == (34500.12, 0.39, 1.2, 34500, 6)


def test_goals_compare_ratios_and_absolute_bounds_and_missed_goals_are_reported() -> None:
    results = {"instantiate_us_p50": 30.0, "raw_instantiate_us_p50": 10.0, "cold_start_ms": 100.0}
    verdicts = {row.lattice: (ratio, met) for row, ratio, met in evaluate(results) if row.goal}
    assert verdicts["instantiate_us_p50"] == (3.0, False)
    assert verdicts["cold_start_ms"] == (None, True)
    assert verdicts["failover_s"] == (None, None)
    flat = with_verdicts(results)
    assert flat["goals_met"] == 1 and flat["goals_total"] == 2


def test_best_peer_rows_use_the_strongest_peer_of_the_run_and_name_it() -> None:
    results = {
        "http_local_rps": 8000.0,
        "http_local_p99_ms": 3.0,
        "uvicorn_rps": 30000.0,
        "uvicorn_p99_ms": 1.2,
        "wash_host_pool_rps": 31000.0,
        "wash_host_pool_p99_ms": 1.0,
        "wash_rps": 100.0,
        "wash_p99_ms": 300.0,
    }
    assert best_peer(results, "best_peer_rps") == ("wash host pool 2×16", 31000.0)
    assert best_peer(results, "best_peer_p99_ms") == ("wash host pool 2×16", 1.0)
    assert best_peer({"http_local_rps": 1.0}, "best_peer_rps") is None
    flat = with_verdicts(results)
    assert flat["best_peer_rps"] == 31000.0
    assert flat["http_local_p99_ms_vs_best_peer_p99_ms_ratio"] == 3.0
    assert flat["http_local_p99_ms_vs_best_peer_p99_ms_goal_met"] == 0.0
    assert "HTTP local req/s (vs best peer: wash host pool 2×16)" in table(flat, {})


async def test_fallback_load_generator_measures_a_local_server_and_sends_a_given_host_header() -> None:
    import asyncio

    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                seen.append(head)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        load = await generate(f"http://127.0.0.1:{port}/", 2, 0.3, host_header="hello.local")
        assert seen and all(b"\r\nHost: hello.local\r\n" in head for head in seen)
        # the same generator as the bench runs it: its own process, on uvloop
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.loadgen",
            f"http://127.0.0.1:{port}/",
            "-c",
            "2",
            "-d",
            "0.3",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        server.close()
    assert load.requests > 0 and load.errors == 0 and load.tool == "python"
    assert load.p50_ms <= load.p99_ms
    assert json.loads(stdout)["requests"] > 0


def test_scale_variants_are_valid_modules_with_their_own_digests() -> None:
    import hashlib

    import wasmtime

    from bench.lifecycle import HELLO
    from bench.scale import variant

    hello = HELLO.read_bytes()
    first, other = variant(hello, 1), variant(hello, 1000)
    assert len({hashlib.sha256(w).hexdigest() for w in (hello, first, other)}) == 3
    for wasm in (first, other):
        wasmtime.Module.validate(wasmtime.Engine(), wasm)  # raises if the section were malformed
