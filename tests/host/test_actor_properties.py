"""On a real host, an actor's instances are keyed by image *and* the properties it enforces: the only owner
asking for new limits gets them (the actor restarts), another owner's different set is refused while the
first runs it, a refused grant stays refused whoever runs the actor, and at most 256 instances of one actor
run per host, whatever the owners ask together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lattice.errors import ConfigError
from lattice.properties import properties_key
from tests.host import guests
from tests.host.test_host import write

A = {"wasmcloud.dev/appspec": "a", "wasmcloud.dev/scaler": "echo"}
B = {"wasmcloud.dev/appspec": "b", "wasmcloud.dev/scaler": "echo"}
ONE_MB = {"limits": {"max_payload_mb": 1}}


async def test_new_limits_of_the_only_owner_restart_the_actor_with_them(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    ref = write(tmp_path, "echo.wasm", guests.ECHO)
    first = await host.scale_actor(ref, 1, A, {})
    assert first is not None and first.pool.limits.max_payload_bytes > 2 * 1024 * 1024
    second = await host.scale_actor(ref, 1, A, ONE_MB)
    assert second is not None and second.pool.limits.max_payload_bytes == 1024 * 1024
    assert host.inventory().actors[0].properties_key == properties_key(ONE_MB) != ""
    with pytest.raises(Exception, match="limit"):
        await host.invoke(second.actor_id, "Echo.Echo", b"x" * (2 * 1024 * 1024))


async def test_another_owners_properties_or_refused_grant_are_refused_while_the_actor_runs(
    host_factory: Any, tmp_path: Path
) -> None:
    host = await host_factory()
    ref = write(tmp_path, "echo.wasm", guests.ECHO)
    assert await host.scale_actor(ref, 1, B, {}) is not None  # grant-less, for app b
    with pytest.raises(ConfigError, match="not under a directory this host allows"):
        await host.scale_actor(ref, 1, A, {"wasi": {"dirs": {"/data": "/etc"}}})
    with pytest.raises(ConfigError, match="other properties"):
        await host.scale_actor(ref, 1, A, ONE_MB)
    running = host.inventory().actors[0]
    assert [dict(i.annotations) for i in running.instances] == [B] and running.properties_key == ""
    assert await host.scale_actor(ref, 2, A, {}) is not None  # the same (no) properties: shared
    assert await host.scale_actor(ref, 0, A, ONE_MB) is not None  # stopping a share is never refused


async def test_at_most_256_instances_of_one_actor_per_host_whoever_asks(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    ref = write(tmp_path, "echo.wasm", guests.ECHO)
    with pytest.raises(ConfigError, match="at most 256 per actor per host"):
        await host.scale_actor(ref, 300, A, {})
    assert await host.scale_actor(ref, 200, A, {}) is not None
    with pytest.raises(ConfigError, match="at most 256 per actor per host"):
        await host.scale_actor(ref, 100, B, {})
    with pytest.raises(ConfigError, match="at most 256 per actor per host"):
        await host.scale_actor(ref, 257, A, {})
    assert host.inventory().actors[0].count == 200
