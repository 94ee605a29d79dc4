"""The design's shape, checked: one home per protocol concept, one-way dependencies."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = [
    "subjects",
    "messages",
    "errors",
    "settings",
    "connection",
    "events",
    "links",
    "claims",
    "keys",
    "wasm",
    "rpc",
    "capability",
    "provider_server",
    "natsserver",
]


def _sources(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_no_subject_string_outside_subjects_module() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _sources("lattice", "host", "providers")
        if p.name != "subjects.py" and re.search(r"[\"']wasmbus\.", p.read_text())
    ]
    assert offenders == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_protocol_modules_import_no_participant_nor_runtime() -> None:
    for name in PROTOCOL:
        imported = _imports(ROOT / "lattice" / f"{name}.py")
        assert not imported & {"host", "providers", "wasmtime", "fastapi"}, (name, imported)


def test_host_and_providers_never_import_each_other() -> None:
    for path in _sources("host"):
        assert "providers" not in _imports(path), path
    for path in _sources("providers"):
        assert "host" not in _imports(path), path
