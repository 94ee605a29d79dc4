"""uvicorn's httptools protocol with the limits a public HTTP listener needs and uvicorn lacks.

uvicorn bounds the idle time between keep-alive requests (``timeout_keep_alive``) but, with httptools,
neither how many header bytes or lines a request may send nor how long it may take to send them: a
client could send 100 000 headers, one 8 MiB header, or trickle a request forever (slowloris) and hold a
connection. Here: a request line and headers over ``max_header_bytes`` in total, or more than
``max_headers`` lines, are answered ``431 Request Header Fields Too Large`` and the connection closed; a
connection that has not finished its request's headers ``header_timeout_s`` after it opened (or after
its previous response) is answered ``408 Request Timeout`` and closed. Both close the way a browser
can read: the answer, then end-of-stream, then what the client still sends is read and dropped for up to
``LINGER_S`` (closing with unread input would reset the connection and lose the answer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEADERS: Final = 100
DEFAULT_MAX_HEADER_BYTES: Final = 64 * 1024
DEFAULT_HEADER_TIMEOUT_S: Final = 10.0
DEFAULT_IDLE_TIMEOUT_S: Final = 5.0
LINGER_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    max_headers: int = DEFAULT_MAX_HEADERS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S


class _TooLarge(Exception):
    """Stops the parser mid-headers; uvicorn turns a callback error into ``send_400_response``."""


def _response(status: bytes, message: str) -> bytes:
    body = message.encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class GuardedProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus header limits and a header deadline (``limits``, set per listener)."""

    limits: HeaderLimits = HeaderLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._header_count = 0
        self._refusal: bytes | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._lingering = False

    @classmethod
    def with_limits(cls, limits: HeaderLimits) -> type[GuardedProtocol]:
        return type("GuardedProtocol", (cls,), {"limits": limits})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing() and not self._lingering:
            message = f"request headers not received within {self.limits.header_timeout_s:g} s"
            self._answer_and_close(_response(b"408 Request Timeout", message))

    def _answer_and_close(self, response: bytes) -> None:
        self._disarm()
        self._lingering = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._lingering:  # after a refusal, input is read and dropped until the close
            super().data_received(data)

    def eof_received(self) -> None:
        if self._lingering:
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url), lines=0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value), lines=1)
        super().on_header(name, value)

    def _count(self, size: int, lines: int) -> None:
        self._header_bytes += size
        self._header_count += lines
        if self._header_count > self.limits.max_headers:
            self._refuse(f"more than {self.limits.max_headers} header lines")
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse(f"request line and headers over {self.limits.max_header_bytes} bytes")

    def _refuse(self, reason: str) -> None:
        self._refusal = _response(b"431 Request Header Fields Too Large", reason)
        raise _TooLarge(reason)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers are due within the limit too

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self._answer_and_close(self._refusal)
