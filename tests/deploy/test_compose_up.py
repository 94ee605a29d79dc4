"""``docker compose up`` then ``lattice apply``, acted out without a Docker engine.

Every service of compose.yaml becomes a machine (a network namespace) reachable by its service name, as on
compose's network; it runs the service's own command and environment (interpolated as compose would) with
the lattice image's entry point (``python -m lattice``) or, for ``nats``, nats-server with the volume
mapped to a temp dir. Services start in ``depends_on`` order and, where a dependant waits for
``service_healthy``, only after the service's own health check passes, run inside its machine. Then the
documented ``docker compose run --rm tools apply deploy/compose/kvcounter.yaml --wait`` runs from a tools
machine with the repository as its working directory, and the HTTP server provider's service answers.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice import keys
from lattice.cli.natsserver import nats_server_binary
from tests.deploy import netns
from tests.deploy.conftest import ROOT
from tests.deploy.test_compose import command_of, interpolate

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]


@pytest.fixture
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if not s.get("profiles")}


@pytest.fixture
def network(tmp_path: Path, compose: dict[str, Any]) -> Iterator[netns.Network]:
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"needs network namespaces: {reason}")
    with netns.Network(tmp_path / "logs", list(compose["services"])) as net:
        yield net


def start_order(services: dict[str, dict[str, Any]]) -> list[str]:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in order:
            return
        for dep in services[name].get("depends_on") or {}:
            visit(dep, (*path, name))
        order.append(name)

    for name in services:
        visit(name, ())
    return order


class Compose:
    """Runs compose services as processes in their machines."""

    def __init__(self, net: netns.Network, compose: dict[str, Any], tmp: Path) -> None:
        self.net = net
        self.compose = compose
        self.tmp = tmp
        self.given = {"LATTICE_CLUSTER_SEED": keys.generate("cluster").seed}

    def env(self, name: str) -> dict[str, str]:
        service = self.compose["services"][name]
        env = {k: interpolate(str(v), self.given) for k, v in (service.get("environment") or {}).items()}
        # What the image sets (Dockerfile ENV), with the state dir in this test's temp dir.
        return {**os.environ, "PYTHONUNBUFFERED": "1", **env, "LATTICE_STATE_DIR": str(self.tmp / "state" / name)}

    def argv(self, name: str) -> list[str]:
        service = self.compose["services"][name]
        command = command_of(service)
        if interpolate(service["image"], {}).startswith("nats:"):
            volumes = dict(reversed(v.split(":")[:2]) for v in service.get("volumes", []))
            command = [str(self.tmp / "volumes" / volumes[c]) if c in volumes else c for c in command]
            return [nats_server_binary(), *command]
        return [sys.executable, "-m", "lattice", *command]

    def start(self, name: str) -> None:
        self.net.spawn(name, "main", self.argv(name), self.env(name), cwd=self.tmp)

    def healthy(self, name: str) -> bool:
        test = self.compose["services"][name]["healthcheck"]["test"]
        if test[0] == "CMD-SHELL":
            argv = ["sh", "-c", test[1]]
        else:
            argv = [sys.executable if test[1] == "python" else test[1], *test[2:]]
        result = self.net.run(name, argv, self.env(name), cwd=self.tmp, timeout_s=30)
        return result.returncode == 0

    async def wait_healthy(self, name: str, timeout_s: float = 60) -> float:
        start = time.monotonic()
        while not await asyncio.to_thread(self.healthy, name):
            if time.monotonic() - start > timeout_s:
                raise AssertionError(f"{name} not healthy within {timeout_s:g} s\n{self.net.log_tail()}")
            await asyncio.sleep(0.5)
        return time.monotonic() - start


async def test_compose_up_then_apply_serves_http_through_the_provider_services(
    network: netns.Network, services: dict[str, dict[str, Any]], compose: dict[str, Any], tmp_path: Path
) -> None:
    up = Compose(network, compose, tmp_path)
    waited_for = {
        dep
        for s in services.values()
        for dep, cond in (s.get("depends_on") or {}).items()
        if cond["condition"] == "service_healthy"
    }
    for name in start_order(services):
        up.start(name)
        if name in waited_for:
            await up.wait_healthy(name)
    for name in services:  # every health check passes, not only the ones something waits for
        if "healthcheck" in services[name]:
            await up.wait_healthy(name)

    # docker compose run --rm tools apply deploy/compose/kvcounter.yaml --wait
    apply = ["apply", "deploy/compose/kvcounter.yaml", "--wait", "--timeout", "60"]
    result = network.run("tools", [sys.executable, "-m", "lattice", *apply], up.env("tools"), cwd=ROOT, timeout_s=90)
    assert result.returncode == 0, f"{shlex.join(apply)}\n{result.stdout}\n{result.stderr}\n{network.log_tail()}"
    assert "deployed" in result.stdout

    http = network.machines["httpserver"].address
    counts: list[int] = []
    async with httpx.AsyncClient(timeout=5) as client:
        deadline = time.monotonic() + 30
        while len(counts) < 2:
            try:
                r = await client.get(f"http://{http}:8080/hello")
                if r.status_code == 200:
                    counts.append(r.json()["count"])
                    continue
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no HTTP answer from the httpserver service\n{network.log_tail()}"
            await asyncio.sleep(0.3)
    assert counts[1] == counts[0] + 1

    async with httpx.AsyncClient(base_url=f"http://{network.machines['control-plane'].address}:8081") as api:
        app = (await api.get("/v1/applications/kvcounter")).json()
        hosts = (await api.get("/v1/hosts")).json()
    components = {c["name"]: c for c in app["status"]["components"]}
    assert components["kvcounter"]["running"] == 3
    assert sorted(h["labels"]["zone"] for h in hosts) == ["zone-a", "zone-b", "zone-c"]
    # one kvcounter per zone, and no host runs its own httpserver or keyvalue: the services do
    assert all(a["count"] == 1 for h in hosts for a in h["actors"]), hosts
    assert components["httpserver"]["running"] == components["keyvalue"]["running"] == 0
