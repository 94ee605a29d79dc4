"""wasmcloud:messaging (SPEC §2), in process and over NATS: publish, request, subscriptions with queue
groups, replies, the lattice's own subjects refused, an application's own NATS, and JetStream delivery
(at least once, redelivery, dead letters)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from lattice.cli.natsserver import NatsServer
from lattice.connection import settle
from lattice.errors import LatticeError, ProviderError
from lattice.messages import pack, unpack
from lattice.providers.messaging import HANDLE_MESSAGE, MessagingProvider
from tests.conftest import wait_for
from tests.providers.conftest import Harness, HarnessFactory


@pytest.fixture
async def messaging(start_provider: HarnessFactory) -> Harness:
    return await start_provider(MessagingProvider())


@pytest.fixture
def app_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """An application's own NATS, apart from the lattice's."""
    server = NatsServer(tmp_path / "app-nats").start()
    yield server
    server.stop()


class Inbox:
    """What a stand-in actor received through ``HandleMessage``."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handler(self, operation: str, payload: bytes) -> bytes:
        assert operation == HANDLE_MESSAGE
        self.messages.append(unpack(payload))
        return b""


async def listen(nc: NATS, subject: str) -> list[Msg]:
    got: list[Msg] = []

    async def cb(msg: Msg) -> None:
        got.append(msg)

    await nc.subscribe(subject, cb=cb)
    await settle(nc)
    return got


async def test_publish_reaches_a_nats_subscriber(messaging: Harness, nc: NATS) -> None:
    actor = await messaging.link()
    got = await listen(nc, "orders.created")
    assert await messaging.call(actor, "Messaging.Publish", {"subject": "orders.created", "body": b"#1"}) is None
    await wait_for(lambda: got)
    assert got[0].data == b"#1"


async def test_subscription_delivers_handle_message_and_the_actor_replies(messaging: Harness, nc: NATS) -> None:
    inbox = Inbox()
    actor = await messaging.link(SUBSCRIPTION="jobs.*")

    async def answering(operation: str, payload: bytes) -> bytes:
        await inbox.handler(operation, payload)
        message = inbox.messages[-1]
        if message.get("replyTo"):  # answer a request by publishing to its reply subject
            reply = {"subject": message["replyTo"], "body": b"done:" + message["body"]}
            await messaging.call(actor, "Messaging.Publish", reply)
        return b""

    await messaging.serve_actor(actor, answering)
    await nc.publish("jobs.fire", b"and forget")
    answer = await nc.request("jobs.run", b"42", timeout=10)
    assert answer.data == b"done:42"
    await wait_for(lambda: len(inbox.messages) == 2)
    fire = next(m for m in inbox.messages if m["subject"] == "jobs.fire")
    assert fire["body"] == b"and forget" and fire.get("replyTo") is None


async def test_request_returns_the_reply(messaging: Harness, nc: NATS) -> None:
    actor = await messaging.link()

    async def responder(msg: Msg) -> None:
        await msg.respond(msg.data.upper())

    await nc.subscribe("svc.upper", cb=responder)
    await settle(nc)
    reply = await messaging.call(actor, "Messaging.Request", {"subject": "svc.upper", "body": b"hi", "timeoutMs": 5000})
    assert reply["body"] == b"HI"
    with pytest.raises(LatticeError, match=r"no subscriber|no reply"):
        await messaging.call(actor, "Messaging.Request", {"subject": "svc.nobody", "body": b"", "timeoutMs": 200})


async def test_queue_group_hands_each_message_to_one_subscriber(messaging: Harness, nc: NATS) -> None:
    inbox = Inbox()
    actor = await messaging.link(SUBSCRIPTION="work.items|workers")
    await messaging.serve_actor(actor, inbox.handler)
    other: list[Msg] = []

    async def competitor(msg: Msg) -> None:  # another member of the same queue group
        other.append(msg)

    await nc.subscribe("work.items", queue="workers", cb=competitor)
    await settle(nc)
    for i in range(60):
        await nc.publish("work.items", str(i).encode())
    await wait_for(lambda: len(inbox.messages) + len(other) == 60)
    bodies = sorted([m["body"] for m in inbox.messages] + [m.data for m in other])
    assert bodies == sorted(str(i).encode() for i in range(60))  # each once, none twice


