"""``wasmcloud:httpserver`` (SPEC §2): one HTTP listener per link, each serving its linked actor.

A link put opens a listener on the link's address, a link delete closes it; several links listen at
once. The link values are documented in ``config.py``; the request/response mapping and the error
statuses in ``listener.py``. A link whose values are invalid, or whose port is taken, is refused
(``ProviderError`` naming the link) while every other listener keeps serving.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lattice.capability import HTTPSERVER
from lattice.messages import LinkDefinition
from lattice.providers.httpserver.config import ListenerConfig, listener_config
from lattice.providers.httpserver.listener import Listener, decode_response
from lattice.providers.sdk import Provider, describe_link

__all__ = ["HttpServerProvider", "ListenerConfig", "decode_response", "listener_config"]


class HttpServerProvider(Provider):
    name = "httpserver"
    contract_id = HTTPSERVER

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.listeners: dict[str, Listener] = {}  # actor id → its listener

    async def on_link_put(self, link: LinkDefinition) -> None:
        config = listener_config(link, reuse_port=self.ctx.settings.http_reuse_port)
        listener = Listener(self.ctx, link.actor_id, config, describe_link(link))
        await listener.start()
        self.listeners[link.actor_id] = listener

    async def on_link_del(self, link: LinkDefinition) -> None:
        listener = self.listeners.pop(link.actor_id, None)
        if listener is not None:
            await listener.stop()

    async def health(self) -> tuple[bool, str]:
        urls = ", ".join(sorted(listener.config.url for listener in self.listeners.values()))
        return True, f"{len(self.listeners)} listener(s){': ' + urls if urls else ''}"

    async def shutdown(self) -> None:
        listeners, self.listeners = list(self.listeners.values()), {}
        await asyncio.gather(*(listener.stop() for listener in listeners))
