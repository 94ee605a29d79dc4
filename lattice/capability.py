"""The seam between capability providers and whatever runs them (SPEC §2, §4).

A provider is written once against ``ProviderContext`` and runs either as its own process on the
lattice (``lattice.providers.sdk.runner.run_standalone``) or inside a host, which hands it a context whose
``invoke_actor`` calls local actor instances directly and takes the NATS hop only for remote ones.
Either way ``lattice.providers.sdk.server.ProviderServer`` serves it on NATS, needing no more of it than
``CapabilityProvider``. The contract ids of the bundled providers are here too: the control plane and the
hosts name them without importing a provider. Finding a provider's class is the SDK's
(``lattice.providers.sdk.base.provider_class``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.js import JetStreamContext

    from lattice.messages import LinkDefinition
    from lattice.settings import Settings

HTTPSERVER = "wasmcloud:httpserver"
KEYVALUE = "wasmcloud:keyvalue"
LOGGING = "wasmcloud:builtin:logging"
NUMBERGEN = "wasmcloud:builtin:numbergen"
MESSAGING = "wasmcloud:messaging"
CRON = "wasmcloud:builtin:cron"
BLOBSTORE = "wasmcloud:blobstore"

BUILTIN_CONTRACTS = {
    "httpserver": HTTPSERVER,
    "keyvalue": KEYVALUE,
    "logging": LOGGING,
    "numbergen": NUMBERGEN,
    "messaging": MESSAGING,
    "cron": CRON,
    "blobstore": BLOBSTORE,
}


class ProviderContext(Protocol):
    """What a provider gets from where it runs."""

    settings: Settings
    nc: NATS
    js: JetStreamContext
    provider_id: str
    link_name: str
    host_id: str

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        """Call ``operation`` on ``actor_id`` as this provider (origin = provider, contract, link).

        Raises ``lattice.errors.InvocationError`` subclasses: ``Unreachable`` when no instance answers
        within ``timeout_s``, ``RemoteError``/``ActorError`` when the actor fails.
        """
        ...

    def log(self, event: str, **fields: Any) -> None:
        """A structured log line tagged with the provider and host ids."""
        ...


class CapabilityProvider(Protocol):
    """What runs a provider (a host, ``ProviderServer``) needs of it; ``lattice.providers.sdk.Provider`` has it.

    ``links`` maps actor id → the link it is served under; ``put_link``/``del_link`` return ``False``
    when nothing changed and raise ``ProviderError`` for a refused link; ``handle`` raises
    ``InvocationError`` subclasses or ``ProviderError``, never anything else on purpose.
    """

    @property
    def name(self) -> str: ...

    @property
    def contract_id(self) -> str: ...

    @property
    def links(self) -> dict[str, LinkDefinition]: ...

    async def handle(self, actor_id: str, operation: str, payload: bytes) -> bytes: ...

    async def put_link(self, link: LinkDefinition) -> bool: ...

    async def del_link(self, link: LinkDefinition) -> bool: ...

    async def health(self) -> tuple[bool, str]: ...

    async def shutdown(self) -> None: ...


def builtin_provider_id(name: str) -> str:
    """The stable ``V…`` id of the bundled provider ``builtin:<name>``, known before it runs.

    Derived from the name (``keys.deterministic_keypair``): a public label, never a secret.
    """
    from lattice.keys import deterministic_keypair

    return deterministic_keypair("service", f"builtin:{name}").public_key
