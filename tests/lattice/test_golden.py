"""Golden bytes of every wire type (SPEC §4): what lattice sends is fixed here byte for byte, so a change to
an encoding is a decision made in this file, not an accident; and what it receives decodes tolerantly (0.x
peers: unknown keys ignored, ``msg`` as str or bin, optional fields absent)."""

from __future__ import annotations

import json
from dataclasses import replace

import msgpack

from lattice.events import CloudEvent, parse
from lattice.messages import Entity, Invocation, InvocationResponse, LinkDefinition

ACTOR = "M" + "A" * 55
PROVIDER = "V" + "B" * 55
HOST = "N" + "C" * 55
TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"

INVOCATION = bytes.fromhex(
    "89a26964d92430303030303030302d303030302d343030302d383030302d303030303030303030303031a66f72696769"
    "6e83aa7075626c69635f6b6579d938564242424242424242424242424242424242424242424242424242424242424242"
    "4242424242424242424242424242424242424242424242ab636f6e74726163745f6964b47761736d636c6f75643a6874"
    "7470736572766572a96c696e6b5f6e616d65a764656661756c74a674617267657483aa7075626c69635f6b6579d9384d"
    "414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141414141"
    "41414141414141ab636f6e74726163745f6964a0a96c696e6b5f6e616d65a0a96f7065726174696f6eb8487474705365"
    "727665722e48616e646c6552657175657374a36d7367c40881a470617468a12fa7686f73745f6964d9384e4343434343"
    "434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343"
    "4343ae656e636f6465645f636c61696d73a765794a2e782e79ae636f6e74656e745f6c656e67746808ad74726163655f"
    "636f6e7465787481ab7472616365706172656e74d93730302d3131313131313131313131313131313131313131313131"
    "3131313131313131312d323232323232323232323232323232322d3031"
)
INVOCATION_WITH_DEADLINE = bytes.fromhex(
    "8aa26964a26932a66f726967696e83aa7075626c69635f6b6579d9384d41414141414141414141414141414141414141"
    "414141414141414141414141414141414141414141414141414141414141414141414141ab636f6e74726163745f6964"
    "a0a96c696e6b5f6e616d65a0a674617267657483aa7075626c69635f6b6579d938564242424242424242424242424242"
    "4242424242424242424242424242424242424242424242424242424242424242424242424242424242ab636f6e747261"
    "63745f6964b27761736d636c6f75643a6b657976616c7565a96c696e6b5f6e616d65a764656661756c74a96f70657261"
    "74696f6eac4b657956616c75652e476574a36d7367c400a7686f73745f6964a0ae656e636f6465645f636c61696d73a0"
    "ae636f6e74656e745f6c656e67746800ad74726163655f636f6e7465787480ab646561646c696e655f6d73cf0000018b"
    "cfe56800"
)
RESPONSE_OK = bytes.fromhex("83ad696e766f636174696f6e5f6964a26931a36d7367c4026f6bae636f6e74656e745f6c656e67746802")
RESPONSE_BUSY = bytes.fromhex(
    "85ad696e766f636174696f6e5f6964a26931a36d7367c400ae636f6e74656e745f6c656e67746800a56572726f72ad61"
    "63746f722069732062757379aa6572726f725f6b696e64a462757379"
)
RESPONSE_STASHED = bytes.fromhex(
    "83ad696e766f636174696f6e5f6964a26931a36d7367c400ae636f6e74656e745f6c656e677468ce01312d00"
)
HTTP_CALL = Invocation(
    Entity(PROVIDER, "wasmcloud:httpserver", "default"),
    Entity(ACTOR),
    "HttpServer.HandleRequest",
    b"\x81\xa4path\xa1/",
    host_id=HOST,
    encoded_claims="eyJ.x.y",
    id="00000000-0000-4000-8000-000000000001",
    trace_context={"traceparent": TRACEPARENT},
)
KV_CALL = Invocation(
    Entity(ACTOR),
    Entity(PROVIDER, "wasmcloud:keyvalue", "default"),
    "KeyValue.Get",
    b"",
    id="i2",
    deadline_ms=1700000000000,
)


def test_invocation_bytes() -> None:
    assert HTTP_CALL.to_msgpack() == INVOCATION
    assert Invocation.from_msgpack(INVOCATION) == replace(HTTP_CALL, content_length=8)  # sent as len(msg)
    assert KV_CALL.to_msgpack() == INVOCATION_WITH_DEADLINE  # deadline_ms only when set
    assert Invocation.from_msgpack(INVOCATION_WITH_DEADLINE) == replace(KV_CALL, content_length=0)


def test_invocation_response_bytes() -> None:
    assert InvocationResponse("i1", msg=b"ok").to_msgpack() == RESPONSE_OK
    assert InvocationResponse("i1", error="actor is busy", error_kind="busy").to_msgpack() == RESPONSE_BUSY
    assert InvocationResponse("i1", content_length=20_000_000).to_msgpack() == RESPONSE_STASHED  # via object store
    assert InvocationResponse.from_msgpack(RESPONSE_BUSY).error_kind == "busy"


def test_a_0x_invocation_decodes_tolerantly() -> None:
    peer = msgpack.packb(
        {
            "id": "x",
            "origin": {"public_key": ACTOR, "contract_id": "", "link_name": ""},
            "target": {"public_key": PROVIDER, "contract_id": "wasmcloud:keyvalue", "link_name": "default"},
            "operation": "KeyValue.Get",
            "msg": "text, not bin",
            "host_id": HOST,
            "encoded_claims": "eyJ.x.y",
            "content_length": 13,
            "some_future_field": [1, 2],
        }
    )
    inv = Invocation.from_msgpack(peer)
    assert (inv.msg, inv.trace_context, inv.deadline_ms, inv.target.link_name) == (b"text, not bin", {}, 0, "default")


def test_link_definition_json() -> None:
    link = LinkDefinition(ACTOR, PROVIDER, "wasmcloud:keyvalue", "default", {"bucket": "b"})
    stored = json.dumps(link.to_dict(), separators=(",", ":"))
    assert stored == (
        '{"actor_id":"' + ACTOR + '","provider_id":"' + PROVIDER + '","contract_id":"wasmcloud:keyvalue",'
        '"link_name":"default","values":{"bucket":"b"}}'
    )
    assert LinkDefinition.from_obj(json.loads(stored)) == link
    assert link.key == f"LINKDEF_{ACTOR}_5e6ecc0d3ea449f44e6217ad8b821954d34263ee"


def test_cloud_event_json() -> None:
    event = CloudEvent("actor_started", HOST, {"public_key": ACTOR}, "e1", "2026-01-01T00:00:00+00:00")
    raw = json.dumps(event.to_dict(), separators=(",", ":")).encode()
    assert raw == (
        b'{"specversion":"1.0","type":"com.wasmcloud.lattice.actor_started","source":"' + HOST.encode() + b'",'
        b'"id":"e1","time":"2026-01-01T00:00:00+00:00","datacontenttype":"application/json",'
        b'"data":{"public_key":"' + ACTOR.encode() + b'"}}'
    )
    assert parse(raw) == event
