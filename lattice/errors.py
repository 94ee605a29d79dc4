"""The error hierarchy every lattice participant raises and reports.

    LatticeError                      anything lattice raises on purpose
    ├── ConfigError                   bad flags, env or settings
    ├── ManifestError                 a bad application manifest (field, line)
    │   └── VersionConflict           a version that exists with other content (versions are immutable)
    ├── ClaimsError                   bad, tampered, expired or untrusted claims (SPEC §3)
    ├── InvalidActor                  not Wasm, or not a waPC actor (SPEC §1)
    ├── NotFound                      an unknown actor, host, application or artifact
    ├── InvalidName                   a name or id that cannot be a NATS subject token (too long, '.', ...)
    ├── ConnectionLost                the NATS connection is gone for good: the process must exit
    ├── InvocationError               a call that did not produce a result (SPEC §4)
    │   ├── ActorError                the guest answered with __guest_error / env.abort
    │   ├── ActorTrap                 the guest trapped (unreachable, out of bounds, ...)
    │   ├── DeadlineExceeded          the call ran past its deadline (epoch interruption)
    │   ├── Expired                   the caller had given up before the call could run (dropped)
    │   ├── LimitExceeded             memory, payload size, instances or in-flight calls
    │   │   └── Busy                  every instance busy and the wait queue full (retry later)
    │   ├── Closed                    the actor or sandbox was closed: no call will ever succeed (do not retry)
    │   ├── LinkNotFound              a host call with no link definition for its contract
    │   ├── CapabilityDenied          a signed actor calling a contract outside its claims
    │   ├── Unreachable               nobody answered within the timeout (dead host/provider)
    │   │   └── NoResponders          nobody serves the target at all (not running anywhere)
    │   └── RemoteError               the far end answered an InvocationResponse with `error`
    ├── RegistryError                 an OCI push/pull failed (unreachable, unknown tag, wrong digest, not Wasm)
    └── ProviderError                 a capability provider failed to serve a call

Every message names what failed and, where there is one, the fix. Every class has a ``kind`` ("busy",
"deadline", ...) that travels in ``InvocationResponse.error_kind`` (``error_of_kind`` rebuilds the error on the
caller's side) and keys the one table of HTTP statuses (``http_status``).
"""

from __future__ import annotations

from typing import ClassVar


class LatticeError(Exception):
    """Base of every error lattice raises on purpose."""

    kind: ClassVar[str] = "error"


class ConfigError(LatticeError):
    """Invalid configuration (flags, environment, settings)."""

    kind: ClassVar[str] = "config"


class ManifestError(LatticeError):
    """An invalid application manifest.

    ``field`` is a dotted path (``spec.components[0].properties.image``), ``line`` the 1-based line
    in the source document when known.
    """

    kind: ClassVar[str] = "manifest"

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        where = ""
        if field:
            where += f" at {field}"
        if line:
            where += f" (line {line})"
        super().__init__(f"{message}{where}")
        self.reason = message
        self.field = field
        self.line = line


class VersionConflict(ManifestError):
    """A manifest whose version is already stored with other content: versions never change."""

    kind: ClassVar[str] = "version_conflict"


class ClaimsError(LatticeError):
    """Claims that fail parsing or verification; the message is the reason."""

    kind: ClassVar[str] = "claims"


class InvalidActor(LatticeError):
    """Bytes that are not a loadable waPC actor."""

    kind: ClassVar[str] = "invalid_actor"


class NotFound(LatticeError):
    """An unknown actor, host, application, link or artifact."""

    kind: ClassVar[str] = "not_found"


class InvalidName(LatticeError):
    """A name, id or key that cannot become part of a NATS subject (empty, too long, separators)."""

    kind: ClassVar[str] = "invalid_name"


class ConnectionLost(LatticeError):
    """The NATS connection closed without being asked to, or stayed down past the give-up time.

    A participant that raises it has stopped serving and released its ports; its process exits
    non-zero so that its supervisor starts it again.
    """

    kind: ClassVar[str] = "connection_lost"


class InvocationError(LatticeError):
    """A call that produced no result. The message is what the caller sees."""

    kind: ClassVar[str] = "invalid"


