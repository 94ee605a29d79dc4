"""Peers in the same run: ``wasmtime serve`` and wasmCloud ``wash`` serving a small hello component.

Placeholder until the peer component is built; every peer is reported as skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

from bench.http import LoadPlan


def run(plan: LoadPlan, workdir: Path) -> tuple[dict[str, float], list[str]]:
    return {}, ["wasmtime serve: skipped (not wired yet)", "wash: skipped (not wired yet)"]
