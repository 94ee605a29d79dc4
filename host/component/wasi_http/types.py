"""``wasi:http/types`` on host resources: the request a handler reads, the response it writes.

Each function reads its arguments and writes its result in place (``cabi``); the objects behind the
handles are ``state``'s. Headers are kept as given and compared case-insensitively. Trailers are not
carried by the lattice's ``HttpRequest``/``HttpResponse`` (SPEC §2): incoming trailers are always none,
outgoing ones are accepted and ignored.
"""

from __future__ import annotations

import re
from typing import Any

from lattice.host.component.wasi_http import cabi
from lattice.host.component.wasi_http.cabi import Ctx, HostFunc, HostTrap, Vals
from lattice.host.component.wasi_http.state import (
    T_FIELDS,
    T_FUTURE_TRAILERS,
    T_INCOMING_BODY,
    T_INCOMING_REQUEST,
    T_INPUT_STREAM,
    T_OUTGOING_BODY,
    T_OUTGOING_RESPONSE,
    T_OUTPUT_STREAM,
    T_POLLABLE,
    T_RESPONSE_OUTPARAM,
    Error,
    Fields,
    IncomingBody,
    IncomingRequest,
    IncomingResponse,
    InputStream,
    OutgoingBody,
    OutgoingResponse,
    Outparam,
    OutputStream,
    Pollable,
    current,
)
from lattice.host.component.wasi_http.wasi import drop, new

METHODS = ("get", "head", "post", "put", "delete", "connect", "options", "trace", "patch")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def get(ctx: Ctx, val: Any, kind: type[Any]) -> Any:
    return current().table.get(cabi.rep(ctx, val), kind)


def take(ctx: Ctx, val: Any, kind: type[Any]) -> Any:
    """The object behind an ``own`` argument, removed from the table (the guest gave its handle up)."""
    table = current().table
    key = cabi.rep(ctx, val)
    item = table.get(key, kind)
    table.pop(key)
    return item


# --- values ---------------------------------------------------------------------------------------------


def put_method(out: Any, method: str) -> None:
    lower = method.lower()
    if lower in METHODS:
        cabi.put_variant(out, lower)
    else:
        cabi.put_variant(out, "other", lambda v: cabi.put_string(v, method))


def read_method(val: Any) -> str:
    name, payload = cabi.case(val)
    return cabi.string(payload) if name == "other" else name.upper()


def put_scheme(out: Any, scheme: str | None) -> None:
    if scheme is None:
        cabi.put_option(out, None)
    elif scheme.lower() in ("http", "https"):
        cabi.put_option(out, lambda v: cabi.put_variant(v, scheme.upper()))
    else:
        cabi.put_option(out, lambda v: cabi.put_variant(v, "other", lambda s: cabi.put_string(s, scheme)))


def read_scheme(val: Any) -> str | None:
    inner = cabi.option(val)
    if inner is None:
        return None
    name, payload = cabi.case(inner)
    return cabi.string(payload) if name == "other" else name.lower()


def put_opt_string(out: Any, text: str | None) -> None:
    cabi.put_option(out, None if text is None else (lambda v: cabi.put_string(v, text)))


def read_opt_string(val: Any) -> str | None:
    inner = cabi.option(val)
    return None if inner is None else cabi.string(inner)


def _entry(out: Any, entry: tuple[str, bytes]) -> None:
    cabi.put_tuple(out, [lambda v: cabi.put_string(v, entry[0]), lambda v: cabi.put_blob(v, entry[1])])


def _header_error(out: Any, case: str) -> None:
    cabi.put_result(out, False, lambda v: cabi.put_variant(v, case))


def error_text(val: Any) -> str:
    """An ``error-code`` as text: its case and, for ``internal-error``, the message."""
    name, payload = cabi.case(val)
    if name == "internal-error" and payload is not None:
        detail = read_opt_string(payload)
        return f"{name}: {detail}" if detail else name
    return name


# --- fields ---------------------------------------------------------------------------------------------


def _fields_new(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_FIELDS, Fields())


def _fields_from_list(ctx: Ctx, args: Vals, results: Vals) -> None:
    entries = []
    for pair in cabi.items(args[0]):
        name_val, value_val = cabi.items(pair)
        name = cabi.string(name_val)
        if not _TOKEN.match(name):
            _header_error(results[0], "invalid-syntax")
            return
        entries.append((name, cabi.blob(value_val)))
    cabi.put_result(results[0], True, lambda v: new(ctx, v, T_FIELDS, Fields(entries)))


def _fields_get(ctx: Ctx, args: Vals, results: Vals) -> None:
    fields = get(ctx, args[0], Fields)
    name = cabi.string(args[1]).lower()
    cabi.put_list(results[0], [v for k, v in fields.entries if k.lower() == name], cabi.put_blob)


