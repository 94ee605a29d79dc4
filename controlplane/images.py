"""An application's images → stored artifacts, before a version is stored (SPEC §5, §6).

``sha256:`` names an uploaded artifact; ``file://`` a module under the control plane's ``--files-root``;
an OCI reference (``oci://registry/repo:tag``, bare ``registry/repo:tag`` as wadm writes it, or
``…@sha256:<hex>``) is pulled from its registry, verified by digest (``lattice.oci``) and stored exactly
like an upload: same checks (valid Wasm, waPC, claims), same artifact store, which is where hosts fetch
from, so no host talks to a registry. A pinned reference (by digest) is pulled once and remembered; a
tag is asked for again at every PUT (tags move).

The caller's mistakes in ``sha256:``/``file://`` images are ``ManifestError`` (400). What a registry
does wrong (down, unknown tag, digest mismatch, not Wasm, bad claims) and capabilities no bundled
provider serves are *problems*: the version is stored, nothing of it runs, and its status is ``failed``
with them. Re-applying the same manifest tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from lattice import caps, oci
from lattice.controlplane.manifest import resolve_file_image
from lattice.controlplane.model import ActorComponent, Application, ProviderComponent
from lattice.controlplane.state import ControlState
from lattice.errors import LatticeError, ManifestError
from lattice.settings import Settings

log = structlog.get_logger("lattice.controlplane.images")

Upload = Callable[[bytes], Awaitable[dict[str, Any]]]


class ImageResolver:
    """Resolves images for the control plane; ``upload`` checks and stores a module (as ``POST /v1/artifacts``)."""

    def __init__(self, settings: Settings, state: ControlState, upload: Upload) -> None:
        self.settings = settings
        self.state = state
        self.upload = upload

    async def resolve(self, app: Application) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """``({component: {image_ref, actor_id[, oci]}}, problems)``; raises ``ManifestError`` for bad input."""
        images: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        for index, comp in enumerate(app.components):
            if isinstance(comp, ProviderComponent):
                if comp.unsupported:
                    problems.append(f"{comp.name}: {comp.unsupported}")
                continue
            assert isinstance(comp, ActorComponent)
            field = f"spec.components[{index}].properties.image"
            if comp.image.startswith("sha256:"):
                meta = await self.state.artifact(comp.image)
                if meta is None:
                    raise ManifestError(f"no artifact {comp.image}: upload it first (POST /v1/artifacts)", field=field)
            elif comp.image.startswith("file://"):
                meta = await self._file(comp.image, field)
            else:
                try:
                    meta = await self.pull(comp.image)
                except LatticeError as exc:
                    log.warning("image pull failed", app=app.name, component=comp.name, error=str(exc))
                    problems.append(f"{comp.name}: {exc}")
                    continue
            images[comp.name] = {"image_ref": meta["digest"], "actor_id": meta["actor_id"]}
            if "oci" in meta:
                images[comp.name]["oci"] = meta["oci"]
        return images, problems

    async def pull(self, image: str) -> dict[str, Any]:
        """Pull an OCI image and store it as an artifact; its metadata plus ``oci: {reference, digest}``."""
        ref = oci.parse_reference(image)
        if ref.digest and (cached := await self.state.pinned_image(str(ref))) is not None:
            return cached
        pulled = await oci.pull_as(self.settings, image)
        try:
            meta = dict(await self.upload(pulled.wasm))
        except LatticeError as exc:
            raise LatticeError(f"{ref} is not a usable actor: {exc}") from exc
        meta["oci"] = {"reference": str(ref), "digest": pulled.manifest_digest}
        if ref.digest:
            await self.state.pin_image(str(ref), meta)
        log.info("image pulled", image=str(ref), digest=meta["digest"], manifest_digest=pulled.manifest_digest)
        return meta

    async def _file(self, image: str, field: str) -> dict[str, Any]:
        path = self.file_path(image, field)
        try:
            wasm = await asyncio.to_thread(caps.read_regular_file, path)
        except OSError as exc:
            raise ManifestError(f"cannot read {path}: {exc.strerror}", field=field) from exc
        try:
            return await self.upload(wasm)
        except LatticeError as exc:
            raise ManifestError(f"{path} is not a usable actor: {exc}", field=field) from exc

    def file_path(self, image: str, field: str) -> Path:
        """The file behind a ``file://`` image, read only under ``settings.files_root``: a manifest PUT
        over HTTP must not make the control plane read whatever path it names."""
        root = self.settings.files_root
        if root is None:
            raise ManifestError(
                "file:// images are read by the control plane only when it runs with --files-root "
                "(LATTICE_FILES_ROOT); upload the module (POST /v1/artifacts), or use `lattice apply`, which does",
                field=field,
            )
        if "\0" in image:
            raise ManifestError(f"{image!r} holds a NUL character: not a path", field=field)
        path = resolve_file_image(image, root).resolve()
        if not path.is_relative_to(root.resolve()):
            raise ManifestError(f"{image} is outside the control plane's files root {root}", field=field)
        return path
