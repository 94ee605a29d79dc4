"""``python -m bench [--quick | --tiny] [--out DIR]``: every scenario, one table, one JSON file.

    full     the numbers to compare (HTTP: 16 connections, 10 s after a 2 s warm-up)
    --quick  the same scenarios, shorter (under ~4 minutes on 2 cores)
    --tiny   seconds per scenario, peers skipped: for the test suite, which checks the JSON's shape

Progress goes to stderr, the table to stdout, the numbers to ``<out>/latest.json`` and a dated copy.
A scenario that fails is reported and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import components, elastic, events, http, lifecycle, loadgen, micro, nats, peers, report, scale, wasi_http
from bench.cluster import Cluster

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    micro_samples: int
    nats_samples: int
    load: http.LoadPlan
    peers: bool


PROFILES = {
    "full": Profile("full", 5000, 2000, http.LoadPlan(connections=16, duration_s=10, warmup_s=2), peers=True),
    "quick": Profile("quick", 2000, 1000, http.LoadPlan(connections=16, duration_s=4, warmup_s=1), peers=True),
    "tiny": Profile("tiny", 200, 100, http.LoadPlan(connections=4, duration_s=1, warmup_s=0), peers=False),
}


class Run:
    """Collects results and notes; ``step`` runs one scenario with a progress line and keeps going on failure."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.results: dict[str, float] = {}
        self.notes: list[str] = []
        self.failed: list[str] = []

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def step(self, name: str, fn: Callable[[], Any], *, keep: bool = True) -> Any:
        self.say(f"{name} …")
        t0 = time.monotonic()
        try:
            value = fn()
        except Exception as exc:
            self.failed.append(name)
            self.notes.append(f"{name}: FAILED: {type(exc).__name__}: {str(exc)[:400]}")
            self.say(f"{name} failed: {exc}")
            return None
        if keep and isinstance(value, dict):
            self.results.update(value)
        self.say(f"{name} done in {time.monotonic() - t0:.1f} s")
        return value


def _lattice_scenarios(run: Run, profile: Profile, workdir: Path) -> None:
    """One host: cold start, HTTP with the provider in the host, NATS calls, HTTP with a remote provider."""
    lattice = run.step("lattice up (nats-server, control plane, 1 host)", lambda: Cluster(workdir, hosts=1).start())
    if lattice is None:
        return
    try:
        cold = run.step("cold_start_ms", lambda: lifecycle.cold_start(lattice))
        if cold is not None:
            result, art, port = cold
            run.results.update(result)
            pid = lattice.children["host-1"].pid
            run.step("http_local (provider in the host)", lambda: http.local(port, profile.load, pid))
        run.step("raw_nats + nats_actor_call", lambda: nats.run(lattice, profile.nats_samples))
        if cold is not None:
            run.step(
                "http_remote (provider in its own process)",
                lambda: http.remote(lattice, art["digest"], art["actor_id"], profile.load),
            )
    finally:
        lattice.close()


