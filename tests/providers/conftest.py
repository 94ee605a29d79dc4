"""Provider contract tests run every provider two ways, through one ``Harness`` interface:

- ``in_process``: what a host does — ``init(ctx)`` with a context whose ``invoke_actor`` calls Python
  coroutines standing in for actors, then ``put_link``/``handle`` directly;
- ``over_nats``: the standalone ``ProviderRunner`` on a real nats-server; the test sends signed msgpack
  ``Invocation``s to the provider RPC subject and plays the actors on their actor RPC subjects.

Both use the real nats-server of ``tests/conftest.py`` (JetStream, free port, temp dir).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from lattice import claims, keys, seal, subjects
from lattice.connection import settle
from lattice.errors import ActorError, LatticeError, NoResponders, ProviderError, RemoteError, Unreachable
from lattice.messages import Entity, Invocation, InvocationResponse, LinkDefinition, pack, unpack
from lattice.providers.sdk import Provider
from lattice.providers.sdk.runner import ProviderRunner
from lattice.settings import Settings
from tests.conftest import answer_sealed, sealer

ActorHandler = Callable[[str, bytes], Awaitable[bytes]]
"""A stand-in actor: ``(operation, payload) -> response``; raising makes the call fail."""


def actor_id() -> str:
    return keys.generate("module").public_key


def link_to(provider: Provider, actor: str, **values: Any) -> LinkDefinition:
    return LinkDefinition(
        actor, provider.builtin_id(), provider.contract_id, "default", {k: str(v) for k, v in values.items()}
    )


class LocalContext:
    """``ProviderContext`` as a host would supply it, with Python coroutines as the actors."""

    def __init__(self, settings: Settings, nc: NATS, provider: Provider, actors: dict[str, ActorHandler]) -> None:
        self.settings = settings
        self.nc = nc
        self.js = nc.jetstream()
        self.provider_id = provider.builtin_id()
        self.link_name = "default"
        self.host_id = keys.generate("server").public_key
        self.actors = actors
        self.trace_contexts: list[dict[str, str]] = []

    async def invoke_actor(
        self,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        timeout_s: float | None = None,
        trace_context: dict[str, str] | None = None,
    ) -> bytes:
        handler = self.actors.get(actor_id)
        if handler is None:
            raise NoResponders(f"no instance of actor {actor_id}")
        self.trace_contexts.append(dict(trace_context or {}))
        timeout = timeout_s or self.settings.rpc_timeout_s
        try:
            return await asyncio.wait_for(handler(operation, payload), timeout)
        except TimeoutError as exc:
            raise Unreachable(f"actor {actor_id} did not answer within {timeout:g} s") from exc
        except LatticeError:
            raise
        except Exception as exc:
            raise ActorError(str(exc)) from exc

    def log(self, event: str, **fields: Any) -> None:
        pass


class Harness:
    """One provider under test, driven one of the two ways."""

    mode = ""

    def __init__(self, provider: Provider, settings: Settings, nc: NATS) -> None:
        self.provider = provider
        self.settings = settings
        self.nc = nc
        self.actors: dict[str, ActorHandler] = {}
        self.trace_contexts: list[dict[str, str]] = []

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def call_raw(self, actor: str, operation: str, payload: bytes) -> bytes:
        raise NotImplementedError

    async def put_link(self, link: LinkDefinition) -> None:
        """Apply ``link``; raises ``ProviderError`` when the provider refuses it."""
        raise NotImplementedError

    async def del_link(self, link: LinkDefinition) -> None:
        raise NotImplementedError

    async def serve_actor(self, actor: str, handler: ActorHandler) -> None:
        self.actors[actor] = handler

    async def health(self) -> tuple[bool, str]:
        raise NotImplementedError

    async def call(self, actor: str, operation: str, args: Any = None) -> Any:
        payload = b"" if args is None else pack(args)
        return unpack(await self.call_raw(actor, operation, payload))

    async def link(self, actor: str | None = None, **values: Any) -> str:
        """Link a (new) actor to the provider; returns the actor id."""
        actor = actor or actor_id()
        await self.put_link(link_to(self.provider, actor, **values))
        return actor


class InProcess(Harness):
    mode = "in_process"

    async def start(self) -> None:
        self.ctx = LocalContext(self.settings, self.nc, self.provider, self.actors)
        self.trace_contexts = self.ctx.trace_contexts
        await self.provider.init(self.ctx)

    async def stop(self) -> None:
        await self.provider.shutdown()

    async def call_raw(self, actor: str, operation: str, payload: bytes) -> bytes:
        return await self.provider.handle(actor, operation, payload)

    async def put_link(self, link: LinkDefinition) -> None:
        await self.provider.put_link(link)

    async def del_link(self, link: LinkDefinition) -> None:
        await self.provider.del_link(link)

    async def health(self) -> tuple[bool, str]:
        return await self.provider.health()


class OverNats(Harness):
    mode = "over_nats"

    async def start(self) -> None:
        self.cluster = keys.from_seed(self.settings.cluster_seed or "")
        self.provider_id = self.provider.builtin_id()
        self.runner = ProviderRunner(self.provider, self.settings, health_interval_s=0.2)
        await self.runner.__aenter__()
        self.subs: list[Any] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        for sub in self.subs:
            await sub.unsubscribe()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.runner.__aexit__(None, None, None)

    def invocation(self, actor: str, operation: str, payload: bytes) -> Invocation:
        origin, target = Entity(actor), Entity(self.provider_id, self.provider.contract_id, "default")
        encoded = claims.sign_invocation(
            self.cluster,
            origin_url=claims.actor_url(actor),
            target_url=claims.provider_url(target.contract_id, "default", self.provider_id),
            operation=operation,
            msg=payload,
            host_id="NTEST",
        )
        return Invocation(origin, target, operation, payload, encoded_claims=encoded)

    async def call_raw(self, actor: str, operation: str, payload: bytes) -> bytes:
        inv = self.invocation(actor, operation, payload)
        subject = subjects.provider_rpc(self.settings.lattice, self.provider_id, "default")
        reply = await self.nc.request(subject, inv.to_msgpack(), timeout=10)
        response = InvocationResponse.from_msgpack(reply.data)
        assert response.invocation_id == inv.id
        if response.error:
            raise RemoteError(response.error)
        return response.msg

    async def _linkdef(self, action: str, link: LinkDefinition) -> None:
        subject = subjects.provider_linkdefs(self.settings.lattice, link.provider_id, link.link_name, action)
        reply = unpack(
            (await seal.request(self.nc, sealer(self.settings), subject, pack(link.to_dict()), timeout=10)).data
        )
        if not reply["accepted"]:
            raise ProviderError(reply["error"])

    async def put_link(self, link: LinkDefinition) -> None:
        await self._linkdef("put", link)

    async def health(self) -> tuple[bool, str]:
        subject = subjects.provider_health(self.settings.lattice, self.provider_id, "default")
        reply = unpack((await self.nc.request(subject, pack({"placeholder": True}), timeout=10)).data)
        return reply["healthy"], reply["message"]

    async def del_link(self, link: LinkDefinition) -> None:
        await self._linkdef("del", link)

    async def serve_actor(self, actor: str, handler: ActorHandler) -> None:
        """Answer the actor's RPC subject, checking the provider signed what it sent."""
        await super().serve_actor(actor, handler)

        async def answer(msg: Msg) -> None:
            inv = Invocation.from_msgpack(msg.data)
            self.trace_contexts.append(inv.trace_context)
            try:
                claims.verify_invocation(
                    inv.encoded_claims,
                    cluster_issuers={self.cluster.public_key},
                    origin_url=claims.provider_url(inv.origin.contract_id, inv.origin.link_name, inv.origin.public_key),
                    target_url=claims.actor_url(actor),
                    operation=inv.operation,
                    msg=inv.msg,
                )
                response = InvocationResponse(inv.id, msg=await handler(inv.operation, inv.msg))
            except Exception as exc:
                response = InvocationResponse(inv.id, error=str(exc))
            await answer_sealed(self.nc, msg, self.settings.cluster_seed or "", Entity(actor), response)

        async def spawn(msg: Msg) -> None:
            task = asyncio.create_task(answer(msg))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        self.subs.append(
            await self.nc.subscribe(subjects.actor_rpc(self.settings.lattice, actor), queue=actor, cb=spawn)
        )
        await settle(self.nc)


HarnessFactory = Callable[[Provider], Awaitable[Harness]]


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(settings.nats_url)
    yield client
    await client.close()


@pytest.fixture(params=["in_process", "over_nats"])
async def start_provider(request: pytest.FixtureRequest, settings: Settings, nc: NATS) -> AsyncIterator[HarnessFactory]:
    """``await start_provider(SomeProvider())`` → a started ``Harness``, stopped after the test."""
    cls = InProcess if request.param == "in_process" else OverNats
    started: list[Harness] = []

    async def start(provider: Provider) -> Harness:
        harness = cls(provider, settings, nc)
        await harness.start()
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        await harness.stop()
