"""Elastic actors (SPEC §5), each beside the figure for today's fixed replicas measured the same way.

zero_to_first_response_ms   the hello actor (waPC, module already compiled on the host) scaled to zero after
                            ``idle_timeout_s``: one HTTP request through the in-host provider → 200, the call
                            held while the control plane wakes the actor (median of 3)
warm_response_ms            the same request with an instance running (fixed replicas: the baseline)
zero_to_first_response_remote_ms  the same across hosts: the HTTP server provider on host 1, the actor (spread
                            to host 2) woken there, the call crossing NATS; beside warm_response_remote_ms
py_zero_to_first_response_ms  the Python kvcounter (componentize-py, ``actors/pykvcounter``; compiled code in
                            the host's cache) scaled to zero: GET /count → 200; beside py_warm_ms
scale_up_s                  2 hosts, an elastic actor whose calls spin tens of ms (min 1, max 4, target_in_flight
                            1): 12 clients start calling it through the API at once → the status shows 4
                            replicas desired and running (heartbeats 1 s apart, the load averaged over them)
fixed_scale_up_s            the same 1 → 4 replicas asked by hand: a PUT with replicas 4 → 4 running
rollout_s                   3 hosts, hello v1 → v2 (another build of the same actor), window_s 1: from the PUT
                            to the rollout's ``complete`` (placement, health window, bookkeeping)
fixed_replace_s             the same change with no health gate to wait for: from the PUT to ``deployed``
"""

from __future__ import annotations

import statistics
import threading
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


def _component(app: dict[str, Any], name: str = "hello") -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in app["status"]["components"] if c["name"] == name)
    return found


ELASTIC = {"min_replicas": 0, "max_replicas": 2, "idle_timeout_s": 1}


def _cold_and_warm(lattice: Cluster, app: str, component: str, url: str) -> tuple[float, float]:
    """Median ms of a request with an instance running (20), then of the first request after the component
    was scaled to zero (3 times)."""
    wait_until(lambda: http_status(url) == 200, 180, f"{app} answering")
    warm = statistics.median(_timed_get(url) for _ in range(20))
    cold = []
    for _ in range(3):
        wait_until(lambda: _component(lattice.app(app), component)["running"] == 0, 60, f"{app} scaled to zero")
        cold.append(_timed_get(url))
    return statistics.median(cold), warm


def _elastic(manifest: dict[str, Any], **properties: Any) -> dict[str, Any]:
    scaler = manifest["spec"]["components"][0]["traits"][0]["properties"]
    spread = scaler.get("spread")
    scaler.clear()
    scaler.update(properties, **({"spread": spread} if spread else {}))
    return manifest


def zero_to_first_response(workdir: Path) -> dict[str, float]:
    """The waPC hello on one host, then across two hosts (provider on host 1, actor on host 2)."""
    out: dict[str, float] = {}
    with Cluster(workdir, hosts=2) as lattice:
        art = lattice.upload(HELLO.read_bytes())
        for name, key, remote in (("sleepy", "", False), ("faraway", "_remote", True)):
            port = free_port()
            manifest = hello_app(name, art["digest"], port=port)
            actor, provider = manifest["spec"]["components"]
            actor["traits"][0]["properties"]["spread"] = [_on("host-2" if remote else "host-1")]
            provider["traits"] = [{"type": "spreadscaler", "properties": {"replicas": 1, "spread": [_on("host-1")]}}]
            lattice.put_app(name, _elastic(manifest, **ELASTIC))
            cold, warm = _cold_and_warm(lattice, name, "hello", f"http://127.0.0.1:{port}/")
            out |= {f"zero_to_first_response{key}_ms": cold, f"warm_response{key}_ms": warm}
            lattice.delete_app(name)
    return out


def _on(host: str) -> dict[str, Any]:
    return {"name": host, "requirements": {"bench": host}, "weight": 100}


def py_zero_to_first_response(workdir: Path) -> dict[str, float]:
    """The Python kvcounter scaled to zero → first response, beside a warm one (its compiled code cached)."""
    from bench.components import _app, python_actor

    with Cluster(workdir, hosts=1, shared_state=True) as lattice:
        art = lattice.upload(python_actor().read_bytes())
        port = free_port()
        manifest = _app(art["digest"], port)
        for comp in manifest["spec"]["components"]:
            if comp["name"] == "pykvcounter":
                comp["traits"][0]["properties"] = dict(ELASTIC)
        lattice.put_app("pykvcounter", manifest)
        cold, warm = _cold_and_warm(lattice, "pykvcounter", "pykvcounter", f"http://127.0.0.1:{port}/count")
        return {"py_zero_to_first_response_ms": cold, "py_warm_ms": warm}


def scale_up(workdir: Path) -> dict[str, float]:
    """Load step → replicas meet the target (elastic), beside the same 1 → 4 replicas asked for by a PUT."""
    with Cluster(workdir, hosts=2) as lattice:
        art = lattice.upload(spins())
        manifest = _elastic(hello_app("busy", art["digest"], port=None), min_replicas=1, max_replicas=4)
        manifest["spec"]["components"][0]["traits"][0]["properties"]["target_in_flight"] = 1
        lattice.put_app("busy", manifest)
        wait_until(lambda: _replicas(lattice, "busy") == (1, 1), 60, "busy at 1 replica")
        stop = threading.Event()
        callers = [threading.Thread(target=_call_until, args=(lattice, art["actor_id"], stop)) for _ in range(12)]
        start = time.monotonic()
        for caller in callers:
            caller.start()
        try:
            wait_until(lambda: _replicas(lattice, "busy") == (4, 4), 120, "busy scaled up to 4", interval_s=0.1)
            elastic = time.monotonic() - start
        finally:
            stop.set()
            for caller in callers:
                caller.join()
        lattice.delete_app("busy")
        fixed = hello_app("fixed", art["digest"], port=None, replicas=1)
        lattice.put_app("fixed", fixed)
        wait_until(lambda: _replicas(lattice, "fixed") == (1, 1), 60, "fixed at 1 replica")
        fixed["metadata"]["annotations"]["version"] = "v2"
        fixed["spec"]["components"][0]["traits"][0]["properties"]["replicas"] = 4
        start = time.monotonic()
        lattice.put_app("fixed", fixed)
        wait_until(lambda: _replicas(lattice, "fixed") == (4, 4), 120, "fixed at 4 replicas", interval_s=0.1)
        return {"scale_up_s": elastic, "fixed_scale_up_s": time.monotonic() - start}


def _replicas(lattice: Cluster, app: str) -> tuple[int, int]:
    component = _component(lattice.app(app))
    return component["desired"], component["running"]


def _call_until(lattice: Cluster, actor_id: str, stop: threading.Event) -> None:
    body = {"operation": "Spin.Call", "payload_b64": "cGluZw=="}
    with httpx.Client(base_url=str(lattice.api.base_url), timeout=30) as api:
        while not stop.is_set():
            api.post(f"/v1/actors/{actor_id}/invoke", json=body)


def spins() -> bytes:
    """Spins 40 million iterations (tens of ms), then echoes: calls that spend their time in the actor."""
    from tests.host.guests import guest

    return guest(
        """(local.set $op_len (i32.const 40000000))
    (loop $spin
      (local.set $op_len (i32.sub (local.get $op_len) (i32.const 1)))
      (br_if $spin (local.get $op_len)))
    (call $guest_response (i32.const 2048) (local.get $msg_len)) (i32.const 1)"""
    )


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
