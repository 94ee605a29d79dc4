"""Signed component actors (SPEC §3, §7): ``lattice claims sign`` and ``inspect`` work on components, the
claims sit in a top-level ``jwt`` custom section hashed as for modules, and hosts run them under ``sub``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lattice import claims, keys, wasm
from lattice.errors import ClaimsError
from tests.host.component.guests import probe
from tests.host.test_host import command, write


def lattice(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "lattice", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_claims_sign_and_inspect_a_component(tmp_path: Path) -> None:
    path = tmp_path / "probe.wasm"
    path.write_bytes(probe())
    account = json.loads(lattice("keys", "generate", "account", "-o", "json"))
    lattice("claims", "sign", str(path), "--issuer", account["seed"], "--caps", "wasmcloud:keyvalue",
            "--call-alias", "test/probe")  # fmt: skip
    signed = (tmp_path / "probe_s.wasm").read_bytes()
    assert wasm.is_component(signed)
    assert [name for name, _ in wasm.custom_sections(signed)][-1] == "jwt"  # at the top level, appended
    found = json.loads(lattice("claims", "inspect", str(tmp_path / "probe_s.wasm"), "-o", "json"))
    assert found["verification"] == "valid" and found["signed"] is True
    assert found["iss"] == account["public_key"]
    assert found["hash"] == wasm.module_hash(signed) == wasm.module_hash(probe())
    assert found["caps"] == ["wasmcloud:keyvalue"] and found["call_alias"] == "test/probe"


def test_a_tampered_component_is_refused() -> None:
    signed = bytearray(claims.sign_actor(probe(), keys.generate("account"), name="p", caps=[]))
    at = signed.find(b"hello from a component")
    signed[at] ^= 0x20
    with pytest.raises(ClaimsError, match="hash"):
        claims.verify_actor(bytes(signed))


async def test_hosts_run_signed_components_under_their_subject(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory(allow_unsigned=False)
    module_key = keys.generate("module")
    signed = claims.sign_actor(probe(), keys.generate("account"), module=module_key, name="probe", caps=[])
    reply = await command(host, "scale", {"actor_ref": write(tmp_path, "s.wasm", signed), "count": 1})
    assert reply["accepted"], reply
    assert reply["actor_id"] == module_key.public_key
    assert await host.invoke(module_key.public_key, "Echo", b"signed") == b"signed"
    unsigned = await command(host, "scale", {"actor_ref": write(tmp_path, "u.wasm", probe()), "count": 1})
    assert not unsigned["accepted"] and "unsigned actors are not allowed" in unsigned["error"]
