"""lattice_actor, the Python guest library, on plain CPython: the pure parts (HTTP maps, dispatch, errors,
key-value and logging over a stand-in host). The same code inside a component: test_components.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType

import msgpack
import pytest

from lattice.actors.componentize import PY_SDK_DIR


@pytest.fixture
def lib() -> Iterator[ModuleType]:
    sys.path.insert(0, str(PY_SDK_DIR))
    try:
        import lattice_actor

        yield lattice_actor
    finally:
        lattice_actor.host.set_host(None)
        sys.path.remove(str(PY_SDK_DIR))


def test_http_request_decodes_spec_maps_and_lowercases_header_names(lib: ModuleType) -> None:
    payload = msgpack.packb(
        {"method": "GET", "path": "/a", "queryString": "x=1", "header": {"X-Id": ["7"]}, "body": b"hi"}
    )
    request = lib.HttpRequest.decode(payload)
    assert (request.method, request.path, request.query, request.body) == ("GET", "/a", {"x": ["1"]}, b"hi")
    assert request.header("x-id") == "7" and request.header("missing", "d") == "d"


@pytest.mark.parametrize("payload", [b"\xc1", msgpack.packb([1]), msgpack.packb({"method": "GET"})])
def test_a_malformed_request_is_an_actor_error(lib: ModuleType, payload: bytes) -> None:
    with pytest.raises(lib.ActorError, match="malformed HttpRequest"):
        lib.HttpRequest.decode(payload)


def test_handler_results_become_responses(lib: ModuleType) -> None:
    of = lib.HttpResponse.of
    assert msgpack.unpackb(of("hi").encode()) == {
        "statusCode": 200,
        "header": {"content-type": ["text/plain; charset=utf-8"]},
        "body": b"hi",
    }
    assert of({"a": 1}).body == b'{"a":1}' and of(None).status == 204
    assert of(b"\x00").headers == {"content-type": ["application/octet-stream"]}
    assert lib.HttpResponse.json([], status=201).status == 201


def test_dispatch_maps_exceptions_to_error_texts(lib: ModuleType) -> None:
    from lattice_actor.guest import dispatch

    @lib.handler("T.Fail")
    def fail(payload: bytes) -> bytes:
        raise KeyError("k")

    with pytest.raises(lib.ActorError, match=r"^KeyError: 'k'$"):
        dispatch("T.Fail", b"")
    with pytest.raises(lib.ActorError, match=r"no handler for operation T\.None"):
        dispatch("T.None", b"")


def test_running_out_of_memory_is_named_never_an_empty_reason(lib: ModuleType) -> None:
    """New-user finding: a MemoryError (no message) made "malformed HttpRequest: " with nothing after it."""
    from lattice_actor.guest import dispatch

    @lib.handler("T.Big")
    def big(payload: bytes) -> bytes:
        raise MemoryError

    @lib.http
    def echo(request: object) -> str:
        return "never"

    with pytest.raises(lib.ActorError, match=r"^MemoryError: out of memory"):
        dispatch("T.Big", b"")
    decode = lib.HttpRequest.decode
    try:
        lib.HttpRequest.decode = classmethod(lambda cls, payload: (_ for _ in ()).throw(MemoryError()))
        with pytest.raises(lib.ActorError, match=r"^MemoryError: out of memory"):
            dispatch("HttpServer.HandleRequest", b"")
    finally:
        lib.HttpRequest.decode = decode
    assert lib.errors.describe(ValueError()) == "ValueError"


def test_key_value_over_a_stand_in_host(lib: ModuleType) -> None:
    seen = []

    def host(link: str, namespace: str, operation: str, payload: bytes) -> bytes:
        seen.append((link, namespace, operation, msgpack.unpackb(payload)))
        if operation == "KeyValue.Increment":
            return msgpack.packb(5)
        raise lib.host.Err("no link for wasmcloud:builtin:logging (default)")

    lib.host.set_host(host)
    assert lib.keyvalue.increment("c", 2, link="todo") == 5
    assert seen == [("todo", "wasmcloud:keyvalue", "KeyValue.Increment", {"key": "c", "value": 2})]
    assert lib.log.info("x") is False  # a failed log never fails the handler
    with pytest.raises(lib.HostCallError, match="no link for wasmcloud:builtin:logging") as caught:
        lib.call("wasmcloud:builtin:logging", "Logging.WriteLog", msgpack.packb({}))
    assert caught.value.namespace == "wasmcloud:builtin:logging"
    with pytest.raises(ValueError, match="log level"):
        lib.log.write("loud", "x")
