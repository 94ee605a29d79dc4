"""Capability providers running inside a host (SPEC §2, §4).

A bundled provider (``builtin:httpserver``…) is found through the ``lattice.providers`` entry points,
so ``host`` never imports ``providers``. In process, a host call from a local actor reaches the
provider directly and the provider reaches local actors directly; the provider is also served on
NATS (``lattice.provider_server.ProviderServer``) so actors on other hosts can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from lattice.messages import Entity
from lattice.settings import Settings

if TYPE_CHECKING:
    from host.router import Router
    from lattice.capability import CapabilityProvider
    from lattice.provider_server import ProviderServer

log = structlog.get_logger("host.providers")


@dataclass(slots=True)
class HostProviderContext:
    """``ProviderContext`` for a provider inside a host: local actors first, NATS otherwise."""

    settings: Settings
    nc: NATS
    js: JetStreamContext
    provider_id: str
    link_name: str
    host_id: str
    contract_id: str
    router: Router

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        origin = Entity(self.provider_id, self.contract_id, self.link_name)
        return await self.router.invoke_actor(
            actor_id, operation, payload, origin=origin, timeout_s=timeout_s, trace_context=trace_context
        )

    def log(self, event: str, **fields: Any) -> None:
        log.info(event, provider_id=self.provider_id, link_name=self.link_name, host_id=self.host_id, **fields)


@dataclass(slots=True)
class LocalProvider:
    """A provider object running in this host, with what started it."""

    provider: CapabilityProvider
    provider_id: str
    link_name: str
    contract_id: str
    image_ref: str
    annotations: dict[str, str] = field(default_factory=dict)
    server: ProviderServer | None = None

    def inventory(self) -> dict[str, Any]:
        return {
            "id": self.provider_id,
            "link_name": self.link_name,
            "contract_id": self.contract_id,
            "image_ref": self.image_ref,
            "annotations": self.annotations,
        }
