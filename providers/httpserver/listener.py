"""One HTTP listener per link: a uvicorn server (httptools) in the running loop with a raw ASGI app.

Each request becomes an ``HttpRequest`` for ``HttpServer.HandleRequest`` on the linked actor; its
``HttpResponse`` becomes the reply. What goes wrong maps to a status, never to a crash:

    body over max_body_bytes → 413      the actor failed → 500
    over the actor's payload limit → 413    malformed HttpResponse → 502
    nobody serves the actor  → 503      response body over max_body_bytes → 502
    no answer in time        → 504      CORS preflight from an origin not allowed → 403

A failure's body is a short reason and a request id (also in ``x-request-id``; the trace id when tracing
is on); the actor id and the error text go to the log under that id, not to the HTTP client.

No framework on the hot path: one dict walk for the headers, one msgpack encode, one decode.
Each request is a server span, a child of an incoming ``traceparent`` (whose trace id is kept); its
context travels to the actor in ``trace_context``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Final

import structlog
import uvicorn

from lattice.capability import ProviderContext
from lattice.errors import (
    InvocationError,
    LatticeError,
    NoResponders,
    ProviderError,
    http_status,
)
from lattice.messages import pack, unpack
from lattice.observability import tracing
from lattice.providers.httpserver.config import ListenerConfig
from lattice.providers.httpserver.guard import GuardedProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

OPERATION: Final = "HttpServer.HandleRequest"
_TOKEN: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_OURS: Final = frozenset({"content-length", "transfer-encoding", "connection"})
_CORS_METHODS: Final = b"GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
_TEXT: Final = (b"content-type", b"text/plain; charset=utf-8")

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


class _Server(uvicorn.Server):
    """uvicorn that leaves signals to whoever runs the provider and says when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


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


