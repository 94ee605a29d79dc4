"""Link definitions and published claims, kept in the ``LATTICEDATA_{lattice}`` JetStream KV bucket.

Every host and provider keeps a ``LatticeData`` mirror of the bucket: it loads what is there, then
follows puts and deletes through a KV watch, so a participant started later (or restarted) learns
every link (SPEC §4). Keys: ``LINKDEF_<actor>_<hash of contract and link name>`` (JSON
``LinkDefinition``) and ``CLAIMS_<actor id>`` (JSON claims as published by the host running it: call
alias, caps, name).

The bucket is writable by whoever NATS lets write it, so every entry carries a ``seal`` field
(``lattice.seal``, bound to its key) and entries that do not verify are ignored with a warning: a
link written straight into the bucket by a client without the cluster key changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from lattice import events, subjects
from lattice.connection import cancel_and_wait, key_value
from lattice.errors import ClaimsError, LatticeError
from lattice.failsafe import logged
from lattice.messages import LinkDefinition
from lattice.seal import Sealer

if TYPE_CHECKING:
    from lattice.rpc import Rpc

log = structlog.get_logger("lattice.links")

LINK_PREFIX = "LINKDEF_"
CLAIMS_PREFIX = "CLAIMS_"

LinkListener = Callable[[str, LinkDefinition], Awaitable[None]]
"""``(action, link)`` with action ``put`` or ``del``."""


class LatticeData:
    """A live mirror of link definitions and claims. ``start()`` loads and begins watching."""

    def __init__(
        self,
        js: JetStreamContext,
        lattice: str,
        *,
        sealer: Sealer,
        replicas: int = 1,
        nc: NATS | None = None,
        source: str = "",
    ) -> None:
        """``sealer`` seals what this participant writes and checks what it reads. ``nc`` and
        ``source`` (the writer's id): links this participant puts or deletes are announced as
        ``linkdef_set``/``linkdef_deleted`` events."""
        self.js = js
        self.sealer = sealer
        self.lattice = lattice
        self.replicas = replicas
        self.nc = nc
        self.source = source
        self.kv: KeyValue | None = None
        self.links: dict[tuple[str, str, str], LinkDefinition] = {}
        self.claims: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, str] = {}
        self._listeners: list[LinkListener] = []
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @classmethod
    async def of(cls, rpc: Rpc, js: JetStreamContext, *, source: str) -> LatticeData:
        """The started mirror of a participant that writes as ``source`` and seals with ``rpc``'s key."""
        data = cls(js, rpc.lattice, sealer=rpc.sealer, replicas=rpc.js_replicas, nc=rpc.nc, source=source)
        return await data.start()

    def on_link(self, listener: LinkListener) -> None:
        """Call ``listener`` for every link put or deleted from now on (and for those loaded)."""
        self._listeners.append(listener)

    async def start(self) -> LatticeData:
        self.kv = await key_value(self.js, subjects.latticedata_bucket(self.lattice), replicas=self.replicas)
        self._task = asyncio.create_task(self._watch(), name="latticedata-watch")
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def restart(self) -> None:
        """Re-read everything (after a NATS reconnect the old watch may be gone)."""
        await self.stop()
        self.ready.clear()
        await self.start()

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _watch(self) -> None:
        assert self.kv is not None
        while True:
            try:
                watcher = await self.kv.watchall()
                seen: set[str] = set()
                while True:
                    try:
                        entry = await watcher.updates(timeout=5.0)  # type: ignore[no-untyped-call]
                    except Exception:  # nats TimeoutError: no change; keep waiting
                        self.ready.set()
                        continue
                    if entry is None:
                        self._forget_missing(seen)
                        self.ready.set()
                        continue
                    seen.add(entry.key)
                    await self._apply(entry.key, entry.value, entry.operation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("latticedata watch failed; retrying", error=str(exc))
                await asyncio.sleep(0.5)

    def _forget_missing(self, seen: set[str]) -> None:
        # After a re-watch, keys deleted while we were away are simply absent from the replay.
        for key in [k for k in self.links if self._key(self.links[k]) not in seen]:
            del self.links[key]

    @staticmethod
    def _key(link: LinkDefinition) -> str:
        return link.key

    def _open(self, key: str, value: bytes | None) -> Any:
        """The JSON object of a sealed entry; ``None`` (logged) when it is malformed or not sealed."""
        try:
            obj = json.loads(value or b"")
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            seal = obj.pop("seal", None)
            seal_text = seal if isinstance(seal, str) else None
            self.sealer.check(seal_text, _kv_context(key), _canonical(obj), what=key, fresh=False)
        except (ValueError, ClaimsError) as exc:
            log.warning("ignoring a LATTICEDATA entry", key=key, error=str(exc))
            return None
        return obj

    def _sealed(self, key: str, obj: dict[str, Any]) -> bytes:
        return sealed_entry(self.sealer, key, obj)

    async def _apply(self, key: str, value: bytes | None, operation: str | None) -> None:
        deleted = operation in ("DEL", "PURGE") or not value
        if not deleted and key.startswith((LINK_PREFIX, CLAIMS_PREFIX)):
            obj = self._open(key, value)
            if obj is None:
                return
            value = json.dumps(obj).encode()
        if key.startswith(LINK_PREFIX):
            if deleted:
                gone = [k for k, v in self.links.items() if v.key == key]
                for k in gone:
                    link = self.links.pop(k)
                    await self._notify("del", link)
                return
            try:
                link = LinkDefinition.from_obj(json.loads(value or b""))
            except (ValueError, LatticeError) as exc:
                log.warning("ignoring malformed link definition", key=key, error=str(exc))
                return
            self.links[(link.actor_id, link.contract_id, link.link_name)] = link
            await self._notify("put", link)
        elif key.startswith(CLAIMS_PREFIX):
            actor_id = key[len(CLAIMS_PREFIX) :]
            if deleted:
                self.claims.pop(actor_id, None)
            else:
                with contextlib.suppress(ValueError):
                    self.claims[actor_id] = json.loads(value or b"")
            self.aliases = {
                str(c["call_alias"]): a for a, c in self.claims.items() if isinstance(c, dict) and c.get("call_alias")
            }

    async def _notify(self, action: str, link: LinkDefinition) -> None:
        for listener in self._listeners:
            try:
                await listener(action, link)
            except Exception as exc:
                log.warning("link listener failed", action=action, link=link.key, error=str(exc))

    # --- reads and writes ------------------------------------------------------------------------

    def link_for(self, actor_id: str, contract_id: str, link_name: str) -> LinkDefinition | None:
        return self.links.get((actor_id, contract_id, link_name))

    def links_of_provider(self, provider_id: str, link_name: str) -> list[LinkDefinition]:
        return [v for v in self.links.values() if v.provider_id == provider_id and v.link_name == link_name]

    def resolve_actor(self, name: str) -> str | None:
        """An actor id (``M…``) as given, or the id behind a call alias."""
        if name.startswith("M") and len(name) == 56:
            return name
        return self.aliases.get(name)

    async def put_link(self, link: LinkDefinition) -> None:
        """Store ``link``; ``InvalidName`` when its link name could not be a subject token or its key
        could not be stored (names, not ids, come from users)."""
        assert self.kv is not None
        subjects.token(link.link_name, "link name")
        key = subjects.kv_key(link.key, f"link {link.contract_id[:80]!r} ({link.link_name[:80]!r})")
        await self.kv.put(key, self._sealed(key, link.to_dict()))
        await self._announce(events.LINKDEF_SET, link.to_dict())

    async def _announce(self, name: str, data: dict[str, Any]) -> None:
        if self.nc is not None:
            with logged(log, "link event not published", event_type=name):
                await self.nc.publish(subjects.events(self.lattice), events.make(name, self.source, data))

    async def delete_link(self, actor_id: str, contract_id: str, link_name: str) -> bool:
        """Delete a link; ``False`` when there was none."""
        assert self.kv is not None
        probe = LinkDefinition(actor_id, "-", contract_id, link_name)
        if (actor_id, contract_id, link_name) not in self.links:
            return False
        await self.kv.delete(probe.key)
        await self._announce(
            events.LINKDEF_DELETED, {"actor_id": actor_id, "contract_id": contract_id, "link_name": link_name}
        )
        return True

    async def publish_claims(self, actor_id: str, claims: dict[str, Any]) -> None:
        assert self.kv is not None
        await self.kv.put(CLAIMS_PREFIX + actor_id, self._sealed(CLAIMS_PREFIX + actor_id, claims))


def sealed_entry(sealer: Sealer, key: str, obj: dict[str, Any]) -> bytes:
    """The stored form of a ``LATTICEDATA`` entry: its JSON plus a ``seal`` bound to ``key``."""
    return json.dumps({**obj, "seal": sealer.seal(_kv_context(key), _canonical(obj))}).encode()


def _kv_context(key: str) -> str:
    return f"kv {key}"


def _canonical(obj: dict[str, Any]) -> bytes:
    """The bytes a seal covers: the entry's JSON with sorted keys, no spaces (stable across a round trip)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
