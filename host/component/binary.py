"""A second entry to a component actor's ``handle``, through which a text payload crosses as one block.

wasmtime's C API moves a ``list<u8>`` as one 32-byte value per byte, converted one at a time in Rust
(~40 ns a byte each way), while a ``string`` crosses as one block (UTF-8 to UTF-8 is a copy). A
``string`` lowered as UTF-8 lands in the guest's memory exactly as a ``list<u8>`` of its bytes would.
So before compiling, ``add_fast_handle`` appends to the component (at its top level, after everything
else) one more lift of the very core function behind ``lattice:actor/guest@0.1.0#handle``, typed
``func(operation: string, payload: string) -> result<list<u8>, list<u8>>`` with the same memory,
realloc and post-return, exported as ``FAST_HANDLE``. A payload that is valid UTF-8 goes through it as
a ``str`` (the guest finds the same bytes as through ``handle``, whose export is untouched); any other
payload goes through ``handle``. Results stay lists (the guest's error text comes back as its UTF-8
bytes): lifting a result as a string would fail on bytes that are not UTF-8 after the guest ran.
(``latin1+utf16`` would take every payload, but wasmtime then shrinks the allocation with a second
``realloc``, which componentize-py's allocator refuses with a trap.)

The rewrite reads only top-level sections and their index spaces; it never changes a byte of what
is there. Anything it does not recognise (an unknown section entry, a ``handle`` that is not a local
lift) makes it return ``None``, and the component runs through ``handle`` alone. Ids and claims are
computed from the component as uploaded, never from this copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAST_HANDLE = "lattice-internal-fast-handle"
GUEST = "lattice:actor/guest@0.1.0"

_STRING = 0x73
_U8 = 0x7D
_UTF8 = 0x00


class _Unknown(Exception):
    """Something this reader does not handle: no fast entry, nothing else changes."""


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Unknown("truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u32(self) -> int:
        result, shift = 0, 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise _Unknown("bad LEB128")

    def s33(self) -> int:
        result, shift = 0, 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if byte & 0x40:
                    result -= 1 << shift
                return result
            if shift > 35:
                raise _Unknown("bad LEB128")

    def name(self) -> str:
        n = self.u32()
        if self.pos + n > self.end:
            raise _Unknown("truncated name")
        text = self.data[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return text


def _u32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _s33(value: int) -> bytes:
    """A non-negative type index where a value type goes: signed LEB128 (small negatives are primitives)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        done = value == 0 and not byte & 0x40
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _u32(len(raw)) + raw


@dataclass
class _Lift:
    core_func: int
    options: list[bytes]


@dataclass
class _Spaces:
    """Counts of the component-level index spaces, and what the indexes this rewrite follows are."""

    counts: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(6), 0))
    funcs: dict[int, _Lift | int] = field(default_factory=dict)  # func index → its lift, or the func it re-exports
    instances: dict[int, dict[str, tuple[int, int]] | int] = field(default_factory=dict)  # → funcs by name
    exports: dict[str, tuple[int, int]] = field(default_factory=dict)  # top-level export → (sort, index)

    def add(self, sort: int, what: object = None) -> int:
        index = self.counts[sort]
        self.counts[sort] = index + 1
        if sort == 1 and what is not None:
            self.funcs[index] = what  # type: ignore[assignment]
        elif sort == 5 and what is not None:
            self.instances[index] = what  # type: ignore[assignment]
        return index


def _sort(r: _Reader) -> int:
    """A sort: component sorts 1..5 as themselves, core sorts as -1 (not followed)."""
    sort = r.byte()
    if sort == 0x00:
        r.byte()
        return -1
    if sort > 0x05:
        raise _Unknown(f"sort {sort}")
    return sort


def _extern_name(r: _Reader) -> str:
    kind = r.byte()
    if kind not in (0x00, 0x01):
        raise _Unknown(f"extern name kind {kind}")
    return r.name()


def _externdesc(r: _Reader) -> int:
    kind = r.byte()
    if kind == 0x00:
        r.byte()  # 0x11: a core module's type
        r.u32()
        return -1
    if kind in (0x01, 0x04, 0x05):
        r.u32()
    elif kind in (0x02, 0x03):
        if r.byte() == 0x00:
            r.u32()
        elif kind == 0x02:
            r.s33()
    else:
        raise _Unknown(f"externdesc {kind}")
    return kind