def _embed(run: Run, profile: Profile) -> None:
    try:
        from bench import embed  # type: ignore[attr-defined]
    except ImportError:
        run.notes.append("embed: bench/embed.py not present, skipped")
        return
    found = run.step("embed (bench/embed.py)", lambda: embed.run(profile.name != "full"), keep=False)
    if found is None:
        return
    ours = {re.sub(r"_p\d+$", "", k) for k in run.results}
    clashes = sorted(k for k in found if re.sub(r"_p\d+$", "", k) in ours)
    # embed.py measures its own "raw" numbers on another module: keep ours, prefix the whole family of theirs
    run.results |= {(f"embed_{k}" if k in clashes else k): v for k, v in found.items()}
    if clashes:
        run.notes.append(f"embed: its keys {', '.join(clashes)} are reported as embed_<key> (ours differ)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="shorter runs (under ~4 minutes)")
    size.add_argument("--tiny", action="store_true", help="a few seconds per scenario, no peers (for tests)")
    parser.add_argument(
        "--loadgen", choices=("auto", "wrk", "python"), default="auto", help="HTTP load: auto = wrk if installed"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where the JSON goes (default {RESULTS})")
    args = parser.parse_args(argv)
    profile = PROFILES["tiny" if args.tiny else "quick" if args.quick else "full"]
    run = Run()
    loadgen.choose(args.loadgen)
    tool = loadgen.tool_name()
    run.say(
        f"profile {profile.name}; HTTP load by {tool}, {profile.load.connections} connections, "
        f"{profile.load.duration_s:g} s (+{profile.load.warmup_s:g} s warm-up)"
    )
    run.results |= {
        "nproc": float(os.cpu_count() or 0),
        "loadgen_wrk": 1.0 if tool == "wrk" else 0.0,
        "http_connections": float(profile.load.connections),
        "http_duration_s": float(profile.load.duration_s),
    }
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as tmp:
        work = Path(tmp)
        run.step("micro (instantiate, call)", lambda: micro.run(profile.micro_samples))
        run.step("idle_instance_kib (fresh process)", micro.idle_memory)
        run.step("component echo (in process, beside waPC)", lambda: components.echo(profile.micro_samples))
        if profile.peers:  # the Python actor: a componentize-py build (cached) and 8-13 s compiles
            run.step("py_instance_idle_kib (fresh process)", components.py_idle_memory)
            run.step("py_cold_start (fresh lattice)", lambda: components.py_cold_start(work / "py-cold", profile.load))
        else:
            run.notes.append("py_instance_idle_kib, py_cold_start: skipped in --tiny")
        _embed(run, profile)
        run.step("events (messaging and blobs beside raw NATS)", lambda: events.run(profile.name))
        run.step("uvicorn (plain, own process)", lambda: http.uvicorn(profile.load))
        _lattice_scenarios(run, profile, work / "lattice")
        run.step(
            "http_local2 (2 hosts sharing the port)", lambda: http.local_shared_port(work / "shared", profile.load)
        )
        run.step("failover_s (3 hosts, kill -9)", lambda: lifecycle.failover(work / "failover"))
        if profile.peers:  # a third lattice of 3 hosts: not in --tiny
            run.step(
                "http_remote3 (3 hosts + 1 provider process)",
                lambda: http.remote_three_hosts(work / "remote3", profile.load),
            )
            many = 1000 if profile.name == "full" else 100
            run.step(f"deploy_many ({many} actors at once)", lambda: scale.deploy_many(work / "many", many))
        run.step("zero_to_first_response_ms (scaled to zero)", lambda: elastic.zero_to_first_response(work / "zero"))
        run.step("scale_up_s (2 hosts, load step)", lambda: elastic.scale_up(work / "scale-up"))
        if profile.peers:
            run.step("rollout_s (3 hosts, health-gated)", lambda: elastic.rollout(work / "rollout"))
            run.step(
                "py_zero_to_first_response_ms (Python actor scaled to zero)",
                lambda: elastic.py_zero_to_first_response(work / "py-zero"),
            )
        py = profile.peers  # the componentize-py hello takes a minute to build and compile: not in --tiny
        run.step(
            "wasi_http (wasi:http components, provider in the host)",
            lambda: wasi_http.run(profile.load, work / "wasi-http", py=py),
        )
        if profile.peers:
            found = run.step("peers (wasmtime serve, wash)", lambda: peers.run(profile.load, work / "peers"))
            if found is not None:
                run.results.update(found[0])
                run.notes.extend(found[1])
            run.step(
                "wasmtime serve on the componentize-py hello",
                lambda: wasi_http.wasmtime_serve_py(profile.load, work / "peers-py"),
            )
        else:
            run.notes.append("peers and wasi_http_py: skipped in --tiny")
    results = report.with_verdicts(run.results)
    latest, dated = report.write(results, args.out)
    shown = {k for row in report.ROWS for k in (row.lattice, row.peer) if k}
    extra = {k: v for k, v in run.results.items() if k not in shown}
    print(report.table(results, extra))
    print()
    print(f"machine: {os.cpu_count()} cpu(s), {_cpu_model()}, Python {platform.python_version()}")
    print(
        f"load generator: {tool} ({'wrk -t1' if tool == 'wrk' else 'python -m bench.loadgen'}, "
        f"{profile.load.connections} connections, {profile.load.duration_s:g} s)"
    )
    print(f"failover heartbeats: {lifecycle.FAILOVER_HEARTBEAT_S} s × {lifecycle.FAILOVER_MISSES} misses")
    for note in run.notes:
        print(f"note: {note}")
    print(f"wrote {latest} and {dated}")
    return 1 if run.failed else 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
