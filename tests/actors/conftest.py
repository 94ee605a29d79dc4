"""Fixtures for the actor tests: committed example actors and an SDK probe, on the waPC harness."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from lattice.actors.build import ACTORS_DIR, compile_actor
from lattice.actors.toolchains import compile_zig

from .lattice_up import LatticeUp
from .wapc_harness import HostFake, WapcGuest

ActorLoader = Callable[..., WapcGuest]


def example_wasm(name: str) -> Path:
    """``hello`` → actors/hello/hello.wasm; ``pingpong/pinger`` → actors/pingpong/pinger/pinger.wasm."""
    return ACTORS_DIR / name / f"{Path(name).name}.wasm"


@pytest.fixture
def load_actor() -> ActorLoader:
    """``load_actor("kvcounter", host={...})`` instantiates a committed example actor (or a part of one:
    ``load_actor("pingpong/ponger")``)."""

    def load(
        name: str, host: Mapping[tuple[str, str], HostFake] | None = None, max_memory_bytes: int | None = None
    ) -> WapcGuest:
        return WapcGuest(example_wasm(name), dict(host or {}), max_memory_bytes=max_memory_bytes)

    return load


@pytest.fixture(scope="session")
def sdk_probe_wasm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tests/actors/sdk_probe.c built with the SDK: exposes every SDK helper as an operation."""
    output = tmp_path_factory.mktemp("probe") / "sdk_probe.wasm"
    compile_actor(Path(__file__).with_name("sdk_probe.c"), output)
    yield output


@pytest.fixture(scope="session")
def sdk_probe_zig_wasm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tests/actors/sdk_probe.zig built with the Zig SDK: the same operations as the C probe."""
    output = tmp_path_factory.mktemp("probe-zig") / "sdk_probe_zig.wasm"
    compile_zig(Path(__file__).with_name("sdk_probe.zig"), output)
    yield output


@pytest.fixture(scope="module")
def lattice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LatticeUp]:
    """One ``lattice up`` (no demo) for a test module that deploys examples from their manifests."""
    up = LatticeUp(tmp_path_factory.mktemp("lattice-up"))
    up.start()
    try:
        yield up
    finally:
        up.stop()


# ---- component actors (SPEC §7) -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def python_component() -> Callable[[Path], Path]:
    """``python_component(app_dir)``: the app built with componentize-py, from the build cache when there."""
    from lattice.actors.componentize import build_python

    return lambda app: build_python(app).path
