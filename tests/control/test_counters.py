"""Rollout health counts on a real lattice never go negative: a version that scales its actor to zero
inside the health window (the hosts' counters vanish, then restart from 0) completes with a count of the
calls it served, not ``0 of -3``. Plus ``grown``, the pure per-host reset rule."""

from __future__ import annotations

import base64
import re
from typing import Any

from lattice.controlplane.counters import CallCounters, grown
from lattice.inventory import ActorInventory, HostInventory
from tests.conftest import wait_for
from tests.host import guests


def test_a_counter_below_the_last_one_was_reset_and_counts_whole() -> None:
    assert grown(None, (4, 1)) == (4, 1)
    assert grown((4, 1), (6, 1)) == (2, 0)
    assert grown((6, 1), (2, 0)) == (2, 0)  # the pool restarted: 2 new calls, not -4


def _inventory(host_id: str, calls: int) -> HostInventory:
    actor = ActorInventory("MACTOR", "file:///a.wasm", count=1, calls=calls)
    return HostInventory.of(host_id, {}, "0", 1.0, (actor,), (), draining=False, metrics_url=None)


def test_totals_over_hosts_only_grow() -> None:
    counters = CallCounters()
    assert counters.update([_inventory("H1", 3), _inventory("H2", 5)])["MACTOR"] == (8, 0)
    assert counters.update([_inventory("H2", 5)])["MACTOR"] == (8, 0)  # gone from H1: nothing un-happens
    assert counters.update([_inventory("H1", 1), _inventory("H2", 6)])["MACTOR"] == (10, 0)


def manifest(digest: str, version: str, scaler: str) -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: ctr, annotations: {{version: {version}}}}}
spec:
  policy:
    rollout: {{strategy: rolling, window_s: 6, max_error_rate: 0.5}}
  components:
    - name: svc
      type: actor
      properties: {{image: "{digest}"}}
      traits:
        - type: spreadscaler
          properties: {scaler}
"""


async def test_scale_to_zero_inside_the_window_counts_no_negative_calls(
    host_factory: Any, control_plane_factory: Any
) -> None:
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    art = (await client.post("/v1/artifacts", content=guests.ECHO)).json()
    await client.put("/v1/applications/ctr", content=manifest(art["digest"], "v1", "{replicas: 1}"))

    async def status() -> dict[str, Any]:
        result: dict[str, Any] = (await client.get("/v1/applications/ctr")).json()["status"]
        return result

    await wait_for(lambda: _type(status, "deployed"), timeout=30)
    body = {"operation": "Svc.Call", "payload_b64": base64.b64encode(b"x").decode()}
    for _ in range(3):
        assert (await client.post(f"/v1/actors/{art['actor_id']}/invoke", json=body)).status_code == 200

    def seen_calls() -> bool:
        return any(a.calls >= 3 for h in cp.observer.hosts.values() for a in h.inventory.actors)

    await wait_for(seen_calls, timeout=30)  # the window's baseline holds the 3 calls
    elastic = "{min_replicas: 0, max_replicas: 1, idle_timeout_s: 2}"
    await client.put("/v1/applications/ctr", content=manifest(art["digest"], "v2", elastic))

    async def complete() -> bool:
        return bool((await status()).get("rollout", {}).get("state") == "complete")

    await wait_for(complete, timeout=60)
    reason = (await status())["rollout"]["reason"]
    counted = re.search(r"\((-?\d+) of (-?\d+) calls failed\)", reason)
    assert counted is not None, reason
    assert int(counted[1]) >= 0 and int(counted[2]) >= 0, reason


async def _type(status: Any, kind: str) -> bool:
    return bool((await status())["type"] == kind)
