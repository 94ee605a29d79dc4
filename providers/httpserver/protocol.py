"""HTTP/1.1 on a raw ``asyncio.Protocol`` with ``httptools``: one connection's parsing, limits and replies.

The listener's handler gets each whole request (``Request``) and returns ``(status, headers, body)``;
everything between the socket and that call is here, with no ASGI cycle in between:

- keep-alive (HTTP/1.1 by default, closed on ``connection: close``; HTTP/1.0 is answered and closed),
  pipelining (requests answered in order; reading pauses while one waits), ``Expect: 100-continue``,
  ``HEAD`` (the headers of the body, not the body), chunked request bodies; a response is one write;
- the guards (``guard.HeaderLimits``): request line and headers over ``max_header_bytes`` or more than
  ``max_headers`` lines → 431; headers not complete ``header_timeout_s`` after the connection opened or
  the previous response → 408; an HTTP/1.1 request without ``Host`` or with two → 400; a body over
  ``max_body_bytes`` → 413; a connection idle ``idle_timeout_s`` after a response is closed. A refusal
  stops parsing, waits behind the answers still owed to the requests before it (in order), then is
  answered and the connection closed the way a browser can read (``guard.close_gently``); a client that
  half-closes still gets every answer owed;
- a request whose handler finishes without waiting (an actor called inline on the event loop) is answered
  without a task: the handler's coroutine is stepped once here and handed to a task only if it waits.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final, cast
from urllib.parse import unquote

import httptools
import structlog

from lattice.providers.httpserver.guard import HeaderLimits, close_gently, refusal

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, Headers, bytes]


def _phrase(code: int) -> bytes:
    try:
        return HTTPStatus(code).phrase.encode()
    except ValueError:
        return b""


PIPELINE_DEPTH: Final = 16  # requests parsed ahead of their answer before reading pauses
_STATUS: Final = {code: b"HTTP/1.1 %d %s\r\n" % (code, _phrase(code)) for code in range(100, 600)}
_NO_BODY: Final = frozenset({204, 304}) | frozenset(range(100, 200))

log = structlog.get_logger("lattice.providers.httpserver")


@dataclass(slots=True)
class Request:
    """One parsed request. Header names are lowercase; a name's values in arrival order."""

    method: str
    path: str  # percent-decoded
    query: str  # as sent
    headers: dict[str, list[str]]
    body: bytes


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(slots=True)
class ServerSettings:
    """What every connection of one listener shares."""

    handler: Handler
    limits: HeaderLimits
    max_body_bytes: int
    idle_timeout_s: float
    connections: set[HttpConnection]
    tasks: set[asyncio.Task[Response]]
    drained: asyncio.Event | None = None  # set once ``connections`` is empty (the listener stopping)


class _Date:
    """The ``date`` header, formatted once a second."""

    second = -1
    header = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.header = second, b"date: " + formatdate(second, usegmt=True).encode() + b"\r\n"
        return cls.header


