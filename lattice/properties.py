"""The schema of an actor component's ``properties`` (SPEC §5): one table read by the manifest parser
(``controlplane.manifest``, which names the line of a bad field) and by the hosts (``host.actors``, which
apply it), so that what one accepts the other does.

    properties: {image, wasi, limits, allowed_hosts}
    wasi:       {dirs: {guest: host}, env: {NAME: value}, args: [..], readonly: bool}
    limits:     {deadline_ms, max_memory_mb, max_instances, max_payload_mb}, each 1..its cap (``lattice.caps``)
"""

from __future__ import annotations

from typing import Final

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
