"""A lattice host (``lattice.host.host``) and, for any Python program, its sandbox:
``from lattice.host import Sandbox``.

The embedding names are imported on first use, so that ``import lattice.host.<module>`` stays as cheap as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lattice.host.sandbox import ActorLimits, Handler, Runtime, Sandbox, Source, WasiGrants

__all__ = ["ActorLimits", "Handler", "Runtime", "Sandbox", "Source", "WasiGrants"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lattice.host import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module 'host' has no attribute {name!r}")
