"""Wasm actors as OCI artifacts: references, the artifact layout, and push/pull (SPEC §6).

    ref = parse_reference("oci://127.0.0.1:5000/actors/echo:0.1.0")
    digest = push(ref, wasm, insecure=True)          # → "sha256:<manifest digest>"
    pulled = pull(ref, insecure=True)                # → Pulled(wasm, digest, manifest_digest, ...)

The layout is the CNCF TAG Runtime "Wasm OCI artifact": an OCI image manifest whose config has the
media type ``application/vnd.wasm.config.v0+json`` (``architecture: wasm``, ``os: wasip1|wasip2``,
``layerDigests``) and one layer ``application/wasm``. Pulling also accepts the older Wasm layer types
(wasmCloud 0.x ``application/vnd.module.wasm.content.layer.v1+wasm``, wasm-to-oci's
``application/vnd.wasm.content.layer.v1+wasm``); anything else is refused with the layer types found.

The distribution protocol is the ``oras`` package's (the ORAS project's Python SDK), used through its
``Registry`` class with three changes: one attempt per request (oras retries a refused connection for
about two minutes), a timeout on every request, and the authentication scheme chosen from the registry's
own challenge (``Basic`` for a registry with an htpasswd file, bearer tokens otherwise). Everything
fetched is verified here: a manifest pulled by digest must hash to it, the layer must hash to the digest
the manifest names. Credentials: explicit ``Credentials``, else the Docker config file (``auth_file``,
default ``~/.docker/config.json``), which names them per registry. Calls block: run them in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oras.container
import oras.provider
import requests

from lattice.errors import RegistryError
from lattice.settings import Settings

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
CONFIG_MEDIA_TYPE = "application/vnd.wasm.config.v0+json"
LAYER_MEDIA_TYPE = "application/wasm"
#: Wasm layer media types accepted when pulling (the first is what ``push`` writes).
WASM_LAYER_TYPES = (
    LAYER_MEDIA_TYPE,
    "application/vnd.module.wasm.content.layer.v1+wasm",  # wasmCloud 0.x actors (wash 0.x `reg push`)
    "application/vnd.wasm.content.layer.v1+wasm",  # wasm-to-oci
)
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0

_SCHEME = "oci://"
_REGISTRY = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Reference:
    """``registry/repository[:tag][@digest]``; ``tag`` is ``latest`` when neither is given."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def reference(self) -> str:
        """What the manifest is fetched by: the digest when there is one (pinned), else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def loopback(self) -> bool:
        """True for a registry on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
        host = self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else self.registry[1:].split("]")[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Pulled:
    """A pulled artifact: the module's bytes and the digests it was verified against."""

    wasm: bytes
    digest: str  # of the Wasm layer: "sha256:<hex>", the same digest an upload of these bytes gets
    manifest_digest: str
    reference: Reference
    media_type: str


def is_reference(text: str) -> bool:
    """True when ``text`` reads as an OCI reference (``oci://…`` or bare ``registry/repo[:tag|@digest]``)."""
    try:
        parse_reference(text)
    except RegistryError:
        return False
    return True


def parse_reference(text: str) -> Reference:
    """Parse ``[oci://]registry[:port]/repo/path[:tag][@sha256:<hex>]``; ``RegistryError`` says what is wrong.

    A registry is required (the first path part, as in ``ghcr.io/org/echo:0.3.4``): lattice has no
    default registry, so ``echo:0.3.4`` alone is refused rather than sent somewhere unexpected.
    """
    rest = text.strip()
    if rest.lower().startswith(_SCHEME):
        rest = rest[len(_SCHEME) :]
    registry, sep, path = rest.partition("/")
    if not sep or not path:
        raise RegistryError(f"{text!r} is not an OCI reference: expected registry[:port]/repository[:tag|@sha256:…]")
    if not _REGISTRY.fullmatch(registry) or ("." not in registry and ":" not in registry and registry != "localhost"):
        raise RegistryError(f"{text!r}: {registry!r} is not a registry host (host.name[:port] or host:port)")
    path, _, digest = path.partition("@")
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise RegistryError(f"{text!r}: tag {tag!r} may hold letters, digits, '_', '.' and '-' (up to 128)")
    if not all(_PATH_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise RegistryError(f"{text!r}: repository {path!r} must be lowercase path components (a-z, 0-9, . _ -)")
    if digest and not _DIGEST.fullmatch(digest):
        raise RegistryError(f"{text!r}: a digest is 'sha256:' followed by 64 lowercase hex digits")
    return Reference(registry, path, tag if tag or digest else "latest", digest or None)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the client ----------------------------------------------------------------------------------------


class _Session(requests.Session):
    """A requests session with a timeout on every request (requests has none by default)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(*args, **kwargs)


class _Registry(oras.provider.Registry):  # type: ignore[misc]
    """oras' registry client, one attempt per request (oras' own retries sleep up to ~2 minutes)."""

    def do_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response: requests.Response = oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)
        return response


def _client(
    ref: Reference, *, insecure: bool, credentials: Credentials | None, auth_file: Path | None, timeout_s: float
) -> tuple[_Registry, oras.container.Container]:
    scheme = "http" if insecure else "https"
    try:
        probe = requests.get(f"{scheme}://{ref.registry}/v2/", timeout=timeout_s)
    except requests.exceptions.SSLError as exc:
        hint = " (a plain-HTTP registry? `lattice push/pull --insecure`, or LATTICE_OCI_INSECURE=host:port)"
        raise RegistryError(f"registry {ref.registry}: TLS failed{hint}: {_first_line(exc)}") from None
    except requests.RequestException as exc:
        raise RegistryError(f"registry {ref.registry} is unreachable: {_first_line(exc)}") from None
    challenge = probe.headers.get("Www-Authenticate", "")
    backend = "basic" if challenge.lower().startswith("basic") else "token"
    client = _Registry(hostname=ref.registry, insecure=insecure, auth_backend=backend)
    client.session = _Session(timeout_s)
    client.auth.session = client.session
    container = _container(ref)
    if credentials is not None:
        client.auth.set_basic_auth(credentials.username, credentials.password)
    else:
        client.auth.load_configs(container, configs=[str(auth_file)] if auth_file else None)
    if backend == "basic" and not getattr(client.auth, "_basic_auth", None):
        raise RegistryError(
            f"registry {ref.registry} wants credentials (HTTP 401): give a username and password, "
            "or log in to it in the Docker config file"
        )
    if backend == "basic":
        _call("log in to", ref, client.do_request, f"{scheme}://{ref.registry}/v2/", "GET")
    return client, container


def _container(ref: Reference) -> oras.container.Container:
    """oras' view of ``ref``, set field by field: its own parser takes ``localhost/x`` for a repository."""
    container = oras.container.Container(f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}")
    namespace, _, repository = ref.repository.rpartition("/")
    container.registry, container.namespace, container.repository = ref.registry, namespace or None, repository
    container.tag, container.digest = ref.tag or "latest", None
    return container


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _call(what: str, ref: Reference, fn: Any, *args: Any, **kwargs: Any) -> requests.Response:
    try:
        response: requests.Response = fn(*args, **kwargs)
    except requests.RequestException as exc:
        raise RegistryError(f"{what} {ref}: registry {ref.registry} is unreachable: {_first_line(exc)}") from None
    except ValueError as exc:  # oras: "Cannot respond to request for authentication."
        raise RegistryError(f"{what} {ref}: {_first_line(exc)}") from None
    if response.status_code in (401, 403):
        raise RegistryError(f"{what} {ref}: the registry refused the credentials (HTTP {response.status_code})")
    return response


def _registry_errors(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return response.text[:200]
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))


