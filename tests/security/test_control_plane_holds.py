"""Issue 17, findings 8 and 11: what the control plane's API refuses before it costs anything."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice.cli.natsserver import NatsServer, free_port
from lattice.settings import Settings
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


async def test_a_module_uploaded_again_is_not_compiled_again(
    control_plane_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lattice.controlplane import service

    inspected: list[int] = []
    real = service.inspect_actor

    def counting(wasm: bytes, cache_dir: Any = None) -> dict[str, Any]:
        inspected.append(len(wasm))
        return real(wasm, cache_dir)

    monkeypatch.setattr(service, "inspect_actor", counting)
    _, client = await control_plane_factory()
    first, second = await upload(client, guests.ECHO), await upload(client, guests.ECHO)
    assert first == second and len(inspected) == 1


def test_the_hosts_module_cache_is_bounded(runtime: Any) -> None:
    from lattice.host.limits import MAX_CACHED_MODULES

    for i in range(MAX_CACHED_MODULES + 8):
        runtime.compile(guests.guest(f"(i32.const {i})"))
    assert len(runtime._modules) == MAX_CACHED_MODULES


def test_control_plane_process_stops_on_sigterm_with_an_open_event_stream(
    nats_server: NatsServer, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LATTICE_STATE_DIR": str(tmp_path / "state"),
        "LATTICE_CLUSTER_SEED": settings.cluster_seed or "",
    }
    argv = [
        sys.executable,
        "-m",
        "lattice",
        "control-plane",
        "--nats-url",
        nats_server.url,
        "--listen",
        f"127.0.0.1:{port}",
    ]
    with (tmp_path / "cp.log").open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    opened = threading.Event()

    def watch_events() -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", f"http://127.0.0.1:{port}/v1/events", timeout=60) as r,
        ):
            for _ in r.iter_bytes():
                opened.set()

    try:
        deadline = time.monotonic() + 30
        while not _healthy(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        threading.Thread(target=watch_events, daemon=True).start()
        assert opened.wait(10), "the event stream did not open"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0  # not held open by the stream (nor renewing its lease meanwhile)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
