"""wasi:http components (SPEC §7, last point): a component exporting ``wasi:http/incoming-handler@0.2.x``
linked to the HTTP server provider serves HTTP, over the unchanged ``HttpServer.HandleRequest``.

- ``cabi``: host functions and resources on wasmtime's C API, values read and written in place;
- ``state``: the host resources (requests, bodies, streams, fields, pollables) and their table;
- ``wasi``: the WASI 0.2 surface besides HTTP, on the one ``wasi:io`` every interface shares;
- ``types``: ``wasi:http/types`` (the incoming side); ``outgoing``: ``wasi:http/outgoing-handler``;
- ``serve``: one request on an instance, the linker, the import check;
- ``caller``: the ``http`` component kind for ``host.component``'s engine and pool.
"""

from __future__ import annotations
