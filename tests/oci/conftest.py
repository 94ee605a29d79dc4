"""Registries for the OCI tests (see ``tests/oci/registry.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci.registry import Registry, running_registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "auth-registry", user="lattice", password="s3cret-pass") as reg:
        yield reg
