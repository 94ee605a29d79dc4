"""The committed example actors are reproducible from source and have the shape of a waPC actor."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
import yaml

from lattice.actors import build, toolchains
from lattice.claims import extract_claims, verify_actor
from lattice.wasm import custom_sections, strip_custom_sections

EXAMPLES = ["echo", "hello", "kvcounter", "pingpong", "todo"]
PARTS = [part for name in EXAMPLES for part in build.EXAMPLES[name]]
LANGUAGES = {"c", "zig", "assemblyscript"}
needs_npm = pytest.mark.skipif(toolchains.npm() is None, reason="AssemblyScript needs npm")


def run_build(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lattice.actors.build", *args],
        cwd=build.ACTORS_DIR.parent,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_five_examples_cover_c_zig_and_assemblyscript() -> None:
    assert build.example_actors() == EXAMPLES
    assert {part.lang for part in PARTS} == LANGUAGES
    for part in PARTS:
        assert (build.ACTORS_DIR / part.source).exists(), part.source


def test_committed_wasm_is_reproducible_from_source() -> None:
    result = run_build("--check", "--without-npm")
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = {line.split()[1]: line.split()[0] for line in result.stdout.splitlines()}
    components = {p.wasm: "skipped" if p.lang == "javascript" else "ok" for p in build.COMPONENTS.values()}
    assert statuses == {p.wasm: "skipped" if p.lang == "assemblyscript" else "ok" for p in PARTS} | components


@needs_npm
def test_assemblyscript_example_is_reproducible_with_npm() -> None:
    result = run_build("--check", "--with-npm", "pingpong")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok      pingpong/pinger/pinger.wasm" in result.stdout


def test_without_npm_the_assemblyscript_part_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "npm", lambda: None)
    part = build.EXAMPLES["pingpong"][0]
    assert part.lang == "assemblyscript"
    assert "needs npm" in (build._wants(part, None) or "")
    assert "--without-npm" in (build._wants(part, False) or "")
    assert build._wants(part, True) is None  # --with-npm: building it fails loudly instead


def test_asc_flags_of_the_build_match_the_projects_own_build_script() -> None:
    package = json.loads((build.ACTORS_DIR / "pingpong" / "pinger" / "package.json").read_text())
    assert " ".join(toolchains.ASC_FLAGS) in package["scripts"]["build"]


def test_check_names_a_wasm_that_differs_from_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hello = build.EXAMPLES["hello"][0]
    stale = tmp_path / "hello.wasm"
    stale.write_bytes(build.committed_wasm(hello).read_bytes() + b"\x00")
    monkeypatch.setattr(build, "committed_wasm", lambda part: stale if part == hello else tmp_path / "none")

    assert build.main(["--check", "hello"]) == 1
    out, err = capsys.readouterr()
    assert "DIFFERS hello/hello.wasm" in out
    assert "hello/hello.wasm" in err and "python -m lattice.actors.build" in err


def test_a_compile_error_is_reported_with_the_compiler_output(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text('#include "lattice.h"\nvoid actor_init(void) { undefined_thing(); }\n')
    with pytest.raises(build.BuildError, match="undefined_thing"):
        build.compile_actor(source, tmp_path / "broken.wasm")


# ---- signed parts: the ponger ------------------------------------------------------------------------

PONGER = build.EXAMPLES["pingpong"][1]


def test_ponger_is_signed_by_the_example_keys_with_its_call_alias() -> None:
    assert PONGER.signing is not None
    claims = verify_actor(build.committed_wasm(PONGER).read_bytes())
    assert claims.call_alias == "lattice/ponger"
    assert claims.name == "ponger"
    assert claims.caps == ()
    assert claims.iss == build._keypair(PONGER.signing, "account").public_key
    assert claims.sub == build._keypair(PONGER.signing, "module").public_key


def test_signing_twice_differs_in_bytes_which_is_why_check_strips_the_jwt() -> None:
    assert PONGER.signing is not None
    module = strip_custom_sections(build.committed_wasm(PONGER).read_bytes())
    first, second = build.sign(PONGER.signing, module), build.sign(PONGER.signing, module)
    assert first != second  # jti (random) and iat (time) differ
    assert strip_custom_sections(first) == strip_custom_sections(second) == module
    assert build.same_module(PONGER, build.committed_wasm(PONGER), module)[0]


def test_check_refuses_a_ponger_signed_by_other_keys_or_without_its_alias(tmp_path: Path) -> None:
    from lattice import keys
    from lattice.claims import sign_actor

    assert PONGER.signing is not None
    module = strip_custom_sections(build.committed_wasm(PONGER).read_bytes())
    committed = tmp_path / "ponger.wasm"
    for signed, reason in [
        (sign_actor(module, keys.generate("account"), module=keys.generate("module"), name="ponger", caps=[]), "iss"),
        (build.sign(build.Signing(PONGER.signing.keys, "ponger"), module), "call_alias"),
        (module, "unsigned"),
    ]:
        committed.write_bytes(signed)
        same, note = build.same_module(PONGER, committed, module)
        assert not same and reason in note


def test_rebuilding_a_signed_part_keeps_its_signature_when_the_module_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "ponger.wasm"
    shutil.copyfile(build.committed_wasm(PONGER), copy)
    monkeypatch.setattr(build, "_parts", lambda names: [PONGER])
    monkeypatch.setattr(build, "committed_wasm", lambda part: copy)
    original = copy.read_bytes()
    build.rebuild(["pingpong"])
    assert copy.read_bytes() == original
    assert "kept    pingpong/ponger/ponger.wasm" in capsys.readouterr().out
    copy.write_bytes(b"stale")
    build.rebuild(["pingpong"])
    assert "built   pingpong/ponger/ponger.wasm" in capsys.readouterr().out
    assert verify_actor(copy.read_bytes()).call_alias == "lattice/ponger"


# ---- module shape and manifests ----------------------------------------------------------------------


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.wasm)
def test_example_is_a_valid_wapc_module(part: build.Part) -> None:
    wasm = build.committed_wasm(part).read_bytes()
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
    imports = {(i.module, i.name) for i in module.imports}
    # Only waPC imports; AssemblyScript adds env.abort, which SPEC §1 allows.
    assert {m for m, _ in imports} == ({"wapc", "env"} if part.lang == "assemblyscript" else {"wapc"})
    assert {n for m, n in imports if m == "env"} <= {"abort"}
    assert {"__guest_request", "__guest_response", "__guest_error"} <= {n for _, n in imports}
    expected_sections = {"jwt"} if part.signing else set()
    assert {name for name, _ in custom_sections(wasm)} == expected_sections
    assert (extract_claims(wasm) is not None) == (part.signing is not None)


def test_hello_is_at_most_20_kib() -> None:
    assert build.committed_wasm(build.EXAMPLES["hello"][0]).stat().st_size <= 20 * 1024


@pytest.mark.parametrize("name", EXAMPLES)
def test_manifest_is_a_wadm_application_pointing_at_the_committed_wasm(name: str) -> None:
    path = build.ACTORS_DIR / name / "manifest.yaml"
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "core.oam.dev/v1beta1"
    assert manifest["kind"] == "Application"
    assert manifest["metadata"]["name"] == name

    components = {c["name"]: c for c in manifest["spec"]["components"]}
    actors = {n: c for n, c in components.items() if c["type"] == "actor"}
    images = {(path.parent / c["properties"]["image"].removeprefix("file://")).resolve() for c in actors.values()}
    assert images == {build.committed_wasm(part) for part in build.EXAMPLES[name]}
    for actor in actors.values():
        assert actor["properties"]["image"].startswith("file://./")
        traits = actor["traits"]
        assert next(t["properties"]["replicas"] for t in traits if t["type"] == "spreadscaler") >= 1
        for target in [t["properties"]["target"] for t in traits if t["type"] == "linkdef"]:
            capability = components[target]
            assert capability["type"] == "capability"
            assert capability["properties"]["image"].startswith("builtin:")
            assert capability["properties"]["contract"].startswith("wasmcloud:")

    links = [t for c in actors.values() for t in c["traits"] if t["type"] == "linkdef"]
    targets = {t["properties"]["target"] for t in links}
    assert "httpserver" in targets
    if name in ("kvcounter", "todo"):
        assert "keyvalue" in targets
    if name == "kvcounter":
        assert "logging" in targets
    http = next(t for t in links if t["properties"]["target"] == "httpserver")
    assert http["properties"]["values"]["port"].isdigit()


@pytest.mark.parametrize("name", [n for n in EXAMPLES if n != "kvcounter"])
def test_examples_own_their_providers_under_their_own_link_name_so_they_run_beside_the_demo(name: str) -> None:
    manifest = yaml.safe_load((build.ACTORS_DIR / name / "manifest.yaml").read_text())
    link_names = {c["properties"].get("link_name") for c in manifest["spec"]["components"] if c["type"] == "capability"}
    assert link_names == {name}


def test_example_http_ports_do_not_collide_with_each_other_or_lattice_up() -> None:
    ports = []
    for name in EXAMPLES:
        manifest = yaml.safe_load((build.ACTORS_DIR / name / "manifest.yaml").read_text())
        for component in manifest["spec"]["components"]:
            for trait in component.get("traits", []):
                if trait["type"] == "linkdef" and trait["properties"]["target"] == "httpserver":
                    ports.append(int(trait["properties"]["values"]["port"]))
    assert len(ports) == len(set(ports)) == len(EXAMPLES)
    assert 8081 not in ports  # lattice up's control plane
