"""``lattice up`` stopped and started again on one state directory (new-user findings 1 and 3): its cluster
seed, API token and NATS users are kept there (mode 0600), so a link made with ``PUT /v1/links`` and sealed
with the seed is still there after the restart, nothing is refused as sealed by a foreign issuer, and the
line ``lattice up`` prints for the CLI is enough for another shell to reach it. Real processes, real ports.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lattice.cli.client import Client
from tests.actors.lattice_up import LatticeUp

ACTOR = "MU" + "A" * 54
PROVIDER = "V" + "B" * 55


def _link(client: Client) -> Any:
    body = {"actor_id": ACTOR, "provider_id": PROVIDER, "contract_id": "wasmcloud:keyvalue", "link_name": "manual"}
    return client._call("PUT", "/v1/links", json=body)


def _manual(client: Client) -> list[dict[str, Any]]:
    return [link for link in client.links() if link["link_name"] == "manual"]


def _secrets(state: Path) -> dict[str, str]:
    up = state / "up"
    files = [up / "cluster-seed", up / "api-token", up / "nats-credentials.json"]
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path
    return {path.name: path.read_text() for path in files}


def _follow_printed_line(up: LatticeUp, tmp_path: Path, only_url: bool = False) -> subprocess.CompletedProcess[str]:
    """``lattice get links`` in a shell that has only what the printed ``export`` line sets (and a home
    whose default state directory holds no token); ``only_url``: its LATTICE_API_URL alone."""
    line = next(line for line in up.output().splitlines() if "export LATTICE_API_URL=" in line)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "elsewhere")
    env.update((k, v) for k, v in re.findall(r"(LATTICE_\w+)=(\S+)", line) if k == "LATTICE_API_URL" or not only_url)
    command = [sys.executable, "-m", "lattice", "get", "links", "-o", "json"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_links_and_secrets_survive_a_restart_and_the_printed_line_reaches_the_api(tmp_path: Path) -> None:
    first = LatticeUp(tmp_path, hosts=1)
    first.start()
    try:
        first.call(_link)
        assert len(first.call(_manual)) == 1
        kept = _secrets(tmp_path / "state")
        followed = _follow_printed_line(first, tmp_path)
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert "manual" in followed.stdout
        half = _follow_printed_line(first, tmp_path, only_url=True)  # the token of another state dir: says so
        assert half.returncode == 1 and "HTTP 401" in half.stdout
        assert "LATTICE_STATE_DIR" in " ".join(half.stdout.split()), half.stdout
    finally:
        first.stop()
    second = LatticeUp(tmp_path, hosts=1, log_name="second.log")
    second.start()
    try:
        assert _secrets(tmp_path / "state") == kept
        links = second.call(_manual)
        assert [(link["actor_id"], link["provider_id"]) for link in links] == [(ACTOR, PROVIDER)]
    finally:
        second.stop()
    logs = [second.output(), *(p.read_text() for p in (tmp_path / "state" / "up" / "logs").glob("*.log"))]
    assert not any("not a cluster issuer" in text for text in logs), second.output()


def test_a_secret_others_may_read_is_refused_naming_the_file(tmp_path: Path) -> None:
    up = LatticeUp(tmp_path, hosts=1)
    seed = tmp_path / "state" / "up" / "cluster-seed"
    seed.parent.mkdir(parents=True)
    seed.write_text("SC")
    seed.chmod(0o644)
    try:
        with pytest.raises(AssertionError, match="lattice up exited"):
            up.start(timeout=60)
    finally:
        up.stop()
    assert up.proc is not None and up.proc.returncode != 0
    assert f"chmod 600 {seed}" in " ".join(up.output().split()), up.output()
