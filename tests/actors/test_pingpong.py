"""The pingpong example: the pinger (AssemblyScript, stock @wapc packages) calls the ponger (C, signed) by
its call alias. On the harness the host call is answered by a second harness guest running the ponger."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack

from .wapc_harness import HostFake, WapcGuest

ActorLoader = Callable[..., WapcGuest]
HANDLE = "HttpServer.HandleRequest"
ALIAS = "lattice/ponger"
PING = "PingPong.Ping"


def http_request(path: str) -> bytes:
    request: bytes = msgpack.packb({"method": "GET", "path": path, "queryString": "", "header": {}, "body": b""})
    return request


def forward_to(guest: WapcGuest) -> HostFake:
    """A host fake that invokes ``guest`` like a host routes an actor-to-actor call."""

    def call(binding: str, payload: bytes) -> bytes:
        result = guest.call(PING, payload)
        if not result.ok:
            raise RuntimeError(result.payload.decode())
        return result.payload

    return call


def http_response(guest: WapcGuest, path: str) -> dict[str, Any]:
    result = guest.call(HANDLE, http_request(path))
    assert result.ok, result.payload.decode()
    response: dict[str, Any] = msgpack.unpackb(result.payload)
    assert response["header"] == {"Content-Type": ["application/json"]}
    return response


def test_ponger_answers_pong_and_the_text(load_actor: ActorLoader) -> None:
    ponger = load_actor("pingpong/ponger")
    result = ponger.call(PING, msgpack.packb("hello ✓"))
    assert result.ok
    assert msgpack.unpackb(result.payload) == "pong hello ✓"
    assert ponger.host_calls == []


def test_ponger_refuses_a_payload_that_is_not_a_string(load_actor: ActorLoader) -> None:
    result = load_actor("pingpong/ponger").call(PING, msgpack.packb({"text": "x"}))
    assert not result.ok
    assert result.payload == b"ponger: PingPong.Ping takes a string"


def test_pinger_calls_the_ponger_by_its_call_alias_and_answers_both(load_actor: ActorLoader) -> None:
    ponger = load_actor("pingpong/ponger")
    pinger = load_actor("pingpong/pinger", host={(ALIAS, PING): forward_to(ponger)})
    for path in ("/", "/hello", '/quote"and\\slash/ünï\ttab\x01'):
        response = http_response(pinger, path)
        assert response["statusCode"] == 200
        assert json.loads(response["body"]) == {"ping": path, "pong": f"pong {path}"}
    assert [(c.binding, c.namespace, c.operation) for c in pinger.host_calls] == [("", ALIAS, PING)] * 3
    assert msgpack.unpackb(pinger.host_calls[0].payload) == "/"


def test_pinger_answers_502_with_the_host_error_when_the_ponger_is_unreachable(load_actor: ActorLoader) -> None:
    pinger = load_actor("pingpong/pinger")  # nothing answers the alias
    response = http_response(pinger, "/x")
    assert response["statusCode"] == 502
    assert json.loads(response["body"]) == {"error": f"no link for {ALIAS} (default)"}


def test_pinger_answers_502_when_the_ponger_replies_garbage(load_actor: ActorLoader) -> None:
    pinger = load_actor("pingpong/pinger", host={(ALIAS, PING): lambda binding, payload: b"\xc1"})
    response = http_response(pinger, "/x")
    assert response["statusCode"] == 502
    assert json.loads(response["body"]) == {"error": "malformed reply from the ponger"}


def test_pinger_memory_stays_bounded_over_many_calls(load_actor: ActorLoader) -> None:
    """AssemblyScript's incremental GC reclaims each call's garbage: a long-lived instance must not grow."""
    ponger = load_actor("pingpong/ponger")
    pinger = load_actor("pingpong/pinger", host={(ALIAS, PING): forward_to(ponger)})
    path = "/" + "p" * 20_000
    for _ in range(50):
        http_response(pinger, path)
    size = pinger.memory_size()
    for _ in range(500):
        http_response(pinger, path)
    assert pinger.memory_size() <= size + 2 * 65536