class Listener:
    """Serves ``actor_id`` on ``config``'s address until ``stop()``."""

    def __init__(self, ctx: ProviderContext, actor_id: str, config: ListenerConfig, link: str) -> None:
        self.ctx = ctx
        self.actor_id = actor_id
        self.config = config
        self.link = link
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = log.bind(actor_id=actor_id, url=config.url)

    async def start(self) -> None:
        """Bind and serve; ``ProviderError`` naming the link when the address or TLS files are unusable."""
        cfg = self.config
        try:
            sock = _bind(cfg.host, cfg.port, reuse_port=cfg.reuse_port)
        except OSError as exc:
            raise ProviderError(f"httpserver: link {self.link} refused: cannot listen on {cfg.url}: {exc}") from None
        config = uvicorn.Config(
            self,
            http=GuardedProtocol.with_limits(cfg.headers),
            timeout_keep_alive=max(1, round(cfg.idle_timeout_s)),
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            ssl_certfile=cfg.tls_cert,
            ssl_keyfile=cfg.tls_key,
            timeout_graceful_shutdown=5,
        )
        try:
            config.load()
        except Exception as exc:
            sock.close()
            raise ProviderError(f"httpserver: link {self.link} refused: cannot load TLS files: {exc}") from None
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"http {cfg.url}")
        ready = asyncio.create_task(self._server.ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            sock.close()
            error = self._task.exception() if not self._task.cancelled() else None
            raise ProviderError(f"httpserver: link {self.link}: server on {cfg.url} did not start: {error}")
        self._log.info("http listener started")

    async def stop(self) -> None:
        """Stop accepting, let requests in progress finish (bounded), close the socket."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task
        self._server = self._task = None
        self._log.info("http listener stopped")

    # --- the ASGI app ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers: dict[str, list[str]] = {}
        for raw_name, raw_value in scope["headers"]:
            headers.setdefault(raw_name.decode("latin-1"), []).append(raw_value.decode("latin-1"))
        method = scope["method"]
        incoming = {k: headers[k][0] for k in (tracing.TRACEPARENT, "tracestate") if k in headers}
        attributes = (
            {"http.request.method": method, "url.path": scope["path"], "lattice.actor_id": self.actor_id}
            if tracing.enabled()
            else None
        )
        with tracing.span(f"HTTP {method}", kind=tracing.SERVER, parent=incoming, attributes=attributes) as span:
            status = await self._serve(scope, receive, send, headers)
            tracing.annotate(span, http__response__status_code=status)
            if status >= 500:
                tracing.fail(span, f"HTTP {status}")

    async def _serve(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, list[str]]) -> int:
        """One request, answered; returns the status sent. The trace context of the current span goes on."""
        cors = self._cors_headers(headers)
        method = scope["method"]
        if self.config.cors_origins and method == "OPTIONS" and "access-control-request-method" in headers:
            return await self._preflight(send, cors, headers)
        body = await self._read_body(headers, receive)
        if body is None:
            # uvicorn reads and drops the rest of the body, so the connection stays usable
            return await _reply(send, 413, f"request body over {self.config.max_body_bytes} bytes", cors)
        request = {
            "method": method,
            "path": scope["path"],
            "queryString": scope["query_string"].decode("latin-1"),
            "header": headers,
            "body": body,
        }
        try:
            raw = await self.ctx.invoke_actor(
                self.actor_id,
                OPERATION,
                pack(request),
                timeout_s=self.config.timeout_s,
                trace_context=tracing.carrier() or None,
            )
        except NoResponders as exc:
            return await self._fail(send, 503, "the actor is not running", exc, cors)
        except LatticeError as exc:  # by the one table (lattice.errors.http_status)
            status = http_status(exc)
            if status == 503:
                return await self._fail(send, 503, "the actor is busy: retry shortly", exc, cors, retry_after=True)
            if status == 504:
                return await self._fail(send, 504, "the actor did not answer in time", exc, cors)
            if status == 413:  # e.g. a body at the limit whose envelope is over the actor's payload limit
                return await self._fail(send, 413, "the request is too large for the actor", exc, cors)
            return await self._fail(send, 500, "the actor failed", exc, cors)
        except Exception as exc:
            return await self._fail(send, 500, "the actor failed", exc, cors)
        try:
            status, response_headers, response_body = decode_response(raw)
        except ValueError as exc:
            return await self._fail(send, 502, "the actor sent a malformed HttpResponse", exc, cors)
        if len(response_body) > self.config.max_body_bytes:
            limit = self.config.max_body_bytes
            return await _reply(send, 502, f"the actor answered a body over {limit} bytes", cors)
        return await _send(send, status, response_headers + cors, response_body)

    async def _fail(
        self, send: Send, status: int, reason: str, exc: BaseException, cors: Headers, *, retry_after: bool = False
    ) -> int:
        """Answer ``status`` with a short ``reason`` and a request id; what happened (the actor, the error) goes
        to the log under that id, never to the HTTP client."""
        request_id = tracing.current_trace_id() or secrets.token_hex(16)
        level = self._log.error if status == 500 and not isinstance(exc, LatticeError) else self._log.warning
        level("http request failed", status=status, request_id=request_id, error=str(exc) or type(exc).__name__,
              exc_info=not isinstance(exc, (LatticeError, ValueError)))  # fmt: skip
        headers = [*cors, (b"x-request-id", request_id.encode())]
        return await _reply(send, status, f"{reason} (request id {request_id})", headers, retry_after=retry_after)

    async def _read_body(self, headers: dict[str, list[str]], receive: Receive) -> bytes | None:
        """The request body, or ``None`` when it is over the limit (checked before reading if possible)."""
        limit = self.config.max_body_bytes
        declared = headers.get("content-length")
        if declared and declared[0].isdigit() and int(declared[0]) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b""  # the client went away; nobody will read the answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

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

    async def _preflight(self, send: Send, cors: Headers, headers: dict[str, list[str]]) -> int:
        if not cors:
            return await _reply(send, 403, "origin not allowed", [])
        requested = headers.get("access-control-request-headers", ["*"])[0].encode("latin-1")
        allow = [
            (b"access-control-allow-methods", _CORS_METHODS),
            (b"access-control-allow-headers", requested),
            (b"access-control-max-age", b"600"),
        ]
        return await _send(send, 204, cors + allow, b"")


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> int:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


async def _reply(send: Send, status: int, text: str, cors: Headers, *, retry_after: bool = False) -> int:
    headers = [_TEXT, *cors, *([(b"retry-after", b"1")] if retry_after else [])]
    return await _send(send, status, headers, text.encode("utf-8") + b"\n")
