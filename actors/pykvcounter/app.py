"""pykvcounter — the kvcounter demo in Python: counts requests per path in the linked key-value store.

A component actor (SPEC §7) built with componentize-py on the ``lattice_actor`` guest library. It speaks
``wasmcloud:httpserver`` and ``wasmcloud:keyvalue`` through ``host.call`` (the same links and msgpack
contracts as the C kvcounter), so it runs wherever the C one does. On ``HttpServer.HandleRequest`` it
increments ``pycounter:<path>`` and answers ``{"path": ..., "count": N, "actor": "pykvcounter"}``; when the
key-value call fails it answers 500 with the host's error text.
"""

from lattice_actor import Guest, HostCallError, HttpRequest, HttpResponse, handler, http, keyvalue, log

__all__ = ["Guest"]  # componentize-py finds the export here


@http
def count(request: HttpRequest) -> HttpResponse:
    try:
        n = keyvalue.increment(f"pycounter:{request.path}")
    except HostCallError as exc:
        return HttpResponse.json({"error": exc.text}, status=500)
    log.info(f"pykvcounter: {request.path} -> {n}")
    return HttpResponse.json({"path": request.path, "count": n, "actor": "pykvcounter"})


@handler("Counter.Get")
def current(payload: bytes) -> bytes:
    """The count of the path in ``payload`` (UTF-8), for other actors and ``lattice call``."""
    return (keyvalue.get(f"pycounter:{payload.decode()}") or "0").encode()
