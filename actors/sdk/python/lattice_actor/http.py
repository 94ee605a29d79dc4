"""HTTP for actors: SPEC §2's ``HttpRequest`` and ``HttpResponse`` maps as Python objects.

``HttpRequest.decode`` reads the msgpack the HTTP server provider sends; ``HttpResponse.encode`` writes the
answer. Header names are lower-cased on the way in (HTTP field names are case-insensitive).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from lattice_actor import codec
from lattice_actor.errors import ActorError, describe

Headers = dict[str, list[str]]


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query_string: str = ""
    headers: Headers = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def decode(cls, payload: bytes) -> HttpRequest:
        try:
            m = codec.unpack(payload)
        except MemoryError:
            raise  # not malformed: the guest's memory is exhausted (``guest.dispatch`` says so)
        except Exception as exc:
            raise ActorError(f"malformed HttpRequest: {describe(exc)}") from None
        if not isinstance(m, dict) or not isinstance(m.get("method"), str) or not isinstance(m.get("path"), str):
            raise ActorError("malformed HttpRequest: want a map with method and path")
        headers = {str(k).lower(): _values(v) for k, v in (m.get("header") or {}).items()}
        body = m.get("body") or b""
        return cls(m["method"], m["path"], m.get("queryString") or "", headers, _bytes(body))

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), or ``default``."""
        values = self.headers.get(name.lower())
        return values[0] if values else default

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string parsed: ``?a=1&a=2`` → ``{"a": ["1", "2"]}``."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON raises ActorError (→ the call fails with that text)."""
        try:
            return _json.loads(self.body or b"null")
        except ValueError as exc:
            raise ActorError(f"request body is not JSON: {exc}") from None


@dataclass
class HttpResponse:
    status: int = 200
    headers: Headers = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def text(cls, text: str, status: int = 200, headers: Headers | None = None) -> HttpResponse:
        return cls(status, {"content-type": ["text/plain; charset=utf-8"], **(headers or {})}, text.encode())

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: Headers | None = None) -> HttpResponse:
        body = _json.dumps(value, separators=(",", ":")).encode()
        return cls(status, {"content-type": ["application/json"], **(headers or {})}, body)

    @classmethod
    def of(cls, value: Any) -> HttpResponse:
        """What a handler returned, as a response: an HttpResponse, str (text), bytes, or JSON (dict/list)."""
        if isinstance(value, HttpResponse):
            return value
        if isinstance(value, str):
            return cls.text(value)
        if isinstance(value, bytes | bytearray):
            return cls(200, {"content-type": ["application/octet-stream"]}, bytes(value))
        if value is None:
            return cls(204)
        return cls.json(value)

    def encode(self) -> bytes:
        return codec.pack({"statusCode": self.status, "header": self.headers, "body": bytes(self.body)})


def _values(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v if isinstance(v, str) else str(v) for v in value]
    return [value if isinstance(value, str) else str(value)]


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)
