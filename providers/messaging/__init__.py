"""``wasmcloud:messaging`` (SPEC §2): actors publish and request on NATS subjects, and receive messages.

Each link subscribes its actor to the link's ``SUBSCRIPTION`` subjects (values in ``config.py``) and hands
every message to it as ``MessageSubscriber.HandleMessage {subject, replyTo?, body}``; the actor answers a
request by publishing to ``replyTo``. ``Messaging.Publish {subject, replyTo?, body}`` → nil and
``Messaging.Request {subject, body, timeoutMs}`` → ``{subject, replyTo?, body}`` go out on the link's NATS:
the lattice's own, or the application's (``URI``), so the two never mix.

Delivery semantics, plainly:
- core NATS (the default): **at most once**. A message that arrives while the actor fails, or while no
  instance of this provider is subscribed, is gone. A queue group (``subject|queue``) hands each message to
  one subscriber across every host running this provider for the link.
- ``STREAM`` set: **at least once** through a JetStream stream (created over the subscription subjects
  when missing) and a durable pull consumer shared by every instance of the link (named by the queue group,
  else the actor id): a message is acknowledged after ``HandleMessage`` returned, redelivered when it failed,
  and after ``MAX_DELIVER`` failed attempts published to ``DEAD_LETTER`` with the reason in the
  ``Lattice-Error`` header (and its subject in ``Lattice-Subject``), then terminated.
At most ``MAX_IN_FLIGHT`` messages per link are with the actor at once; the rest wait in NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Final

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from lattice.capability import MESSAGING
from lattice.connection import settle
from lattice.errors import InvalidName, InvocationError, ProviderError
from lattice.messages import LinkDefinition, pack
from lattice.providers.messaging.config import LinkConfig, Subscription, link_config
from lattice.providers.sdk import Provider, arg_int, arg_map, arg_str, operation

__all__ = ["HANDLE_MESSAGE", "MessagingProvider"]

HANDLE_MESSAGE: Final = "MessageSubscriber.HandleMessage"
DEFAULT_REQUEST_TIMEOUT_MS: Final = 2000
MAX_REQUEST_TIMEOUT_MS: Final = 60_000
ACK_WAIT_S: Final = 30.0


@dataclass(slots=True)
class _Link:
    """One link's NATS connection, subscriptions and the messages it is handing to the actor."""

    config: LinkConfig
    nc: NATS
    owned: bool  # a connection of its own (URI): closed with the link
    gate: asyncio.Semaphore
    subs: list[Any] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    delivered: int = 0
    failed: int = 0


