"""Link values of the httpserver provider → one ``ListenerConfig`` per link (pure; no sockets here).

    port            TCP port, 1–65535 (default 8000, wasmCloud's default)
    address         ``host:port`` (``[::1]:8080`` for IPv6); wins over ``port``; default host 127.0.0.1
    max_body_bytes  largest request body accepted, else 413 (default 16 MiB)
    timeout_ms      how long to wait for the actor, else 504 (default: the invocation timeout)
    cors_origins    comma-separated allowed origins, ``*`` for any; enables CORS headers and preflight
    tls_cert        PEM certificate path; with ``tls_key``, serve HTTPS
    tls_key         PEM private key path
    max_headers     most header lines in a request, else 431 (default 100)
    max_header_bytes  request line and headers together, at most, else 431 (default 64 KiB)
    header_timeout_ms a request's headers must arrive within this, else 408 and the connection is
                    closed (default 10 s; slowloris)
    idle_timeout_ms how long a keep-alive connection may sit idle between requests (default 5 s)
    reuse_port      ``true``: bind with SO_REUSEPORT, so the same provider in several host processes on
                    one machine shares the port and the kernel spreads connections over them (each
                    serves the actor instances of its own host); off by default, so a port already
                    taken is refused rather than silently shared, except on hosts started with
                    ``LATTICE_HTTP_REUSE_PORT`` (host workers, ``lattice up``), where it is on unless
                    the link says ``false``

Names are case-insensitive (``PORT`` works too). Anything invalid raises ``ProviderError`` naming the
link and the value, so the link is refused and the provider keeps serving the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from lattice.errors import ProviderError
from lattice.messages import LinkDefinition
from lattice.providers.httpserver.guard import (
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADERS,
    HeaderLimits,
)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
DEFAULT_MAX_BODY: Final = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY
    timeout_s: float | None = None
    cors_origins: tuple[str, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    reuse_port: bool = False
    headers: HeaderLimits = field(default_factory=HeaderLimits)
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.port}"


def _port(text: str, what: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{what} must be in 1–65535, got {port}")
    return port


def _positive(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value}")
    return value


def _opt(values: dict[str, str], name: str, default: int) -> int:
    return _positive(values[name], name) if values.get(name) else default


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise ValueError(f"address must be host:port, got {text!r}")
    host = host.strip("[]") or DEFAULT_HOST
    return host, _port(port, "address port")


def _flag(text: str, what: str) -> bool:
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{what} must be true or false, got {text!r}")


def listener_config(link: LinkDefinition, *, reuse_port: bool = False) -> ListenerConfig:
    """The listener ``link`` asks for (``reuse_port``: the default when the link does not say);
    ``ProviderError`` naming the link when a value is invalid."""
    values = {k.lower(): v.strip() for k, v in link.values.items()}
    try:
        host, port = DEFAULT_HOST, DEFAULT_PORT
        if values.get("address"):
            host, port = _address(values["address"])
        elif values.get("port"):
            port = _port(values["port"], "port")
        cert, key = values.get("tls_cert") or None, values.get("tls_key") or None
        if bool(cert) != bool(key):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        return ListenerConfig(
            host=host,
            port=port,
            max_body_bytes=_positive(values["max_body_bytes"], "max_body_bytes")
            if values.get("max_body_bytes")
            else DEFAULT_MAX_BODY,
            timeout_s=_positive(values["timeout_ms"], "timeout_ms") / 1000 if values.get("timeout_ms") else None,
            cors_origins=tuple(o.strip() for o in values.get("cors_origins", "").split(",") if o.strip()),
            tls_cert=cert,
            tls_key=key,
            reuse_port=_flag(values["reuse_port"], "reuse_port") if values.get("reuse_port") else reuse_port,
            headers=HeaderLimits(
                max_headers=_opt(values, "max_headers", DEFAULT_MAX_HEADERS),
                max_header_bytes=_opt(values, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES),
                header_timeout_s=_opt(values, "header_timeout_ms", int(DEFAULT_HEADER_TIMEOUT_S * 1000)) / 1000,
            ),
            idle_timeout_s=_opt(values, "idle_timeout_ms", int(DEFAULT_IDLE_TIMEOUT_S * 1000)) / 1000,
        )
    except ValueError as exc:
        raise ProviderError(f"httpserver: link from {link.actor_id} ({link.link_name}) refused: {exc}") from None
