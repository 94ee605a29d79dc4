"""Rebuild the example actors' .wasm from their C sources, reproducibly.

Owns the one compiler command line for actors: every ``actors/<name>/<name>.c`` is compiled together with
the C guest SDK in ``actors/sdk/`` by ``python -m ziglang cc`` (the ``ziglang`` wheel pinned in
pyproject.toml) into ``actors/<name>/<name>.wasm``. Paths are relative to this folder and debug info,
names and producer sections are stripped, so the same zig gives the same bytes on every machine.

    python -m actors.build            # rebuild every example in place
    python -m actors.build --check    # rebuild into a temp dir; exit 1 naming any .wasm that differs
    python -m actors.build hello      # only some examples
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ACTORS_DIR = Path(__file__).resolve().parent
SDK_DIR = ACTORS_DIR / "sdk"

CFLAGS = (
    "--target=wasm32-freestanding",
    "-Oz",
    "-std=c11",
    "-nostdlib",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Isdk",
    # A waPC actor is a library: no _start; exports come from export_name attributes in the SDK.
    "-Wl,--no-entry",
    # No debug info, name or producers sections: smaller, and nothing machine-specific in the bytes.
    "-Wl,--strip-all",
    "-Wl,-z,stack-size=65536",
)


class BuildError(Exception):
    """The compiler refused an actor; the message carries its output."""


def example_actors() -> list[str]:
    """Every folder holding ``<name>/<name>.c``, sorted."""
    return sorted(p.parent.name for p in ACTORS_DIR.glob("*/*.c") if p.stem == p.parent.name)


def compile_actor(source: Path, output: Path) -> int:
    """Compiles one actor source with the SDK into ``output``; returns the module's size in bytes.

    Runs in ACTORS_DIR with relative paths so that nothing about the checkout's location can reach the
    output. Also used by the tests to build SDK probes that are not examples.
    """
    sdk_sources = sorted(str(p.relative_to(ACTORS_DIR)) for p in SDK_DIR.glob("*.c"))
    src = str(source.relative_to(ACTORS_DIR)) if source.is_relative_to(ACTORS_DIR) else str(source)
    command = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, *sdk_sources, src, "-o", str(output)]
    result = subprocess.run(command, cwd=ACTORS_DIR, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{src}: zig cc failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return output.stat().st_size


def build(name: str, output: Path) -> int:
    """Compiles example actor ``name`` to ``output``; returns the module's size in bytes."""
    return compile_actor(ACTORS_DIR / name / f"{name}.c", output)


def committed_wasm(name: str) -> Path:
    return ACTORS_DIR / name / f"{name}.wasm"


def rebuild(names: list[str]) -> None:
    for name in names:
        size = build(name, committed_wasm(name))
        print(f"built {name}/{name}.wasm ({size} bytes)")


def check(names: list[str]) -> list[str]:
    """Rebuilds into a temp dir; returns the names whose committed .wasm differs (or is missing)."""
    differing = []
    with tempfile.TemporaryDirectory(prefix="lattice-actors-") as tmp:
        for name in names:
            fresh = Path(tmp) / f"{name}.wasm"
            build(name, fresh)
            committed = committed_wasm(name)
            same = committed.is_file() and committed.read_bytes() == fresh.read_bytes()
            print(f"{'ok     ' if same else 'DIFFERS'} {name}/{name}.wasm")
            if not same:
                differing.append(f"{name}/{name}.wasm")
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed .wasm are reproducible")
    parser.add_argument("actors", nargs="*", help="example actors to build (default: all)")
    args = parser.parse_args(argv)
    known = example_actors()
    unknown = sorted(set(args.actors) - set(known))
    if unknown:
        parser.error(f"unknown actor(s) {', '.join(unknown)}; known: {', '.join(known)}")
    names = args.actors or known
    try:
        if not args.check:
            rebuild(names)
            return 0
        differing = check(names)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    if differing:
        print(
            f"not reproducible from source: {', '.join(differing)}; run `python -m actors.build` and commit",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
