"""Issue 17, findings 8 and 11: what the control plane's API refuses before it costs anything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.control.test_api import manifest, upload
from tests.host import guests


async def test_huge_manifest_is_refused_with_413_before_parsing(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    padding = "# " + "x" * 1000 + "\n"
    body = manifest("big", "sha256:" + "0" * 64) + padding * 2048  # ~2 MiB of YAML comments
    response = await client.put("/v1/applications/big", content=body)
    assert response.status_code == 413, response.text
    assert (await client.get("/healthz")).status_code == 200


async def test_manifest_over_the_replica_and_deadline_caps_is_refused(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    art = await upload(client, guests.ECHO)
    many = await client.put("/v1/applications/many", content=manifest("many", art["digest"], replicas=40000))
    assert many.status_code == 400 and "replicas" in many.text and "at most" in many.text, many.text
    slow = manifest("slow", art["digest"]).replace(
        f"image: {art['digest']}", f"image: {art['digest']}\n        limits: {{deadline_ms: {10**30}}}"
    )
    response = await client.put("/v1/applications/slow", content=slow)
    assert response.status_code == 400 and "deadline_ms" in response.text, response.text


async def test_nul_in_a_file_image_is_a_400(control_plane_factory: Any, tmp_path: Path) -> None:
    _, client = await control_plane_factory(files_root=tmp_path)
    body = manifest("nul", '"file://echo\\0.wasm"')
    response = await client.put("/v1/applications/nul", content=body)
    assert response.status_code == 400 and "NUL" in response.text, response.text


async def test_fifo_under_the_files_root_does_not_hang_the_request(control_plane_factory: Any, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.wasm")
    _, client = await control_plane_factory(files_root=tmp_path)
    response = await client.put("/v1/applications/pipe", content=manifest("pipe", "file://pipe.wasm"))
    assert response.status_code == 400 and "not a regular file" in response.text, response.text
