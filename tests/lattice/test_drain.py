"""Stopping a subscription loses nothing the server already routed to it (``connection.drain_subscription``)."""

from __future__ import annotations

import asyncio

import nats
import nats.errors

from lattice.connection import drain_subscription, settle
from lattice.settings import Settings

CALLS = 300


async def test_every_request_routed_before_the_unsubscribe_is_answered(settings: Settings) -> None:
    server, client = await nats.connect(settings.nats_url), await nats.connect(settings.nats_url)
    try:

        async def answer(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(b"ok")

        sub = await server.subscribe("svc.stopping", cb=answer)
        await settle(server)

        async def call() -> str:
            try:
                return (await client.request("svc.stopping", b"", timeout=10)).data.decode()
            except nats.errors.NoRespondersError:
                return "no responders"
            except nats.errors.TimeoutError:
                return "lost"  # routed to the subscription, then dropped: nobody answered it

        calls = [asyncio.create_task(call()) for _ in range(CALLS)]
        await asyncio.sleep(0)  # the first requests are on their way
        await drain_subscription(server, sub)
        outcomes = await asyncio.gather(*calls)
        assert "lost" not in outcomes, f"{outcomes.count('lost')} of {CALLS} requests were dropped"
        assert set(outcomes) <= {"ok", "no responders"}
    finally:
        await asyncio.gather(server.close(), client.close())
