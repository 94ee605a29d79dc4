"""Component actors and the HTTP body limit (new-user finding 2): by default a Python (componentize-py) and
a JavaScript (componentize-js) actor take a request with a body at the HTTP server's default 16 MiB limit,
and one whose memory limit is too small fails naming that limit and how to raise it — never an empty
reason. The real examples (``actors/pykvcounter``, ``actors/jsgreeter``) on the real component pool and
wasmtime; the payload is the msgpack ``HttpRequest`` the HTTP server provider sends.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgpack
import pytest

from lattice.actors import build, toolchains
from lattice.errors import ActorTrap, LimitExceeded
from lattice.host.component import ComponentPool, components_of, new_pool
from lattice.host.limits import COMPONENT_MEMORY_BYTES
from lattice.host.runtime import ActorLimits, Runtime
from lattice.providers.httpserver.config import DEFAULT_MAX_BODY
from tests.host.component import pyprobe

ADVICE = "raise it with limits.max_memory_mb in the manifest"


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    rt = Runtime(pyprobe.compile_cache())
    yield rt
    rt.close()


def _host_call(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
    return msgpack.packb(1) if "keyvalue" in namespace else b""


def _pool(runtime: Runtime, example: str, memory_mb: int | None) -> ComponentPool:
    compiled = components_of(runtime).compile(build.component_wasm(example).read_bytes())
    limits = ActorLimits(deadline_s=30, max_memory_bytes=None if memory_mb is None else memory_mb << 20)
    pool = new_pool(runtime, compiled, limits=limits, host_call=_host_call, log_sink=lambda *_: None)
    assert isinstance(pool, ComponentPool)
    return pool


def _request(body_bytes: int) -> bytes:
    return msgpack.packb({"method": "POST", "path": "/z", "queryString": "", "header": {}, "body": b"\0" * body_bytes})


def _largest_request() -> bytes:
    """The largest body the HTTP server passes on by default, in a payload within the default payload limit."""
    framing = len(_request(0)) + 5  # bin32 header
    return _request(min(DEFAULT_MAX_BODY, ActorLimits().max_payload_bytes - framing))


EXAMPLES = ["pykvcounter", pytest.param("jsgreeter", marks=pytest.mark.skipif(toolchains.npm() is None, reason="npm"))]


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_default_memory_takes_the_default_largest_body(runtime: Runtime, example: str) -> None:
    pool = _pool(runtime, example, None)
    try:
        answer = msgpack.unpackb(pool.call("HttpServer.HandleRequest", _largest_request()))
        assert answer["statusCode"] == 200
    finally:
        pool.close()


def test_a_python_actor_out_of_memory_names_its_limit_and_keeps_serving(runtime: Runtime) -> None:
    pool = _pool(runtime, "pykvcounter", 48)
    try:
        with pytest.raises(LimitExceeded) as failed:
            pool.call("HttpServer.HandleRequest", _request(14_000_000))
        text = str(failed.value)
        assert "ran out of memory at its memory limit of 48 MiB" in text and ADVICE in text
        assert "MemoryError" in text and "malformed" not in text
        assert msgpack.unpackb(pool.call("HttpServer.HandleRequest", _request(10)))["statusCode"] == 200
    finally:
        pool.close()


@pytest.mark.skipif(toolchains.npm() is None, reason="JavaScript actors need npm")
def test_a_js_actor_whose_payload_cannot_fit_names_the_limit(runtime: Runtime) -> None:
    pool = _pool(runtime, "jsgreeter", 16)
    try:
        with pytest.raises((LimitExceeded, ActorTrap)) as failed:
            pool.call("HttpServer.HandleRequest", _request(15 << 20))
        assert "memory limit of 16 MiB" in str(failed.value) and ADVICE in str(failed.value)
    finally:
        pool.close()


def test_an_explicit_limit_is_kept() -> None:
    from lattice.host.limits import MODULE_MEMORY_BYTES, memory_limit

    assert memory_limit(ActorLimits(max_memory_bytes=5 << 20), component=True) == 5 << 20
    assert memory_limit(ActorLimits(), component=True) == COMPONENT_MEMORY_BYTES
    assert memory_limit(ActorLimits()) == MODULE_MEMORY_BYTES
    assert memory_limit(ActorLimits(max_memory_bytes=0), component=True) == 0
