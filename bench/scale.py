"""The scale row: many distinct actors deployed at once on one host (deploy time, RSS per idle actor).

Each actor is the hello module with one custom section naming its number appended (a valid module with
its own digest, so its own actor id and its own compiled module), uploaded, then all of them put in ONE
application manifest. Keys:

    deploy_many_actors          how many actors (``count``)
    deploy_many_s               PUT of the manifest → status ``deployed`` (every actor started)
    deploy_many_rss_kib_per_actor   (host RSS when deployed − host RSS before) / count: the compiled
                                module, one idle instance and the bookkeeping of each actor
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.cluster import Cluster
from bench.lifecycle import HELLO
from lattice.wasm import append_custom_section


def variant(wasm: bytes, index: int) -> bytes:
    """``wasm`` plus a custom section ``bench-variant`` holding ``index``: same code, another digest."""
    return append_custom_section(wasm, "bench-variant", str(index).encode())


def _rss_kib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def deploy_many(workdir: Path, count: int) -> dict[str, float]:
    with Cluster(workdir, hosts=1) as lattice:
        hello = HELLO.read_bytes()
        digests = [lattice.upload(variant(hello, i))["digest"] for i in range(count)]
        components: list[dict[str, Any]] = [
            {
                "name": f"actor-{i}",
                "type": "actor",
                "properties": {"image": digest},
                "traits": [{"type": "spreadscaler", "properties": {"replicas": 1}}],
            }
            for i, digest in enumerate(digests)
        ]
        manifest = {
            "apiVersion": "core.oam.dev/v1beta1",
            "kind": "Application",
            "metadata": {"name": "many", "annotations": {"version": "v1"}},
            "spec": {"components": components},
        }
        host = lattice.children["host-1"].pid
        before = _rss_kib(host)
        start = time.monotonic()
        lattice.put_app("many", manifest)
        lattice.wait_deployed("many", timeout_s=600)
        took = time.monotonic() - start
        after = _rss_kib(host)
    return {
        "deploy_many_actors": float(count),
        "deploy_many_s": took,
        "deploy_many_rss_kib_per_actor": (after - before) / count,
    }
