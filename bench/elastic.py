"""Elastic actors (SPEC §5), each beside the figure for today's fixed replicas measured the same way.

zero_to_first_response_ms   the hello actor (waPC, module already compiled on the host) scaled to zero after
                            ``idle_timeout_s``: one HTTP request through the in-host provider → 200, the call
                            held while the control plane wakes the actor (median of 3)
warm_response_ms            the same request with an instance running (fixed replicas: the baseline)
rollout_s                   3 hosts, hello v1 → v2 (another build of the same actor), window_s 1: from the PUT
                            to the rollout's ``complete`` (placement, health window, bookkeeping)
fixed_replace_s             the same change with no health gate to wait for: from the PUT to ``deployed``
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.cluster import Cluster, hello_app, http_status, wait_until
from bench.micro import HELLO
from lattice.cli.natsserver import free_port
from lattice.wasm import append_custom_section


def _timed_get(url: str) -> float:
    start = time.monotonic()
    response = httpx.get(url, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    return (time.monotonic() - start) * 1000


def _component(app: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in app["status"]["components"] if c["name"] == "hello")
    return found


def zero_to_first_response(workdir: Path) -> dict[str, float]:
    with Cluster(workdir, hosts=1) as lattice:
        art = lattice.upload(HELLO.read_bytes())
        port = free_port()
        manifest = hello_app("sleepy", art["digest"], port=port)
        scaler = manifest["spec"]["components"][0]["traits"][0]["properties"]
        scaler.clear()
        scaler.update({"min_replicas": 0, "max_replicas": 2, "idle_timeout_s": 1})
        lattice.put_app("sleepy", manifest)
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: http_status(url) == 200, 60, "sleepy answering")
        warm = statistics.median(_timed_get(url) for _ in range(20))
        cold = []
        for _ in range(3):
            wait_until(lambda: _component(lattice.app("sleepy"))["running"] == 0, 60, "sleepy scaled to zero")
            cold.append(_timed_get(url))
        return {"zero_to_first_response_ms": statistics.median(cold), "warm_response_ms": warm}


def _versioned(digest: str, version: str, gated: bool) -> dict[str, Any]:
    manifest = hello_app("svc", digest, port=None, replicas=3)
    manifest["metadata"]["annotations"]["version"] = version
    if gated:
        manifest["spec"]["policy"] = {"rollout": {"window_s": 1, "max_error_rate": 0.5}}
    return manifest


def rollout(workdir: Path) -> dict[str, float]:
    with Cluster(workdir, hosts=3) as lattice:
        builds = [lattice.upload(append_custom_section(HELLO.read_bytes(), "build", str(i).encode())) for i in range(4)]
        out = {}
        for gated, key, (old, new) in ((False, "fixed_replace_s", builds[:2]), (True, "rollout_s", builds[2:])):
            name = f"v{key}"
            lattice.put_app("svc", _versioned(old["digest"], f"{name}-1", gated))
            lattice.wait_deployed("svc", 120)
            time.sleep(1)
            start = time.monotonic()
            lattice.put_app("svc", _versioned(new["digest"], f"{name}-2", gated))

            def done(gated: bool = gated) -> bool:
                status = lattice.app("svc")["status"]
                if gated:
                    return bool(status.get("rollout", {}).get("state") == "complete")
                return bool(status["type"] == "deployed" and _component(lattice.app("svc"))["running"] >= 3)

            wait_until(done, 120, f"svc {key}")
            out[key] = time.monotonic() - start
            lattice.delete_app("svc")
        return out
