"""A real OCI registry for tests: Debian's ``docker-registry`` (CNCF distribution) on a free loopback port.

``scripts/test`` installs it (and ``htpasswd`` for the basic-auth variant) when run as root; without it
the tests that need it skip with one line saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from lattice.cli.natsserver import free_port

BINARY = "docker-registry"
SKIP_REASON = "no docker-registry (Debian package docker-registry; scripts/test installs it as root)"


class Registry:
    """A running registry: ``address`` is ``127.0.0.1:PORT`` (plain HTTP)."""

    def __init__(self, root: Path, *, user: str | None = None, password: str | None = None) -> None:
        self.root = root
        self.user, self.password = user, password
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Registry:
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.user is not None:
            hashed = subprocess.run(
                ["htpasswd", "-Bbn", self.user, self.password or ""], check=True, capture_output=True
            ).stdout
            (self.root / "htpasswd").write_bytes(hashed)
            auth = f"auth:\n  htpasswd:\n    realm: lattice-test\n    path: {self.root / 'htpasswd'}\n"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n{auth}"
        )
        self.log = (self.root / "registry.log").open("wb")
        self.proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()[-2000:]}")
            try:
                httpx.get(f"http://{self.address}/v2/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not answer within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps a blob on disk (to corrupt one for the digest-mismatch test)."""
        hexdigest = digest.removeprefix("sha256:")
        return self.root / "data/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def push_raw(reference: str, layer: bytes, layer_type: str, config_type: str, tmp_path: Path) -> None:
    """Push an artifact of any layout (another tool's, or not Wasm at all) through oras' primitives."""
    from lattice import oci

    ref = oci.parse_reference(reference)
    client, container = oci._client(ref, insecure=True, credentials=None, auth_file=None, timeout_s=5)
    descriptors = {}
    for name, data, media in (("layer", layer, layer_type), ("config", b"{}", config_type)):
        (tmp_path / name).write_bytes(data)
        descriptors[name] = {"mediaType": media, "digest": oci.sha256_digest(data), "size": len(data)}
        client.upload_blob(str(tmp_path / name), container, descriptors[name])
    doc = {
        "schemaVersion": 2,
        "mediaType": oci.MANIFEST_MEDIA_TYPE,
        "config": descriptors["config"],
        "layers": [descriptors["layer"]],
    }
    assert client.upload_manifest(doc, container).status_code == 201


@contextmanager
def running_registry(root: Path, **auth: str) -> Iterator[Registry]:
    if shutil.which(BINARY) is None or (auth and shutil.which("htpasswd") is None):
        pytest.skip(SKIP_REASON)
    registry = Registry(root, **auth).start()
    try:
        yield registry
    finally:
        registry.stop()
