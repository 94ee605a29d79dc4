"""Issue 17, finding 11 and "secure by default": ``lattice up``'s NATS users per role and its API token.

The NATS side runs a real nats-server with the configuration ``lattice up`` writes; the API side a real
control plane on loopback, reached with the Host header a DNS-rebinding page would send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from lattice import subjects
from lattice.cli import natsauth
from lattice.cli.natsserver import NatsServer
from lattice.connection import settle
from tests.conftest import wait_for

LATTICE = "default"


@pytest.fixture
def creds() -> natsauth.Credentials:
    return natsauth.Credentials.generate()


@pytest.fixture
def secured(tmp_path: Path, creds: natsauth.Credentials) -> Iterator[NatsServer]:
    conf, saved = natsauth.write(creds, LATTICE, tmp_path / "up")
    assert conf.stat().st_mode & 0o077 == 0 and saved.stat().st_mode & 0o077 == 0
    server = NatsServer(tmp_path / "nats", extra_args=["-c", str(conf)]).start()
    try:
        yield server
    finally:
        server.stop()


async def _connect(server: NatsServer, user: tuple[str, str] | None, errors: list[str]) -> Any:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    kwargs: dict[str, Any] = {"user": user[0], "password": user[1]} if user else {}
    return await nats.connect(
        server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, error_cb=on_error, **kwargs
    )


async def test_anonymous_client_cannot_connect_to_lattice_up_nats(secured: NatsServer) -> None:
    with pytest.raises((nats.errors.NoServersError, nats.errors.Error, OSError)):
        await _connect(secured, None, [])


async def test_observer_may_watch_and_ping_but_not_command_invoke_or_touch_jetstream(
    secured: NatsServer, creds: natsauth.Credentials
) -> None:
    host_errors: list[str] = []
    observer_errors: list[str] = []
    member = await _connect(secured, creds.host, host_errors)
    observer = await _connect(secured, creds.observer, observer_errors)
    try:
        commands: list[bytes] = []

        async def command(msg: Any) -> None:
            commands.append(msg.data)

        async def pong(msg: Any) -> None:
            await member.publish(msg.reply, json.dumps({"ok": 1}).encode())

        await member.subscribe(subjects.ctl_cmd(LATTICE, "NHOST", "stop"), cb=command)
        await member.subscribe(subjects.ctl_ping_hosts(LATTICE), cb=pong)
        await settle(member)
        reply = await observer.request(subjects.ctl_ping_hosts(LATTICE), b"", timeout=5)
        assert json.loads(reply.data) == {"ok": 1}
        await observer.publish(subjects.ctl_cmd(LATTICE, "NHOST", "stop"), b"{}")
        await observer.publish(subjects.actor_rpc(LATTICE, "M" + "A" * 55), b"")
        with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
            await observer.request("$JS.API.INFO", b"", timeout=2)
        # the violations arrive as asynchronous errors
        await wait_for(lambda: sum("permissions violation" in e.lower() for e in observer_errors) >= 3)
        await settle(member)
        assert commands == []
        assert (await member.request("$JS.API.INFO", b"", timeout=5)).data  # a member may
        assert host_errors == []
    finally:
        await observer.close()
        await member.close()


async def test_api_token_is_required_and_checked_and_foreign_host_headers_are_refused(
    control_plane_factory: Any,
) -> None:
    _, client = await control_plane_factory(api_token="s3cret-token")
    assert (await client.get("/v1/hosts")).status_code == 401
    assert (await client.get("/v1/hosts", headers={"authorization": "Bearer s3cret-tokeX"})).status_code == 403
    ok = {"authorization": "Bearer s3cret-token"}
    assert (await client.get("/v1/hosts", headers=ok)).status_code == 200
    rebound = await client.get("/v1/hosts", headers={**ok, "host": "attacker.example:8081"})
    assert rebound.status_code == 400
    assert (await client.get("/v1/hosts", headers={**ok, "host": "localhost:8081"})).status_code == 200
