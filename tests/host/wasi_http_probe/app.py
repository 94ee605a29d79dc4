"""A wasi:http/proxy probe for lattice's tests (componentize-py): echoes the request, misbehaves on demand.

Built by tests/host/test_wasi_http.py (cached under ~/.cache/lattice, keyed by this file's hash).
"""

import json
from urllib.parse import parse_qs

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import outgoing_handler, poll, types

CHUNK = 4096


def _read_all(body):
    stream = body.stream()
    chunks = []
    while True:
        try:
            data = stream.blocking_read(65536)
        except Err:
            break
        chunks.append(data)
    stream.__exit__(None, None, None)
    types.IncomingBody.finish(body)
    return b"".join(chunks)


def _respond(outparam, status, headers, body, set_first=True):
    response = types.OutgoingResponse(types.Fields.from_list(headers))
    response.set_status_code(status)
    out = response.body()
    types.ResponseOutparam.set(outparam, Ok(response))
    stream = out.write()
    for i in range(0, len(body), CHUNK):
        stream.blocking_write_and_flush(body[i : i + CHUNK])
    stream.__exit__(None, None, None)
    types.OutgoingBody.finish(out, None)


def _method(m):
    return m.value if isinstance(m, types.Method_Other) else type(m).__name__.split("_")[-1].upper()


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request, response_out):
        path_query = request.path_with_query() or "/"
        path, _, query = path_query.partition("?")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        headers = request.headers().entries()
        body = _read_all(request.consume())
        if path == "/trap":
            raise RuntimeError("probe asked to trap")
        if path == "/noresponse":
            return
        if path == "/trap-mid-body":
            response = types.OutgoingResponse(types.Fields())
            out = response.body()
            types.ResponseOutparam.set(response_out, Ok(response))
            out.write().blocking_write_and_flush(b"partial")
            raise RuntimeError("probe trapped mid-body")
        if path == "/error":
            types.ResponseOutparam.set(response_out, Err(types.ErrorCode_InternalError("probe says no")))
            return
        if path == "/spin":
            while True:
                pass
        if path == "/nofinish":
            response = types.OutgoingResponse(types.Fields())
            out = response.body()
            types.ResponseOutparam.set(response_out, Ok(response))
            out.__exit__(None, None, None)  # dropped without outgoing-body.finish
            return
        if path == "/big":
            _respond(response_out, 200, [], b"x" * int(params.get("n", "0")))
            return
        if path == "/fetch":
            _fetch(params["url"], response_out)
            return
        echo = {
            "method": _method(request.method()),
            "path": path,
            "query": query,
            "headers": [[k, v.decode()] for k, v in headers],
            "body_len": len(body),
        }
        status = int(params.get("status", "200"))
        extra = [("x-probe", b"yes"), ("content-type", b"application/json")]
        if path == "/echo-body":
            _respond(response_out, status, [("x-probe", b"yes")], body)
        else:
            _respond(response_out, status, extra, json.dumps(echo).encode())


def _fetch(url, response_out):
    scheme, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    request = types.OutgoingRequest(types.Fields())
    request.set_scheme(types.Scheme_Http() if scheme == "http" else types.Scheme_Https())
    request.set_authority(authority)
    request.set_path_with_query("/" + path)
    try:
        future = outgoing_handler.handle(request, None)
    except Err as refused:
        _respond(response_out, 599, [], repr(refused.value).encode())
        return
    while True:
        result = future.get()
        if result is not None:
            break
        poll.poll([future.subscribe()])
    inner = result.value if isinstance(result, Ok) else result
    if isinstance(inner, Err):
        _respond(response_out, 599, [], repr(inner.value).encode())
        return
    response = inner.value
    data = _read_all(response.consume())
    _respond(response_out, 200, [("x-upstream-status", str(response.status()).encode())], data)
