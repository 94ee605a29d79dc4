"""A small client of the control plane's HTTP API (SPEC §5), used by the CLI and by ``lattice up``.

``apply`` uploads the actor modules a manifest names as ``file://`` (relative to the manifest) and
rewrites them to their ``sha256:`` digests, so a manifest on the user's machine deploys to a remote
control plane.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from lattice.cli import upsecrets
from lattice.errors import LatticeError


def local_api_token(state_dir: Path) -> str | None:
    """The token ``lattice up`` wrote under ``state_dir``, if it did."""
    try:
        return (state_dir / "up" / upsecrets.API_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


UPLOAD_TIMEOUT_S = 300.0


class ApiError(LatticeError):
    """The API answered with an error; ``status`` is the HTTP status."""

    def __init__(self, status: int, detail: Any) -> None:
        text = str(detail["error"]) if isinstance(detail, dict) and "error" in detail else str(detail)
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.detail = detail


class Client:
    """Synchronous API client. ``token`` is sent as a bearer token when given; ``token_hint`` (where it came
    from, what to do instead) is added to a 401/403."""

    def __init__(
        self, base_url: str, token: str | None = None, timeout_s: float = 30.0, token_hint: str | None = None
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.token_hint = token_hint
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LatticeError(
                f"cannot reach the control plane at {self.http.base_url} ({exc}): is `lattice up` running? "
                "For one on another address, pass --api-url or set LATTICE_API_URL"
            ) from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            if response.status_code in (401, 403) and self.token_hint and isinstance(detail, str):
                detail = f"{detail} ({self.token_hint})"
            raise ApiError(response.status_code, detail)
        return response.json()

    def hosts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/hosts")
        return result

    def apps(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/applications")
        return result

    def app(self, name: str, version: str | None = None) -> dict[str, Any]:
        params = {"version": version} if version else None
        result: dict[str, Any] = self._call("GET", f"/v1/applications/{name}", params=params)
        return result

    def rollback(self, name: str, version: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/applications/{name}/rollback", json={"version": version})
        return result

    def links(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/links")
        return result

    def delete_app(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("DELETE", f"/v1/applications/{name}")
        return result

    def upload(self, wasm: bytes) -> dict[str, Any]:
        # the control plane compiles a component to check it: 10-60 s for a 12-18 MB Python/JS actor
        result: dict[str, Any] = self._call(
            "POST",
            "/v1/artifacts",
            content=wasm,
            headers={"content-type": "application/wasm"},
            timeout=UPLOAD_TIMEOUT_S,
        )
        return result

    def invoke(self, actor_id: str, operation: str, payload: bytes) -> bytes:
        body = {"operation": operation, "payload_b64": base64.b64encode(payload).decode()}
        result = self._call("POST", f"/v1/actors/{actor_id}/invoke", json=body)
        return base64.b64decode(result["payload_b64"])

    def apply(
        self, manifest_path: Path, *, overrides: dict[str, str] | None = None, content_version: bool = False
    ) -> dict[str, Any]:
        """Upload local ``file://`` actor images, then ``PUT`` the manifest; returns the stored application.

        The images are swapped for their digests in the text itself, so the control plane's errors still
        name the manifest's own lines. ``overrides`` set link addresses by target component name (``lattice
        up --http``). ``content_version`` suffixes the manifest's version with a hash of what is applied
        (``v0.1.0-<12 hex>``): other images or overrides are another version, the same ones the same version.
        Raises ``LatticeError`` naming the file or component at fault; a manifest that is not
        valid YAML goes to the control plane as it is, which names the line.
        """
        try:
            text = manifest_path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise LatticeError(f"cannot read {manifest_path}: {exc}") from exc
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None
        for image, digest in self._upload_images(doc, manifest_path.parent).items():
            text = text.replace(image, digest)
        if overrides and isinstance(doc, dict):
            doc = yaml.safe_load(text)
            _override_links(doc, overrides)
            text = yaml.safe_dump(doc, sort_keys=False)
        if content_version and isinstance(doc, dict):
            text = _versioned(text)
            doc = yaml.safe_load(text)
        metadata = doc.get("metadata") if isinstance(doc, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        result: dict[str, Any] = self._call(
            "PUT",
            f"/v1/applications/{name if isinstance(name, str) and name else manifest_path.stem}",
            content=text.encode(),
            headers={"content-type": "application/yaml"},
        )
        return result

    def _upload_images(self, doc: Any, base: Path) -> dict[str, str]:
        """``file://`` image → digest for every actor component, after uploading each module."""
        spec = doc.get("spec") if isinstance(doc, dict) else None
        components = spec.get("components") if isinstance(spec, dict) else None
        uploaded: dict[str, str] = {}
        for comp in components if isinstance(components, list) else []:
            props = comp.get("properties") if isinstance(comp, dict) else None
            image = props.get("image") if isinstance(props, dict) else None
            if comp.get("type") != "actor" or not isinstance(image, str) or not image.startswith("file://"):
                continue
            path = Path(image.removeprefix("file://"))
            path = path if path.is_absolute() else base / path
            try:
                wasm = path.read_bytes()
            except OSError as exc:
                raise LatticeError(
                    f"component {comp.get('name')!r}: cannot read its image {path}: {exc.strerror}"
                ) from exc
            try:
                uploaded[image] = self.upload(wasm)["digest"]
            except ApiError as exc:
                raise LatticeError(f"component {comp.get('name')!r}: {path} was refused: {exc}") from exc
        return uploaded

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


def _versioned(text: str) -> str:
    """``text`` with ``metadata.annotations.version`` suffixed by the SHA-256 of ``text`` (12 hex digits)."""
    doc = yaml.safe_load(text)
    metadata = doc.setdefault("metadata", {})
    annotations = metadata.setdefault("annotations", {}) if isinstance(metadata, dict) else {}
    base = str(annotations.get("version") or "v0")
    annotations["version"] = f"{base}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return yaml.safe_dump(doc, sort_keys=False)


def _override_links(doc: dict[str, Any], overrides: dict[str, str]) -> None:
    for comp in (doc.get("spec") or {}).get("components") or []:
        for trait in comp.get("traits") or []:
            target = (trait.get("properties") or {}).get("target")
            if trait.get("type") == "linkdef" and target in overrides:
                trait["properties"].setdefault("values", {}).update(_address_values(overrides[target]))


def _address_values(address: str) -> dict[str, str]:
    host, _, port = address.rpartition(":")
    return {"address": f"{host or '127.0.0.1'}:{port}", "port": port}