def _fields_has(ctx: Ctx, args: Vals, results: Vals) -> None:
    fields = get(ctx, args[0], Fields)
    name = cabi.string(args[1]).lower()
    cabi.put_bool(results[0], any(k.lower() == name for k, _ in fields.entries))


def _mutable(ctx: Ctx, args: Vals, results: Vals) -> tuple[Fields, str] | None:
    fields = get(ctx, args[0], Fields)
    name = cabi.string(args[1])
    if fields.immutable:
        _header_error(results[0], "immutable")
        return None
    if not _TOKEN.match(name):
        _header_error(results[0], "invalid-syntax")
        return None
    return fields, name


def _fields_set(ctx: Ctx, args: Vals, results: Vals) -> None:
    found = _mutable(ctx, args, results)
    if found:
        fields, name = found
        lower = name.lower()
        fields.entries = [(k, v) for k, v in fields.entries if k.lower() != lower]
        fields.entries.extend((name, cabi.blob(v)) for v in cabi.items(args[2]))
        cabi.put_result(results[0], True)


def _fields_delete(ctx: Ctx, args: Vals, results: Vals) -> None:
    found = _mutable(ctx, args, results)
    if found:
        fields, name = found
        fields.entries = [(k, v) for k, v in fields.entries if k.lower() != name.lower()]
        cabi.put_result(results[0], True)


def _fields_append(ctx: Ctx, args: Vals, results: Vals) -> None:
    found = _mutable(ctx, args, results)
    if found:
        fields, name = found
        fields.entries.append((name, cabi.blob(args[2])))
        cabi.put_result(results[0], True)


