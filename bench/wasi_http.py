"""wasi:http components served by lattice (SPEC §7), measured beside ``wasmtime serve`` on the same files.

    wasi_http_hello   ``peer_hello/hello.component.wasm`` (the 7 KB hand-written wasi:http 0.2 hello
                      ``bench.peers`` gives ``wasmtime serve``) deployed as an actor linked to the
                      in-host ``builtin:httpserver``: HTTP → provider → host resources → component
    wasi_http_py      the componentize-py hello (``py_hello/app.py``, ~18 MB with CPython inside),
                      warm pooled instances, the same way
    wasmtime_serve_py ``wasmtime serve -Scli -O pooling-allocator=y`` on that same componentize-py file
                      (a new instance per request, as ``wasmtime serve`` always does)

Keys ``<name>_rps``, ``_p50_ms``, ``_p99_ms``, ``_errors`` (``http.measure``). The componentize-py
component is built once per machine (``bench.componentize``, ~30 s) and compiled by the control plane
and the host on first use (seconds each).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.cluster import Cluster, hello_app, http_status, wait_until
from bench.componentize import build_proxy
from bench.http import LoadPlan, measure
from bench.peers import COMPONENT as PEER_HELLO
from bench.peers import serve_with_wasmtime
from lattice.actors.componentize import cache_root
from lattice.cli.natsserver import free_port
from lattice.host.component import components_of
from lattice.host.runtime import Runtime

PY_HELLO = Path(__file__).resolve().parent / "py_hello"


def _precompile(lattice: Cluster, wasm: bytes) -> None:
    """Put ``wasm`` compiled into the host's cache first: an 18 MB component takes longer to compile than
    the control plane waits for a scale command's reply (the load is measured, not the first compile).
    Compiled once per machine under ``~/.cache/lattice/compiled``, then copied."""
    machine, host = Runtime(cache_root() / "compiled"), Runtime(lattice.workdir / "host-1" / "cache")
    try:
        digest = components_of(machine).compile(wasm).digest[7:]
        if machine.cache_dir is not None and host.cache_dir is not None:
            name = f"{digest}.component.cwasm"
            host.cache_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(machine.cache_dir / name, host.cache_dir / name)
    finally:
        machine.close()
        host.close()


def _deployed(lattice: Cluster, name: str, wasm: bytes) -> str:
    _precompile(lattice, wasm)
    art = lattice.upload(wasm)
    port = free_port()
    lattice.put_app(name, hello_app(name, art["digest"], port=port, replicas=2))
    # deployed first: on a loaded machine a scale command the host answered late is retried, and the
    # actor restarted meanwhile answered 503 under load (an 18 MB component takes seconds to start)
    lattice.wait_deployed(name, 180)
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: http_status(url) == 200, 120, f"{name} answering")
    return url


def run(plan: LoadPlan, workdir: Path, *, py: bool = True) -> dict[str, float]:
    """The components on one lattice (one host, provider in the host), one after the other; the
    componentize-py one only with ``py``."""
    results: dict[str, float] = {}
    with Cluster(workdir, hosts=1) as lattice:
        url = _deployed(lattice, "wasi-hello", PEER_HELLO.read_bytes())
        results |= measure("wasi_http_hello", url, plan)
        if py:
            lattice.delete_app("wasi-hello")
            url = _deployed(lattice, "wasi-py", build_proxy(PY_HELLO).read_bytes())
            results |= measure("wasi_http_py", url, plan)
    return results


def wasmtime_serve_py(plan: LoadPlan, workdir: Path) -> dict[str, float]:
    """``wasmtime serve`` (pooling allocator) on the componentize-py hello lattice serves."""
    return serve_with_wasmtime("wasmtime_serve_py", build_proxy(PY_HELLO), plan, workdir)
