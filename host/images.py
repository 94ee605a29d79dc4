"""Where an actor's module comes from, and whether this host runs it: ``fetch`` reads a module from the
lattice's artifact store (``sha256:``), a local file (``file://``) or an OCI registry; ``admit`` applies this
host's claims policy to it (SPEC §3).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ObjectNotFoundError

from lattice import caps, oci, subjects
from lattice import claims as claims_mod
from lattice.connection import object_store
from lattice.errors import ClaimsError, ConfigError, NotFound
from lattice.settings import Settings


async def fetch(settings: Settings, js: JetStreamContext, image_ref: str) -> bytes:
    """Module bytes for ``sha256:<hex>`` (the artifact store), ``file://<path>`` or an OCI reference.

    Raises ``NotFound`` when there is no such artifact or file.
    """
    if image_ref.startswith("sha256:"):
        store = await object_store(js, subjects.artifacts_bucket(settings.lattice), replicas=settings.js_replicas)
        try:
            result = await store.get(image_ref)
        except (ObjectNotFoundError, NotFoundError) as exc:
            raise NotFound(f"no artifact {image_ref} in the lattice: upload it with POST /v1/artifacts") from exc
        data = bytes(result.data or b"")
        if "sha256:" + hashlib.sha256(data).hexdigest() != image_ref.lower():
            # the object store is writable by whoever NATS lets write it: trust the digest, not the store
            raise ClaimsError(f"artifact {image_ref} in the object store does not match its digest: refused")
        return data
    if image_ref.startswith("file://"):
        path = Path(image_ref.removeprefix("file://"))
        try:
            return await asyncio.to_thread(caps.read_regular_file, path)
        except OSError as exc:
            raise NotFound(f"cannot read {path}: {exc.strerror}") from exc
    if oci.is_reference(image_ref):  # told directly (not by the control plane, which stores it first)
        return (await oci.pull_as(settings, image_ref)).wasm
    raise ConfigError(f"unsupported actor image {image_ref!r}: use sha256:<digest>, file://<path> or an OCI ref")


def admit(settings: Settings, wasm: bytes) -> None:
    """Apply this host's policy to a module's claims (SPEC §3); raises ``ClaimsError``.

    A signed actor needs an issuer in ``trusted_issuers``; with none configured it is refused
    unless the operator opted out with ``allow_any_issuer``.
    """
    claims = claims_mod.extract_claims(wasm)
    if claims is None:
        if not settings.allow_unsigned:
            raise ClaimsError("unsigned actors are not allowed on this host (start it with --allow-unsigned)")
        return
    trusted = set(settings.trusted_issuers)
    if not trusted and not settings.allow_any_issuer:
        raise ClaimsError(
            f"actor signed by {claims.iss}, and this host trusts no issuer: start it with "
            "--trusted-issuers (or --allow-any-issuer to run actors of any issuer)"
        )
    claims_mod.verify_actor(wasm, trusted_issuers=trusted or None)
