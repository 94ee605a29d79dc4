"""The componentize-py wasi:http hello for ``python -m bench`` (``wasi_http_py_rps``): 200 {"hello":"world"}."""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports import types

BODY = b'{"hello":"world"}'


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request, response_out):  # type: ignore[no-untyped-def]
        response = types.OutgoingResponse(types.Fields.from_list([("content-type", b"application/json")]))
        body = response.body()
        types.ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(BODY)
        stream.__exit__(None, None, None)
        types.OutgoingBody.finish(body, None)
