"""componentize-py ``wasi:http/proxy`` components for the tests and ``python -m bench``.

``build_proxy(app_dir)`` packages ``app_dir/app.py`` (a class ``IncomingHandler``) with the wasi:http 0.2.3
WIT; ``actors.componentize`` does the build and caches it by content hash, so it is paid once per machine.
Raises FileNotFoundError when a tool is missing (npm for the WIT), BuildError when the build fails.
"""

from __future__ import annotations

from pathlib import Path

from lattice.actors.componentize import WASI_HTTP_WIT_PACKAGE as WIT_PACKAGE
from lattice.actors.componentize import WASI_HTTP_WORLD, build_python, wasi_http_wit

__all__ = ["WIT_PACKAGE", "build_proxy"]


def build_proxy(app_dir: Path) -> Path:
    """The component for ``app_dir`` (``app.py`` exporting ``IncomingHandler``); built if not cached."""
    return build_python(app_dir, world=WASI_HTTP_WORLD, wit=wasi_http_wit()).path
