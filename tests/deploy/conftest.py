"""Deployment tests: the container files checked as files, the wheel installed the way the image installs it,
a real multi-machine lattice across network namespaces (``netns``), and compose.yaml run for real on a Docker
Engine the test starts (``docker``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netns: needs root and `ip netns` (machines as network namespaces); skipped where not permitted"
    )
    config.addinivalue_line(
        "markers", "docker: starts its own Docker Engine (root, docker.io); skipped where none can start"
    )


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return doc