@pytest.mark.parametrize("subscription", ["wasmbus.>", "$JS.API.>", "_INBOX.>", ">", "*.rpc", "bad subject"])
async def test_subscriptions_that_reach_the_lattice_are_refused(messaging: Harness, subscription: str) -> None:
    with pytest.raises(ProviderError):
        await messaging.link(SUBSCRIPTION=subscription)


async def test_publishing_outside_the_allowed_subjects_is_refused(messaging: Harness) -> None:
    actor = await messaging.link(PUBLISH="events.>")
    for subject in ("wasmbus.rpc.default.MABC", "$KV.LATTICEDATA_default.x", "other.subject", "events.*"):
        with pytest.raises(LatticeError):
            await messaging.call(actor, "Messaging.Publish", {"subject": subject, "body": b""})
    assert await messaging.call(actor, "Messaging.Publish", {"subject": "events.ok", "body": b""}) is None


async def test_a_message_over_the_max_payload_is_refused(messaging: Harness, tmp_path: Path) -> None:
    conf = tmp_path / "small.conf"
    conf.write_text("max_payload: 4096\n")
    small = NatsServer(tmp_path / "small-nats", extra_args=["-c", str(conf)]).start()
    try:
        actor = await messaging.link(URI=small.url)
        with pytest.raises(LatticeError, match="max payload of 4096"):
            await messaging.call(actor, "Messaging.Publish", {"subject": "big.one", "body": b"x" * 5000})
        assert await messaging.call(actor, "Messaging.Publish", {"subject": "big.one", "body": b"x" * 4000}) is None
    finally:
        small.stop()


async def test_an_applications_own_nats_is_kept_apart(messaging: Harness, nc: NATS, app_nats: NatsServer) -> None:
    inbox = Inbox()
    actor = await messaging.link(URI=app_nats.url, SUBSCRIPTION="wasmbus.looks.like.ours")
    await messaging.serve_actor(actor, inbox.handler)
    app = await nats.connect(app_nats.url)
    try:
        on_lattice = await listen(nc, "greetings")
        on_app = await listen(app, "greetings")
        await messaging.call(actor, "Messaging.Publish", {"subject": "greetings", "body": b"hello"})
        await wait_for(lambda: on_app)
        await app.publish("wasmbus.looks.like.ours", b"theirs")  # their subject space, not the lattice's
        await wait_for(lambda: inbox.messages)
        await settle(nc)
        assert not on_lattice
    finally:
        await app.close()


async def test_stream_delivery_redelivers_until_the_actor_succeeds(messaging: Harness, nc: NATS) -> None:
    attempts: list[bytes] = []

    async def flaky(operation: str, payload: bytes) -> bytes:
        attempts.append(unpack(payload)["body"])
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return b""

    actor = await messaging.link(SUBSCRIPTION="ledger.entries", STREAM="LEDGER", MAX_DELIVER=5)
    await messaging.serve_actor(actor, flaky)
    await nc.jetstream().publish("ledger.entries", b"+10")
    await wait_for(lambda: len(attempts) == 3, timeout=20)
    await asyncio.sleep(0.5)
    assert attempts == [b"+10"] * 3  # acknowledged on the third attempt: not delivered again


async def test_a_message_that_keeps_failing_is_dead_lettered_with_the_reason(messaging: Harness, nc: NATS) -> None:
    async def trapping(operation: str, payload: bytes) -> bytes:
        raise RuntimeError("trapped: unreachable")

    dead = await listen(nc, "lattice.deadletter.PAYMENTS")
    actor = await messaging.link(SUBSCRIPTION="payments.in", STREAM="PAYMENTS", MAX_DELIVER=2)
    await messaging.serve_actor(actor, trapping)
    await nc.jetstream().publish("payments.in", pack({"amount": 5}))
    await wait_for(lambda: dead, timeout=20)
    assert unpack(dead[0].data) == {"amount": 5}
    assert dead[0].headers is not None
    assert "unreachable" in dead[0].headers["Lattice-Error"]
    assert dead[0].headers["Lattice-Subject"] == "payments.in"
