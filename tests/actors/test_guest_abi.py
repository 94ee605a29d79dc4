"""The example actors follow the waPC guest ABI (SPEC §1) and the contracts (SPEC §2).

They run on wapc_harness.py, a pure-Python waPC host on wasmtime-py (the nine `wapc` imports on a
`wasmtime.Linker`, the guest-call protocol, fake host calls), not on the real host: this pins down the
guests, so a failure here is the actor's or the SDK's fault.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from .wapc_harness import HostFake, WapcGuest

ActorLoader = Callable[..., WapcGuest]

HANDLE = "HttpServer.HandleRequest"
KV = "wasmcloud:keyvalue"
LOGGING = "wasmcloud:builtin:logging"


def http_request(
    path: str = "/", method: str = "GET", query: str = "", body: bytes = b"", **header: list[str]
) -> bytes:
    return msgpack.packb({"method": method, "path": path, "queryString": query, "header": header, "body": body})


def http_response(guest: WapcGuest, request: bytes) -> dict[str, Any]:
    result = guest.call(HANDLE, request)
    assert result.ok, result.payload.decode()
    response: dict[str, Any] = msgpack.unpackb(result.payload)
    assert set(response) == {"statusCode", "header", "body"}
    assert isinstance(response["body"], bytes)
    return response


def content_type(response: dict[str, Any]) -> list[str]:
    return next(v for k, v in response["header"].items() if k.lower() == "content-type")


def fake_keyvalue() -> tuple[dict[str, int], HostFake]:
    """A KeyValue.Increment fake over a dict, answering msgpack ints like a provider would."""
    store: dict[str, int] = {}

    def increment(binding: str, payload: bytes) -> bytes:
        args = msgpack.unpackb(payload)
        store[args["key"]] = store.get(args["key"], 0) + args["value"]
        return msgpack.packb(store[args["key"]])

    return store, increment


def failing(text: str) -> HostFake:
    def fail(binding: str, payload: bytes) -> bytes:
        raise RuntimeError(text)

    return fail


def recorder(calls: list[dict[str, Any]], reply: Any = None) -> HostFake:
    def record(binding: str, payload: bytes) -> bytes:
        calls.append(msgpack.unpackb(payload))
        return msgpack.packb(reply)

    return record


# ---- ABI surface -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hello", "echo", "kvcounter", "todo", "pingpong/pinger", "pingpong/ponger"])
def test_actor_reports_wasmbus_rpc_version_1(load_actor: ActorLoader, name: str) -> None:
    guest = load_actor(name)
    assert guest.func("__wasmbus_rpc_version")(guest.store) == 1


@pytest.mark.parametrize("name", ["hello", "echo", "kvcounter", "todo", "pingpong/pinger", "pingpong/ponger"])
def test_unknown_operation_fails_the_call_with_a_guest_error(load_actor: ActorLoader, name: str) -> None:
    result = load_actor(name).call("Nope.Missing", b"")
    assert not result.ok
    if name == "pingpong/pinger":  # the stock @wapc/as-guest words it its own way
        assert result.payload.decode() == 'Could not find function "Nope.Missing"'
    else:  # the C and Zig SDKs
        assert result.payload.decode() == "actor has no handler for operation Nope.Missing"


@pytest.mark.parametrize("name", ["echo", "kvcounter", "todo", "pingpong/pinger"])
def test_malformed_request_fails_the_call_instead_of_trapping(load_actor: ActorLoader, name: str) -> None:
    guest = load_actor(name)
    result = guest.call(HANDLE, b"\xc1 not msgpack")
    assert not result.ok
    assert "malformed HttpRequest" in result.payload.decode()
    assert guest.call(HANDLE, http_request("/after")).ok  # the instance keeps serving


# ---- hello -------------------------------------------------------------------------------------------


def test_hello_answers_200_hello_world_json(load_actor: ActorLoader) -> None:
    guest = load_actor("hello")
    for request in (http_request("/"), http_request("/any/path", "POST", "a=1", b"xyz"), b""):
        response = http_response(guest, request)
        assert response["statusCode"] == 200
        assert content_type(response) == ["application/json"]
        assert json.loads(response["body"]) == {"hello": "world"}
    assert guest.host_calls == []


# ---- echo --------------------------------------------------------------------------------------------


def test_echo_answers_method_path_query_and_body_as_json(load_actor: ActorLoader) -> None:
    body = 'line one\nsays "hi" \\ \t ünïcödé ✓ \x01'
    response = http_response(
        load_actor("echo"), http_request("/a/b", "PUT", "x=1&y=two", body.encode(), accept=["*/*"])
    )
    assert response["statusCode"] == 200
    assert content_type(response) == ["application/json"]
    assert json.loads(response["body"]) == {
        "method": "PUT",
        "path": "/a/b",
        "queryString": "x=1&y=two",
        "body": body,
    }


def test_echo_accepts_body_sent_as_str_and_ignores_unknown_keys(load_actor: ActorLoader) -> None:
    request = msgpack.packb({"extra": {"nested": [1, 2.5, None]}, "path": "/p", "method": "GET", "body": "text body"})
    echoed = json.loads(http_response(load_actor("echo"), request)["body"])
    assert echoed == {"method": "GET", "path": "/p", "queryString": "", "body": "text body"}


def test_echo_handles_a_body_larger_than_initial_memory(load_actor: ActorLoader) -> None:
    guest = load_actor("echo")
    body = b"z" * (3 * 1024 * 1024)
    echoed = json.loads(http_response(guest, http_request("/big", "POST", body=body))["body"])
    assert echoed["body"] == body.decode()


def test_echo_request_over_the_memory_limit_fails_the_call_cleanly(load_actor: ActorLoader) -> None:
    guest = load_actor("echo", max_memory_bytes=1024 * 1024)
    result = guest.call(HANDLE, http_request("/big", "POST", body=b"z" * (2 * 1024 * 1024)))
    assert not result.ok
    assert result.payload == b"actor out of memory reading the request"
    assert http_response(guest, http_request("/small"))["statusCode"] == 200


def test_echo_reply_over_the_memory_limit_fails_instead_of_truncating(load_actor: ActorLoader) -> None:
    guest = load_actor("echo", max_memory_bytes=4 * 1024 * 1024)
    result = guest.call(HANDLE, http_request("/big", "POST", body=b"z" * (1536 * 1024)))
    assert not result.ok
    assert result.payload == b"actor out of memory building the reply"
    assert http_response(guest, http_request("/small"))["statusCode"] == 200


# ---- kvcounter ---------------------------------------------------------------------------------------


def test_kvcounter_counts_requests_per_path_through_keyvalue_increment(load_actor: ActorLoader) -> None:
    store, increment = fake_keyvalue()
    guest = load_actor("kvcounter", host={(KV, "KeyValue.Increment"): increment})

    bodies = [json.loads(http_response(guest, http_request(p))["body"]) for p in ("/hello", "/hello", "/x")]

    assert bodies == [
        {"path": "/hello", "count": 1, "actor": "kvcounter"},
        {"path": "/hello", "count": 2, "actor": "kvcounter"},
        {"path": "/x", "count": 1, "actor": "kvcounter"},
    ]
    assert store == {"counter:/hello": 2, "counter:/x": 1}
    increments = [c for c in guest.host_calls if c.namespace == KV]
    assert [(c.binding, c.operation) for c in increments] == [("", "KeyValue.Increment")] * 3
    assert msgpack.unpackb(increments[0].payload) == {"key": "counter:/hello", "value": 1}


def test_kvcounter_answers_json_with_status_200(load_actor: ActorLoader) -> None:
    _, increment = fake_keyvalue()
    guest = load_actor("kvcounter", host={(KV, "KeyValue.Increment"): increment})
    response = http_response(guest, http_request("/hello"))
    assert response["statusCode"] == 200
    assert content_type(response) == ["application/json"]
    assert response["body"] == b'{"path":"/hello","count":1,"actor":"kvcounter"}'


def test_kvcounter_logs_each_request_through_the_logging_contract(load_actor: ActorLoader) -> None:
    _, increment = fake_keyvalue()
    logs: list[dict[str, Any]] = []
    host = {(KV, "KeyValue.Increment"): increment, (LOGGING, "Logging.WriteLog"): recorder(logs)}
    guest = load_actor("kvcounter", host=host)
    http_response(guest, http_request("/hello"))
    assert logs == [{"level": "info", "text": "kvcounter: /hello -> 1"}]
    assert [c.binding for c in guest.host_calls if c.namespace == LOGGING] == [""]


def test_kvcounter_ignores_a_logging_failure(load_actor: ActorLoader) -> None:
    _, increment = fake_keyvalue()
    guest = load_actor("kvcounter", host={(KV, "KeyValue.Increment"): increment})  # no logger linked
    response = http_response(guest, http_request("/hello"))
    assert response["statusCode"] == 200
    assert [c.operation for c in guest.host_calls] == ["KeyValue.Increment", "Logging.WriteLog"]


@pytest.mark.parametrize(
    "host_error",
    ["no link for wasmcloud:keyvalue (default)", 'redis said "ERR value is not an integer"\n\tat line 1'],
)
def test_kvcounter_answers_500_with_the_host_error_when_increment_fails(
    load_actor: ActorLoader, host_error: str
) -> None:
    guest = load_actor("kvcounter", host={(KV, "KeyValue.Increment"): failing(host_error)})
    response = http_response(guest, http_request("/hello"))
    assert response["statusCode"] == 500
    assert content_type(response) == ["application/json"]
    assert json.loads(response["body"]) == {"error": host_error}


def test_kvcounter_without_a_keyvalue_link_answers_500_naming_the_contract(load_actor: ActorLoader) -> None:
    response = http_response(load_actor("kvcounter"), http_request("/hello"))
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"error": "no link for wasmcloud:keyvalue (default)"}


def test_kvcounter_memory_stays_flat_over_many_calls(load_actor: ActorLoader) -> None:
    """The SDK's per-call arena is reset each call: a long-lived instance must not leak."""
    _, increment = fake_keyvalue()
    guest = load_actor("kvcounter", host={(KV, "KeyValue.Increment"): increment})
    request = http_request("/leak", "POST", body=b"b" * 200_000)
    http_response(guest, request)
    size_after_first = guest.memory_size()
    for _ in range(300):
        http_response(guest, request)
    assert guest.memory_size() == size_after_first
    assert json.loads(http_response(guest, request)["body"])["count"] == 302


def test_host_fakes_see_the_exact_bytes_the_guest_sent(load_actor: ActorLoader) -> None:
    seen: list[bytes] = []

    def increment(binding: str, payload: bytes) -> bytes:
        seen.append(payload)
        return msgpack.packb(7)

    guest = load_actor("kvcounter", host={(KV, "KeyValue.Increment"): increment})
    http_response(guest, http_request("/p"))
    assert seen == [msgpack.packb({"key": "counter:/p", "value": 1})]