def _fields_entries(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_list(results[0], get(ctx, args[0], Fields).entries, _entry)


def _fields_clone(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_FIELDS, Fields(list(get(ctx, args[0], Fields).entries)))


# --- incoming request, body, trailers ------------------------------------------------------------------


def _req_method(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_method(results[0], get(ctx, args[0], IncomingRequest).method)


def _req_path(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_opt_string(results[0], get(ctx, args[0], IncomingRequest).path_with_query)


def _req_scheme(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_scheme(results[0], "http")


def _req_authority(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_opt_string(results[0], get(ctx, args[0], IncomingRequest).authority)


def headers_of(kind: type[IncomingRequest | IncomingResponse]) -> HostFunc:
    """``headers`` of an incoming request or response: an immutable copy."""

    def headers(ctx: Ctx, args: Vals, results: Vals) -> None:
        message = get(ctx, args[0], kind)
        new(ctx, results[0], T_FIELDS, Fields(list(message.headers), immutable=True))

    return headers


def consume_of(kind: type[IncomingRequest | IncomingResponse]) -> HostFunc:
    """``consume`` of an incoming request or response: its body, once."""

    def consume(ctx: Ctx, args: Vals, results: Vals) -> None:
        message = get(ctx, args[0], kind)
        if message.consumed:
            cabi.put_result(results[0], False)
            return
        message.consumed = True
        cabi.put_result(results[0], True, lambda v: new(ctx, v, T_INCOMING_BODY, IncomingBody(message.body)))

    return consume


def _stream_once(ctx: Ctx, body: IncomingBody | OutgoingBody, result: Any, kind: Any, stream: Any) -> None:
    """A body's stream as ``result``: handed out once, an ``err`` the second time (as WASI says)."""
    if body.stream_taken:
        cabi.put_result(result, False)
        return
    body.stream_taken = True
    cabi.put_result(result, True, lambda v: new(ctx, v, kind, stream))


def _body_stream(ctx: Ctx, args: Vals, results: Vals) -> None:
    body = get(ctx, args[0], IncomingBody)
    _stream_once(ctx, body, results[0], T_INPUT_STREAM, InputStream(body.data))


def _body_finish(ctx: Ctx, args: Vals, results: Vals) -> None:
    take(ctx, args[0], IncomingBody)
    new(ctx, results[0], T_FUTURE_TRAILERS, Pollable())


def _trailers_subscribe(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_POLLABLE, Pollable())


def _trailers_get(ctx: Ctx, args: Vals, results: Vals) -> None:
    # some(ok(ok(none))): complete, no trailers (the lattice's HttpRequest carries none)
    cabi.put_option(
        results[0],
        lambda v: cabi.put_result(v, True, lambda r: cabi.put_result(r, True, lambda t: cabi.put_option(t, None))),
    )


# --- outgoing response, body, outparam -----------------------------------------------------------------


def _resp_new(ctx: Ctx, args: Vals, results: Vals) -> None:
    headers = take(ctx, args[0], Fields)
    headers.immutable = True
    new(ctx, results[0], T_OUTGOING_RESPONSE, OutgoingResponse(headers))


def _resp_status(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_u16(results[0], get(ctx, args[0], OutgoingResponse).status)


def _resp_set_status(ctx: Ctx, args: Vals, results: Vals) -> None:
    response = get(ctx, args[0], OutgoingResponse)
    status = args[1].of.u16
    if not 100 <= status <= 999:
        cabi.put_result(results[0], False)
        return
    response.status = status
    cabi.put_result(results[0], True)


def _resp_headers(ctx: Ctx, args: Vals, results: Vals) -> None:
    response = get(ctx, args[0], OutgoingResponse)
    new(ctx, results[0], T_FIELDS, Fields(list(response.headers.entries), immutable=True))


def _resp_body(ctx: Ctx, args: Vals, results: Vals) -> None:
    response = get(ctx, args[0], OutgoingResponse)
    if response.body is not None:
        cabi.put_result(results[0], False)
        return
    response.body = OutgoingBody(current().grants.max_body_bytes)
    body = response.body
    cabi.put_result(results[0], True, lambda v: new(ctx, v, T_OUTGOING_BODY, body))


def _out_body_write(ctx: Ctx, args: Vals, results: Vals) -> None:
    body = get(ctx, args[0], OutgoingBody)
    _stream_once(ctx, body, results[0], T_OUTPUT_STREAM, OutputStream(body.write))


def _out_body_finish(ctx: Ctx, args: Vals, results: Vals) -> None:
    body = take(ctx, args[0], OutgoingBody)
    trailers = cabi.option(args[1])
    if trailers is not None:
        take(ctx, trailers, Fields)  # trailers are ignored: the lattice's HttpResponse has none
    if body.over:
        cabi.put_result(
            results[0],
            False,
            lambda v: cabi.put_variant(v, "HTTP-response-body-size", lambda s: _opt_u64(s, body.size)),
        )
        return
    body.finished = True
    cabi.put_result(results[0], True)


def _opt_u64(out: Any, value: int) -> None:
    cabi.put_option(out, lambda v: cabi.put_u64(v, value))


def _drop_outgoing_body(rep: int) -> None:
    body = current().table.pop(rep)
    if isinstance(body, OutgoingBody) and not body.finished:
        body.dropped = True


def _outparam_set(ctx: Ctx, args: Vals, results: Vals) -> None:
    outparam = take(ctx, args[0], Outparam)
    if outparam.set:
        raise HostTrap("response-outparam.set called twice")
    result = args[1].of.result
    outparam.set = True
    if result.is_ok:
        outparam.response = take(ctx, result.val.contents, OutgoingResponse)
    else:
        outparam.error = error_text(result.val.contents)


def _http_error_code(ctx: Ctx, args: Vals, results: Vals) -> None:
    error = get(ctx, args[0], Error)
    code = error.http_code
    if code is None:
        cabi.put_option(results[0], None)
    else:
        cabi.put_option(results[0], lambda v: cabi.put_variant(v, code[0], code[1]))


RESOURCES = {
    "fields": (T_FIELDS, drop),
    "incoming-request": (T_INCOMING_REQUEST, drop),
    "incoming-body": (T_INCOMING_BODY, drop),
    "future-trailers": (T_FUTURE_TRAILERS, drop),
    "outgoing-response": (T_OUTGOING_RESPONSE, drop),
    "outgoing-body": (T_OUTGOING_BODY, _drop_outgoing_body),
    "response-outparam": (T_RESPONSE_OUTPARAM, drop),
}
FUNCS = {
    "[constructor]fields": _fields_new,
    "[static]fields.from-list": _fields_from_list,
    "[method]fields.get": _fields_get,
    "[method]fields.has": _fields_has,
    "[method]fields.set": _fields_set,
    "[method]fields.delete": _fields_delete,
    "[method]fields.append": _fields_append,
    "[method]fields.entries": _fields_entries,
    "[method]fields.clone": _fields_clone,
    "[method]incoming-request.method": _req_method,
    "[method]incoming-request.path-with-query": _req_path,
    "[method]incoming-request.scheme": _req_scheme,
    "[method]incoming-request.authority": _req_authority,
    "[method]incoming-request.headers": headers_of(IncomingRequest),
    "[method]incoming-request.consume": consume_of(IncomingRequest),
    "[method]incoming-body.stream": _body_stream,
    "[static]incoming-body.finish": _body_finish,
    "[method]future-trailers.subscribe": _trailers_subscribe,
    "[method]future-trailers.get": _trailers_get,
    "[constructor]outgoing-response": _resp_new,
    "[method]outgoing-response.status-code": _resp_status,
    "[method]outgoing-response.set-status-code": _resp_set_status,
    "[method]outgoing-response.headers": _resp_headers,
    "[method]outgoing-response.body": _resp_body,
    "[method]outgoing-body.write": _out_body_write,
    "[static]outgoing-body.finish": _out_body_finish,
    "[static]response-outparam.set": _outparam_set,
    "http-error-code": _http_error_code,
}
