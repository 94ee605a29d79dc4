"""``lattice host --workers 2``: two full hosts from one command share the HTTP port, and a worker killed
with -9 is replaced by a new host. Real nats-server, real control plane, real processes and sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lattice.capability import builtin_provider_id
from lattice.cli.natsserver import free_port
from lattice.errors import ConfigError
from lattice.host.children import child_env, spawn
from lattice.host.workers import option_value, resolve_workers, usable_cores, without_option, worker_command
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.e2e.test_kvcounter import deploy_kvcounter, http_ok


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening_hosts(hosts: list[dict[str, Any]], actor_id: str) -> set[str]:
    """Hosts whose httpserver provider accepted ``actor_id``'s link (its listener is up)."""
    http = builtin_provider_id("httpserver")
    return {h["id"] for h in hosts for p in h["providers"] if p["id"] == http and actor_id in (p["links"] or [])}


async def test_two_workers_share_the_port_and_a_killed_one_is_replaced(
    settings: Settings, control_plane_factory: Any, tmp_path: Path
) -> None:
    cp, client = await control_plane_factory()
    env = child_env(
        settings,
        LATTICE_ALLOW_UNSIGNED="true",
        LATTICE_ALLOW_ANY_ISSUER="true",
        LATTICE_STATE_DIR=str(tmp_path / "workers"),
        LATTICE_HEARTBEAT=str(settings.heartbeat_s),
        LATTICE_DRAIN_TIMEOUT="0",
    )
    with (tmp_path / "workers.log").open("wb") as log:
        group = spawn(
            [sys.executable, "-m", "lattice", "host", "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    workers: list[int] = []
    try:
        await wait_for(lambda: len(cp.hosts()) == 2, timeout=60)
        first_ids = {h["id"] for h in cp.hosts()}
        assert {h["labels"].get("worker") for h in cp.hosts()} == {"1", "2"}
        port = free_port()
        actor_id = (await deploy_kvcounter(client, port, replicas=2, http_everywhere=True))["actor_id"]
        url = f"http://127.0.0.1:{port}/workers"
        await wait_for(lambda: http_ok(url), timeout=60)
        await wait_for(lambda: listening_hosts(cp.hosts(), actor_id) == first_ids, timeout=30)  # both on one port

        workers = children_of(group.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        await wait_for(lambda: len(children_of(group.pid)) == 2 and workers[0] not in children_of(group.pid), 30)
        await wait_for(lambda: len(cp.hosts()) == 2 and {h["id"] for h in cp.hosts()} != first_ids, timeout=60)
        now = {h["id"] for h in cp.hosts()}
        assert len(now & first_ids) == 1  # the survivor kept its id; the replacement is a new host
        await wait_for(lambda: listening_hosts(cp.hosts(), actor_id) == now, timeout=60)
        await wait_for(lambda: http_ok(url), timeout=30)
        workers = children_of(group.pid)
    finally:
        group.terminate()
        group.wait(60)
    await wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30)  # none left behind
    assert group.returncode == 0, (tmp_path / "workers.log").read_text()[-2000:]


def test_workers_count_and_argv() -> None:
    assert resolve_workers("auto") == usable_cores()
    assert resolve_workers(" 3 ") == 3
    for bad in ("0", "65", "many"):
        with pytest.raises(ConfigError, match="--workers"):
            resolve_workers(bad)
    argv = ["host", "--workers", "2", "--label", "a=b", "--workers=3"]
    assert without_option(argv, "--workers") == ["host", "--label", "a=b"]


def test_each_worker_serves_its_metrics_on_its_own_port() -> None:
    """One --metrics address for N workers: worker i takes port + i - 1 (one address for all crash-looped every
    worker but the first to bind it); port 0 lets each pick a free one."""
    command = ["host", "--metrics", "127.0.0.1:9400", "--label", "a=b"]
    assert option_value(command, "--metrics") == "127.0.0.1:9400"
    assert worker_command(command, 1, "127.0.0.1:9400") == [
        "host",
        "--label",
        "a=b",
        "--label",
        "worker=1",
        "--metrics",
        "127.0.0.1:9400",
    ]
    assert worker_command(command, 3, "127.0.0.1:9400")[-1] == "127.0.0.1:9402"
    assert worker_command(["host"], 2, "[::1]:0")[-1] == "[::1]:0"
    assert "--metrics" not in worker_command(["host"], 2, None)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        worker_command(["host"], 1, "nowhere")
