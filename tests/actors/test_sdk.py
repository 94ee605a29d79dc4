"""The guest SDKs (C and Zig): their msgpack codecs and contract helpers speak exactly what SPEC §2 writes.

Drives tests/actors/sdk_probe.c and its twin sdk_probe.zig (every helper exposed as the same `Probe.*`
operation) on wapc_harness.py, with msgpack-python as the reference codec. Every test runs on both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .wapc_harness import HostFake, WapcGuest

KV = "wasmcloud:keyvalue"
LOGGING = "wasmcloud:builtin:logging"
NUMBERGEN = "wasmcloud:builtin:numbergen"

Reply = Callable[[Any], HostFake]


def replying(value: Any, calls: list[tuple[str, Any]]) -> HostFake:
    """A host fake that records (binding, decoded payload or raw b"") and answers `value`."""

    def fake(binding: str, payload: bytes) -> bytes:
        calls.append((binding, msgpack.unpackb(payload) if payload else payload))
        return msgpack.packb(value)

    return fake


@pytest.fixture(scope="module", params=["c", "zig"])
def probe(request: pytest.FixtureRequest) -> WapcGuest:
    """One long-lived probe instance per SDK; tests swap its host table, as calls are independent."""
    wasm: Path = request.getfixturevalue("sdk_probe_wasm" if request.param == "c" else "sdk_probe_zig_wasm")
    return WapcGuest(wasm)


def call(probe: WapcGuest, operation: str, args: Any, host: dict[tuple[str, str], HostFake]) -> Any:
    probe.host = host
    result = probe.call(operation, msgpack.packb(args))
    assert result.ok, result.payload.decode()
    return msgpack.unpackb(result.payload)


# ---- msgpack -----------------------------------------------------------------------------------------

values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=20) | st.dictionaries(st.text(), children, max_size=20),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_msgpack_writer_and_reader_round_trip_byte_for_byte(probe: WapcGuest, value: Any) -> None:
    encoded = msgpack.packb(value)
    result = probe.call("Probe.Roundtrip", encoded)
    assert result.ok, result.payload
    assert result.payload == encoded  # smallest encodings, exactly like msgpack-python


@pytest.mark.parametrize("n", [0, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000], ids=lambda n: f"len{n}")
def test_msgpack_length_boundaries_round_trip(probe: WapcGuest, n: int) -> None:
    for value in ("s" * n, b"b" * n, [1] * n, {str(i): i for i in range(n)}):
        encoded = msgpack.packb(value)
        assert probe.call("Probe.Roundtrip", encoded).payload == encoded


@settings(max_examples=200, deadline=None)
@given(skipped=values | st.floats(allow_nan=False) | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary()))
def test_msgpack_skip_passes_over_any_value(probe: WapcGuest, skipped: Any) -> None:
    rest = msgpack.packb({"after": True})
    result = probe.call("Probe.Skip", msgpack.packb(skipped) + rest)
    assert result.ok
    assert result.payload == rest


@pytest.mark.parametrize("garbage", [b"", b"\xc1", b"\xdb\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff", b"\x92\x01"])
def test_msgpack_reader_rejects_truncated_or_invalid_input(probe: WapcGuest, garbage: bytes) -> None:
    assert not probe.call("Probe.Roundtrip", garbage).ok
    assert not probe.call("Probe.Skip", garbage).ok


# ---- wasmcloud:httpserver ----------------------------------------------------------------------------


def test_http_request_fields_and_case_insensitive_header_lookup(probe: WapcGuest) -> None:
    request = {
        "method": "POST",
        "path": "/p",
        "queryString": "q=1",
        "header": {"Accept": ["*/*"], "Content-TYPE": ["text/plain", "ignored"]},
        "body": b"\x00\xff",
    }
    assert call(probe, "Probe.HttpRequest", request, {}) == ["POST", "/p", "q=1", b"\x00\xff", "text/plain"]


def test_http_request_with_missing_or_nil_fields_decodes_as_empty(probe: WapcGuest) -> None:
    assert call(probe, "Probe.HttpRequest", {"path": "/only", "body": None}, {}) == [
        "",
        "/only",
        "",
        b"",
        None,
    ]


# ---- wasmcloud:keyvalue ------------------------------------------------------------------------------


def test_kv_get_sends_the_key_and_reads_value_and_exists(probe: WapcGuest) -> None:
    calls: list[tuple[str, Any]] = []
    host = {(KV, "KeyValue.Get"): replying({"value": "v1", "exists": True}, calls)}
    assert call(probe, "Probe.KvGet", ["k"], host) == ["v1", True]
    assert calls == [("", "k")]
    host = {(KV, "KeyValue.Get"): replying({"value": "", "exists": False}, calls)}
    assert call(probe, "Probe.KvGet", ["missing"], host) == ["", False]


def test_kv_set_sends_key_value_and_expires(probe: WapcGuest) -> None:
    calls: list[tuple[str, Any]] = []
    assert call(probe, "Probe.KvSet", ["k", "v", 30], {(KV, "KeyValue.Set"): replying(None, calls)}) is None
    assert calls == [("", {"key": "k", "value": "v", "expires": 30})]


@pytest.mark.parametrize(
    ("operation", "probe_op"), [("KeyValue.Del", "Probe.KvDel"), ("KeyValue.Contains", "Probe.KvContains")]
)
def test_kv_del_and_contains_send_the_key_and_read_a_bool(probe: WapcGuest, operation: str, probe_op: str) -> None:
    calls: list[tuple[str, Any]] = []
    assert call(probe, probe_op, ["k"], {(KV, operation): replying(True, calls)}) is True
    assert call(probe, probe_op, ["k"], {(KV, operation): replying(False, calls)}) is False
    assert calls == [("", "k"), ("", "k")]


@pytest.mark.parametrize("by", [1, -5, 2**31 - 1, -(2**31)])
def test_kv_increment_sends_key_and_i32_value_on_the_given_binding(probe: WapcGuest, by: int) -> None:
    calls: list[tuple[str, Any]] = []
    host = {(KV, "KeyValue.Increment"): replying(-42, calls)}
    assert call(probe, "Probe.KvIncrement", ["counters", "k", by], host) == -42
    assert calls == [("counters", {"key": "k", "value": by})]


@pytest.mark.parametrize(
    ("probe_op", "args", "operation", "sent", "reply"),
    [
        ("Probe.KvListAdd", ["l", "v"], "KeyValue.ListAdd", {"listName": "l", "value": "v"}, 3),
        ("Probe.KvListDel", ["l", "v"], "KeyValue.ListDel", {"listName": "l", "value": "v"}, True),
        ("Probe.KvListRange", ["l", 0, -1], "KeyValue.ListRange", {"listName": "l", "start": 0, "stop": -1}, ["a"]),
        ("Probe.KvListClear", ["l"], "KeyValue.ListClear", "l", False),
        ("Probe.KvSetAdd", ["s", "v"], "KeyValue.SetAdd", {"setName": "s", "value": "v"}, 1),
        ("Probe.KvSetDel", ["s", "v"], "KeyValue.SetDel", {"setName": "s", "value": "v"}, 0),
        ("Probe.KvSetQuery", ["s"], "KeyValue.SetQuery", "s", ["x", "y"]),
        ("Probe.KvSetClear", ["s"], "KeyValue.SetClear", "s", True),
        ("Probe.KvSetCombine", [False, ["a", "b"]], "KeyValue.SetIntersection", ["a", "b"], ["x"]),
        ("Probe.KvSetCombine", [True, ["a", "b", "c"]], "KeyValue.SetUnion", ["a", "b", "c"], ["x", "y", "z"]),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("KeyValue.") else "",
)
def test_kv_list_and_set_helpers_send_spec_arguments_and_read_the_reply(
    probe: WapcGuest, probe_op: str, args: Any, operation: str, sent: Any, reply: Any
) -> None:
    calls: list[tuple[str, Any]] = []
    assert call(probe, probe_op, args, {(KV, operation): replying(reply, calls)}) == reply
    assert calls == [("", sent)]


def test_kv_list_range_reads_empty_lists_and_many_items(probe: WapcGuest) -> None:
    calls: list[tuple[str, Any]] = []
    assert call(probe, "Probe.KvListRange", ["l", 0, -1], {(KV, "KeyValue.ListRange"): replying([], calls)}) == []
    many = [f"item-{i}" * (i % 7) for i in range(5000)]
    assert call(probe, "Probe.KvListRange", ["l", 0, -1], {(KV, "KeyValue.ListRange"): replying(many, calls)}) == many


@pytest.mark.parametrize("reply", [[1, 2], {"a": "b"}, "not a list"])
def test_kv_strings_reply_of_the_wrong_shape_is_malformed(probe: WapcGuest, reply: Any) -> None:
    probe.host = {(KV, "KeyValue.SetQuery"): lambda binding, payload: msgpack.packb(reply)}
    result = probe.call("Probe.KvSetQuery", msgpack.packb(["s"]))
    assert not result.ok
    assert result.payload == b"malformed reply from the host"


def test_kv_strings_reply_claiming_more_items_than_it_holds_is_malformed(probe: WapcGuest) -> None:
    probe.host = {(KV, "KeyValue.SetQuery"): lambda binding, payload: b"\xdd\x7f\xff\xff\xff\xa1x"}
    result = probe.call("Probe.KvSetQuery", msgpack.packb(["s"]))
    assert not result.ok
    assert result.payload == b"malformed reply from the host"


def test_host_call_error_reaches_the_actor_as_text(probe: WapcGuest) -> None:
    def broken(binding: str, payload: bytes) -> bytes:
        raise RuntimeError("store is down ✗")

    probe.host = {(KV, "KeyValue.Increment"): broken}
    result = probe.call("Probe.KvIncrement", msgpack.packb(["", "k", 1]))
    assert not result.ok
    assert result.payload.decode() == "store is down ✗"


def test_malformed_host_reply_is_an_error_not_a_trap(probe: WapcGuest) -> None:
    probe.host = {(KV, "KeyValue.Increment"): lambda binding, payload: msgpack.packb("not an int")}
    result = probe.call("Probe.KvIncrement", msgpack.packb(["", "k", 1]))
    assert not result.ok
    assert result.payload == b"malformed reply from the host"


# ---- logging and numbergen ---------------------------------------------------------------------------


def test_log_write_sends_level_and_text_on_the_logging_contract(probe: WapcGuest) -> None:
    calls: list[tuple[str, Any]] = []
    assert (
        call(probe, "Probe.Log", ["warn", "disk low"], {(LOGGING, "Logging.WriteLog"): replying(None, calls)}) is None
    )
    assert calls == [("", {"level": "warn", "text": "disk low"})]


def test_numbergen_operations(probe: WapcGuest) -> None:
    calls: list[tuple[str, Any]] = []
    guid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert call(probe, "Probe.Guid", [], {(NUMBERGEN, "NumberGen.GenerateGuid"): replying(guid, calls)}) == guid
    assert (
        call(probe, "Probe.Random32", [], {(NUMBERGEN, "NumberGen.Random32"): replying(2**32 - 1, calls)}) == 2**32 - 1
    )
    host = {(NUMBERGEN, "NumberGen.RandomInRange"): replying(7, calls)}
    assert call(probe, "Probe.RandomInRange", [5, 10], host) == 7
    assert calls == [("", b""), ("", b""), ("", {"min": 5, "max": 10})]


def test_console_log_reaches_the_host(probe: WapcGuest) -> None:
    probe.console.clear()
    assert probe.call("Probe.Console", "hello from the guest ✓".encode()).ok
    assert probe.console == ["hello from the guest ✓"]
