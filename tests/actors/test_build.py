"""The committed example actors are reproducible from source and have the shape of a waPC actor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
import yaml

from actors import build

EXAMPLES = ["echo", "hello", "kvcounter"]


def test_examples_are_discovered_from_their_folders() -> None:
    assert build.example_actors() == EXAMPLES


def test_committed_wasm_is_reproducible_from_source() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actors.build", "--check"],
        cwd=build.ACTORS_DIR.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ok"] * len(EXAMPLES)


def test_check_names_a_wasm_that_differs_from_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "hello.wasm"
    stale.write_bytes(build.committed_wasm("hello").read_bytes() + b"\x00")
    monkeypatch.setattr(build, "committed_wasm", lambda name: stale if name == "hello" else tmp_path / "none")

    assert build.main(["--check", "hello"]) == 1
    out, err = capsys.readouterr()
    assert "DIFFERS hello/hello.wasm" in out
    assert "hello/hello.wasm" in err and "python -m actors.build" in err


def test_a_compile_error_is_reported_with_the_compiler_output(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text('#include "lattice.h"\nvoid actor_init(void) { undefined_thing(); }\n')
    with pytest.raises(build.BuildError, match="undefined_thing"):
        build.compile_actor(source, tmp_path / "broken.wasm")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_a_valid_wapc_module_importing_only_from_wapc(name: str) -> None:
    wasm = build.committed_wasm(name).read_bytes()
    engine = wasmtime.Engine()
    wasmtime.Module.validate(engine, wasm)
    module = wasmtime.Module(engine, wasm)

    exports = {e.name: e.type for e in module.exports}
    assert isinstance(exports["memory"], wasmtime.MemoryType)
    guest_call = exports["__guest_call"]
    assert isinstance(guest_call, wasmtime.FuncType)
    i32 = str(wasmtime.ValType.i32())
    assert [str(t) for t in guest_call.params] == [i32, i32]
    assert [str(t) for t in guest_call.results] == [i32]
    assert {"wapc_init", "__wasmbus_rpc_version"} <= set(exports)
    assert {i.module for i in module.imports} == {"wapc"}
    assert {"__guest_request", "__guest_response", "__guest_error"} <= {i.name for i in module.imports}


def test_hello_is_at_most_20_kib() -> None:
    assert build.committed_wasm("hello").stat().st_size <= 20 * 1024


@pytest.mark.parametrize("name", EXAMPLES)
def test_manifest_is_a_wadm_application_pointing_at_the_committed_wasm(name: str) -> None:
    path = build.ACTORS_DIR / name / "manifest.yaml"
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "core.oam.dev/v1beta1"
    assert manifest["kind"] == "Application"
    assert manifest["metadata"]["name"] == name

    components = {c["name"]: c for c in manifest["spec"]["components"]}
    actor = components[name]
    assert actor["type"] == "actor"
    image = actor["properties"]["image"]
    assert image == f"file://./{name}.wasm"
    assert (path.parent / image.removeprefix("file://")).resolve() == build.committed_wasm(name)

    traits = actor["traits"]
    assert next(t["properties"]["replicas"] for t in traits if t["type"] == "spreadscaler") >= 1
    targets = [t["properties"]["target"] for t in traits if t["type"] == "linkdef"]
    assert "httpserver" in targets
    if name == "kvcounter":
        assert {"keyvalue", "logging"} <= set(targets)
    for target in targets:
        capability = components[target]
        assert capability["type"] == "capability"
        assert capability["properties"]["image"].startswith("builtin:")
        assert capability["properties"]["contract"].startswith("wasmcloud:")
    http = next(t for t in traits if t["type"] == "linkdef" and t["properties"]["target"] == "httpserver")
    assert http["properties"]["values"]["port"].isdigit()