def _imports(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        _extern_name(r)
        sort = _externdesc(r)
        if sort >= 0:
            spaces.add(sort)


def _exports(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        name = _extern_name(r)
        sort, index = _sort(r), r.u32()
        if r.byte() == 0x01:
            _externdesc(r)
        if sort >= 0:
            spaces.exports[name] = (sort, index)
            spaces.add(sort, index if sort in (1, 5) else None)


def _aliases(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        sort = _sort(r)
        target = r.byte()
        if target in (0x00, 0x01):
            r.u32()
            r.name()
        elif target == 0x02:
            r.u32()
            r.u32()
        else:
            raise _Unknown(f"alias target {target}")
        if sort >= 0:
            spaces.add(sort)


def _instances(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        kind = r.byte()
        funcs: dict[str, tuple[int, int]] = {}
        if kind == 0x00:
            r.u32()  # the component instantiated; its func arguments stand for its exports (wit-component's shims)
            for _ in range(r.u32()):
                name, sort, index = r.name(), _sort(r), r.u32()
                funcs[name] = (sort, index)
        elif kind == 0x01:
            for _ in range(r.u32()):
                name = _extern_name(r)
                funcs[name] = (_sort(r), r.u32())
        else:
            raise _Unknown(f"instance kind {kind}")
        spaces.add(5, funcs)


def _options(r: _Reader) -> list[bytes]:
    options = []
    for _ in range(r.u32()):
        kind = r.byte()
        if kind in (0x00, 0x01, 0x02):
            continue  # the string encoding: replaced
        if kind not in (0x03, 0x04, 0x05):
            raise _Unknown(f"canon option {kind}")
        options.append(bytes([kind]) + _u32(r.u32()))
    return options


def _canons(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        op = r.byte()
        if op == 0x00:  # lift
            r.byte()
            core_func, options = r.u32(), _options(r)
            r.u32()  # its type
            spaces.add(1, _Lift(core_func, options))
        elif op == 0x01:  # lower: a core func
            r.byte()
            r.u32()
            _options(r)
        elif op in (0x02, 0x03, 0x04):  # resource.new / drop / rep: core funcs
            r.u32()
        else:
            raise _Unknown(f"canon {op}")


def _types_count(r: _Reader, spaces: _Spaces) -> None:
    spaces.counts[3] += r.u32()


_SECTIONS = {5: _instances, 6: _aliases, 7: _types_count, 8: _canons, 10: _imports, 11: _exports}


def _read(wasm: bytes) -> _Spaces:
    spaces = _Spaces()
    r = _Reader(wasm, 8)
    while r.pos < r.end:
        section = r.byte()
        size = r.u32()
        end = r.pos + size
        if end > r.end:
            raise _Unknown("truncated section")
        if section == 4:
            spaces.add(4)
        elif section in _SECTIONS:
            _SECTIONS[section](_Reader(wasm, r.pos, end), spaces)
        elif section not in (0, 1, 2, 3, 9, 12):
            raise _Unknown(f"section {section}")
        r.pos = end
    return spaces


def _handle_lift(spaces: _Spaces) -> _Lift:
    sort, index = spaces.exports.get(GUEST, (-1, -1))
    if sort != 5:
        raise _Unknown(f"{GUEST} is not exported as an instance")
    instance = spaces.instances.get(index)
    while isinstance(instance, int):  # a re-export of another instance
        instance = spaces.instances.get(instance)
    if not isinstance(instance, dict):
        raise _Unknown(f"{GUEST} is not an instance defined here")
    funcs = [idx for name, (s, idx) in instance.items() if s == 1 and (name == "handle" or name.endswith("handle"))]
    if len(funcs) != 1:
        raise _Unknown("no single handle function")
    func = spaces.funcs.get(funcs[0])
    while isinstance(func, int):
        func = spaces.funcs.get(func)
    if not isinstance(func, _Lift):
        raise _Unknown("handle is not lifted here")
    return func


def _section(section_id: int, entries: list[bytes]) -> bytes:
    body = _u32(len(entries)) + b"".join(entries)
    return bytes([section_id]) + _u32(len(body)) + body


def add_fast_handle(wasm: bytes) -> bytes | None:
    """The component with ``FAST_HANDLE`` added (see the module's docstring), or ``None``."""
    try:
        spaces = _read(wasm)
        if FAST_HANDLE in spaces.exports:
            return None  # the name is taken: this component keeps its own
        lift = _handle_lift(spaces)
    except _Unknown:
        return None
    list_type = spaces.counts[3]
    result_type = list_type + 1
    byte_list = bytes([0x70, _U8])  # list<u8>
    lists = b"\x6a\x01" + _s33(list_type) + b"\x01" + _s33(list_type)  # result<list<u8>, list<u8>>
    functype = (
        b"\x40"
        + _u32(2)
        + _name("operation")
        + bytes([_STRING])
        + _name("payload")
        + bytes([_STRING])
        + b"\x00"
        + _s33(result_type)
    )
    options = [bytes([_UTF8]), *lift.options]
    canon = b"\x00\x00" + _u32(lift.core_func) + _u32(len(options)) + b"".join(options) + _u32(result_type + 1)
    export = b"\x00" + _name(FAST_HANDLE) + b"\x01" + _u32(spaces.counts[1]) + b"\x00"
    return wasm + _section(7, [byte_list, lists, functype]) + _section(8, [canon]) + _section(11, [export])
