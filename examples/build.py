"""Rebuild the example plugins' .wasm from their C sources, reproducibly.

Owns the compiler command lines of the embedding examples; every plugin is committed next to its source:

- ``text_filter/plugins/censor``: a waPC guest on the C guest SDK, built by ``lattice.actors.build`` (one
  command line for SDK guests, not two);
- ``text_filter/plugins/snoop``: a waPC guest over WASI (``--target=wasm32-wasi``, wasi-libc);
- ``pipeline/transform``: a plain-function module (``--target=wasm32-freestanding``, no libc).

    python examples/build.py            # rebuild every plugin in place
    python examples/build.py --check    # rebuild into a temp dir; exit 1 naming any .wasm that differs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from lattice.actors import build as actors_build

EXAMPLES_DIR = Path(__file__).resolve().parent

_COMMON = ("-Oz", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wl,--strip-all", "-Wl,-z,stack-size=65536")
FLAGS: dict[str, tuple[str, ...]] = {
    # A reactor: a library with exports and no main.
    "text_filter/plugins/snoop": ("--target=wasm32-wasi", "-mexec-model=reactor", *_COMMON),
    "pipeline/transform": ("--target=wasm32-freestanding", "-nostdlib", "-Wl,--no-entry", *_COMMON),
}
SDK_GUESTS = ("text_filter/plugins/censor",)
PLUGINS = (*SDK_GUESTS, *FLAGS)


def compile_plugin(name: str, output: Path) -> int:
    """Compiles plugin ``name`` (a path under examples/ without ``.c``) to ``output``; returns its size."""
    source = EXAMPLES_DIR / f"{name}.c"
    if name in SDK_GUESTS:
        return actors_build.compile_actor(source, output)
    # Relative paths from the source's folder: nothing about the checkout's location reaches the bytes.
    command = [sys.executable, "-m", "ziglang", "cc", *FLAGS[name], source.name, "-o", str(output)]
    result = subprocess.run(command, cwd=source.parent, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise actors_build.BuildError(f"{name}.c: zig cc failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return output.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python examples/build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed .wasm are reproducible")
    args = parser.parse_args(argv)
    differing = []
    try:
        with tempfile.TemporaryDirectory(prefix="lattice-examples-") as tmp:
            for name in PLUGINS:
                committed = EXAMPLES_DIR / f"{name}.wasm"
                if not args.check:
                    print(f"built {name}.wasm ({compile_plugin(name, committed)} bytes)")
                    continue
                fresh = Path(tmp) / f"{Path(name).name}.wasm"
                compile_plugin(name, fresh)
                same = committed.is_file() and committed.read_bytes() == fresh.read_bytes()
                print(f"{'ok     ' if same else 'DIFFERS'} {name}.wasm")
                if not same:
                    differing.append(f"{name}.wasm")
    except actors_build.BuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    if differing:
        print(f"not reproducible: {', '.join(differing)}; run `python examples/build.py` and commit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
