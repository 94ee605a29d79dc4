"""Calls out of the actor: ``lattice:actor/host.call`` (SPEC §7) with bytes, or with msgpack values.

``call(namespace, operation, payload, link="")`` is the raw call; ``call_actor(target, operation, value)``
reaches another actor by id (``M…``) or call alias and speaks msgpack both ways.

The generated binding (``wit_world``) exists only inside a component build, and only what is imported while
componentize-py pre-initialises the app is there at run time: so it is imported here, at the top, and set to
None outside a component (plain CPython, where ``set_host`` installs a stand-in for tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lattice_actor import codec
from lattice_actor.errors import HostCallError

try:
    from componentize_py_types import Err
except ImportError:  # plain CPython: no component around us

    class Err(Exception):  # type: ignore[no-redef]
        """The stand-in of componentize-py's Err outside a component."""

        def __init__(self, value: Any) -> None:
            super().__init__(value)
            self.value = value


try:
    from wit_world.imports import host as _binding
except ImportError:  # plain CPython, or a world without lattice:actor/host
    _binding = None


HostFn = Callable[[str, str, str, bytes], bytes]
_host: HostFn | None = _binding.call if _binding is not None else None


def set_host(fn: HostFn | None) -> None:
    """Outside a component: route host calls to ``fn(link, namespace, operation, payload)``, which returns
    the answer or raises ``Err(text)`` — for testing handlers on plain CPython."""
    global _host
    _host = fn


def call(namespace: str, operation: str, payload: bytes = b"", link: str = "") -> bytes:
    """Calls a contract (``wasmcloud:keyvalue``, linked under ``link``; "" = default) or an actor.

    Returns the answer's bytes; raises HostCallError with the host's text when the call fails.
    """
    if _host is None:
        raise HostCallError(namespace, operation, "not running in a component (lattice_actor.host.set_host)")
    try:
        return _host(link, namespace, operation, bytes(payload))
    except Err as err:
        raise HostCallError(namespace, operation, str(err.value)) from None


def call_value(namespace: str, operation: str, value: Any = None, link: str = "") -> Any:
    """``call`` with ``value`` packed as msgpack and the answer unpacked (nil for an empty answer)."""
    answer = call(namespace, operation, codec.pack(value) if value is not None else b"", link)
    return codec.unpack(answer) if answer else None


def call_actor(target: str, operation: str, value: Any = None, *, raw: bool = False) -> Any:
    """Calls another actor by id or call alias; ``raw=True`` sends and returns bytes as they are."""
    if raw:
        return call(target, operation, value or b"")
    return call_value(target, operation, value)
