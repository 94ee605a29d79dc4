"""``lattice new actor``: every language's scaffold builds on its own and answers HTTP on the harness."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
import typer
from typer.testing import CliRunner

from lattice.actors import toolchains
from lattice.cli import scaffold
from lattice.controlplane.manifest import parse_manifest
from lattice.errors import ConfigError

from .component_harness import ComponentActor
from .wapc_harness import WapcGuest

needs_npm = pytest.mark.skipif(toolchains.npm() is None, reason="AssemblyScript needs npm")
LANGS = [
    pytest.param("c"),
    pytest.param("zig"),
    pytest.param("assemblyscript", marks=needs_npm),
]


def build(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "build.py"], cwd=project, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.mark.parametrize("lang", LANGS)
def test_scaffold_builds_standalone_and_answers_http(tmp_path: Path, lang: str) -> None:
    project = tmp_path / "elsewhere" / "my-actor"
    scaffold.scaffold_actor("my-actor", lang, project, port=8123)

    result = build(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "built my-actor.wasm" in result.stdout

    guest = WapcGuest(project / "my-actor.wasm")
    request = {"method": "GET", "path": "/there", "queryString": "", "header": {}, "body": b""}
    reply = guest.call("HttpServer.HandleRequest", msgpack.packb(request))
    assert reply.ok, reply.payload.decode()
    response = msgpack.unpackb(reply.payload)
    assert response["statusCode"] == 200
    assert response["header"] == {"Content-Type": ["text/plain; charset=utf-8"]}
    assert response["body"] == b"Hello from my-actor! You requested GET /there\n"
    assert not guest.call("HttpServer.HandleRequest", b"\xc1").ok


@pytest.mark.parametrize("lang", ["python", pytest.param("js", marks=needs_npm)])
def test_component_scaffold_builds_standalone_and_answers_http(tmp_path: Path, lang: str) -> None:
    project = tmp_path / "elsewhere" / "my-actor"
    scaffold.scaffold_actor("my-actor", lang, project, port=8123)

    result = build(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "built my-actor.wasm" in result.stdout
    assert (project / "my-actor.wasm").read_bytes()[:8] == b"\x00asm\x0d\x00\x01\x00"  # a component

    actor = ComponentActor(project / "my-actor.wasm", lambda *_: "no host calls expected")
    request = {"method": "GET", "path": "/there", "queryString": "", "header": {}, "body": b""}
    response = msgpack.unpackb(actor.handle("HttpServer.HandleRequest", msgpack.packb(request)))
    assert response["statusCode"] == 200
    assert response["header"] == {"content-type": ["text/plain; charset=utf-8"]}
    assert response["body"] == b"Hello from my-actor! You requested GET /there\n"
    assert str(actor.handle("HttpServer.HandleRequest", b"\xc1")).startswith("malformed HttpRequest")
    assert actor.calls == []


@pytest.mark.parametrize(
    ("lang", "source", "tool"), [("c", "actor.c", "zig cc"), ("zig", "actor.zig", "zig build-exe")]
)
def test_a_compile_error_shows_the_compilers_error_not_a_missing_zig(
    tmp_path: Path, lang: str, source: str, tool: str
) -> None:
    project = tmp_path / "broken"
    scaffold.scaffold_actor("broken", lang, project, port=8123)
    (project / source).write_text((project / source).read_text() + "\nthis is not valid code\n")
    result = build(project)
    assert result.returncode == 1
    assert "error" in result.stderr and source in result.stderr  # the compiler's own message, naming the file
    assert f"build failed: {tool} exited with status" in result.stderr
    assert "is zig installed" not in result.stderr and "not installed" not in result.stderr


def test_js_scaffold_carries_the_guest_library_the_wit_and_the_example_pins() -> None:
    import json

    files = scaffold.render_actor("js-actor", "js")
    assert files["lattice-actor.js"] == (toolchains.SDK_DIR / "js" / "lattice-actor.js").read_text()
    assert files["wit/actor.wit"] == (toolchains.ACTORS_DIR / "wit" / "actor.wit").read_text()
    example = json.loads((toolchains.ACTORS_DIR / "jsgreeter" / "package.json").read_text())
    package = json.loads(files["package.json"])
    assert package["devDependencies"] == example["devDependencies"] and package["type"] == "module"
    assert json.loads(files["package-lock.json"])["packages"][""]["name"] == "js-actor"
    python = scaffold.render_actor("py-actor", "python")
    assert set(python) == {".gitignore", "README.md", "app.py", "build.py", "manifest.yaml"}


@pytest.mark.parametrize("lang", ["c", "zig", "assemblyscript", "python", "js"])
def test_scaffold_manifest_is_valid_and_deploys_its_own_wasm_on_its_own_link(lang: str) -> None:
    files = scaffold.render_actor("svc_1", lang, port=9001)
    app = parse_manifest(files["manifest.yaml"])
    assert app.name == "svc_1"
    manifest = files["manifest.yaml"]
    assert "image: file://./svc_1.wasm" in manifest
    assert 'port: "9001"' in manifest
    assert "link_name: svc_1" in manifest
    assert "build.py" in files and "README.md" in files
    assert not re.search(r"__[A-Z][A-Z_]*__", "".join(files.values()))  # every placeholder filled in


def test_c_and_zig_scaffolds_carry_the_current_sdk_and_build_flags() -> None:
    c = scaffold.render_actor("a", "c")
    for name in ("lattice.h", "lattice.c", "msgpack.c", "contracts.c"):
        assert c[f"sdk/{name}"] == (toolchains.SDK_DIR / name).read_text()
    assert all(f'"{flag}"' in c["build.py"] for flag in toolchains.CFLAGS)
    zig = scaffold.render_actor("a", "zig")
    assert {k for k in zig if k.startswith("sdk/")} == {"sdk/lattice.zig", "sdk/msgpack.zig", "sdk/contracts.zig"}
    assert all(f'"{flag}"' in zig["build.py"] for flag in toolchains.ZIGFLAGS)


def test_assemblyscript_scaffold_pins_the_example_packages_and_ignores_node_modules() -> None:
    import json

    files = scaffold.render_actor("as-actor", "assemblyscript")
    package = json.loads(files["package.json"])
    example = json.loads((toolchains.ACTORS_DIR / "pingpong" / "pinger" / "package.json").read_text())
    assert package["devDependencies"] == example["devDependencies"]
    assert package["scripts"]["build"].endswith("--outFile as-actor.wasm")
    lock = json.loads(files["package-lock.json"])
    assert lock["name"] == lock["packages"][""]["name"] == "as-actor"
    assert files[".gitignore"] == "node_modules/\n"


@pytest.mark.parametrize("name", ["", "Upper", "1st", "has space", "dot.ted", "x" * 64, "../escape"])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ConfigError, match="lowercase letters, digits"):
        scaffold.render_actor(name, "c")


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        scaffold.scaffold_actor("taken", "c", tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    scaffold.scaffold_actor("empty", "c", tmp_path / "empty-but-there")  # an empty folder is fine


def test_the_command_registers_as_lattice_new_actor(tmp_path: Path) -> None:
    app = typer.Typer()

    @app.command()
    def other() -> None:
        """Stands in for the rest of the lattice CLI."""

    scaffold.register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["new", "actor", "cli-made", "--lang", "zig", "--dir", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "created Zig actor cli-made" in result.output
    assert "python build.py" in result.output
    assert (tmp_path / "x" / "actor.zig").is_file()

    refused = runner.invoke(app, ["new", "actor", "Bad Name"])
    assert refused.exit_code == 1
    assert "lowercase letters" in refused.output
    assert "assemblyscript" in runner.invoke(app, ["new", "actor", "--help"]).output
    assert "python" in runner.invoke(app, ["new", "actor", "--help"]).output
