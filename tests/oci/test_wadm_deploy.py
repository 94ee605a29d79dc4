"""A wadm 0.x application as written (registry images for actors and providers) via ``lattice apply`` and the API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from lattice import oci
from lattice.cli.natsserver import free_port
from tests.conftest import wait_for
from tests.oci.registry import Registry
from tests.oci.test_cli import lattice

KVCOUNTER = Path(__file__).parents[2] / "actors" / "kvcounter" / "kvcounter.wasm"

WADM_APP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
  annotations:
    description: "kvcounter as a wadm 0.10 user writes it: no version, registry images, instances"
spec:
  components:
    - name: counter
      type: actor
      properties:
        image: {image}
      traits:
        - type: spreadscaler
          properties:
            instances: 1
        - type: linkdef
          properties:
            target: httpserver
            values:
              config_json: '{{"address": "127.0.0.1:{port}", "cache_control": "no-store"}}'
        - type: linkdef
          properties:
            target: keyvalue
            values:
              URL: redis://127.0.0.1:6379/
        - type: linkdef
          properties:
            target: logging
        - type: affinity
          properties:
            prefer: ssd
    - name: httpserver
      type: capability
      properties:
        image: wasmcloud.azurecr.io/httpserver:0.17.0
        contract: wasmcloud:httpserver
    - name: keyvalue
      type: capability
      properties:
        image: wasmcloud.azurecr.io/kvredis:0.21.0
        contract: {kv_contract}
        config: '{{"url": "redis://127.0.0.1:6379/"}}'
    - name: logging
      type: capability
      properties:
        image: wasmcloud.azurecr.io/logging:0.9.3
        contract: wasmcloud:builtin:logging
"""


async def test_a_wadm_application_deploys_through_lattice_apply(
    registry: Registry, host_factory: Any, control_plane_factory: Any, tmp_path: Path
) -> None:
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    image = f"{registry.address}/wasmcloud/kvcounter:0.4.0"
    oci.push(oci.parse_reference(image), KVCOUNTER.read_bytes(), insecure=True)
    port = free_port()
    path = tmp_path / "wadm.yaml"
    path.write_text(WADM_APP.format(name="counter", image=image, port=port, kv_contract="wasmcloud:keyvalue"))
    env = {"LATTICE_API_URL": f"http://{cp.listen}"}
    applied = await asyncio.to_thread(lattice, "apply", str(path), "--wait", "--timeout", "30", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "deployed" in applied.stdout
    async with httpx.AsyncClient() as http:
        response = await wait_for(lambda: _get(http, f"http://127.0.0.1:{port}/wadm"), timeout=30)
    assert response.json()["count"] == 1

    app = (await client.get("/v1/applications/counter")).json()
    components = {c["name"]: c for c in app["status"]["components"]}
    assert components["counter"]["custom_traits"]["types"] == ["affinity"]
    assert components["httpserver"]["substituted"] == {
        "image": "wasmcloud.azurecr.io/httpserver:0.17.0",
        "served_by": "builtin:httpserver",
        "contract": "wasmcloud:httpserver",
        "link_values_ignored": ["cache_control"],
    }
    assert components["keyvalue"]["substituted"]["link_values_ignored"] == ["URL"]
    assert len(app["version"]) == 12  # no version in the manifest: named by its content
    again = await asyncio.to_thread(lattice, "apply", str(path), cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout
    assert len((await client.get("/v1/applications/counter")).json()["versions"]) == 1  # the same content: no new one


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        response = await http.get(url)
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None


async def test_a_contract_lattice_does_not_bundle_fails_the_application_by_name(
    registry: Registry, host_factory: Any, control_plane_factory: Any, tmp_path: Path
) -> None:
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    image = f"{registry.address}/wasmcloud/kvcounter:0.4.0"
    oci.push(oci.parse_reference(image), KVCOUNTER.read_bytes(), insecure=True)
    path = tmp_path / "sql.yaml"
    path.write_text(WADM_APP.format(name="sql", image=image, port=free_port(), kv_contract="wasmcloud:sqldb"))
    env = {"LATTICE_API_URL": f"http://{cp.listen}"}
    applied = await asyncio.to_thread(lattice, "apply", str(path), cwd=tmp_path, env=env)
    assert "sql version " in applied.stdout and "keyvalue: contract wasmcloud:sqldb" in applied.stdout, applied.stdout
    waited = await asyncio.to_thread(lattice, "apply", str(path), "--wait", cwd=tmp_path, env=env)
    assert waited.returncode == 1 and "sql failed: keyvalue: contract wasmcloud:sqldb" in waited.stdout
    put = await client.put("/v1/applications/sql", content=path.read_text())
    assert put.status_code == 200, put.text
    status = put.json()["status"]
    assert status["type"] == "failed" and "keyvalue: contract wasmcloud:sqldb" in status["message"]
    components = {c["name"]: c for c in status["components"]}
    assert "wasmcloud:sqldb" in components["keyvalue"]["unsupported"]
    assert components["counter"]["running"] == 0
    await asyncio.sleep(1)  # a few reconcile passes: still nothing of it runs
    assert not host.actors and not host.providers
    listed = (await client.get("/v1/applications")).json()
    assert [a["name"] for a in listed] == ["sql"]
