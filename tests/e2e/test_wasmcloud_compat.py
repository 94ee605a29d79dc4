"""A wasmCloud 0.x-style actor runs unmodified: `wasmbus` imports, a `jwt` section with caps and a call
alias, 0.x operation names (HttpServer.HandleRequest, Logging.WriteLog, NumberGen.GenerateGuid,
KeyValue.Increment) and an actor-to-actor `Service.Method` call by alias, all linked to bundled providers."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lattice import claims, keys, wasm
from lattice.actors.toolchains import CFLAGS
from lattice.cli.natsserver import free_port
from tests.conftest import wait_for
from tests.e2e.test_kvcounter import http_ok

ROOT = Path(__file__).resolve().parents[2]
CAPS = ["wasmcloud:httpserver", "wasmcloud:keyvalue", "wasmcloud:builtin:logging", "wasmcloud:builtin:numbergen"]


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("wcs") / "actor.wasm"
    sdk = ROOT / "actors" / "sdk"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            *CFLAGS,
            '-DLATTICE_IMPORT_MODULE="wasmbus"',
            f"-I{sdk}",
            *map(str, sorted(sdk.glob("*.c"))),
            str(Path(__file__).with_name("wasmcloud_style.c")),
            "-o",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def manifest(pinger: str, ponger: str, port: int) -> str:
    def link(target: str, values: dict[str, str] | None = None) -> dict[str, Any]:
        return {"type": "linkdef", "properties": {"target": target, "values": values or {}}}

    doc = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "compat", "annotations": {"version": "v1"}},
        "spec": {
            "components": [
                {
                    "name": "pinger",
                    "type": "actor",
                    "properties": {"image": pinger},
                    "traits": [
                        {"type": "spreadscaler", "properties": {"replicas": 1}},
                        link("http", {"port": str(port)}),
                        link("kv"),
                        link("log"),
                        link("num"),
                    ],
                },
                {
                    "name": "ponger",
                    "type": "actor",
                    "properties": {"image": ponger},
                    "traits": [{"type": "spreadscaler", "properties": {"replicas": 1}}],
                },
                *(
                    {"name": n, "type": "capability", "properties": {"image": f"builtin:{b}", "contract": c}}
                    for n, b, c in (
                        ("http", "httpserver", CAPS[0]),
                        ("kv", "keyvalue", CAPS[1]),
                        ("log", "logging", CAPS[2]),
                        ("num", "numbergen", CAPS[3]),
                    )
                ),
            ]
        },
    }
    return yaml.safe_dump(doc)


async def test_signed_wasmbus_actor_uses_every_contract_and_calls_by_alias(
    module: bytes, host_factory: Any, control_plane_factory: Any
) -> None:
    assert {name for name, _ in wasm.custom_sections(module)}.isdisjoint({"jwt"})
    issuer = keys.generate("account")
    pinger = claims.sign_actor(module, issuer, name="pinger", caps=CAPS)
    ponger = claims.sign_actor(module, issuer, name="ponger", caps=[], call_alias="wasmcloud/ponger")
    await host_factory(allow_unsigned=False)
    await host_factory(allow_unsigned=False)
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 2)
    digests = []
    for signed in (pinger, ponger):
        response = await client.post("/v1/artifacts", content=signed)
        assert response.status_code == 201, response.text
        assert response.json()["claims"]["caps"] == list(claims.extract_claims(signed).caps)  # type: ignore[union-attr]
        digests.append(response.json()["digest"])
    port = free_port()
    assert (await client.put("/v1/applications/compat", content=manifest(*digests, port).encode())).status_code == 200
    url = f"http://127.0.0.1:{port}/"
    await wait_for(lambda: http_ok(url), timeout=20)
    async with httpx.AsyncClient() as c:
        first, second = (await c.get(url)).json(), (await c.get(url)).json()
    assert first["pong"] == "pong"
    assert uuid.UUID(first["guid"]) != uuid.UUID(second["guid"])
    assert second["hits"] == first["hits"] + 1


async def test_lattice_call_by_claims_name_with_json(
    module: bytes, host_factory: Any, control_plane_factory: Any, tmp_path: Path
) -> None:
    """`lattice call ponger Ponger.Ping --json`: found by the name in its claims, msgpack both ways."""
    import asyncio
    import json as jsonlib
    import os

    issuer = keys.generate("account")
    ponger = claims.sign_actor(module, issuer, name="ponger", caps=[], call_alias="wasmcloud/ponger")
    await host_factory(allow_unsigned=False)
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    digest = (await client.post("/v1/artifacts", content=ponger)).json()["digest"]
    app = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "pong", "annotations": {"version": "v1"}},
        "spec": {"components": [{"name": "ponger", "type": "actor", "properties": {"image": digest}}]},
    }
    await client.put("/v1/applications/pong", content=yaml.safe_dump(app).encode())
    await wait_for(lambda: any(a.get("name") == "ponger" for h in cp.hosts() for a in h["actors"]))
    env = {**os.environ, "LATTICE_API_URL": f"http://{cp.listen}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lattice",
        "call",
        "ponger",
        "Ponger.Ping",
        "{}",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert jsonlib.loads(out) == "pong"
