"""The compiler command lines for actors: C and Zig through ``python -m ziglang``, AssemblyScript through npm.

Owns how one source becomes one ``.wasm`` and nothing else (which examples exist and what is signed is
``build.py``'s). Every command runs with paths relative to the ``actors/`` folder (or to a throwaway build
folder) and strips debug info, names and producer sections, so the same toolchain versions give the same
bytes on every machine: zig is the ``ziglang`` wheel pinned in pyproject.toml, AssemblyScript and the
``@wapc`` packages are pinned by the example's ``package-lock.json``.

The scaffolded actors of ``lattice new actor`` use these same flags in their ``build.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ACTORS_DIR = Path(__file__).resolve().parent
SDK_DIR = ACTORS_DIR / "sdk"
ZIG_SDK = SDK_DIR / "zig" / "lattice.zig"

CFLAGS = (
    "--target=wasm32-freestanding",
    "-Oz",
    "-std=c11",
    "-nostdlib",
    "-Wall",
    "-Wextra",
    "-Werror",
    # A waPC actor is a library: no _start; exports come from export_name attributes in the SDK.
    "-Wl,--no-entry",
    # No debug info, name or producers sections: smaller, and nothing machine-specific in the bytes.
    "-Wl,--strip-all",
    "-Wl,-z,stack-size=65536",
)

# The waPC exports of the Zig SDK (SPEC §1); naming them keeps `__stack_pointer` & co. private.
ZIG_EXPORTS = ("__guest_call", "wapc_init", "__wasmbus_rpc_version")
ZIGFLAGS = (
    "-target",
    "wasm32-freestanding",
    "-O",
    "ReleaseSmall",
    "-fno-entry",
    "-fstrip",
    "--stack",
    "65536",
    *(f"--export={name}" for name in ZIG_EXPORTS),
)

# npm ci: exact versions from package-lock.json, nothing written outside the build folder but npm's cache.
NPM_CI = ("ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
ASC_FLAGS = ("--optimizeLevel", "3", "--shrinkLevel", "2", "--noAssert", "--runtime", "incremental")


class BuildError(Exception):
    """A toolchain refused an actor; the message carries its output."""


def _run(command: Sequence[str], cwd: Path, what: str) -> None:
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{what} failed ({result.returncode}):\n{result.stderr}{result.stdout}")


def _relative(path: Path) -> str:
    return str(path.relative_to(ACTORS_DIR)) if path.is_relative_to(ACTORS_DIR) else str(path)


def compile_c(sources: Sequence[Path], output: Path) -> int:
    """Compiles C ``sources`` with the C SDK into ``output``; returns the module's size in bytes."""
    sdk_sources = sorted(_relative(p) for p in SDK_DIR.glob("*.c"))
    srcs = [_relative(s) for s in sources]
    command = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, f"-I{_relative(SDK_DIR)}", *sdk_sources, *srcs]
    _run([*command, "-o", str(output)], ACTORS_DIR, f"{', '.join(srcs)}: zig cc")
    return output.stat().st_size


def compile_zig(source: Path, output: Path) -> int:
    """Compiles one Zig actor (its root file) with the Zig SDK as module ``lattice`` into ``output``."""
    src = _relative(source)
    with tempfile.TemporaryDirectory(prefix="lattice-zig-cache-") as cache:
        command = [sys.executable, "-m", "ziglang", "build-exe", *ZIGFLAGS, "--cache-dir", cache]
        command += ["--dep", "lattice", f"-Mroot={src}", f"-Mlattice={_relative(ZIG_SDK)}", f"-femit-bin={output}"]
        _run(command, ACTORS_DIR, f"{src}: zig build-exe")
    return output.stat().st_size


def npm() -> str | None:
    """The npm executable, or None when Node.js is not installed."""
    return shutil.which("npm")


def compile_assemblyscript(project: Path, output: Path) -> int:
    """Builds an AssemblyScript project (``package.json`` + lock, ``assembly/index.ts``) into ``output``.

    Installs the locked packages with ``npm ci`` in a throwaway copy of the project, so concurrent builds
    never share a ``node_modules`` and the source folder gets none. Raises BuildError without npm.
    """
    npm_exe = npm()
    if npm_exe is None:
        raise BuildError(f"{_relative(project)}: AssemblyScript needs npm (Node.js 18+) on PATH")
    with tempfile.TemporaryDirectory(prefix="lattice-as-") as tmp:
        build_dir = Path(tmp) / project.name
        shutil.copytree(project, build_dir, ignore=shutil.ignore_patterns("node_modules", "*.wasm"))
        _run([npm_exe, *NPM_CI], build_dir, f"{_relative(project)}: npm ci")
        asc = build_dir / "node_modules" / "assemblyscript" / "bin" / "asc.js"
        node = shutil.which("node") or "node"
        out = Path(tmp) / "out.wasm"
        command = [node, str(asc), "assembly/index.ts", *ASC_FLAGS, "--outFile", str(out)]
        _run(command, build_dir, f"{_relative(project)}: asc")
        shutil.copyfile(out, output)
    return output.stat().st_size
