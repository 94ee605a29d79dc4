"""What a wasi:http component's host resources stand for, and the table that holds them per instance.

Every WASI resource the host hands a component (fields, requests, bodies, streams, pollables, errors)
is a Python object in the ``Table`` of the instance being called; the guest holds only its ``rep``. The
host functions find the table through a thread-local (a Store is only ever used by the thread calling
into it), so the resources of one instance never leak into another, and they go when the instance goes.

Owns: the resource type ids, the resource classes, ``Table``, ``InstanceState`` and ``current()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lattice.host.component.wasi_http.cabi import HostTrap

# Host resource type ids (wasmtime ``ResourceType.host``): one per WIT resource, in a range of our own.
_BASE = 0x4C415400  # "LAT\0"
(
    T_ERROR,
    T_POLLABLE,
    T_INPUT_STREAM,
    T_OUTPUT_STREAM,
    T_FIELDS,
    T_INCOMING_REQUEST,
    T_OUTGOING_REQUEST,
    T_REQUEST_OPTIONS,
    T_RESPONSE_OUTPARAM,
    T_INCOMING_RESPONSE,
    T_INCOMING_BODY,
    T_FUTURE_TRAILERS,
    T_OUTGOING_RESPONSE,
    T_OUTGOING_BODY,
    T_FUTURE_INCOMING_RESPONSE,
    T_TERMINAL_INPUT,
    T_TERMINAL_OUTPUT,
    T_DESCRIPTOR,
    T_DIRECTORY_ENTRY_STREAM,
) = range(_BASE, _BASE + 19)

LogSink = Callable[[str, str], None]


@dataclass(slots=True)
class Error:
    message: str
    http_code: tuple[str, Any] | None = None  # an error-code case (name, payload) for ``http-error-code``


@dataclass(slots=True)
class Pollable:
    ready_at: float = 0.0  # ``time.monotonic()`` when ready; 0 = ready now

    def ready(self) -> bool:
        return self.ready_at <= time.monotonic()


@dataclass(slots=True)
class InputStream:
    """Bytes already in the host (a request or response body), read in chunks; EOF = ``closed``."""

    data: bytes
    pos: int = 0

    def read(self, n: int) -> bytes | None:
        if self.pos >= len(self.data):
            return None
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


class OutputStream:
    """Where a component writes: an outgoing body (bounded) or the host log (stdout/stderr)."""

    __slots__ = ("closed", "sink")

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        self.closed = False


@dataclass(slots=True)
class Fields:
    entries: list[tuple[str, bytes]] = field(default_factory=list)
    immutable: bool = False


@dataclass(slots=True)
class IncomingBody:
    data: bytes
    stream_taken: bool = False


@dataclass(slots=True)
class IncomingRequest:
    method: str
    path_with_query: str
    headers: list[tuple[str, bytes]]
    body: bytes
    authority: str | None = None
    consumed: bool = False


@dataclass(slots=True)
class IncomingResponse:
    status: int
    headers: list[tuple[str, bytes]]
    body: bytes
    consumed: bool = False


@dataclass(slots=True)
class OutgoingBody:
    """A body the component writes; ``limit`` bytes at most (``over`` once it tried to write more)."""

    limit: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    stream_taken: bool = False
    finished: bool = False
    dropped: bool = False
    over: bool = False

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.limit:
            self.over = True
            raise BodyTooLarge(f"body over its limit of {self.limit} bytes")
        self.chunks.append(data)
        self.size += len(data)


def may_block() -> None:
    """Called before anything that blocks (outgoing HTTP, sleeping): unwinds an inline call."""
    state = current()
    if state.inline:
        state.not_inline = True
        raise HostTrap("blocking in an inline call: run again on a worker thread")


class BodyTooLarge(Exception):
    """A write would take a body past its limit."""


@dataclass(slots=True)
class OutgoingResponse:
    headers: Fields
    status: int = 200
    body: OutgoingBody | None = None


@dataclass(slots=True)
class OutgoingRequest:
    headers: Fields
    method: str = "GET"
    scheme: str | None = None
    authority: str | None = None
    path_with_query: str | None = None
    body: OutgoingBody | None = None


@dataclass(slots=True)
class RequestOptions:
    connect_timeout_ns: int | None = None
    first_byte_timeout_ns: int | None = None
    between_bytes_timeout_ns: int | None = None


@dataclass(slots=True)
class FutureIncomingResponse:
    """The answer to an outgoing request (already complete: the host fetched it before returning)."""

    result: tuple[bool, Any]  # (True, IncomingResponse) or (False, error-code case)
    taken: bool = False


@dataclass(slots=True)
class Outparam:
    """A ``response-outparam``: what the handler answered, once it called ``set``."""

    response: OutgoingResponse | None = None
    error: str | None = None
    set: bool = False


_T = TypeVar("_T")


class Table:
    """One instance's live host resources by ``rep``."""

    __slots__ = ("_items", "_next")

    def __init__(self) -> None:
        self._items: dict[int, Any] = {}
        self._next = 1

    def add(self, item: Any) -> int:
        rep = self._next
        self._next += 1
        self._items[rep] = item
        return rep

    def get(self, rep: int, kind: type[_T]) -> _T:
        item = self._items.get(rep)
        if not isinstance(item, kind):
            raise HostTrap(f"unknown {kind.__name__} handle {rep}")
        return item

    def pop(self, rep: int) -> Any:
        return self._items.pop(rep, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(slots=True)
class Grants:
    """What a component's WASI may see (SPEC §7, as §1): env and args the manifest grants; the outgoing
    HTTP hosts it allows (``allowed_hosts``, exact ``host`` or ``host:port``, ``*.suffix``; none by default)."""

    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 1024 * 1024
    outgoing_timeout_s: float = 10.0


class InstanceState:
    """The host side of one component instance: its resource table, grants and log sink."""

    __slots__ = ("_partial", "grants", "inline", "log_sink", "name", "not_inline", "stderr_tail", "table")

    def __init__(self, name: str, grants: Grants, log_sink: LogSink) -> None:
        self.name = name
        self.grants = grants
        self.log_sink = log_sink
        self.table = Table()
        self.stderr_tail = ""  # the end of what the guest wrote to stderr in this call
        self.inline = False  # this call runs on the event loop: nothing may block
        self.not_inline = False  # the guest tried to block in an inline call: run it again elsewhere
        self._partial: dict[str, str] = {}

    def write_log(self, stream: str, data: bytes) -> None:
        """Guest stdout/stderr, to the log sink a line at a time (guests write in fragments)."""
        text = self._partial.pop(stream, "") + data.decode("utf-8", "replace")
        if stream == "stderr":
            self.stderr_tail = (self.stderr_tail + data.decode("utf-8", "replace"))[-STDERR_TAIL:]
        *lines, rest = text.split("\n")
        for line in lines:
            self.log_sink(stream, line)
        if len(rest) > STDERR_TAIL:
            self.log_sink(stream, rest)
        elif rest:
            self._partial[stream] = rest

    def end_call(self) -> None:
        """Flush partial log lines; forget this call's stderr."""
        for stream, rest in self._partial.items():
            self.log_sink(stream, rest)
        self._partial.clear()
        self.stderr_tail = ""


STDERR_TAIL = 4096


_current = threading.local()


def current() -> InstanceState:
    state: InstanceState | None = getattr(_current, "state", None)
    if state is None:
        raise HostTrap("no component instance is being called on this thread")
    return state


def enter(state: InstanceState | None) -> InstanceState | None:
    """Make ``state`` the current instance of this thread; returns the previous one."""
    previous: InstanceState | None = getattr(_current, "state", None)
    _current.state = state
    return previous
