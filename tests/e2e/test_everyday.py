"""Smaller things a new user tripped over (issue 13, item 7), each against a real lattice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import yaml

from tests.e2e.test_connection_loss import kvcounter_on_one_host

MIB = 1024 * 1024


def lattice(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": str(columns), "PATH": ""}
    return subprocess.run([sys.executable, "-m", "lattice", *args], capture_output=True, text=True, env=env)


async def test_a_body_of_exactly_16_mib_is_413_not_500_and_the_actor_keeps_serving(
    host_factory: Any, control_plane_factory: Any
) -> None:
    _, _, port = await kvcounter_on_one_host(host_factory, control_plane_factory)
    async with httpx.AsyncClient(timeout=60) as client:
        at_limit = await client.post(f"http://127.0.0.1:{port}/upload", content=b"x" * (16 * MIB))
        assert at_limit.status_code == 413, at_limit.text[:300]
        assert "too large for the actor" in at_limit.text and "request id" in at_limit.text
        assert (await client.post(f"http://127.0.0.1:{port}/upload", content=b"x" * (16 * MIB + 1))).status_code == 413
        assert (await client.get(f"http://127.0.0.1:{port}/hello")).status_code == 200


async def test_lattice_call_finds_an_unsigned_actor_by_its_manifest_name_and_hosts_show_full_ids(
    host_factory: Any, control_plane_factory: Any
) -> None:
    host, cp, _ = await kvcounter_on_one_host(host_factory, control_plane_factory)
    api = f"http://{cp.listen}"
    request = {"method": "GET", "path": "/by-name", "queryString": "", "header": {}, "body": ""}
    called = await asyncio.to_thread(
        lattice, "call", "kvcounter", "HttpServer.HandleRequest", json.dumps(request), "--json", "--api-url", api
    )
    assert called.returncode == 0, called.stdout + called.stderr
    answer = json.loads(called.stdout)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["count"] == 1

    wide = await asyncio.to_thread(lattice, "get", "hosts", "--api-url", api, columns=400)
    assert wide.returncode == 0, wide.stderr
    actor_id = next(iter(host.actors))
    assert host.id in wide.stdout
    assert actor_id in wide.stdout  # an unsigned actor has no name: its full id, not 10 characters of it
    narrow = await asyncio.to_thread(lattice, "get", "hosts", "--api-url", api, columns=80)
    assert "…" not in narrow.stdout and "..." not in narrow.stdout  # folded on a narrow terminal, never cut


async def test_get_app_with_a_version_writes_that_manifest_unwrapped(
    host_factory: Any, control_plane_factory: Any
) -> None:
    """``lattice get app NAME --version V > file`` is the stored manifest, whole lines on any terminal width:
    the summary goes to stderr."""
    _, cp, _ = await kvcounter_on_one_host(host_factory, control_plane_factory)
    api = f"http://{cp.listen}"
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        stored = (await client.get("/v1/applications/kvcounter")).json()
    shown = await asyncio.to_thread(
        lattice, "get", "app", "kvcounter", "--version", stored["version"], "--api-url", api, columns=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == stored["manifest"].rstrip("\n") + "\n"
    assert yaml.safe_load(shown.stdout)["metadata"]["name"] == "kvcounter"
    assert "kvcounter" in shown.stderr  # the summary, not mixed into the manifest
