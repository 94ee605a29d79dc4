"""A wasi:http component that also imports wasi:logging and wasi:config (SPEC §7): answers its config's
``greeting``. Built by tests/host/test_wasi_http.py."""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports import logging, runtime, types


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request, response_out):
        logging.log(logging.Level.INFO, "probe", "hello from a wasi:http component")
        greeting = runtime.get("greeting") or "none"
        response = types.OutgoingResponse(types.Fields())
        body = response.body()
        types.ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(greeting.encode())
        stream.__exit__(None, None, None)
        types.OutgoingBody.finish(body, None)
