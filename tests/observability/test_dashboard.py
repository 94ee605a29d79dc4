"""The live dashboard at ``/ui``, in a real headless Chromium against a running lattice.

The screenshot is kept as a test artifact: ``tests/artifacts/dashboard.png`` (not committed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lattice.cli.natsserver import free_port
from tests.conftest import wait_for
from tests.e2e.test_kvcounter import deploy_kvcounter
from tests.observability.browser import Browser, find_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (scripts/test installs Debian's: apt-get install chromium)"
)


def present(selector: str) -> str:
    return f"document.querySelector({selector!r}) !== null"


async def test_the_dashboard_files_are_served(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory(api_token="t0ken")  # the page itself needs no token
    page = await client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js">' in page.text
    script = await client.get("/ui/app.js")
    assert script.headers["content-type"].startswith("text/javascript") and "/v1/events" in script.text
    assert (await client.get("/ui/style.css")).headers["content-type"].startswith("text/css")
    assert (await client.get("/ui/../service.py")).status_code == 404
    assert (await client.get("/ui/secrets.txt")).status_code == 404
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/ui"


@needs_chromium
async def test_dashboard_shows_hosts_apps_and_links_and_streams_events_live(
    host_factory: Any, control_plane_factory: Any, tmp_path: Path
) -> None:
    first = await host_factory(labels={"zone": "east"})
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    assert CHROMIUM is not None
    async with Browser(CHROMIUM, tmp_path / "chromium") as browser:
        await browser.goto(f"http://{cp.listen}/ui")
        await browser.wait_for(present(f'[data-host-id="{first.id}"]'))
        card = await browser.evaluate(f"document.querySelector('[data-host-id=\"{first.id}\"]').innerText")
        assert first.id in card and "zone=east" in card

        # live: a host joining now appears, and its host_started event streams in
        second = await host_factory()
        await browser.wait_for(present(f'#events [data-event="host_started"][data-source="{second.id}"]'))
        await browser.wait_for(present(f'[data-host-id="{second.id}"]'))

        # an application converging: desired vs running per component, and the links it made
        await deploy_kvcounter(client, free_port(), replicas=2)
        status = "document.querySelector('[data-app=\"kvcounter\"] .pill')?.textContent"
        await browser.wait_for(f"{status} === 'deployed'", timeout=30)
        await browser.wait_for(
            'document.querySelector(\'[data-app="kvcounter"] [data-component="kvcounter"]\')'
            "?.innerText.includes('2/2')"
        )
        await browser.wait_for("document.querySelectorAll('#links tbody tr').length === 3")
        await browser.wait_for(present('#events [data-event="actor_started"]'))
        shot = await browser.screenshot(ARTIFACTS / "dashboard.png")
    print(f"dashboard screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert not [line for line in browser.console if line.startswith("exception")], browser.console


@needs_chromium
async def test_dashboard_asks_for_the_token_and_uses_it(
    host_factory: Any, control_plane_factory: Any, tmp_path: Path
) -> None:
    host = await host_factory()
    cp, _ = await control_plane_factory(api_token="t0ken")
    await wait_for(lambda: len(cp.hosts()) == 1)
    assert CHROMIUM is not None
    async with Browser(CHROMIUM, tmp_path / "chromium") as browser:
        await browser.goto(f"http://{cp.listen}/ui")
        await browser.wait_for("document.getElementById('auth').hidden === false")
        await browser.evaluate("document.getElementById('token').value = 't0ken'")
        await browser.evaluate("document.getElementById('auth').requestSubmit()")
        await browser.wait_for(present(f'[data-host-id="{host.id}"]'))
        await browser.wait_for("document.getElementById('stream').textContent === 'events: live'")


async def test_the_event_stream_replays_recent_events_on_request(host_factory: Any, control_plane_factory: Any) -> None:
    cp, client = await control_plane_factory()
    host = await host_factory()
    await wait_for(lambda: any(e["source"] == host.id for e in cp.observer.recent))
    async with client.stream("GET", "/v1/events", params={"recent": "true"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data:") and host.id in line:
                assert "com.wasmcloud.lattice.host_started" in line
                break
