"""``lattice claims sign --expires`` as a user runs it: days from now, 0 for never, a negative number refused
(new-user finding: ``--expires -1`` signed an already-expired module without complaint)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lattice import claims, keys
from tests.host import guests


def sign(tmp_path: Path, expires: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "echo.wasm").write_bytes(guests.ECHO)
    issuer = keys.generate("account").seed
    command = [sys.executable, "-m", "lattice", "claims", "sign", "echo.wasm", "--issuer", issuer, "--expires", expires]
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env, check=False)


def test_a_negative_expiry_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    result = sign(tmp_path, "-1")
    assert result.returncode == 1
    assert "--expires takes a number of days from now, 1 or more (0: never expires), got -1" in result.stdout
    assert not (tmp_path / "echo_s.wasm").exists()


@pytest.mark.parametrize(("days", "expires"), [("0", False), ("2", True)])
def test_zero_never_expires_and_days_count_from_now(tmp_path: Path, days: str, expires: bool) -> None:
    result = sign(tmp_path, days)
    assert result.returncode == 0, result.stdout + result.stderr
    signed = claims.extract_claims((tmp_path / "echo_s.wasm").read_bytes())
    assert signed is not None
    if expires:
        assert signed.exp is not None and 1.9 * 86400 < signed.exp - signed.iat <= 2 * 86400
    else:
        assert signed.exp is None