def pull(
    ref: Reference,
    *,
    insecure: bool = False,
    credentials: Credentials | None = None,
    auth_file: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Pulled:
    """Fetch the Wasm module ``ref`` names, verified by digest; ``RegistryError`` with the reason otherwise."""
    client, container = _client(
        ref, insecure=insecure, credentials=credentials, auth_file=auth_file, timeout_s=timeout_s
    )
    url = f"{client.prefix}://{container.manifest_url(ref.reference)}"
    accept = ", ".join((MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, *INDEX_MEDIA_TYPES))
    response = _call("pull", ref, client.do_request, url, "GET", headers={"Accept": accept})
    if response.status_code == 404:
        what = f"digest {ref.digest}" if ref.digest else f"tag {ref.tag!r}"
        raise RegistryError(
            f"pull {ref}: the registry has no {what} in {ref.repository} ({_registry_errors(response)})"
        )
    if response.status_code != 200:
        raise RegistryError(f"pull {ref}: HTTP {response.status_code} ({_registry_errors(response)})")
    manifest_digest = sha256_digest(response.content)
    if ref.digest and manifest_digest != ref.digest:
        raise RegistryError(f"pull {ref}: digest mismatch: the manifest the registry sent hashes to {manifest_digest}")
    layer = _wasm_layer(ref, response)
    blob = _call("pull", ref, client.get_blob, container, layer["digest"], stream=True)
    with blob:
        if blob.status_code != 200:
            raise RegistryError(
                f"pull {ref}: layer {layer['digest']}: HTTP {blob.status_code} ({_registry_errors(blob)})"
            )
        wasm = _read_capped(ref, blob)
    if sha256_digest(wasm) != layer["digest"]:
        raise RegistryError(
            f"pull {ref}: digest mismatch: layer {layer['digest']} arrived as {sha256_digest(wasm)} "
            f"({len(wasm)} bytes): refused"
        )
    return Pulled(wasm, layer["digest"], manifest_digest, ref, layer["mediaType"])


def _read_capped(ref: Reference, response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=1 << 16):
        size += len(chunk)
        if size > MAX_ARTIFACT_BYTES:
            raise RegistryError(f"pull {ref}: the Wasm layer is over {MAX_ARTIFACT_BYTES // 2**20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _wasm_layer(ref: Reference, response: requests.Response) -> dict[str, Any]:
    try:
        manifest = json.loads(response.content)
    except ValueError:
        raise RegistryError(f"pull {ref}: the manifest is not JSON") from None
    media_type = manifest.get("mediaType") or response.headers.get("Content-Type", "")
    if media_type in INDEX_MEDIA_TYPES or "manifests" in manifest:
        raise RegistryError(f"pull {ref}: an image index (multi-platform image), not a Wasm artifact")
    layers = [x for x in manifest.get("layers") or [] if isinstance(x, dict)]
    wasm = [x for x in layers if x.get("mediaType") in WASM_LAYER_TYPES]
    if len(wasm) != 1:
        found = ", ".join(str(x.get("mediaType")) for x in layers) or "none"
        what = "no Wasm layer" if not wasm else f"{len(wasm)} Wasm layers"
        raise RegistryError(f"pull {ref}: not a Wasm artifact: {what} (layers: {found}; expected {LAYER_MEDIA_TYPE})")
    layer = wasm[0]
    if not isinstance(layer.get("digest"), str) or not _DIGEST.fullmatch(layer["digest"]):
        raise RegistryError(f"pull {ref}: the Wasm layer has no sha256 digest")
    size = layer.get("size")
    if isinstance(size, int) and size > MAX_ARTIFACT_BYTES:
        raise RegistryError(f"pull {ref}: the Wasm layer is {size} bytes, over {MAX_ARTIFACT_BYTES // 2**20} MiB")
    return layer


def wasm_config(wasm: bytes) -> dict[str, Any]:
    """The artifact's config (CNCF Wasm OCI format): a core module is ``wasip1``, a component ``wasip2``."""
    component = len(wasm) >= 8 and wasm[4:8] != b"\x01\x00\x00\x00"
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "architecture": "wasm",
        "os": "wasip2" if component else "wasip1",
        "layerDigests": [sha256_digest(wasm)],
    }


def push(
    ref: Reference,
    wasm: bytes,
    *,
    insecure: bool = False,
    credentials: Credentials | None = None,
    auth_file: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    annotations: dict[str, str] | None = None,
) -> str:
    """Push ``wasm`` as a Wasm OCI artifact under ``ref``'s tag; returns the manifest digest."""
    if ref.digest:
        raise RegistryError(f"push {ref}: push to a tag, not a digest (the registry computes the digest)")
    client, container = _client(
        ref, insecure=insecure, credentials=credentials, auth_file=auth_file, timeout_s=timeout_s
    )
    meta = wasm_config(wasm)
    config = json.dumps(meta, separators=(",", ":")).encode()
    layer = {"mediaType": LAYER_MEDIA_TYPE, "digest": sha256_digest(wasm), "size": len(wasm)}
    config_desc = {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(config), "size": len(config)}
    with tempfile.TemporaryDirectory(prefix="lattice-push-") as tmp:
        for name, data, desc in (("module.wasm", wasm, layer), ("config.json", config, config_desc)):
            path = Path(tmp) / name
            path.write_bytes(data)
            response = _call("push", ref, client.upload_blob, str(path), container, desc)
            if response.status_code not in (200, 201, 202):
                raise RegistryError(
                    f"push {ref}: blob upload: HTTP {response.status_code} ({_registry_errors(response)})"
                )
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config_desc,
        "layers": [layer],
        "annotations": {"org.opencontainers.image.created": meta["created"], **(annotations or {})},
    }
    response = _call("push", ref, client.upload_manifest, manifest, container)
    if response.status_code not in (200, 201):
        raise RegistryError(f"push {ref}: manifest: HTTP {response.status_code} ({_registry_errors(response)})")
    return str(response.headers.get("Docker-Content-Digest") or sha256_digest(json.dumps(manifest).encode()))


def plain_http(ref: Reference, settings: Settings) -> bool:
    """Whether ``ref``'s registry is reached over plain HTTP: one on loopback (as Docker treats them) or one
    named in ``settings.oci_insecure`` (``LATTICE_OCI_INSECURE``). The one rule for the control plane, the
    hosts and ``lattice push``/``pull`` (whose ``--insecure`` adds any registry)."""
    return ref.loopback or ref.registry in settings.oci_insecure


async def pull_as(settings: Settings, image: str) -> Pulled:
    """A lattice participant's pull of ``image`` (off the event loop): plain HTTP as ``plain_http`` says,
    logins from ``settings.oci_auth_file``."""
    ref = parse_reference(image)
    insecure = plain_http(ref, settings)
    return await asyncio.to_thread(pull, ref, insecure=insecure, auth_file=settings.oci_auth_file)
