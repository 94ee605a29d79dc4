"""One HTTP listener per link: an asyncio server of ``protocol.HttpConnection`` in the running loop.

Each request becomes an ``HttpRequest`` for ``HttpServer.HandleRequest`` on the linked actor; its
``HttpResponse`` becomes the reply. What goes wrong maps to a status, never to a crash:

    body over max_body_bytes → 413      the actor failed → 500
    over the actor's payload limit → 413    malformed HttpResponse → 502
    nobody serves the actor  → 503      response body over max_body_bytes → 502
    no answer in time        → 504      CORS preflight from an origin not allowed → 403

A failure's body is a short reason and a request id (also in ``x-request-id``; the trace id when tracing
is on); the actor id and the error text go to the log under that id, not to the HTTP client.

No framework on the hot path: the headers are gathered as they are parsed, one msgpack encode, one
decode, one write. With tracing on, each request is a server span, a child of an incoming
``traceparent`` (whose trace id is kept); its context travels to the actor in ``trace_context``. With
tracing off an incoming ``traceparent``/``tracestate`` is passed on as received.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import ssl
from typing import Final

import msgpack
import structlog

from lattice.capability import ProviderContext
from lattice.errors import (
    InvocationError,
    LatticeError,
    NoResponders,
    ProviderError,
    http_status,
)
from lattice.messages import unpack
from lattice.observability import tracing
from lattice.providers.httpserver.config import ListenerConfig
from lattice.providers.httpserver.protocol import Headers, HttpConnection, Request, Response, ServerSettings

OPERATION: Final = "HttpServer.HandleRequest"
_TOKEN: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_OURS: Final = frozenset({"content-length", "transfer-encoding", "connection"})
_CORS_METHODS: Final = b"GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
_TEXT: Final = (b"content-type", b"text/plain; charset=utf-8")
_CARRIED: Final = (tracing.TRACEPARENT, "tracestate")
STOP_GRACE_S: Final = 5.0
_pack = msgpack.Packer(use_bin_type=True).pack  # ``lattice.messages.pack`` without a Packer made per call

log = structlog.get_logger("lattice.providers.httpserver")


def decode_response(raw: bytes) -> tuple[int, Headers, bytes]:
    """An actor's ``HttpResponse`` → ``(status, headers, body)``; ``ValueError`` saying what is wrong.

    Tolerant as wasmCloud actors are varied: ``statusCode`` defaults to 200, header values may be a
    string or a list, ``body`` bin or str; ``headers`` is accepted for ``header``.
    """
    try:
        obj = unpack(raw)
    except InvocationError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a map, got {type(obj).__name__}")
    status = obj.get("statusCode", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"statusCode must be an integer in 100–599, got {status!r}")
    fields = obj.get("header", obj.get("headers")) or {}
    if not isinstance(fields, dict):
        raise ValueError("header must be a map of name to [value]")
    headers: Headers = []
    for name, values in fields.items():
        wire = _header_name(name)
        if wire is None:
            continue
        for value in [values] if isinstance(values, (str, bytes)) else values if isinstance(values, list) else [None]:
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not isinstance(value, bytes) or b"\r" in value or b"\n" in value or b"\0" in value:
                raise ValueError(f"invalid value for header {name!r}")
            headers.append((wire, value))
    body = obj.get("body", b"")
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    elif isinstance(body, list):
        try:
            body = bytes(body)
        except (ValueError, TypeError):
            raise ValueError("body must be bytes") from None
    if not isinstance(body, bytes):
        raise ValueError(f"body must be bytes, got {type(body).__name__}")
    return status, headers, body


_NAMES: dict[str | bytes, bytes | None] = {}
"""Header names seen in responses → their lowercase wire form (``None``: one of ours, dropped); bounded."""


def _header_name(name: object) -> bytes | None:
    """A response header name checked once (``ValueError`` if not a token), then looked up."""
    if isinstance(name, (str, bytes)) and name in _NAMES:
        return _NAMES[name]
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    if not isinstance(text, str) or not _TOKEN.match(text):
        raise ValueError(f"invalid header name {text!r}")
    lower = text.lower()
    wire = None if lower in _OURS else lower.encode("latin-1")
    if len(_NAMES) < 1024:
        _NAMES[name] = wire  # type: ignore[index]  # str or bytes, checked above
    return wire


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _tls(cfg: ListenerConfig) -> ssl.SSLContext | None:
    if not cfg.tls_cert or not cfg.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    return context


class Listener:
    """Serves ``actor_id`` on ``config``'s address until ``stop()``."""

    def __init__(self, ctx: ProviderContext, actor_id: str, config: ListenerConfig, link: str) -> None:
        self.ctx = ctx
        self.actor_id = actor_id
        self.config = config
        self.link = link
        self._server: asyncio.AbstractServer | None = None
        self._shared = ServerSettings(self.handle, config.headers, config.max_body_bytes, config.idle_timeout_s,
                                      set(), set())  # fmt: skip
        self._log = log.bind(actor_id=actor_id, url=config.url)

    async def start(self) -> None:
        """Bind and serve; ``ProviderError`` naming the link when the address or TLS files are unusable."""
        cfg = self.config
        try:
            tls = _tls(cfg)
        except (OSError, ssl.SSLError) as exc:
            raise ProviderError(f"httpserver: link {self.link} refused: cannot load TLS files: {exc}") from None
        try:
            sock = _bind(cfg.host, cfg.port, reuse_port=cfg.reuse_port)
        except OSError as exc:
            raise ProviderError(f"httpserver: link {self.link} refused: cannot listen on {cfg.url}: {exc}") from None
        loop = asyncio.get_running_loop()
        shared = self._shared
        try:
            self._server = await loop.create_server(lambda: HttpConnection(shared, loop), sock=sock, ssl=tls)
        except OSError as exc:
            sock.close()
            raise ProviderError(f"httpserver: link {self.link}: server on {cfg.url} did not start: {exc}") from None
        self._log.info("http listener started")

    async def stop(self) -> None:
        """Stop accepting, let requests in progress finish (up to ``STOP_GRACE_S``), close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        shared = self._shared
        for connection in list(shared.connections):
            connection.shutdown()
        if shared.connections:
            shared.drained = asyncio.Event()
            try:
                await asyncio.wait_for(shared.drained.wait(), STOP_GRACE_S)
            except TimeoutError:
                self._log.warning("requests still in progress at stop: cut", connections=len(shared.connections))
        for task in list(shared.tasks):
            task.cancel()
        for connection in list(shared.connections):
            if connection.transport is not None:
                connection.transport.abort()
        try:
            await asyncio.wait_for(server.wait_closed(), STOP_GRACE_S)
        except TimeoutError:
            self._log.warning("http listener did not close in time", grace_s=STOP_GRACE_S)
        self._log.info("http listener stopped")

    # --- one request -------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Answer one request; with tracing on, as a server span (a child of an incoming ``traceparent``)."""
        headers = request.headers
        incoming = {k: headers[k][0] for k in _CARRIED if k in headers}
        if not tracing.enabled():
            return await self._serve(request, incoming or None)
        method = request.method
        attributes = {"http.request.method": method, "url.path": request.path, "lattice.actor_id": self.actor_id}
        with tracing.span(f"HTTP {method}", kind=tracing.SERVER, parent=incoming, attributes=attributes) as span:
            response = await self._serve(request, tracing.carrier() or None)
            status = response[0]
            tracing.annotate(span, http__response__status_code=status)
            if status >= 500:
                tracing.fail(span, f"HTTP {status}")
            return response

    async def _serve(self, request: Request, trace_context: dict[str, str] | None) -> Response:
        """One request's answer. ``trace_context`` goes with the call to the actor."""
        headers = request.headers
        cors = self._cors_headers(headers) if self.config.cors_origins else []
        if self.config.cors_origins and request.method == "OPTIONS" and "access-control-request-method" in headers:
            return self._preflight(cors, headers)
        message = {
            "method": request.method,
            "path": request.path,
            "queryString": request.query,
            "header": headers,
            "body": request.body,
        }
        try:
            raw = await self.ctx.invoke_actor(
                self.actor_id, OPERATION, _pack(message), timeout_s=self.config.timeout_s, trace_context=trace_context
            )
        except NoResponders as exc:
            return self._fail(503, "the actor is not running", exc, cors, trace_context)
        except LatticeError as exc:  # by the one table (lattice.errors.http_status)
            status = http_status(exc)
            if status == 503:
                return self._fail(503, "the actor is busy: retry shortly", exc, cors, trace_context, retry_after=True)
            if status == 504:
                return self._fail(504, "the actor did not answer in time", exc, cors, trace_context)
            if status == 413:  # e.g. a body at the limit whose envelope is over the actor's payload limit
                return self._fail(413, "the request is too large for the actor", exc, cors, trace_context)
            return self._fail(500, "the actor failed", exc, cors, trace_context)
        except Exception as exc:
            return self._fail(500, "the actor failed", exc, cors, trace_context)
        try:
            status, response_headers, response_body = decode_response(raw)
        except ValueError as exc:
            return self._fail(502, "the actor sent a malformed HttpResponse", exc, cors, trace_context)
        if len(response_body) > self.config.max_body_bytes:
            return _text(502, f"the actor answered a body over {self.config.max_body_bytes} bytes", cors)
        if cors:
            response_headers += cors
        return status, response_headers, response_body

    def _fail(
        self,
        status: int,
        reason: str,
        exc: BaseException,
        cors: Headers,
        trace_context: dict[str, str] | None,
        *,
        retry_after: bool = False,
    ) -> Response:
        """Answer ``status`` with a short ``reason`` and a request id; what happened (the actor, the error) goes
        to the log under that id, never to the HTTP client."""
        request_id = tracing.current_trace_id() or tracing.trace_id(trace_context) or secrets.token_hex(16)
        level = self._log.error if status == 500 and not isinstance(exc, LatticeError) else self._log.warning
        level("http request failed", status=status, request_id=request_id, error=str(exc) or type(exc).__name__,
              exc_info=not isinstance(exc, (LatticeError, ValueError)))  # fmt: skip
        headers = [*cors, (b"x-request-id", request_id.encode())]
        if retry_after:
            headers.append((b"retry-after", b"1"))
        return _text(status, f"{reason} (request id {request_id})", headers)

    def _cors_headers(self, headers: dict[str, list[str]]) -> Headers:
        origins = self.config.cors_origins
        origin = headers.get("origin", [None])[0]
        if not origins or origin is None:
            return []
        if "*" in origins:
            return [(b"access-control-allow-origin", b"*")]
        if origin in origins:
            return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"origin")]
        return []

    def _preflight(self, cors: Headers, headers: dict[str, list[str]]) -> Response:
        if not cors:
            return _text(403, "origin not allowed", [])
        requested = headers.get("access-control-request-headers", ["*"])[0].encode("latin-1")
        allow = [
            (b"access-control-allow-methods", _CORS_METHODS),
            (b"access-control-allow-headers", requested),
            (b"access-control-max-age", b"600"),
        ]
        return 204, cors + allow, b""


def _text(status: int, text: str, headers: Headers) -> Response:
    return status, [_TEXT, *headers], text.encode("utf-8") + b"\n"
