"""Capability providers: the SDK (``sdk.py``) and the bundled providers, one package each.

``httpserver`` (wasmcloud:httpserver), ``keyvalue`` (wasmcloud:keyvalue), ``logging``
(wasmcloud:builtin:logging) and ``numbergen`` (wasmcloud:builtin:numbergen). Hosts find them through
the ``lattice.providers`` entry points; ``python -m lattice.providers <name>`` runs one on its own.
Providers import ``lattice``, never ``host``.
"""
