"""Wasm section walking: custom sections, stripping, hashing and ids."""

from __future__ import annotations

import hashlib
import timeit

import pytest
import wasmtime
from hypothesis import given
from hypothesis import strategies as st

from lattice import wasm
from lattice.errors import InvalidActor

MODULE = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "f") (result i32) i32.const 7))'))


def test_append_then_read_back_custom_sections_in_order() -> None:
    signed = wasm.append_custom_section(MODULE, "jwt", b"token")
    signed = wasm.append_custom_section(signed, "producers", b"\x00")
    assert wasm.custom_sections(signed) == [("jwt", b"token"), ("producers", b"\x00")]
    assert wasm.custom_sections(MODULE) == []
    wasmtime.Module(wasmtime.Engine(), signed)  # still a valid module


def test_strip_removes_only_jwt_sections_and_keeps_the_rest_byte_for_byte() -> None:
    with_name = wasm.append_custom_section(MODULE, "name", b"\x00\x01")
    signed = wasm.append_custom_section(with_name, "jwt", b"a")
    signed = wasm.append_custom_section(signed, "wasmcloud_jwt", b"b")
    assert wasm.strip_custom_sections(signed) == with_name
    assert wasm.strip_custom_sections(signed, names={"name"}) == wasm.append_custom_section(
        wasm.append_custom_section(MODULE, "jwt", b"a"), "wasmcloud_jwt", b"b"
    )
    assert wasm.strip_custom_sections(MODULE) == MODULE


def test_strip_writes_padded_section_sizes_minimally_as_wascap_does() -> None:
    # memory section (id 5) of MODULE, re-encoded with a 5-byte padded size.
    padded = wasm.append_custom_section(MODULE[:8], "x", b"") + b"\x05\x83\x80\x80\x80\x00\x01\x00\x01"
    assert wasm.strip_custom_sections(padded) == wasm.append_custom_section(MODULE[:8], "x", b"") + (
        b"\x05\x03\x01\x00\x01"
    )


def test_module_hash_ignores_jwt_sections_but_not_code() -> None:
    signed = wasm.append_custom_section(MODULE, "jwt", b"whatever")
    assert wasm.module_hash(signed) == wasm.module_hash(MODULE)
    assert wasm.module_hash(MODULE) == hashlib.sha256(MODULE).hexdigest().upper()
    tampered = MODULE.replace(b"\x41\x07", b"\x41\x08")  # i32.const 7 -> 8
    assert tampered != MODULE
    assert wasm.module_hash(tampered) != wasm.module_hash(MODULE)


def test_unsigned_actor_id_hashes_the_bytes_as_given() -> None:
    actor_id = wasm.unsigned_actor_id(MODULE)
    assert actor_id == "MU" + hashlib.sha256(MODULE).hexdigest().upper()[:54]
    assert len(actor_id) == 56
    assert wasm.unsigned_actor_id(wasm.append_custom_section(MODULE, "jwt", b"x")) != actor_id


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "magic"),
        (b"\x7fELF\x01\x00\x00\x00", "magic"),
        (b"\0asm\x02\x00\x00\x00", "unsupported Wasm version"),
        (b"\0asm\x0d\x00\x01\x00\x00\x09", "claims 9 bytes"),  # a component's sections, truncated
        (b"\0asm\x01\x00\x00\x00\x01", "truncated size of section 1"),
        (b"\0asm\x01\x00\x00\x00\x01\x05\x00", "claims 5 bytes, only 1 remain"),
        (b"\0asm\x01\x00\x00\x00\x01\xff\xff\xff\xff\x7f", "not a valid u32"),
        (b"\0asm\x01\x00\x00\x00\x00\x02\x05a", "name at offset 10 overruns"),
        (b"\0asm\x01\x00\x00\x00\x00\x02\x01\xff", "not UTF-8"),
    ],
)
def test_malformed_modules_raise_invalid_actor_with_a_reason(blob: bytes, reason: str) -> None:
    for parse in (wasm.custom_sections, wasm.strip_custom_sections, wasm.module_hash, wasm.unsigned_actor_id):
        with pytest.raises(InvalidActor, match=reason):
            parse(blob)
    with pytest.raises(InvalidActor, match=reason):
        wasm.append_custom_section(blob, "jwt", b"")


def test_components_carry_custom_sections_at_their_top_level() -> None:
    component = b"\0asm\x0d\x00\x01\x00" + b"\x07\x01\x00"  # SPEC §7: layer 1, one (empty) type section
    assert wasm.is_component(component) and not wasm.is_component(MODULE)
    signed = wasm.append_custom_section(component, "jwt", b"token")
    assert wasm.custom_sections(signed) == [("jwt", b"token")]
    assert wasm.strip_custom_sections(signed) == component
    assert wasm.module_hash(signed) == hashlib.sha256(component).hexdigest().upper()
    assert wasm.unsigned_actor_id(component) == "MU" + hashlib.sha256(component).hexdigest().upper()[:54]


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_invalid_actor(blob: bytes) -> None:
    for candidate in (blob, b"\0asm\x01\x00\x00\x00" + blob):
        try:
            wasm.custom_sections(candidate)
            wasm.strip_custom_sections(candidate)
        except InvalidActor:
            pass


def test_walking_sections_takes_microseconds() -> None:
    many = MODULE
    for i in range(50):
        many = wasm.append_custom_section(many, f"s{i}", b"x" * 100)
    runs = 200
    per_section_us = timeit.timeit(lambda: wasm.custom_sections(many), number=runs) / runs / 54 * 1e6
    assert per_section_us < 20
