"""Component actors (SPEC §7) beside waPC modules: the engine side, the pool, the interfaces, values.

- ``engine``: compile once (cached on disk), check exports/imports, the component ``Linker``;
- ``pool``: ``ComponentPool``, an ``ActorPool`` whose instances are component instances;
- ``interfaces``: ``lattice:actor/host`` and the standard interfaces, backed by the actor's links;
- ``values``: fast conversion of component values (plans built once, ``list<u8>`` as one block);
- ``calls``: calls through those plans (component exports, host functions); ``capi``: the C value layout;
- ``binary``: a second entry to ``handle`` whose payloads cross as one block (``sections`` reads the binary).

``compile_actor`` and ``new_pool`` pick the kind by the binary header (layer 1: a component).
"""

from __future__ import annotations

from typing import Any

from lattice.host.component.engine import CompiledComponent, ComponentRuntime, components_of
from lattice.host.component.pool import ComponentPool
from lattice.host.pool import ActorPool
from lattice.host.runtime import CompiledActor, Runtime
from lattice.wasm import is_component

__all__ = [
    "CompiledComponent",
    "ComponentPool",
    "ComponentRuntime",
    "compile_actor",
    "components_of",
    "is_component",
    "new_pool",
]


def compile_actor(runtime: Runtime, wasm: bytes) -> CompiledActor | CompiledComponent:
    """A waPC module or a component, compiled (cached) by the engine of its kind; raises ``InvalidActor``."""
    if is_component(wasm):
        return components_of(runtime).compile(wasm)
    return runtime.compile(wasm)


def new_pool(runtime: Runtime, compiled: CompiledActor | CompiledComponent, **options: Any) -> ActorPool:
    """The pool for ``compiled``: ``ActorPool`` options; ``config`` (wasi:config) only for components."""
    if isinstance(compiled, CompiledComponent):
        options.pop("spare", None)  # ~1 ms and megabytes an instance: a component pool keeps no spare
        return ComponentPool(components_of(runtime), compiled, **options)
    options.pop("config", None)
    return ActorPool(runtime, compiled, **options)
