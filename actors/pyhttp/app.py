"""pyhttp — a Python component in the standard ``wasi:http/proxy`` world (componentize-py), no lattice API.

The same component that ``wasmtime serve`` runs: every request gets 200 ``Hello from Python!`` with the
request's method and path. On lattice it is linked to the HTTP server provider like any actor; the host
turns ``HttpServer.HandleRequest`` into an ``incoming-request`` (SPEC §7, last point).
"""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Get,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        method = request.method()
        name = "GET" if isinstance(method, Method_Get) else type(method).__name__.removeprefix("Method_").upper()
        text = f"Hello from Python! You requested {name} {request.path_with_query() or '/'}\n".encode()
        headers = Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
        response = OutgoingResponse(headers)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(text)
        OutgoingBody.finish(body, None)
