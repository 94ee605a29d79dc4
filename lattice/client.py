"""A small client of the control plane's HTTP API (SPEC §5), used by the CLI and by ``lattice up``.

``apply`` uploads the actor modules a manifest names as ``file://`` (relative to the manifest) and
rewrites them to their ``sha256:`` digests, so a manifest on the user's machine deploys to a remote
control plane.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from lattice.errors import LatticeError


class ApiError(LatticeError):
    """The API answered with an error; ``status`` is the HTTP status."""

    def __init__(self, status: int, detail: Any) -> None:
        text = str(detail["error"]) if isinstance(detail, dict) and "error" in detail else str(detail)
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.detail = detail


class Client:
    """Synchronous API client. ``token`` is sent as a bearer token when given."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LatticeError(f"cannot reach the control plane at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response.json()

    def hosts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/hosts")
        return result

    def apps(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/applications")
        return result

    def app(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/applications/{name}")
        return result

    def links(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/links")
        return result

    def delete_app(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("DELETE", f"/v1/applications/{name}")
        return result

    def upload(self, wasm: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "/v1/artifacts", content=wasm, headers={"content-type": "application/wasm"}
        )
        return result

    def invoke(self, actor_id: str, operation: str, payload: bytes) -> bytes:
        body = {"operation": operation, "payload_b64": base64.b64encode(payload).decode()}
        result = self._call("POST", f"/v1/actors/{actor_id}/invoke", json=body)
        return base64.b64decode(result["payload_b64"])

    def apply(self, manifest_path: Path, *, overrides: dict[str, str] | None = None) -> dict[str, Any]:
        """Upload local images, then ``PUT`` the manifest. ``overrides`` replace link ``port`` values
        by component name (used by ``lattice up --http``)."""
        text = manifest_path.read_text()
        doc = yaml.safe_load(text)
        changed = False
        components = (doc.get("spec") or {}).get("components") or [] if isinstance(doc, dict) else []
        for comp in components:
            props = comp.get("properties") or {}
            image = props.get("image")
            if comp.get("type") == "actor" and isinstance(image, str) and image.startswith("file://"):
                path = Path(image.removeprefix("file://"))
                if not path.is_absolute():
                    path = manifest_path.parent / path
                props["image"] = self.upload(path.read_bytes())["digest"]
                changed = True
            for trait in comp.get("traits") or []:
                target = (trait.get("properties") or {}).get("target")
                if trait.get("type") == "linkdef" and overrides and target in overrides:
                    trait["properties"].setdefault("values", {}).update(_address_values(overrides[target]))
                    changed = True
        body = yaml.safe_dump(doc, sort_keys=False) if changed else text
        name = doc["metadata"]["name"] if isinstance(doc, dict) else manifest_path.stem
        result: dict[str, Any] = self._call(
            "PUT", f"/v1/applications/{name}", content=body.encode(), headers={"content-type": "application/yaml"}
        )
        return result

    def wait_deployed(self, name: str, timeout_s: float = 60.0, on_status: Any = None) -> dict[str, Any]:
        """Poll until ``name`` is ``deployed`` (returns it) or ``failed``/timeout (raises ``LatticeError``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            app = self.app(name)
            status = app["status"]
            if on_status is not None:
                on_status(status)
            if status["type"] == "deployed":
                return app
            if status["type"] == "failed":
                raise LatticeError(f"{name} failed: {status['message']}")
            if time.monotonic() > deadline:
                raise LatticeError(f"{name} not deployed within {timeout_s:g} s: {status['message']}")
            time.sleep(0.2)


def _address_values(address: str) -> dict[str, str]:
    host, _, port = address.rpartition(":")
    return {"address": f"{host or '127.0.0.1'}:{port}", "port": port}