class MessagingProvider(Provider):
    name = "messaging"
    contract_id = MESSAGING
    requires_link = True  # the link says which NATS, and what the actor may publish on

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._links: dict[str, _Link] = {}

    # --- links ---------------------------------------------------------------------------------------

    async def on_link_put(self, link: LinkDefinition) -> None:
        config = link_config(link)
        nc, owned = await self._connection(config, link)
        state = _Link(config, nc, owned, asyncio.Semaphore(config.max_in_flight))
        self._links[link.actor_id] = state
        try:
            for sub in config.subscriptions:
                if config.stream:
                    await self._consume_stream(link.actor_id, state, sub)
                else:
                    state.subs.append(await nc.subscribe(sub.subject, queue=sub.queue, cb=self._core(link.actor_id)))
            await settle(nc)
        except Exception as exc:
            await self._close(self._links.pop(link.actor_id))
            raise ProviderError(f"messaging link {link.actor_id}: cannot subscribe: {exc}") from exc

    async def on_link_del(self, link: LinkDefinition) -> None:
        state = self._links.pop(link.actor_id, None)
        if state is not None:
            await self._close(state)

    async def _connection(self, config: LinkConfig, link: LinkDefinition) -> tuple[NATS, bool]:
        if not config.own_nats:
            return self.ctx.nc, False
        options: dict[str, Any] = {"name": f"messaging-{link.actor_id[:12]}", "max_reconnect_attempts": -1}
        for key, value in (
            ("user", config.user),
            ("password", config.password),
            ("token", config.token),
            ("nkeys_seed_str", config.nkey_seed),
            ("user_credentials", config.creds),
        ):
            if value:
                options[key] = value
        try:
            return await nats.connect(config.uri, connect_timeout=5, allow_reconnect=True, **options), True
        except Exception as exc:
            raise ProviderError(f"messaging link {link.actor_id}: cannot connect to {config.uri}: {exc}") from exc

    async def _close(self, state: _Link) -> None:
        for sub in state.subs:
            with contextlib.suppress(nats.errors.Error):  # the connection may be gone already
                await sub.unsubscribe()
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        if state.owned and not state.nc.is_closed:
            try:
                await state.nc.drain()
            except Exception as exc:
                self.log.info("closing a link's own NATS connection failed", error=str(exc))

    # --- delivery ------------------------------------------------------------------------------------

    def _core(self, actor_id: str) -> Any:
        async def on_message(msg: Msg) -> None:
            # nats-py runs one subscription's callbacks one at a time: the actor runs in a task
            state = self._links.get(actor_id)
            if state is not None:
                await state.gate.acquire()
                self._spawn(state, self._deliver_core(actor_id, state, msg))

        return on_message

    def _spawn(self, state: _Link, work: Any) -> None:
        task = asyncio.create_task(work)
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    async def _deliver_core(self, actor_id: str, state: _Link, msg: Msg) -> None:
        try:
            await self._hand_over(actor_id, msg)
            state.delivered += 1
        except Exception as exc:  # at most once: the message is gone, the failure is counted and logged
            state.failed += 1
            self.log.warning("message not handled", actor_id=actor_id, subject=msg.subject, error=str(exc))
        finally:
            state.gate.release()

    async def _hand_over(self, actor_id: str, msg: Msg) -> None:
        payload: dict[str, Any] = {"subject": msg.subject, "body": msg.data}
        if msg.reply:
            payload["replyTo"] = msg.reply
        await self.ctx.invoke_actor(actor_id, HANDLE_MESSAGE, pack(payload))

    async def _consume_stream(self, actor_id: str, state: _Link, sub: Subscription) -> None:
        js = state.nc.jetstream()
        subjects = [s.subject for s in state.config.subscriptions]
        try:
            await js.stream_info(state.config.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=state.config.stream, subjects=subjects)
        durable = sub.queue or actor_id
        consumer = ConsumerConfig(ack_wait=ACK_WAIT_S, max_ack_pending=state.config.max_in_flight * 4)
        pull = await js.pull_subscribe(sub.subject, durable=durable, stream=state.config.stream, config=consumer)
        state.subs.append(pull)
        self._spawn(state, self._pull_loop(actor_id, state, pull))

    async def _pull_loop(self, actor_id: str, state: _Link, pull: Any) -> None:
        while True:
            try:
                msgs = await pull.fetch(batch=state.config.max_in_flight, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except nats.errors.Error as exc:  # a NATS outage: the connection reconnects, we try again
                self.log.info("stream fetch failed; retrying", actor_id=actor_id, error=str(exc))
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await state.gate.acquire()
                self._spawn(state, self._deliver_stream(actor_id, state, msg))

    async def _deliver_stream(self, actor_id: str, state: _Link, msg: Msg) -> None:
        try:
            await self._hand_over(actor_id, msg)
            await msg.ack()
            state.delivered += 1
        except Exception as exc:
            state.failed += 1
            attempts = msg.metadata.num_delivered if msg.metadata else 1
            if attempts >= state.config.max_deliver:
                await self._dead_letter(actor_id, state, msg, str(exc), attempts)
            else:
                await msg.nak(delay=min(0.1 * attempts, 2.0))
        finally:
            state.gate.release()

    async def _dead_letter(self, actor_id: str, state: _Link, msg: Msg, reason: str, attempts: int) -> None:
        headers = {"Lattice-Error": reason[:1024], "Lattice-Subject": msg.subject, "Lattice-Actor": actor_id}
        await state.nc.publish(state.config.dead_letter, msg.data, headers=headers)
        await msg.term()
        self.log.warning(
            "message dead-lettered",
            actor_id=actor_id,
            subject=msg.subject,
            dead_letter=state.config.dead_letter,
            attempts=attempts,
            error=reason,
        )

    # --- calls from actors ---------------------------------------------------------------------------

    def _link_of(self, actor_id: str) -> _Link:
        state = self._links.get(actor_id)
        if state is None:  # put_link failed half-way; requires_link already refused unlinked actors
            raise InvocationError(f"{MESSAGING}: the link of {actor_id} is not ready")
        return state

    def _outgoing(self, state: _Link, args: Any) -> tuple[str, bytes]:
        subject = arg_str(args, "subject")
        try:
            state.config.check_publish(subject)
        except InvalidName as exc:
            raise InvocationError(str(exc)) from exc
        body = arg_map(args).get("body", b"")
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            raise InvocationError(f"'body' must be bytes, got {type(body).__name__}")
        if len(body) > state.nc.max_payload:
            raise InvocationError(
                f"message of {len(body)} bytes is over the NATS max payload of {state.nc.max_payload} bytes"
            )
        return subject, body

    @operation("Messaging.Publish")
    async def publish(self, actor_id: str, args: Any) -> None:
        state = self._link_of(actor_id)
        subject, body = self._outgoing(state, args)
        reply = arg_map(args).get("replyTo") or ""
        if reply:
            reply = state.config.check_publish(arg_str(args, "replyTo"))
        await state.nc.publish(subject, body, reply=reply)

    @operation("Messaging.Request")
    async def request(self, actor_id: str, args: Any) -> dict[str, Any]:
        state = self._link_of(actor_id)
        subject, body = self._outgoing(state, args)
        timeout_ms = arg_int(args, "timeoutMs", 0, MAX_REQUEST_TIMEOUT_MS, 0) or DEFAULT_REQUEST_TIMEOUT_MS
        try:
            msg = await state.nc.request(subject, body, timeout=timeout_ms / 1000)
        except nats.errors.NoRespondersError:
            raise InvocationError(f"no subscriber answers requests on {subject!r}") from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise InvocationError(f"no reply on {subject!r} within {timeout_ms} ms") from None
        reply: dict[str, Any] = {"subject": msg.subject, "body": msg.data}
        if msg.reply:
            reply["replyTo"] = msg.reply
        return reply

    # --- lifecycle -----------------------------------------------------------------------------------

    async def health(self) -> tuple[bool, str]:
        down = [a for a, s in self._links.items() if not s.nc.is_connected]
        counts = ", ".join(f"{a[:12]}…: {s.delivered} delivered, {s.failed} failed" for a, s in self._links.items())
        if down:
            return False, f"{len(down)} link(s) without a NATS connection"
        return True, f"{len(self._links)} link(s){': ' + counts if counts else ''}"

    async def shutdown(self) -> None:
        states, self._links = list(self._links.values()), {}
        await asyncio.gather(*(self._close(s) for s in states))
