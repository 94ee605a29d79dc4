"""CloudEvents 1.0 (JSON) published on ``wasmbus.evt.{lattice}`` (SPEC §4).

Event types are ``com.wasmcloud.lattice.<name>``; ``source`` is the publishing participant's id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TYPE_PREFIX = "com.wasmcloud.lattice."

HOST_STARTED = "host_started"
HOST_STOPPED = "host_stopped"
HOST_HEARTBEAT = "host_heartbeat"
ACTOR_STARTED = "actor_started"
ACTOR_STOPPED = "actor_stopped"
ACTORS_START_FAILED = "actors_start_failed"
PROVIDER_STARTED = "provider_started"
PROVIDER_STOPPED = "provider_stopped"
PROVIDER_START_FAILED = "provider_start_failed"
LINKDEF_SET = "linkdef_set"
LINKDEF_SET_FAILED = "linkdef_set_failed"
LINKDEF_DELETED = "linkdef_deleted"
HEALTH_CHECK_PASSED = "health_check_passed"
HEALTH_CHECK_FAILED = "health_check_failed"
INVOCATION_FAILED = "invocation_failed"
ROLLOUT_STEP = "rollout_step"
ROLLOUT_COMPLETE = "rollout_complete"
ROLLOUT_ROLLED_BACK = "rollout_rolled_back"


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A parsed lattice event; ``name`` is the short type (``host_heartbeat``)."""

    name: str
    source: str
    data: dict[str, Any]
    id: str
    time: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "type": TYPE_PREFIX + self.name,
            "source": self.source,
            "id": self.id,
            "time": self.time,
            "datacontenttype": "application/json",
            "data": self.data,
        }


def provider_data(public_key: str, link_name: str, contract_id: str, **extra: Any) -> dict[str, Any]:
    """The one payload shape of provider events (provider_started/stopped, health): who, then details."""
    return {"public_key": public_key, "link_name": link_name, "contract_id": contract_id, **extra}


def make(name: str, source: str, data: dict[str, Any]) -> bytes:
    """Encode one event as CloudEvents JSON bytes."""
    event = CloudEvent(name, source, data, str(uuid.uuid4()), datetime.now(UTC).isoformat())
    return json.dumps(event.to_dict(), separators=(",", ":")).encode()


def parse(raw: bytes) -> CloudEvent | None:
    """Decode an event; ``None`` for anything that is not a lattice CloudEvent."""
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(d, dict) or not str(d.get("type", "")).startswith(TYPE_PREFIX):
        return None
    data = d.get("data")
    return CloudEvent(
        name=str(d["type"])[len(TYPE_PREFIX) :],
        source=str(d.get("source", "")),
        data=data if isinstance(data, dict) else {},
        id=str(d.get("id", "")),
        time=str(d.get("time", "")),
    )
