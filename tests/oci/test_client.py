"""``lattice.oci`` against a real registry: push/pull round trip, the artifact layout, auth, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from lattice import oci
from lattice.cli.natsserver import free_port
from lattice.errors import RegistryError
from lattice.settings import Settings
from tests.host import guests
from tests.oci.registry import Registry, push_raw


def test_references_parse_as_docker_and_wadm_write_them() -> None:
    ref = oci.parse_reference("oci://127.0.0.1:5000/actors/echo:0.1.0")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("127.0.0.1:5000", "actors/echo", "0.1.0", None)
    assert ref.loopback and str(ref) == "127.0.0.1:5000/actors/echo:0.1.0"
    pinned = oci.parse_reference("wasmcloud.azurecr.io/echo@sha256:" + "a" * 64)
    assert pinned.tag is None and pinned.reference == "sha256:" + "a" * 64 and not pinned.loopback
    assert oci.parse_reference("localhost/x").tag == "latest"
    assert oci.parse_reference("ghcr.io/org/sub/echo:0.3.4").repository == "org/sub/echo"
    long = "registry.example.com:443/" + "/".join(["very-long-path"] * 12) + "/echo:v1.2.3-rc.1"
    assert oci.is_reference(long)
    for bad in ("echo:0.3.4", "sha256:" + "a" * 64, "file://./x.wasm", "ghcr.io/Org/echo:1", "ghcr.io/x@sha256:zz"):
        assert not oci.is_reference(bad), bad
    with pytest.raises(RegistryError, match="registry host"):
        oci.parse_reference("oci://echo/x:1")


def test_references_reach_the_right_urls() -> None:
    assert oci._container(oci.parse_reference("localhost/x/y:1")).manifest_url() == "localhost/v2/x/y/manifests/1"
    pinned = oci._container(oci.parse_reference("ghcr.io/echo@sha256:" + "b" * 64))
    assert pinned.get_blob_url("sha256:00") == "ghcr.io/v2/echo/blobs/sha256:00"


def test_one_plain_http_rule_loopback_and_the_listed_registries() -> None:
    settings = Settings(oci_insecure=frozenset({"registry.lan:5000"}))
    for plain in ("localhost:5000/a", "127.0.0.7:80/a", "[::1]:5000/a", "registry.lan:5000/a"):
        assert oci.plain_http(oci.parse_reference(plain), settings), plain
    for tls in ("ghcr.io/a", "registry.lan/a", "10.0.0.1:5000/a", "localhost.example.com/a"):
        assert not oci.plain_http(oci.parse_reference(tls), settings), tls


def test_push_then_pull_round_trips_the_cncf_wasm_layout(registry: Registry) -> None:
    ref = oci.parse_reference(f"{registry.address}/actors/echo:0.1.0")
    manifest_digest = oci.push(ref, guests.ECHO, insecure=True)
    manifest = httpx.get(
        f"http://{registry.address}/v2/actors/echo/manifests/0.1.0",
        headers={"Accept": oci.MANIFEST_MEDIA_TYPE},
    )
    assert "sha256:" + hashlib.sha256(manifest.content).hexdigest() == manifest_digest
    body = manifest.json()
    assert body["config"]["mediaType"] == "application/vnd.wasm.config.v0+json"
    assert [layer["mediaType"] for layer in body["layers"]] == ["application/wasm"]
    config = httpx.get(f"http://{registry.address}/v2/actors/echo/blobs/{body['config']['digest']}").json()
    assert config["architecture"] == "wasm" and config["os"] == "wasip1"
    assert config["layerDigests"] == [oci.sha256_digest(guests.ECHO)]

    pulled = oci.pull(ref, insecure=True)
    assert pulled.wasm == guests.ECHO and pulled.digest == oci.sha256_digest(guests.ECHO)
    by_name = oci.parse_reference(f"localhost:{registry.port}/actors/echo:0.1.0")
    assert by_name.loopback and oci.pull(by_name, insecure=True).wasm == guests.ECHO
    by_digest = oci.pull(oci.parse_reference(f"oci://{registry.address}/actors/echo@{manifest_digest}"), insecure=True)
    assert by_digest.wasm == guests.ECHO and by_digest.manifest_digest == manifest_digest


def test_bad_input_is_refused_with_the_reason(registry: Registry) -> None:
    ref = oci.parse_reference(f"{registry.address}/actors/echo:1")
    digest = oci.push(ref, guests.ECHO, insecure=True)
    with pytest.raises(RegistryError, match="no tag '2'"):
        oci.pull(oci.parse_reference(f"{registry.address}/actors/echo:2"), insecure=True)
    with pytest.raises(RegistryError, match="no digest"):
        oci.pull(oci.parse_reference(f"{registry.address}/actors/echo@sha256:{'0' * 64}"), insecure=True)
    with pytest.raises(RegistryError, match="unreachable"):
        oci.pull(oci.parse_reference(f"127.0.0.1:{free_port()}/actors/echo:1"), insecure=True, timeout_s=2)
    # the registry's copy of the layer is corrupted on disk: the bytes no longer match the digest
    registry.blob_path(oci.sha256_digest(guests.ECHO)).write_bytes(guests.TRAPS)
    with pytest.raises(RegistryError, match="digest mismatch"):
        oci.pull(ref, insecure=True)
    assert digest.startswith("sha256:")


def test_other_layouts_pull_and_non_wasm_is_refused(registry: Registry, tmp_path: Path) -> None:
    old = f"{registry.address}/wasmcloud/echo:0.3.4"  # how wasmCloud 0.x (wash reg push) laid out actors
    push_raw(
        old,
        guests.ECHO,
        "application/vnd.module.wasm.content.layer.v1+wasm",
        "application/vnd.wasmcloud.actor.archive.config",
        tmp_path,
    )
    assert oci.pull(oci.parse_reference(old), insecure=True).wasm == guests.ECHO
    image = f"{registry.address}/images/not-wasm:1"
    push_raw(
        image,
        b"\x1f\x8b not a tarball",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.config.v1+json",
        tmp_path,
    )
    with pytest.raises(
        RegistryError, match=r"not a Wasm artifact: no Wasm layer \(layers: application/vnd.oci.image.layer"
    ):
        oci.pull(oci.parse_reference(image), insecure=True)


def test_basic_auth(auth_registry: Registry, tmp_path: Path) -> None:
    ref = oci.parse_reference(f"{auth_registry.address}/actors/echo:1")
    good = oci.Credentials("lattice", "s3cret-pass")
    with pytest.raises(RegistryError, match="wants credentials"):
        oci.push(ref, guests.ECHO, insecure=True, auth_file=tmp_path / "none.json")
    with pytest.raises(RegistryError, match="refused the credentials"):
        oci.push(ref, guests.ECHO, insecure=True, credentials=oci.Credentials("lattice", "wrong"))
    oci.push(ref, guests.ECHO, insecure=True, credentials=good)
    with pytest.raises(RegistryError, match="wants credentials"):
        oci.pull(ref, insecure=True, auth_file=tmp_path / "none.json")
    # a Docker config file names the credentials per registry
    import base64

    auth = base64.b64encode(b"lattice:s3cret-pass").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {auth_registry.address: {"auth": auth}}}))
    assert oci.pull(ref, insecure=True, auth_file=tmp_path / "config.json").wasm == guests.ECHO
