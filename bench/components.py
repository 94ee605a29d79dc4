"""Component actors (SPEC §7) beside waPC actors: calls in process, idle memory, cold start.

    component_echo_us          ``ComponentPool.call`` of a 100-byte echo (``tests/host/component/probe.wat``),
                               beside ``wapc_echo_us`` (``bench.micro``)
    wapc_echo_1mib_ms          ``ActorPool.call`` of a 1 MiB echo (``tests/host/guests.py`` BIG_ECHO)
    component_echo_1mib_ms     the same 1 MiB through the component, a UTF-8 text payload (one block in,
                               the answer element by element: see ``host.component.binary``)
    component_echo_1mib_binary_ms  a 1 MiB payload that is not UTF-8 (element by element both ways)
    py_instance_idle_kib       RSS per extra idle instance of the Python kvcounter (``actors/pykvcounter``,
                               componentize-py), in a fresh process: memory images are mapped copy-on-write
                               from the compiled file, so a new instance costs little until it runs
    py_instance_used_kib       the same once every instance has served one request (pages it wrote are its own)
    py_cold_start_ms           a fresh lattice (nats-server, control plane, 1 host, empty compile cache that
                               the control plane and the host share, as under ``lattice up``): upload + PUT
                               of pykvcounter's application → first HTTP 200 (compiling included)
    py_cold_start_cached_ms    the same application again after its deletion (compiled code in the cache)

The Python actor is built with componentize-py (cached by ``actors.componentize``); ``python -m bench``
builds it once per machine when missing (about half a minute).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import yaml

from bench import micro
from bench.cluster import Cluster
from bench.stats import summarize, time_each_us
from lattice.host.component import components_of, new_pool
from lattice.host.runtime import ActorLimits, Runtime

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def python_actor() -> Path:
    """The Python kvcounter component, built (or taken from the build cache)."""
    from lattice.actors.componentize import build_python

    return build_python(ROOT / "actors" / "pykvcounter").path


def echo(samples: int) -> dict[str, float]:
    """The in-process echoes, component beside waPC."""
    from tests.host.component.guests import probe
    from tests.host.guests import BIG_ECHO

    runtime = Runtime(None)
    try:
        component = new_pool(runtime, components_of(runtime).compile(probe()))
        wapc = new_pool(runtime, runtime.compile(BIG_ECHO))
        small = b"x" * 100
        assert component.call("Echo", small) == small
        results = summarize(time_each_us(lambda: component.call("Echo", small), samples * 5), "component_echo", "us")
        text = (b"lattice " * (MIB // 8))[:MIB]
        binary = bytes(range(256)) * (MIB // 256)
        for pool, payload, name in (
            (wapc, text, "wapc_echo_1mib"),
            (component, text, "component_echo_1mib"),
            (component, binary, "component_echo_1mib_binary"),
        ):
            assert pool.call("Echo", payload) == payload
            runs = max(5, samples // 200)
            times = [t / 1000 for t in time_each_us(lambda p=pool, d=payload: p.call("Echo", d), runs, warmup=2)]  # type: ignore[misc]
            results |= {f"{name}_ms": summarize(times, name, "ms")[f"{name}_ms_p50"]}
        return results
    finally:
        runtime.close()


# --- idle memory of the Python actor, in a fresh process ------------------------------------------------


def measure_py_idle(instances: int = 20) -> dict[str, float]:
    """RSS per idle instance of the Python kvcounter, then per instance once each served one request."""
    from lattice.actors.componentize import cache_root

    runtime = Runtime(cache_root() / "bench-compiled")  # compiling is not what is measured: cached
    try:
        compiled = components_of(runtime).compile(python_actor().read_bytes())
        pool = new_pool(runtime, compiled, limits=ActorLimits(max_instances=instances + 1))
        before, after = micro.warm_rss(pool, instances)
        request = msgpack.packb({"method": "GET", "path": "/", "queryString": "", "header": {}, "body": b""})
        for _ in range(instances + 1):  # idle instances are taken in turn: each serves one request
            pool.call("HttpServer.HandleRequest", request)
        gc.collect()
        used = micro.rss_bytes()
        pool.close()
        return {
            "py_instance_idle_kib": (after - before) / 1024 / instances,
            "py_instance_used_kib": (used - before) / 1024 / instances,
            "py_idle_rss_base_mib": before / 2**20,
        }
    finally:
        runtime.close()


def py_idle_memory() -> dict[str, float]:
    """``measure_py_idle`` in a fresh subprocess."""
    python_actor()  # built here, not inside the measured process
    return micro.in_fresh_process("bench.components", "py-idle", timeout_s=300)


# --- cold start of the Python actor on a fresh lattice ----------------------------------------------------


def _app(digest: str, port: int) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "actors" / "pykvcounter" / "manifest.yaml").read_text())
    for comp in doc["spec"]["components"]:
        if comp["name"] == "pykvcounter":
            comp["properties"]["image"] = digest
            comp["traits"][0]["properties"]["replicas"] = 1
            for trait in comp["traits"]:
                if trait["properties"].get("target") == "httpserver":
                    trait["properties"]["values"] = {"port": str(port)}
    return doc


def py_cold_start(workdir: Path, plan: Any = None) -> dict[str, float]:
    """Upload + deploy → first HTTP 200, compile included, then again with the compiled code cached; with a
    load ``plan``, ``py_actor_http_rps`` too: HTTP → httpserver → the Python kvcounter → keyvalue → response,
    warm instances."""
    from bench import http
    from bench.lifecycle import _first_ok
    from lattice.cli.natsserver import free_port

    wasm = python_actor().read_bytes()
    results: dict[str, float] = {}
    with Cluster(workdir, hosts=1, shared_state=True) as lattice:
        for key in ("py_cold_start_ms", "py_cold_start_cached_ms"):
            port = free_port()
            start = time.monotonic()
            art = lattice.upload(wasm)
            lattice.put_app("pykvcounter", _app(art["digest"], port))
            ready = _first_ok(f"http://127.0.0.1:{port}/cold", 120)
            results[key] = (ready - start) * 1000
            if plan is not None and key == "py_cold_start_cached_ms":
                results |= http.measure("py_actor_http", f"http://127.0.0.1:{port}/count", plan)
            lattice.delete_app("pykvcounter")
            time.sleep(1.0)  # the host stops the actor and frees the port
    return results


if __name__ == "__main__":
    if sys.argv[1:] == ["py-idle"]:
        print(json.dumps(measure_py_idle()))
    else:
        print(json.dumps(echo(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), indent=2))
