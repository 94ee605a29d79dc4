"""``/docs`` renders the API's OpenAPI 3.1 document in a real headless Chromium, offline, and the document
describes the raw request bodies (issue 13, item 6). The screenshot is kept as ``tests/artifacts/docs.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.observability.browser import Browser
from tests.observability.test_dashboard import ARTIFACTS, CHROMIUM, needs_chromium


async def test_openapi_describes_the_upload_and_manifest_bodies(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    upload = doc["paths"]["/v1/artifacts"]["post"]["requestBody"]
    assert upload["required"] is True
    assert upload["content"]["application/wasm"]["schema"] == {"type": "string", "format": "binary"}
    put = doc["paths"]["/v1/applications/{name}"]["put"]["requestBody"]
    for media in ("application/yaml", "application/json"):
        schema = put["content"][media]["schema"]
        assert schema["required"] == ["apiVersion", "kind", "metadata", "spec"]
        assert schema["properties"]["kind"] == {"const": "Application"}


@needs_chromium
async def test_docs_page_renders_the_openapi_31_document_offline(control_plane_factory: Any, tmp_path: Path) -> None:
    cp, client = await control_plane_factory()
    page = await client.get("/docs")
    assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert CHROMIUM is not None
    async with Browser(CHROMIUM, tmp_path / "chromium") as browser:
        await browser.goto(f"http://{cp.listen}/docs")
        await browser.wait_for("document.querySelector('.swagger-ui .info .title')?.innerText.includes('lattice')")
        await browser.wait_for("document.querySelectorAll('.opblock').length >= 10")
        text = await browser.evaluate("document.body.innerText")
        assert "Unable to render this definition" not in text
        assert "/v1/applications/{name}" in text and "/v1/artifacts" in text
        # the manifest body is described: opening PUT /v1/applications/{name} shows its media types
        await browser.evaluate(
            "document.querySelector('#operations-default-put_application_v1_applications__name__put button').click()"
        )
        await browser.wait_for(
            "document.querySelector('#operations-default-put_application_v1_applications__name__put')"
            ".innerHTML.includes('application/yaml')"
        )
        shot = await browser.screenshot(ARTIFACTS / "docs.png")
    assert shot.stat().st_size > 10_000
    assert not [line for line in browser.console if line.startswith("exception")], browser.console
