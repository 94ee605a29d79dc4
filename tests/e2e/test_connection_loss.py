"""A participant whose NATS connection is gone for good stops serving and exits; one whose server comes
back reconnects (issue 13, item 1). Real nats-server, real hosts, real HTTP, real processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice.cli.natsserver import NatsServer, free_port
from lattice.errors import ConnectionLost
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.e2e.test_kvcounter import deploy_kvcounter, http_ok


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def kvcounter_on_one_host(host_factory: Any, control_plane_factory: Any) -> tuple[Any, Any, int]:
    """One host and a control plane serving the demo on a free port: ``(host, control plane, port)``."""
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    port = free_port()
    await deploy_kvcounter(client, port, replicas=1)
    await wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/hello"), timeout=20)
    return host, cp, port


async def test_a_4kb_url_is_counted_and_the_lattice_keeps_serving(
    host_factory: Any, control_plane_factory: Any
) -> None:
    """The issue's first report: one long URL made nats-server close the host's connection for good."""
    host, cp, port = await kvcounter_on_one_host(host_factory, control_plane_factory)
    long_path = "/" + "x" * 4100
    async with httpx.AsyncClient(timeout=10) as c:
        first = await c.get(f"http://127.0.0.1:{port}{long_path}")
        second = await c.get(f"http://127.0.0.1:{port}{long_path}")
        hello = await c.get(f"http://127.0.0.1:{port}/hello")
    assert first.status_code == 200, first.text[:300]
    assert (first.json()["count"], second.json()["count"]) == (1, 2)
    assert first.json()["path"] == long_path
    assert hello.status_code == 200
    assert host.nc.is_connected and cp.nc.is_connected


async def test_names_too_long_for_a_subject_are_4xx_and_the_control_plane_stays_connected(
    control_plane_factory: Any,
) -> None:
    cp, client = await control_plane_factory()
    r = await client.post(f"/v1/actors/M{'A' * 5000}/invoke", json={"operation": "X.Y"})
    assert r.status_code == 400, r.text[:300]
    assert "actor id is 5001 bytes long" in r.json()["detail"]
    long = "n" * 5000
    for method, path, body in (
        ("GET", f"/v1/applications/{long}", None),
        ("DELETE", f"/v1/applications/{long}", None),
        ("GET", f"/v1/artifacts/sha256:{long}", None),
        ("GET", "/v1/applications/bad name", None),
        (
            "PUT",
            "/v1/links",
            {"actor_id": "M" + "A" * 55, "provider_id": "V" + "B" * 55, "contract_id": "a:b", "link_name": long},
        ),
    ):
        r = await client.request(method, path, json=body)
        assert r.status_code == 400, (method, path[:40], r.status_code, r.text[:300])
        detail = r.json()["detail"]
        assert "long" in detail or "cannot be stored" in detail or "may hold only" in detail, r.text[:300]
    assert cp.nc.is_connected
    assert (await client.get("/v1/applications")).status_code == 200


async def test_host_whose_connection_the_server_closes_stops_serving_and_frees_its_port(
    host_factory: Any, control_plane_factory: Any
) -> None:
    host, _, port = await kvcounter_on_one_host(host_factory, control_plane_factory)
    serving = asyncio.create_task(host.serve())
    # what an unchecked subject did: nats-server answers "maximum control line exceeded" and closes
    await host.nc.publish("x" * 5000, b"")
    with pytest.raises(ConnectionLost, match=r"(?i)lost its NATS connection: the server closed .*control line"):
        await asyncio.wait_for(serving, 10)
    await host.shutdown()  # what ``async with Host`` does on the way out of ``lattice host``
    assert port_free(port), "the host still holds the HTTP port"


GIVE_UP_S = 8  # the outage below (a nats-server restart) must fit in it on a loaded 2-core box


def test_host_process_rides_out_a_nats_restart_and_exits_nonzero_when_nats_stays_away(
    nats_server: NatsServer, settings: Settings, tmp_path: Path
) -> None:
    metrics = free_port()
    env = {
        **os.environ,
        "LATTICE_NATS_URL": nats_server.url,
        "LATTICE_NAME": settings.lattice,
        "LATTICE_CLUSTER_SEED": settings.cluster_seed or "",
        "LATTICE_STATE_DIR": str(tmp_path / "state"),
        "LATTICE_NATS_GIVE_UP": str(GIVE_UP_S),
        "COLUMNS": "300",
        "LATTICE_METRICS": f"127.0.0.1:{metrics}",
    }
    log = (tmp_path / "host.log").open("wb")
    restarted = NatsServer(nats_server.store_dir, port=nats_server.port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lattice", "host"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _until(lambda: b"host started" in (tmp_path / "host.log").read_bytes() and _metrics_up(metrics), 60, proc)
        nats_server.stop()
        _until(lambda: b"nats disconnected" in (tmp_path / "host.log").read_bytes(), 60, proc)
        down_at = time.monotonic()
        restarted.start()  # back well within the give-up time, even on a loaded machine
        _until(lambda: b"nats reconnected" in (tmp_path / "host.log").read_bytes(), 60, proc)
        time.sleep(max(0.0, down_at + GIVE_UP_S + 1 - time.monotonic()))  # past the give-up time: nothing gives up
        assert proc.poll() is None, (tmp_path / "host.log").read_text()
        restarted.stop()  # for good
        proc.wait(timeout=GIVE_UP_S + 60)
        output = (tmp_path / "host.log").read_text()
        assert proc.returncode != 0, output
        assert f"lost its NATS connection: NATS unreachable for {GIVE_UP_S} s" in output, output
        assert port_free(metrics)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        restarted.stop()
        log.close()


def _metrics_up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _until(predicate: Any, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the host exited with {proc.returncode}"
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
