"""The limits a public HTTP listener needs, and how a refused connection is closed.

A client could send 100 000 headers, one 8 MiB header, or trickle a request forever (slowloris) and hold
a connection. ``HeaderLimits`` bounds that (``protocol.HttpConnection`` applies it): a request line and
headers over ``max_header_bytes`` in total, or more than ``max_headers`` lines, are answered ``431
Request Header Fields Too Large``; a connection that has not finished its request's headers
``header_timeout_s`` after it opened (or after its previous response) is answered ``408 Request
Timeout``. Every refusal closes the way a browser can read (``close_gently``): the answer, then
end-of-stream, then what the client still sends is read and dropped for up to ``LINGER_S`` (closing
with unread input would reset the connection and lose the answer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

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


def refusal(status: bytes, message: str) -> bytes:
    """A whole ``status`` response (``b"431 Request Header Fields Too Large"``) with ``message`` as its
    text body, closing the connection."""
    body = message.encode() + b"\n"
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


def close_gently(transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, response: bytes) -> None:
    """Write ``response``, end the stream and close after ``LINGER_S`` (or when the client closes first;
    the protocol drops input meanwhile)."""
    transport.write(response)
    if transport.can_write_eof():
        transport.write_eof()
        loop.call_later(LINGER_S, transport.close)
    else:
        transport.close()
