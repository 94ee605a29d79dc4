"""``host.registry``: what runs in a host, read-only to everyone but its owner, with a real compiled actor."""

from __future__ import annotations

from typing import Any

import pytest

from lattice.host.actors import RunningActor
from lattice.host.pool import ActorPool
from lattice.host.providers import LocalProvider
from lattice.host.registry import ActorRegistry, ProviderRegistry
from lattice.host.runtime import Runtime
from tests.host import guests

APP = {"wasmcloud.dev/appspec": "shop", "wasmcloud.dev/component": "echo"}


def test_actor_registry_answers_questions_and_only_add_and_remove_change_it(runtime: Runtime) -> None:
    compiled = runtime.compile(guests.ECHO)
    running = RunningActor(compiled, ActorPool(runtime, compiled), "sha256:echo", {})
    running.set_count(APP, 2)
    running.set_count({"by": "hand"}, 1)
    registry = ActorRegistry()
    assert registry == {} and registry.by_image("sha256:echo") is None
    registry.add(running)
    try:
        assert registry == {compiled.actor_id: running} and compiled.actor_id in registry
        assert registry.by_image("sha256:echo") is running and registry.by_image("sha256:other") is None
        assert registry.count_of("sha256:echo", APP) == 2 and registry.count_of("sha256:echo", {}) == 0
        assert registry.managed() == 2  # the application's share, not the one started by hand
        assert registry.by_alias("echo") is None  # unsigned: no call alias
        [sample] = registry.samples()
        assert (sample.actor_id, sample.image_ref) == (compiled.actor_id, "sha256:echo")
        with pytest.raises(TypeError):
            registry[compiled.actor_id] = running  # type: ignore[index]
    finally:
        running.pool.close()
    assert registry.remove(compiled.actor_id) is running and registry.remove(compiled.actor_id) is None
    assert len(registry) == 0


def test_provider_registry_says_which_providers_run_in_process() -> None:
    class Stub:  # what the registry reads of an in-process provider: it is never called here
        pass

    provider: Any = Stub()
    in_process = LocalProvider(provider, "VPROVIDER", "default", "wasmcloud:keyvalue", "builtin:keyvalue")
    as_child = LocalProvider(None, "VPROVIDER", "other", "wasmcloud:keyvalue", "builtin:keyvalue")
    in_process.add_owner(APP)
    registry = ProviderRegistry()
    registry.add(in_process)
    registry.add(as_child)
    assert set(registry) == {("VPROVIDER", "default"), ("VPROVIDER", "other")}
    assert registry.in_process("VPROVIDER", "default") is provider
    assert registry.in_process("VPROVIDER", "other") is None and registry.in_process("VNONE", "default") is None
    assert registry.managed() == 1
    assert registry.remove("VPROVIDER", "other") is as_child and ("VPROVIDER", "other") not in registry
