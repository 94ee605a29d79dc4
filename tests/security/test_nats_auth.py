"""Every participant connects with credentials when the NATS server asks for them (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from lattice.cli.natsserver import NatsServer
from lattice.host.host import Host
from lattice.settings import Settings


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", extra_args=["--user", "lattice", "--pass", "s3cret"]).start()
    try:
        yield server
    finally:
        server.stop()


async def test_unauthenticated_client_is_refused(secured_nats: NatsServer) -> None:
    with pytest.raises((nats.errors.NoServersError, nats.errors.Error, OSError)):
        await nats.connect(secured_nats.url, max_reconnect_attempts=0, connect_timeout=2, allow_reconnect=False)


async def test_host_connects_with_user_and_password_from_settings(secured_nats: NatsServer, tmp_path: Path) -> None:
    env = {
        "LATTICE_NATS_URL": secured_nats.url,
        "LATTICE_NATS_USER": "lattice",
        "LATTICE_NATS_PASSWORD": "s3cret",
        "LATTICE_STATE_DIR": str(tmp_path / "state"),
    }
    settings = Settings.from_env(env)
    async with Host(settings) as host:
        assert host.nc.is_connected
        reply: Any = await host.nc.request("$JS.API.INFO", b"", timeout=5)
        assert b"memory" in reply.data


async def test_wrong_password_fails_with_a_clear_error(secured_nats: NatsServer, tmp_path: Path) -> None:
    settings = Settings(
        nats_url=secured_nats.url, nats_user="lattice", nats_password="wrong", state_dir=tmp_path / "state"
    )
    from lattice.connection import connect
    from lattice.errors import ConfigError

    with pytest.raises(ConfigError, match="refused the credentials"):
        await connect(settings, "test", max_reconnect_attempts=0)


async def test_host_connects_with_an_nkey_seed(tmp_path: Path) -> None:
    from lattice import keys

    user = keys.generate("user")
    conf = tmp_path / "nkey.conf"
    conf.write_text(f'authorization {{ users = [ {{ nkey: "{user.public_key}" }} ] }}\n')
    server = NatsServer(tmp_path / "nats", extra_args=["-c", str(conf)]).start()
    try:
        with pytest.raises((nats.errors.NoServersError, nats.errors.Error, OSError)):
            await nats.connect(server.url, max_reconnect_attempts=0, connect_timeout=2, allow_reconnect=False)
        settings = Settings(nats_url=server.url, nats_nkey_seed=user.seed, state_dir=tmp_path / "state")
        async with Host(settings) as host:
            assert host.nc.is_connected
    finally:
        server.stop()
