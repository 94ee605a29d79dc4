"""The component examples (SPEC §7) deployed from their own manifests on a real lattice (``lattice up``):
the Python kvcounter and the JavaScript greeter over ``wasmcloud:httpserver`` + ``wasmcloud:keyvalue``, the
Python ``wasi:http/proxy`` hello through the HTTP server provider — real nats-server, real sockets. Each
is built first when the build cache lacks it (``python -m actors.build`` does the same)."""

from __future__ import annotations

import httpx
import pytest

from lattice.actors import build, toolchains
from lattice.claims import actor_id_of

from .lattice_up import LatticeUp

# a cold machine builds (15-60 s each) and the control plane compiles (10-60 s each) three components
pytestmark = pytest.mark.timeout(900)
needs_npm = pytest.mark.skipif(toolchains.npm() is None, reason="JavaScript actors and the wasi:http WIT need npm")


def deployed(lattice: LatticeUp, name: str) -> str:
    """The HTTP base URL of component example ``name``, built and deployed first if not yet."""
    if name not in lattice.deployed:
        build.component_wasm(name)  # beside its manifest, where the manifest's file:// image points
        lattice.deploy(build.ACTORS_DIR / name / "manifest.yaml", timeout=180)
    return lattice.deployed[name]


def test_python_kvcounter_counts_per_path_through_the_key_value_provider(lattice: LatticeUp) -> None:
    url = deployed(lattice, "pykvcounter")
    counts = [httpx.get(url + path, timeout=30).json() for path in ("/py-a", "/py-a", "/py-b")]
    assert counts == [
        {"path": "/py-a", "count": 1, "actor": "pykvcounter"},
        {"path": "/py-a", "count": 2, "actor": "pykvcounter"},
        {"path": "/py-b", "count": 1, "actor": "pykvcounter"},
    ]
    # the control plane invokes the component by its id (MU + the hash of its bytes) as it would a waPC actor
    actor_id = actor_id_of(build.component_wasm("pykvcounter").read_bytes())
    assert lattice.call(lambda c: c.invoke(actor_id, "Counter.Get", b"/py-a")) == b"2"


@needs_npm
def test_javascript_greeter_counts_visits_per_name(lattice: LatticeUp) -> None:
    url = deployed(lattice, "jsgreeter")
    first = httpx.get(url + "/", params={"name": "Ada"}, timeout=30)
    assert first.status_code == 200, first.text
    assert first.json() == {"greeting": "Hello, Ada!", "visits": 1, "actor": "jsgreeter"}
    assert httpx.get(url + "/", params={"name": "Ada"}, timeout=30).json()["visits"] == 2


@needs_npm
def test_python_wasi_http_component_serves_through_the_http_provider(lattice: LatticeUp) -> None:
    url = deployed(lattice, "pyhttp")
    response = httpx.get(url + "/hi?x=1", timeout=30)
    assert response.status_code == 200
    assert response.text == "Hello from Python! You requested GET /hi?x=1\n"
