"""Outgoing HTTP from a component (``wasi:http/outgoing-handler``), to the hosts its manifest allows.

A request goes out only if its authority's host (or ``host:port``) is in the actor's ``allowed_hosts``
(``*.example.com`` matches subdomains); nothing is allowed by default. A refused request fails with
``error-code.HTTP-request-denied`` and a warning in the host log naming the actor, the host and the fix.
The request is sent when the component first asks for the response (``future-incoming-response.get``),
so a body it writes after ``handle`` is sent whole; the response body is read into the host, up to the
actor's body limit. Also owns the ``wasi:http/types`` resources of that side (outgoing-request,
request-options, incoming-response, future-incoming-response).
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from lattice.host.component.wasi_http import cabi
from lattice.host.component.wasi_http.cabi import Ctx, HostFunc, Vals
from lattice.host.component.wasi_http.state import (
    T_FIELDS,
    T_FUTURE_INCOMING_RESPONSE,
    T_INCOMING_RESPONSE,
    T_OUTGOING_BODY,
    T_OUTGOING_REQUEST,
    T_POLLABLE,
    T_REQUEST_OPTIONS,
    Fields,
    FutureIncomingResponse,
    Grants,
    IncomingResponse,
    OutgoingBody,
    OutgoingRequest,
    Pollable,
    RequestOptions,
    current,
    may_block,
)
from lattice.host.component.wasi_http.types import (
    consume_of,
    get,
    headers_of,
    put_method,
    put_opt_string,
    put_scheme,
    read_method,
    read_opt_string,
    read_scheme,
    take,
)
from lattice.host.component.wasi_http.wasi import drop, new

log = structlog.get_logger("host.component.wasi_http")


def allowed(authority: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether ``authority`` (``host`` or ``host:port``) is allowed by ``allowed_hosts``."""
    host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    host, authority = host.lower(), authority.lower()
    for entry in allowed_hosts:
        entry = entry.lower()
        if entry in (host, authority) or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def fetch(request: OutgoingRequest, grants: Grants, actor: str) -> tuple[bool, Any]:
    """Send ``request``: ``(True, IncomingResponse)`` or ``(False, (error-code case, payload fill))``."""
    authority = request.authority
    if not authority:
        return False, ("HTTP-request-URI-invalid", None)
    if not allowed(authority, grants.allowed_hosts):
        log.warning(
            "outgoing HTTP refused",
            actor_id=actor,
            authority=authority,
            fix=f"add {authority.split(':')[0]!r} to the actor's allowed_hosts in the manifest",
        )
        return False, ("HTTP-request-denied", None)
    url = f"{request.scheme or 'https'}://{authority}{request.path_with_query or '/'}"
    body = b"".join(request.body.chunks) if request.body is not None else b""
    headers = [(k.encode("latin-1"), v) for k, v in request.headers.entries]
    try:
        with (
            httpx.Client(trust_env=False, timeout=grants.outgoing_timeout_s) as client,
            client.stream(request.method, url, headers=headers, content=body) as response,
        ):
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > grants.max_body_bytes:
                    return False, ("HTTP-response-body-size", None)
            raw_headers = [(k.decode("latin-1"), v) for k, v in response.headers.raw]
            return True, IncomingResponse(response.status_code, raw_headers, bytes(data))
    except httpx.ConnectError:
        return False, ("connection-refused", None)
    except httpx.TimeoutException:
        return False, ("connection-timeout", None)
    except httpx.HTTPError as exc:
        message = f"{type(exc).__name__}: {exc}"
        return False, ("internal-error", lambda v: cabi.put_option(v, lambda s: cabi.put_string(s, message)))


# --- outgoing-request, request-options -----------------------------------------------------------------


def _req_new(ctx: Ctx, args: Vals, results: Vals) -> None:
    headers = take(ctx, args[0], Fields)
    headers.immutable = True
    new(ctx, results[0], T_OUTGOING_REQUEST, OutgoingRequest(headers))


def _req_body(ctx: Ctx, args: Vals, results: Vals) -> None:
    request = get(ctx, args[0], OutgoingRequest)
    if request.body is not None:
        cabi.put_result(results[0], False)
        return
    request.body = body = OutgoingBody(current().grants.max_body_bytes)
    cabi.put_result(results[0], True, lambda v: new(ctx, v, T_OUTGOING_BODY, body))


