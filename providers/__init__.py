"""Capability providers: the SDK (``sdk/``) and the bundled providers, one package each.

``httpserver`` (wasmcloud:httpserver), ``keyvalue`` (wasmcloud:keyvalue), ``logging``
(wasmcloud:builtin:logging), ``numbergen`` (wasmcloud:builtin:numbergen), ``messaging``, ``blobstore`` and
``cron``. Hosts find them through the ``lattice.providers`` entry points; ``lattice provider <name>`` runs one
on its own.
Providers import ``lattice``, never ``host``.
"""
