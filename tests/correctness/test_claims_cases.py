"""wascap#41: a module with two claims sections is refused everywhere, never run with the first (older) token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lattice import claims, keys, wasm
from lattice.errors import ClaimsError
from tests.host import guests
from tests.host.test_host import command, write

ACCOUNT = keys.generate("account")
MODULE_KEY = keys.generate("module")


def old_then_new_token(second_section: str = "jwt") -> bytes:
    """An actor signed with no caps, then 're-signed' by appending a token that grants keyvalue."""
    old = claims.sign_actor(guests.ECHO, ACCOUNT, module=MODULE_KEY, name="t", caps=[])
    newer = claims.sign_actor(guests.ECHO, ACCOUNT, module=MODULE_KEY, name="t", caps=["wasmcloud:keyvalue"])
    [(_, token)] = [s for s in wasm.custom_sections(newer) if s[0] in wasm.JWT_SECTIONS]
    return wasm.append_custom_section(old, second_section, token)


@pytest.mark.parametrize("second", ["jwt", "wasmcloud_jwt"])
def test_wascap41_two_claims_sections_are_refused_by_extract_and_verify(second: str) -> None:
    doubled = old_then_new_token(second)
    for read in (claims.extract_claims, claims.verify_actor, claims.actor_id_of):
        with pytest.raises(ClaimsError, match="multiple claims sections"):
            read(doubled)


def test_wascap41_sign_replaces_both_sections_and_never_appends() -> None:
    resigned = claims.sign_actor(old_then_new_token(), ACCOUNT, module=MODULE_KEY, name="t", caps=["x:y"])
    assert [n for n, _ in wasm.custom_sections(resigned) if n in wasm.JWT_SECTIONS] == ["jwt"]
    assert claims.verify_actor(resigned).caps == ("x:y",)


def test_wascap41_claims_inspect_refuses_two_sections(tmp_path: Path) -> None:
    path = tmp_path / "doubled.wasm"
    path.write_bytes(old_then_new_token())
    done = subprocess.run(
        [sys.executable, "-m", "lattice", "claims", "inspect", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "multiple claims sections" in done.stdout + done.stderr


async def test_wascap41_upload_with_two_claims_sections_is_400(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    refused = await client.post("/v1/artifacts", content=old_then_new_token())
    assert refused.status_code == 400
    assert "multiple claims sections" in refused.text


async def test_wascap41_host_refuses_two_claims_sections(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    reply = await command(host, "scale", {"actor_ref": write(tmp_path, "a.wasm", old_then_new_token()), "count": 1})
    assert not reply["accepted"]
    assert "multiple claims sections" in reply["error"]