def _req_method(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_method(results[0], get(ctx, args[0], OutgoingRequest).method)


def _req_set_method(ctx: Ctx, args: Vals, results: Vals) -> None:
    get(ctx, args[0], OutgoingRequest).method = read_method(args[1])
    cabi.put_result(results[0], True)


def _req_path(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_opt_string(results[0], get(ctx, args[0], OutgoingRequest).path_with_query)


def _req_set_path(ctx: Ctx, args: Vals, results: Vals) -> None:
    get(ctx, args[0], OutgoingRequest).path_with_query = read_opt_string(args[1])
    cabi.put_result(results[0], True)


def _req_scheme(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_scheme(results[0], get(ctx, args[0], OutgoingRequest).scheme)


def _req_set_scheme(ctx: Ctx, args: Vals, results: Vals) -> None:
    scheme = read_scheme(args[1])
    if scheme not in (None, "http", "https"):
        cabi.put_result(results[0], False)
        return
    get(ctx, args[0], OutgoingRequest).scheme = scheme
    cabi.put_result(results[0], True)


def _req_authority(ctx: Ctx, args: Vals, results: Vals) -> None:
    put_opt_string(results[0], get(ctx, args[0], OutgoingRequest).authority)


def _req_set_authority(ctx: Ctx, args: Vals, results: Vals) -> None:
    get(ctx, args[0], OutgoingRequest).authority = read_opt_string(args[1])
    cabi.put_result(results[0], True)


def _req_headers(ctx: Ctx, args: Vals, results: Vals) -> None:
    request = get(ctx, args[0], OutgoingRequest)
    new(ctx, results[0], T_FIELDS, Fields(list(request.headers.entries), immutable=True))


def _options_new(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_REQUEST_OPTIONS, RequestOptions())


def _options_get(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_option(results[0], None)  # the host's timeout applies


def _options_set(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_result(results[0], True)  # accepted; the host's timeout applies


# --- incoming-response, future-incoming-response, handle ------------------------------------------------


def _resp_status(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_u16(results[0], get(ctx, args[0], IncomingResponse).status)


def _future_subscribe(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_POLLABLE, Pollable())


def _future_get(ctx: Ctx, args: Vals, results: Vals) -> None:
    future = get(ctx, args[0], FutureIncomingResponse)
    if future.taken:
        cabi.put_option(results[0], lambda v: cabi.put_result(v, False))
        return
    request = future.result[1]
    if isinstance(request, OutgoingRequest):
        body = request.body
        if body is not None and not (body.finished or body.dropped):
            cabi.put_option(results[0], None)  # the component is still writing the body
            return
        may_block()
        state = current()
        future.result = fetch(request, state.grants, state.name)
    future.taken = True
    ok, value = future.result
    if ok:
        inner = lambda r: cabi.put_result(r, True, lambda o: new(ctx, o, T_INCOMING_RESPONSE, value))  # noqa: E731
    else:
        inner = lambda r: cabi.put_result(r, False, lambda e: cabi.put_variant(e, value[0], value[1]))  # noqa: E731
    cabi.put_option(results[0], lambda v: cabi.put_result(v, True, inner))


def _handle(ctx: Ctx, args: Vals, results: Vals) -> None:
    request = take(ctx, args[0], OutgoingRequest)
    options = cabi.option(args[1])
    if options is not None:
        take(ctx, options, RequestOptions)
    future = FutureIncomingResponse((False, request))
    cabi.put_result(results[0], True, lambda v: new(ctx, v, T_FUTURE_INCOMING_RESPONSE, future))


RESOURCES = {
    "outgoing-request": (T_OUTGOING_REQUEST, drop),
    "request-options": (T_REQUEST_OPTIONS, drop),
    "incoming-response": (T_INCOMING_RESPONSE, drop),
    "future-incoming-response": (T_FUTURE_INCOMING_RESPONSE, drop),
}
FUNCS = {
    "[constructor]outgoing-request": _req_new,
    "[method]outgoing-request.body": _req_body,
    "[method]outgoing-request.method": _req_method,
    "[method]outgoing-request.set-method": _req_set_method,
    "[method]outgoing-request.path-with-query": _req_path,
    "[method]outgoing-request.set-path-with-query": _req_set_path,
    "[method]outgoing-request.scheme": _req_scheme,
    "[method]outgoing-request.set-scheme": _req_set_scheme,
    "[method]outgoing-request.authority": _req_authority,
    "[method]outgoing-request.set-authority": _req_set_authority,
    "[method]outgoing-request.headers": _req_headers,
    "[constructor]request-options": _options_new,
    "[method]request-options.connect-timeout": _options_get,
    "[method]request-options.set-connect-timeout": _options_set,
    "[method]request-options.first-byte-timeout": _options_get,
    "[method]request-options.set-first-byte-timeout": _options_set,
    "[method]request-options.between-bytes-timeout": _options_get,
    "[method]request-options.set-between-bytes-timeout": _options_set,
    "[method]incoming-response.status": _resp_status,
    "[method]incoming-response.headers": headers_of(IncomingResponse),
    "[method]incoming-response.consume": consume_of(IncomingResponse),
    "[method]future-incoming-response.subscribe": _future_subscribe,
    "[method]future-incoming-response.get": _future_get,
}
HANDLER_FUNCS: dict[str, HostFunc] = {"handle": _handle}
