"""The Python probe (``pyprobe/``): built with componentize-py (cached outside the repo) and compiled once
per test session into a compile cache under the user's cache directory (an 18 MB component compiles in
~10 s; a cached one maps back in ~50 ms)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lattice.actors.componentize import WIT_DIR, build_python, cache_root

HERE = Path(__file__).parent / "pyprobe"
WORLD = "lattice:host-test/probe"


def build() -> bytes:
    """The probe component's bytes (built when the build cache lacks these exact inputs)."""
    with tempfile.TemporaryDirectory(prefix="lattice-pyprobe-") as tmp:
        wit, app = Path(tmp) / "wit", Path(tmp) / "app"
        shutil.copytree(WIT_DIR / "deps", wit / "deps")
        (wit / "deps" / "actor").mkdir()
        shutil.copy(WIT_DIR / "actor.wit", wit / "deps" / "actor" / "actor.wit")
        shutil.copy(HERE / "world.wit", wit / "world.wit")
        app.mkdir()
        shutil.copy(HERE / "app.py", app / "app.py")
        return build_python(app, world=WORLD, wit=wit).path.read_bytes()


def host_state() -> Path:
    """A ``state_dir`` for test hosts whose compile cache (``<state_dir>/cache``) outlives the test run."""
    return cache_root() / "test-host"


def compile_cache() -> Path:
    """Where tests keep compiled components between runs (keyed by hash inside): a test host's too."""
    return host_state() / "cache"
