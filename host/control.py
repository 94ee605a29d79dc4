"""The host's side of the control interface (SPEC §4): commands, pings and inventory requests.

Commands are JSON on ``wasmbus.ctl.{lattice}.cmd.{host_id}.{la|sa|scale|lp|sp|stop}``; each is done
before the reply, which says ``{"accepted": true, ...}`` or ``{"accepted": false, "error": reason}``
so the control plane can report why a host refused.

NATS access is not host access (docs/security.md): commands and ``linkdefs.put|del`` are refused
unless sealed with the cluster key for exactly their subject, fresh and not seen before
(``lattice.seal``); every reply is sealed. Reads (ping, inventory, links, claims, auctions) are open
to whoever NATS lets ask. Whatever a command asks, ``file://`` images are read only under the host's
own ``--files-root`` and WASI directories granted only under its ``--allow-dir`` (``host.actors``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Protocol

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from lattice import seal, subjects
from lattice.commands import (
    COMMANDS,
    Auction,
    CommandReply,
    DeleteLink,
    HostCommand,
    LaunchActor,
    ScaleActor,
    StartProvider,
    StopActor,
    StopProvider,
)
from lattice.errors import ClaimsError, ConfigError, LatticeError
from lattice.host.actors import RunningActor
from lattice.host.providers import LocalProvider
from lattice.host.registry import ActorRegistry
from lattice.inventory import HostInventory
from lattice.links import LatticeData
from lattice.messages import LinkDefinition
from lattice.rpc import Rpc
from lattice.settings import Settings

log = structlog.get_logger("host.control")


class ControlledHost(Protocol):
    """What the control interface needs of its host (``lattice.host.host.Host``): identity, state, verbs."""

    id: str
    settings: Settings
    labels: dict[str, str]
    nc: NATS
    rpc: Rpc
    data: LatticeData
    actors: ActorRegistry

    def inventory(self) -> HostInventory: ...

    async def scale_actor(
        self, image_ref: str, count: int, annotations: dict[str, str], properties: dict[str, Any]
    ) -> RunningActor | None: ...

    async def stop_actor(self, actor_id: str, annotations: dict[str, str] | None, count: int) -> bool: ...

    async def start_provider(
        self, image_ref: str, link_name: str, annotations: dict[str, str], config: dict[str, Any]
    ) -> LocalProvider: ...

    async def stop_provider(
        self, provider_id: str, link_name: str, annotations: dict[str, str] | None = None
    ) -> bool: ...

    def stop(self, *, drain: bool = True) -> None: ...

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]: ...


class ControlInterface:
    """Subscribes the host to its control subjects and serves them."""

    def __init__(self, host: ControlledHost) -> None:
        self.host = host
        self.sealer = host.rpc.sealer
        lattice = host.settings.lattice
        self.subjects = {
            subjects.ctl_cmd_all(lattice, host.id): self._on_command,
            subjects.ctl_ping_hosts(lattice): self._on_ping,
            subjects.ctl_get_inventory(lattice, host.id): self._on_inventory,
            subjects.ctl_auction(lattice, "actor"): self._on_auction,
            subjects.ctl_auction(lattice, "provider"): self._on_auction,
        }
        # lattice-wide questions: any one host answers (queue group), from its mirror of LATTICEDATA
        self.shared = {
            subjects.ctl_get(lattice, "links"): self._on_get_links,
            subjects.ctl_get(lattice, "claims"): self._on_get_claims,
            subjects.ctl_linkdefs(lattice, "put"): self._on_linkdef_put,
            subjects.ctl_linkdefs(lattice, "del"): self._on_linkdef_del,
        }

    async def subscribe(self) -> None:
        for subject, cb in self.subjects.items():
            await self.host.nc.subscribe(subject, cb=cb)
        for subject, cb in self.shared.items():
            await self.host.nc.subscribe(subject, queue=f"lattice-hosts-{self.host.settings.lattice}", cb=cb)

    async def _reply(self, msg: Msg, body: dict[str, Any]) -> None:
        await seal.respond(self.host.nc, self.sealer, msg, json.dumps(body).encode())

    def _check_seal(self, msg: Msg, what: str) -> None:
        """Refuse (``ClaimsError``) a write not sealed by a cluster member for this very subject."""
        try:
            self.sealer.check_headers(msg.headers, msg.subject, msg.data, what=what)
        except ClaimsError as exc:
            log.warning("unsealed control message refused", subject=msg.subject, host_id=self.host.id, error=str(exc))
            raise

    async def _on_ping(self, msg: Msg) -> None:
        await self._reply(msg, self.host.inventory().ping())

    async def _on_inventory(self, msg: Msg) -> None:
        await self._reply(msg, self.host.inventory().to_dict())

    async def _on_auction(self, msg: Msg) -> None:
        """Bid (answer) when this host's labels hold every ``constraints`` pair; stay silent otherwise (also on
        a malformed auction: there is no refusal to send, and a bad constraint must not match every host)."""
        try:
            auction = Auction.from_body(json.loads(msg.data or b"{}"))
        except (ValueError, ConfigError) as exc:
            log.info("auction ignored", host_id=self.host.id, error=str(exc))
            return
        if auction.admits(self.host.labels):
            await self._reply(msg, self.host.inventory().bid())

    async def _on_get_links(self, msg: Msg) -> None:
        await self._reply(msg, {"links": [link.to_dict() for link in self.host.data.links.values()]})

    async def _on_get_claims(self, msg: Msg) -> None:
        await self._reply(msg, {"claims": list(self.host.data.claims.values())})

    async def _on_linkdef_put(self, msg: Msg) -> None:
        try:
            self._check_seal(msg, "linkdefs.put")
        except ClaimsError as exc:
            await self._reply(msg, {"accepted": False, "error": str(exc)})
            return
        try:
            link = LinkDefinition.from_obj(json.loads(msg.data or b"{}"))
            await self.host.data.put_link(link)
        except (ValueError, LatticeError) as exc:
            await self._reply(msg, {"accepted": False, "error": f"bad link definition: {exc}"})
            return
        await self._reply(msg, {"accepted": True})

    async def _on_linkdef_del(self, msg: Msg) -> None:
        try:
            self._check_seal(msg, "linkdefs.del")
            link = DeleteLink.from_body(json.loads(msg.data or b"{}"))
            deleted = await self.host.data.delete_link(link.actor_id, link.contract_id, link.link_name)
        except (ValueError, LatticeError) as exc:
            await self._reply(msg, {"accepted": False, "error": f"bad request: {exc}"})
            return
        await self._reply(msg, {"accepted": True, "deleted": deleted})

    async def _on_command(self, msg: Msg) -> None:
        # Commands may compile modules: run each in its own task so pings keep flowing.
        self.host.spawn(self._serve_command(msg), "control-command")

    async def _serve_command(self, msg: Msg) -> None:
        command = subjects.last_segment(msg.subject)
        kind = COMMANDS.get(command)
        try:
            self._check_seal(msg, f"control command {command}")
            if kind is None:
                raise ConfigError(f"unknown control command {command!r}")
            body = json.loads(msg.data or b"{}")
            if not isinstance(body, dict):
                raise ConfigError("a control command is a JSON object")
            result = await self.execute(kind.from_body(self.host.id, body))
            await self._reply(msg, CommandReply(True, self.host.id, details=result).to_dict())
        except (LatticeError, ValueError) as exc:
            log.info("control command refused", command=command, host_id=self.host.id, error=str(exc))
            await self._reply(msg, CommandReply(False, self.host.id, error=str(exc)).to_dict())
        except Exception as exc:
            log.exception("control command crashed", command=command, host_id=self.host.id)
            await self._reply(msg, CommandReply(False, self.host.id, error=f"internal error: {exc}").to_dict())

    async def execute(self, cmd: HostCommand) -> dict[str, Any]:
        """Do ``cmd`` on this host; returns the reply's details (``ConfigError`` and co. refuse it)."""
        if isinstance(cmd, ScaleActor):
            return await self._scale_actor(cmd)
        if isinstance(cmd, LaunchActor):
            return await self._launch_actor(cmd)
        if isinstance(cmd, StopActor):
            return {"stopped": await self.host.stop_actor(cmd.actor_id, cmd.annotations, 0)}
        if isinstance(cmd, StartProvider):
            local = await self.host.start_provider(cmd.image_ref, cmd.link_name, cmd.annotations, cmd.config)
            return {"provider_id": local.provider_id, "link_name": local.link_name}
        if isinstance(cmd, StopProvider):
            return {"stopped": await self.host.stop_provider(cmd.provider_id, cmd.link_name, cmd.annotations)}
        asyncio.get_running_loop().call_soon(self.host.stop)  # StopHost: drains first, then leaves
        return {"stopping": True}

    async def _scale_actor(self, cmd: ScaleActor) -> dict[str, Any]:
        if cmd.count == 0 and cmd.actor_id in self.host.actors:
            await self.host.stop_actor(cmd.actor_id, cmd.annotations, 0)
            running = self.host.actors.get(cmd.actor_id)
            return {"actor_id": cmd.actor_id, "count": running.count if running else 0}
        if not cmd.image_ref:
            if cmd.count == 0:
                return {"actor_id": cmd.actor_id or None, "count": 0}
            raise ConfigError("actor_ref is required")
        self._check_image(cmd.image_ref)
        running = await self.host.scale_actor(cmd.image_ref, cmd.count, cmd.annotations, cmd.properties)
        return {
            "actor_id": running.actor_id if running else cmd.actor_id or None,
            "count": running.count if running else 0,
        }

    async def _launch_actor(self, cmd: LaunchActor) -> dict[str, Any]:
        existing = self.host.actors.count_of(cmd.image_ref, cmd.annotations)
        return await self._scale_actor(cmd.scale_to(existing + cmd.count))

    def _check_image(self, image_ref: str) -> None:
        """A ``file://`` image from the lattice is read only under this host's own ``--files-root``."""
        if not image_ref.startswith("file://"):
            return
        root = self.host.settings.files_root
        if root is None:
            raise ConfigError(
                f"{image_ref}: this host reads no file:// images sent over the lattice (its operator may allow a "
                "directory with --files-root); upload the module and use its sha256: digest"
            )
        path = Path(image_ref.removeprefix("file://"))
        if "\0" in image_ref or not path.is_absolute() or not path.resolve().is_relative_to(root.resolve()):
            raise ConfigError(f"{image_ref} is outside this host's files root {root}: refused")
