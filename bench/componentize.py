"""componentize-py ``wasi:http/proxy`` components, built once and cached by content hash.

``build_proxy(app_dir)`` packages ``app_dir/app.py`` (a class ``IncomingHandler``) with the wasi:http
0.2.3 WIT into a component under ``~/.cache/lattice/componentize/<hash>.wasm`` (the hash covers the app's
files, the WIT package and the componentize-py version), so the tests and ``python -m bench`` pay the
build (~5 s) once per machine. Needs ``componentize-py`` (PyPI) and ``npm`` (for the WIT).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from bench.peers import WIT_PACKAGE, wasi_http_wit

CACHE = Path.home() / ".cache" / "lattice" / "componentize"


def build_proxy(app_dir: Path, cache: Path = CACHE) -> Path:
    """The component for ``app_dir`` (``app.py`` exporting ``IncomingHandler``); built if not cached."""
    beside = Path(sys.executable).parent / "componentize-py"  # a venv's script, even off PATH
    exe = str(beside) if beside.exists() else shutil.which("componentize-py")
    if exe is None:
        raise FileNotFoundError("componentize-py is not installed (pip install componentize-py)")
    digest = hashlib.sha256(f"{version('componentize-py')}|{WIT_PACKAGE}".encode())
    for path in sorted(app_dir.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out = cache / f"{app_dir.name}-{digest.hexdigest()[:16]}.wasm"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wit = wasi_http_wit(work)
        partial = work / "out.wasm"
        subprocess.run(
            [exe, "-d", str(wit), "-w", "wasi:http/proxy@0.2.3", "componentize", "-p", str(app_dir.resolve()), "app",
             "-o", str(partial)],
            check=True,
            capture_output=True,
            cwd=work,
        )  # fmt: skip
        shutil.move(partial, out)
    return out