class _Resume:
    """Hands a coroutine that already ran its first step, and is waiting on ``first``, to a task."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Response], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, Response]:
        yielded = self.first
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # the task's cancellation, passed on as the coroutine expects
                try:
                    yielded = self.coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    yielded = self.coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]


async def _rest(awaitable: Awaitable[Response]) -> Response:
    return await awaitable


class HttpConnection(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    def __init__(self, settings: ServerSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.loop = loop
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport | None = None
        self.queue: deque[tuple[Request, bool]] = deque()  # parsed, not yet answered
        self.busy = False  # a request's handler is running
        self.closing = False  # answer what is in flight, then close
        self.lingering = False  # refused: input is read and dropped
        self.refusal: bytes | None = None  # the refusal owed once the answers before it are written
        self.eof = False  # the client half-closed: close once every answer owed is written
        # the request being parsed
        self.url = b""
        self.headers: dict[str, list[str]] = {}
        self.header_bytes = self.header_lines = 0
        self.chunks: list[bytes] = []
        self.size = 0
        # deadlines (loop time) checked by one lazily re-armed timer
        self.header_due: float | None = None
        self.idle_due: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.paused = False

    # --- connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.settings.connections.add(self)
        self._due_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self.settings.connections.discard(self)
        if self.settings.drained is not None and not self.settings.connections:
            self.settings.drained.set()
        self.queue.clear()
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def eof_received(self) -> bool | None:
        if self.busy or self.queue or self.refusal is not None:
            self.eof = True
            return True  # a half-closed client still gets the answers owed (``_next`` closes after them)
        return None  # nothing owed: the transport closes

    def shutdown(self) -> None:
        """The listener stops: close now when idle, else after the answer in flight."""
        self.closing = True
        if not self.busy and self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        self.idle_due = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol upgrades here: the request was answered as plain HTTP, the rest is dropped
        except httptools.HttpParserError as exc:
            if not self.lingering:  # a guard's refusal has already answered
                self._refuse(b"400 Bad Request", f"invalid HTTP request: {exc}")

    # --- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.header_bytes = self.header_lines = 0
        self.chunks = []
        self.size = 0
        if self.header_due is None:
            self._due_headers()

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value), 1)
        key = name.decode("latin-1").lower()
        text = value.rstrip(b" \t").decode("latin-1")
        if key in self.headers:
            self.headers[key].append(text)
        else:
            self.headers[key] = [text]

    def _count(self, size: int, lines: int) -> None:
        self.header_bytes += size
        self.header_lines += lines
        limits = self.limits
        if self.header_lines > limits.max_headers:
            self._refuse(b"431 Request Header Fields Too Large", f"more than {limits.max_headers} header lines")
            raise _Refused
        if self.header_bytes > limits.max_header_bytes:
            reason = f"request line and headers over {limits.max_header_bytes} bytes"
            self._refuse(b"431 Request Header Fields Too Large", reason)
            raise _Refused

    def on_headers_complete(self) -> None:
        self.header_due = None
        headers = self.headers
        if "host" not in headers and self.parser.get_http_version() == "1.1":
            self._refuse(b"400 Bad Request", "an HTTP/1.1 request needs a Host header")
            raise _Refused
        if len(headers.get("host", ())) > 1:
            self._refuse(b"400 Bad Request", "a request must have at most one Host header")
            raise _Refused
        declared = headers.get("content-length")
        if declared and declared[0].isdigit() and int(declared[0]) > self.settings.max_body_bytes:
            self._refuse_body()
            raise _Refused
        if "expect" in headers and headers["expect"][0].lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.settings.max_body_bytes:
            self.chunks = []
            self._refuse_body()
            raise _Refused
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.lingering:
            return
        parsed = httptools.parse_url(self.url)
        path = parsed.path.decode("latin-1")
        request = Request(
            self.parser.get_method().decode("ascii"),
            unquote(path) if "%" in path else path,
            parsed.query.decode("latin-1") if parsed.query else "",
            self.headers,
            b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0],
        )
        keep_alive = self.parser.get_http_version() == "1.1" and self.parser.should_keep_alive()
        self.queue.append((request, keep_alive))
        if self.busy:
            if len(self.queue) >= PIPELINE_DEPTH and self.transport is not None and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._next()

    # --- answering --------------------------------------------------------------------------------

    def _next(self) -> None:
        """Start the oldest request parsed and not answered yet (if any, and nothing is running)."""
        while self.queue and not self.busy and not self.closed():
            request, keep_alive = self.queue.popleft()
            self.busy = True
            context = contextvars.copy_context()
            coro = self.settings.handler(request)
            try:
                first = context.run(coro.send, None)
            except StopIteration as done:
                self._answer(request, keep_alive, done.value)
                continue
            except Exception:
                log.exception("http handler failed")
                self._answer(request, False, (500, [], b"internal error\n"))
                return
            task = self.loop.create_task(_rest(_Resume(coro, first)), context=context)
            self.settings.tasks.add(task)
            task.add_done_callback(functools.partial(self._answered, request=request, keep_alive=keep_alive))
            return
        if not self.busy and not self.queue and not self.closed():
            self._owed_done()

    def _owed_done(self) -> None:
        """Every answer owed is written: send the refusal queued behind them; close if the client half-closed."""
        transport = cast(asyncio.Transport, self.transport)
        if self.refusal is not None:
            close_gently(transport, self.loop, self.refusal)
            self.refusal = None
        if self.eof:
            transport.close()  # the client ended its side: nothing left to read and drop

    def closed(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def _answered(self, task: asyncio.Task[Response], *, request: Request, keep_alive: bool) -> None:
        self.settings.tasks.discard(task)
        if task.cancelled():
            self.busy = False
            if self.transport is not None:
                self.transport.close()
            return
        exc = task.exception()
        if exc is not None:
            log.error("http handler failed", exc_info=exc)
            self._answer(request, False, (500, [], b"internal error\n"))
            return
        self._answer(request, keep_alive, task.result())
        self._next()

    def _answer(self, request: Request, keep_alive: bool, response: Response) -> None:
        """Write ``response`` in one go; then close, or wait for the next request."""
        self.busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        status, headers, body = response
        keep_alive = keep_alive and not self.closing
        out = [_STATUS.get(status) or b"HTTP/1.1 %d \r\n" % status, _Date.now()]
        for name, value in headers:
            out += (name, b": ", value, b"\r\n")
        if status not in _NO_BODY:
            out.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        if request.method != "HEAD" and status not in _NO_BODY:
            out.append(body)
        transport.write(b"".join(out))
        if not keep_alive:
            transport.close()
            return
        if not self.queue and not self.lingering:
            self.idle_due = self.loop.time() + self.settings.idle_timeout_s
            self._due_headers()
        if self.paused:
            self.paused = False
            transport.resume_reading()

    def _refuse_body(self) -> None:
        self._refuse(b"413 Content Too Large", f"request body over {self.settings.max_body_bytes} bytes")

    def _refuse(self, status: bytes, reason: str) -> None:
        """Drop the rest of the input; answer ``status`` and close once the requests before it are answered."""
        self.lingering = True
        self._cancel_timer()
        self.refusal = refusal(status, reason)
        if not self.busy and not self.queue and not self.closed():
            self._owed_done()

    # --- timeouts ---------------------------------------------------------------------------------

    def _due_headers(self) -> None:
        self.header_due = due = self.loop.time() + self.limits.header_timeout_s
        if self.idle_due is not None and self.idle_due < due:
            due = self.idle_due
        if self.timer is not None:
            if self.timer_at <= due:
                return  # it fires first and then sleeps again until what is due
            self.timer.cancel()
        self.timer_at = due
        self.timer = self.loop.call_at(due, self._check_time)

    def _cancel_timer(self) -> None:
        self.header_due = self.idle_due = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check_time(self) -> None:
        """The one timer: act on a deadline that passed, else sleep until the next one."""
        self.timer = None
        transport = self.transport
        if transport is None or transport.is_closing() or self.lingering:
            return
        now = self.loop.time()
        if self.idle_due is not None and now >= self.idle_due and not self.busy:
            transport.close()  # an idle keep-alive connection: closed silently
            return
        if self.header_due is not None and now >= self.header_due and not self.busy:
            reason = f"request headers not received within {self.limits.header_timeout_s:g} s"
            self._refuse(b"408 Request Timeout", reason)
            return
        due = [t for t in (self.idle_due, self.header_due) if t is not None]
        if due:
            self.timer_at = min(due)
            self.timer = self.loop.call_at(self.timer_at, self._check_time)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing after a refusal was answered."""
