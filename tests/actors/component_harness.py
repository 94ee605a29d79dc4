"""Runs a component actor on wasmtime-py with a stub ``lattice:actor/host``, without a lattice.

The guest side of SPEC §7 proven on its own: instantiate the component, call ``guest.handle``, and answer
its ``host.call`` from a Python function (the test's fake providers). Compiling a componentize-py actor
takes 8-13 s, so compiled components are serialized under the build cache, keyed by the component's
SHA-256 and the wasmtime version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import wasmtime
from wasmtime import component as cm

from lattice.actors.componentize import cache_root

HostCall = Callable[[str, str, str, bytes], bytes | str]  # binding, namespace, operation, payload → ok | err
GUEST = "lattice:actor/guest@0.1.0"
HOST = "lattice:actor/host@0.1.0"

_engine = wasmtime.Engine()
_compiled: dict[str, cm.Component] = {}


def load(path: Path) -> cm.Component:
    """The component at ``path``, compiled once per process and serialized on disk."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest in _compiled:
        return _compiled[digest]
    store = cache_root() / "compiled"
    cwasm = store / f"{digest}-wasmtime-{wasmtime.__version__ if hasattr(wasmtime, '__version__') else 50}.cwasm"
    if cwasm.is_file():
        component = cm.Component.deserialize_file(_engine, str(cwasm))
    else:
        component = cm.Component(_engine, data)
        store.mkdir(parents=True, exist_ok=True)
        partial = cwasm.with_suffix(".partial")
        partial.write_bytes(component.serialize())
        partial.replace(cwasm)
    _compiled[digest] = component
    return component


class ComponentActor:
    """One instance of a component actor whose host calls go to ``host_call``."""

    def __init__(self, path: Path, host_call: HostCall) -> None:
        self.calls: list[tuple[str, str, str, bytes]] = []
        component = load(path)
        linker = cm.Linker(_engine)
        linker.add_wasip2()
        with linker.root() as root, root.add_instance(HOST) as host:

            def call(_store: object, binding: str, namespace: str, operation: str, payload: bytes) -> bytes | str:
                self.calls.append((binding, namespace, operation, bytes(payload)))
                return host_call(binding, namespace, operation, bytes(payload))

            host.add_func("call", call)
        self.store = wasmtime.Store(_engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        instance = linker.instantiate(self.store, component)
        guest = instance.get_export_index(self.store, GUEST)
        assert guest is not None, f"{path.name} does not export {GUEST}"
        index = instance.get_export_index(self.store, "handle", guest)
        assert index is not None
        func = instance.get_func(self.store, index)
        assert func is not None
        self._handle = func

    def handle(self, operation: str, payload: bytes) -> bytes | str:
        """``guest.handle``: bytes for ok, str for err; a trap raises wasmtime's error."""
        result = self._handle(self.store, operation, payload)
        self._handle.post_return(self.store)
        return bytes(result) if isinstance(result, bytes | bytearray | list) else result
