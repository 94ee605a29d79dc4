"""Walking the sections of a Wasm binary: custom sections, stripping, hashing (SPEC §3, §7).

Owns the byte-level layout of a module (``\\0asm``, version 1, then ``id ‖ LEB128 size ‖ contents``
sections) and of a component (SPEC §7: ``\\0asm``, version 0x0d and layer 1, then top-level
sections in the same framing, custom sections included) and the two ids derived from module bytes.
It does not validate code or instantiate anything; that is wasmtime's job in the host. Every
failure is an ``InvalidActor`` naming the offset and what was wrong.

Stripping follows wascap (wasmCloud 0.x): kept sections are re-emitted in order with their contents
byte for byte and their size written as minimal LEB128. For the usual module (minimal sizes, as
every toolchain's final link writes them) that is the input byte for byte; for a module with
padded sizes it is what wascap hashed when it signed, so hashes agree with ``wash claims sign``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from typing import Final, NamedTuple

from lattice.errors import InvalidActor

__all__ = [
    "JWT_SECTIONS",
    "append_custom_section",
    "custom_sections",
    "is_component",
    "module_hash",
    "strip_custom_sections",
    "unsigned_actor_id",
]

WASM_MAGIC: Final = b"\0asm"
_MODULE_VERSION: Final = b"\x01\x00\x00\x00"
_COMPONENT_LAYER: Final = b"\x01\x00"  # bytes 6..8 of a component's header (bytes 4..6: its version)
_HEADER: Final = WASM_MAGIC + _MODULE_VERSION

#: Custom sections that carry an actor's JWT: ``jwt`` (wascap < 0.9) and ``wasmcloud_jwt``.
JWT_SECTIONS: Final = frozenset({"jwt", "wasmcloud_jwt"})


class _Section(NamedTuple):
    id: int
    body: int  # offset of the contents
    end: int  # offset just past the contents
    name: str  # custom sections only, else ""
    data: int  # custom sections: offset of the data after the name; else == body


def _read_u32(wasm: bytes, pos: int, what: str) -> tuple[int, int]:
    """Decode an unsigned LEB128 u32 at ``pos``; returns (value, next offset)."""
    result = 0
    for shift in (0, 7, 14, 21, 28):
        if pos >= len(wasm):
            raise InvalidActor(f"invalid Wasm: truncated {what} at offset {pos}")
        byte = wasm[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result > 0xFFFF_FFFF:
                break
            return result, pos
    raise InvalidActor(f"invalid Wasm: {what} at offset {pos} is not a valid u32 LEB128")


def _write_u32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _check_header(wasm: bytes) -> None:
    if wasm[:4] != WASM_MAGIC:
        raise InvalidActor("not a Wasm module: missing the \\0asm magic number")
    version = wasm[4:8]
    if version != _MODULE_VERSION and not is_component(wasm):
        raise InvalidActor(f"unsupported Wasm version {version.hex()}: expected a core module or a component")


def is_component(wasm: bytes) -> bool:
    """A component (layer 1) rather than a core module (layer 0), by its header (SPEC §7)."""
    return wasm[:4] == WASM_MAGIC and wasm[6:8] == _COMPONENT_LAYER and wasm[4:6] != b"\x01\x00"


def _walk(wasm: bytes) -> Iterator[_Section]:
    _check_header(wasm)
    pos, size = 8, len(wasm)
    while pos < size:
        section_id = wasm[pos]
        length, body = _read_u32(wasm, pos + 1, f"size of section {section_id}")
        end = body + length
        if end > size:
            raise InvalidActor(
                f"invalid Wasm: section {section_id} at offset {pos} claims {length} bytes, "
                f"only {size - body} remain (truncated file?)"
            )
        if section_id == 0:
            name, data = _custom_name(wasm, body, end)
            yield _Section(section_id, body, end, name, data)
        else:
            yield _Section(section_id, body, end, "", body)
        pos = end


def _custom_name(wasm: bytes, body: int, end: int) -> tuple[str, int]:
    """(name, offset of the data) of the custom section whose contents span ``body:end``."""
    length, start = _read_u32(wasm, body, "custom section name length")
    if start + length > end:
        raise InvalidActor(f"invalid Wasm: custom section name at offset {body} overruns its section")
    try:
        return wasm[start : start + length].decode("utf-8"), start + length
    except UnicodeDecodeError:
        raise InvalidActor(f"invalid Wasm: custom section name at offset {body} is not UTF-8") from None


def _as_bytes(wasm: bytes | bytearray | memoryview) -> bytes:
    return wasm if isinstance(wasm, bytes) else bytes(wasm)


def custom_sections(wasm: bytes) -> list[tuple[str, bytes]]:
    """Every custom section as (name, data), in file order; raises InvalidActor on malformed bytes."""
    wasm = _as_bytes(wasm)
    return [(s.name, wasm[s.data : s.end]) for s in _walk(wasm) if s.id == 0]


def strip_custom_sections(wasm: bytes, names: Collection[str] = JWT_SECTIONS) -> bytes:
    """The module without the custom sections called ``names``; every other section kept, in order."""
    wasm = _as_bytes(wasm)
    out = [wasm[:8]]
    for section in _walk(wasm):
        if section.id == 0 and section.name in names:
            continue
        out.append(bytes([section.id]))
        out.append(_write_u32(section.end - section.body))
        out.append(wasm[section.body : section.end])
    return b"".join(out)


def append_custom_section(wasm: bytes, name: str, data: bytes) -> bytes:
    """The module with a custom section ``name`` holding ``data`` added at the end."""
    wasm = _as_bytes(wasm)
    for _ in _walk(wasm):  # refuse to extend a malformed module
        pass
    encoded_name = name.encode("utf-8")
    contents = _write_u32(len(encoded_name)) + encoded_name + bytes(data)
    return wasm + b"\x00" + _write_u32(len(contents)) + contents


def module_hash(wasm: bytes) -> str:
    """SHA-256, upper-case hex, of the module with its JWT sections cut out (the claims' ``hash``)."""
    return hashlib.sha256(strip_custom_sections(wasm)).hexdigest().upper()


def unsigned_actor_id(wasm: bytes) -> str:
    """The id of an unsigned actor: ``MU`` + the first 54 hex digits of SHA-256 of the bytes as given."""
    wasm = _as_bytes(wasm)
    for _ in _walk(wasm):
        pass
    return "MU" + hashlib.sha256(wasm).hexdigest().upper()[:54]
