"""The schema of an actor component's ``properties`` (SPEC §5): one table read by the manifest parser
(``controlplane.manifest``, which names the line of a bad field) and by the hosts (``host.actors``, which
apply it), so that what one accepts the other does.

    properties: {image, wasi, limits, allowed_hosts}
    wasi:       {dirs: {guest: host}, env: {NAME: value}, args: [..], readonly: bool}
    limits:     {deadline_ms, max_memory_mb, max_instances, max_payload_mb}, each 1..its cap (``lattice.caps``)

An actor's instances on a host are keyed by its image *and* ``properties_key`` (what the host enforces):
a host runs one property set per actor, and reports its key so the control plane sees a stale one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from lattice import caps

ACTOR_FIELDS: Final = ("image", "wasi", "limits", "allowed_hosts")
WASI_FIELDS: Final = ("dirs", "readonly", "env", "args")
LIMIT_CAPS: Final = {
    "deadline_ms": caps.MAX_DEADLINE_MS,
    "max_memory_mb": caps.MAX_MEMORY_MB,
    "max_instances": caps.MAX_INSTANCES,
    "max_payload_mb": caps.MAX_PAYLOAD_MB,
}
"""Each limit a manifest may set, and the most any host grants."""

ENFORCED_FIELDS: Final = ("wasi", "limits", "allowed_hosts", "config")
"""The properties a host enforces on an actor's instances (``config`` is its ``wasi:config``, SPEC §7)."""


def properties_key(properties: Mapping[str, Any]) -> str:
    """The key of the property set a host enforces: 16 hex digits of the SHA-256 of ``ENFORCED_FIELDS``
    as canonical JSON; ``""`` when none is set (so hosts that report no key read as the defaults)."""
    enforced = {name: properties[name] for name in ENFORCED_FIELDS if properties.get(name)}
    if not enforced:
        return ""
    text = json.dumps(enforced, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