class ActorError(InvocationError):
    """The guest reported an error (``__guest_error`` or ``env.abort``)."""

    kind: ClassVar[str] = "actor_error"


class ActorTrap(InvocationError):
    """The guest trapped; its instance is discarded."""

    kind: ClassVar[str] = "trap"


class DeadlineExceeded(InvocationError):
    """The call ran past its deadline and was interrupted."""

    kind: ClassVar[str] = "deadline"


class Expired(InvocationError):
    """The caller's deadline passed while the call waited to run: it was dropped, not run."""

    kind: ClassVar[str] = "expired"


class LimitExceeded(InvocationError):
    """A configured limit (memory, payload size, instances, in-flight calls) was hit."""

    kind: ClassVar[str] = "limit"


class Busy(LimitExceeded):
    """Every instance is busy and no more calls may wait: a retry later may succeed."""

    kind: ClassVar[str] = "busy"


class Closed(InvocationError):
    """The actor or sandbox was closed: it takes no more calls, so retrying is pointless."""

    kind: ClassVar[str] = "closed"


class LinkNotFound(InvocationError):
    """No link definition for (actor, contract, link name)."""

    kind: ClassVar[str] = "no_link"

    def __init__(self, contract_id: str, link_name: str, actor_id: str) -> None:
        super().__init__(
            f"no link for {contract_id} ({link_name}) from {actor_id}: add a linkdef (PUT /v1/links or a linkdef trait)"
        )
        self.contract_id = contract_id
        self.link_name = link_name
        self.actor_id = actor_id


class CapabilityDenied(InvocationError):
    """A signed actor used a contract its claims do not hold."""

    kind: ClassVar[str] = "denied"


class Unreachable(InvocationError):
    """Nobody answered in time: the target is not running, or its host/provider died."""

    kind: ClassVar[str] = "unreachable"


class NoResponders(Unreachable):
    """Nobody serves the target at all (no instance anywhere), as opposed to one too slow to answer."""

    kind: ClassVar[str] = "no_responders"


class RemoteError(InvocationError):
    """The far end answered with an error string."""

    kind: ClassVar[str] = "remote_error"


class RegistryError(LatticeError):
    """An OCI reference that is malformed, or a push/pull the registry could not complete; says why."""

    kind: ClassVar[str] = "registry"


class ProviderError(LatticeError):
    """A capability provider failed (bad link values, backend failure)."""

    kind: ClassVar[str] = "provider_error"


HTTP_STATUS: dict[str, int] = {
    "not_found": 404,
    "no_responders": 404,
    "busy": 503,
    "deadline": 504,
    "expired": 504,
    "unreachable": 504,
    "limit": 413,
    "invalid": 502,
}
"""The one table of HTTP statuses for errors (the API, the HTTP server provider): the first kind along an
error's class hierarchy that is listed here; anything else that is a ``LatticeError`` is a 400."""


def http_status(exc: LatticeError) -> int:
    for cls in type(exc).__mro__:
        kind = getattr(cls, "kind", None)
        if isinstance(kind, str) and kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 400


def _kinds() -> dict[str, type[LatticeError]]:
    found: dict[str, type[LatticeError]] = {}
    pending: list[type[LatticeError]] = [LatticeError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.kind, cls)
        pending.extend(cls.__subclasses__())
    return found


_REMOTE: dict[str, type[RemoteError]] = {}


def error_of_kind(kind: str | None, message: str) -> RemoteError:
    """The error a caller raises for a remote ``InvocationResponse`` error: a ``RemoteError`` that is also
    the class of its ``kind`` (``Busy``, ``DeadlineExceeded``, ...), so ``except Busy`` and
    ``except RemoteError`` both see it. An unknown or missing kind (a wasmCloud 0.x peer) is a plain
    ``RemoteError``."""
    cls = _kinds().get(kind or "")
    if cls is None or cls is RemoteError or not issubclass(cls, InvocationError):
        return RemoteError(message)
    remote = _REMOTE.get(cls.kind)
    if remote is None:
        remote = type(f"Remote{cls.__name__}", (RemoteError, cls), {"kind": cls.kind, "__module__": __name__})
        _REMOTE[cls.kind] = remote
    return remote(message)
