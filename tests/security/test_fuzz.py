"""Random bytes to the decoders and random modules to the loader: clear errors, never a crash or hang."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lattice.errors import ClaimsError, InvalidActor, InvocationError
from lattice.host.runtime import Runtime
from lattice.messages import Invocation, InvocationResponse, LinkDefinition, pack, unpack
from tests.host import guests

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=512))
def test_invocation_decoders_raise_only_invocation_error_on_random_bytes(data: bytes) -> None:
    for decode in (Invocation.from_msgpack, InvocationResponse.from_msgpack):
        with contextlib.suppress(InvocationError):
            decode(data)


@given(msgpack_values)
def test_decoders_tolerate_any_msgpack_shape(value: object) -> None:
    for decode in (Invocation.from_msgpack, InvocationResponse.from_msgpack):
        with contextlib.suppress(InvocationError):
            decode(pack(value))
    with contextlib.suppress(InvocationError):
        LinkDefinition.from_obj(value)


@given(msgpack_values)
def test_unpack_round_trips(value: object) -> None:
    assert unpack(pack(value)) == value or value != value  # NaN-free strategy: equality holds


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_loader_refuses_random_bytes_with_invalid_actor(runtime: Runtime, data: bytes) -> None:
    for blob in (data, b"\0asm\x01\0\0\0" + data):
        with contextlib.suppress(InvalidActor, ClaimsError):
            runtime.compile(blob)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.integers(8, len(guests.ECHO) - 1), st.integers(0, 255))
def test_loader_survives_mutated_modules(runtime: Runtime, index: int, byte: int) -> None:
    mutated = bytearray(guests.ECHO)
    mutated[index] = byte
    with contextlib.suppress(InvalidActor, ClaimsError):
        runtime.compile(bytes(mutated))
