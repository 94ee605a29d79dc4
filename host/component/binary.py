"""A second entry to a component actor's ``handle``, through which payloads cross as one block each way.

wasmtime's C API moves a ``list<u8>`` as one 32-byte value per byte, converted one at a time in Rust
(~40 ns a byte each way), while a ``string`` crosses as one block. The canonical ABI lays out a
``list<u8>`` exactly as a ``string`` in ``latin1+utf16`` encoding whose characters are all below 256
(one byte each, the length's tag bit clear), except that such a string must be 2-aligned. So before
compiling, ``add_fast_handle`` appends to the component, at its top level after everything else:

- an adapter core module (``ADAPTER``) instantiated with the core function behind
  ``lattice:actor/guest@0.1.0#handle``, its memory, realloc and post-return: its ``handle`` calls the
  original and, when the result's bytes sit at an odd address, copies them to a 2-aligned buffer it
  keeps (grown through the guest's realloc) and points the result there; its ``post`` points it back
  and runs the original post-return, which so frees what the guest allocated; its ``realloc`` shrinks
  in place (wasmtime shrinks a latin-1 string's first allocation, which componentize-py's allocator
  refuses);
- a lift of the adapter's ``handle`` typed ``func(operation: string, payload: string) ->
  result<string, string>`` with ``latin1+utf16``, exported as ``FAST_HANDLE``.

The host passes the payload as a latin-1 ``str`` and reads the answer back the same way; the guest's
code sees the same bytes at the same kind of pointer as through ``handle`` (its export is untouched).
Operation names must be ASCII there (latin-1 and UTF-8 agree only on ASCII): others go through ``handle``.

The rewrite reads only top-level sections and their index spaces; it never changes a byte of what
is there. Anything it does not recognise (an unknown section entry, a ``handle`` that is not a local
lift) makes it return ``None``, and the component runs through ``handle`` alone. Ids and claims are
computed from the component as uploaded, never from this copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAST_HANDLE = "lattice-internal-fast-handle"
REWRITE = 2  # part of compiled components' cache names: a changed rewrite never meets an old cache entry
GUEST = "lattice:actor/guest@0.1.0"

_STRING = 0x73
_LATIN1_UTF16 = 0x02
# index spaces: component sorts 1..5 as themselves, core sorts as 0x100 + their byte
_CORE_FUNC, _CORE_MEMORY, _CORE_MODULE, _CORE_INSTANCE = 0x100, 0x102, 0x111, 0x112

ADAPTER = """(module
  (import "orig" "handle" (func $handle (param i32 i32 i32 i32) (result i32)))
  (import "orig" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
  {post_import}
  (import "orig" "memory" (memory 0))
  (global $buf (mut i32) (i32.const 0))
  (global $cap (mut i32) (i32.const 0))
  (global $ret (mut i32) (i32.const 0))
  (global $moved (mut i32) (i32.const 0))
  (func (export "handle") (param i32 i32 i32 i32) (result i32)
    (local $r i32) (local $p i32) (local $n i32)
    (local.set $r (call $handle (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
    (global.set $ret (local.get $r))
    (global.set $moved (i32.const 0))
    (local.set $p (i32.load offset=4 (local.get $r)))
    (local.set $n (i32.load offset=8 (local.get $r)))
    (if (i32.and (local.get $p) (i32.const 1))
      (then
        (if (i32.gt_u (local.get $n) (global.get $cap))
          (then
            (global.set $buf (call $realloc (global.get $buf) (global.get $cap) (i32.const 2) (local.get $n)))
            (global.set $cap (local.get $n))))
        (memory.copy (global.get $buf) (local.get $p) (local.get $n))
        (global.set $moved (local.get $p))
        (i32.store offset=4 (local.get $r) (global.get $buf))))
    (local.get $r))
  (func (export "realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (if (i32.and (i32.ne (local.get $old) (i32.const 0)) (i32.le_u (local.get $size) (local.get $old_size)))
      (then (return (local.get $old))))
    (call $realloc (local.get $old) (local.get $old_size) (local.get $align) (local.get $size)))
  (func (export "post") (param i32)
    (if (global.get $moved) (then (i32.store offset=4 (global.get $ret) (global.get $moved))))
    {post_call}))"""


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
    options: dict[int, int]  # canon option (memory 3, realloc 4, post-return 5) → its core index


@dataclass
class _Spaces:
    """Counts of the component-level index spaces, and what the indexes this rewrite follows are."""

    counts: dict[int, int] = field(default_factory=dict)
    funcs: dict[int, _Lift | int] = field(default_factory=dict)  # func index → its lift, or the func it re-exports
    instances: dict[int, dict[str, tuple[int, int]] | int] = field(default_factory=dict)  # → funcs by name
    exports: dict[str, tuple[int, int]] = field(default_factory=dict)  # top-level export → (sort, index)

    def add(self, sort: int, what: object = None) -> int:
        index = self.counts.get(sort, 0)
        self.counts[sort] = index + 1
        if sort == 1 and what is not None:
            self.funcs[index] = what  # type: ignore[assignment]
        elif sort == 5 and what is not None:
            self.instances[index] = what  # type: ignore[assignment]
        return index


def _sort(r: _Reader) -> int:
    """A sort: component sorts 1..5 as themselves, core sorts as 0x100 + their byte."""
    sort = r.byte()
    if sort == 0x00:
        return 0x100 + r.byte()
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
        return _CORE_MODULE
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
        spaces.add(_externdesc(r))


def _exports(r: _Reader, spaces: _Spaces) -> None:
    for _ in range(r.u32()):
        name = _extern_name(r)
        sort, index = _sort(r), r.u32()
        if r.byte() == 0x01:
            _externdesc(r)
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


def _options(r: _Reader) -> dict[int, int]:
    options = {}
    for _ in range(r.u32()):
        kind = r.byte()
        if kind in (0x00, 0x01, 0x02):
            continue  # the string encoding
        if kind not in (0x03, 0x04, 0x05):
            raise _Unknown(f"canon option {kind}")
        options[kind] = r.u32()
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
            spaces.add(_CORE_FUNC)
        elif op in (0x02, 0x03, 0x04):  # resource.new / drop / rep: core funcs
            r.u32()
            spaces.add(_CORE_FUNC)
        else:
            raise _Unknown(f"canon {op}")


def _types_count(r: _Reader, spaces: _Spaces) -> None:
    spaces.counts[3] = spaces.counts.get(3, 0) + r.u32()


def _core_instances_count(r: _Reader, spaces: _Spaces) -> None:
    spaces.counts[_CORE_INSTANCE] = spaces.counts.get(_CORE_INSTANCE, 0) + r.u32()


_SECTIONS = {
    2: _core_instances_count,
    5: _instances,
    6: _aliases,
    7: _types_count,
    8: _canons,
    10: _imports,
    11: _exports,
}


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
        elif section == 1:
            spaces.add(_CORE_MODULE)
        elif section in _SECTIONS:
            _SECTIONS[section](_Reader(wasm, r.pos, end), spaces)
        elif section not in (0, 3, 9, 12):
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


def _adapter(lift: _Lift) -> bytes:
    import wasmtime  # only the host rewrites components (lattice's contract never imports wasmtime)

    post = 0x05 in lift.options
    text = ADAPTER.format(
        post_import='(import "orig" "post" (func $post (param i32)))' if post else "",
        post_call="(call $post (global.get $ret))" if post else "",
    )
    return bytes(wasmtime.wat2wasm(text))


def _core_export(name: str, sort: int, index: int) -> bytes:
    return _name(name) + bytes([sort]) + _u32(index)


def add_fast_handle(wasm: bytes) -> bytes | None:
    """The component with ``FAST_HANDLE`` added (see the module's docstring), or ``None``."""
    try:
        spaces = _read(wasm)
        if FAST_HANDLE in spaces.exports:
            return None  # the name is taken: this component keeps its own
        lift = _handle_lift(spaces)
    except _Unknown:
        return None
    if 0x03 not in lift.options or 0x04 not in lift.options:
        return None  # a handle without memory or realloc is not one this host knows
    count = spaces.counts.get
    module, instance, funcs = count(_CORE_MODULE, 0), count(_CORE_INSTANCE, 0), count(_CORE_FUNC, 0)
    originals = [
        _core_export("handle", 0x00, lift.core_func),
        _core_export("realloc", 0x00, lift.options[0x04]),
        _core_export("memory", 0x02, lift.options[0x03]),
    ]
    if 0x05 in lift.options:
        originals.append(_core_export("post", 0x00, lift.options[0x05]))
    orig = b"\x01" + _u32(len(originals)) + b"".join(originals)  # core instance: these exports
    adapted = b"\x00" + _u32(module) + _u32(1) + _name("orig") + b"\x12" + _u32(instance)  # instantiate
    aliases = [b"\x00\x00\x01" + _u32(instance + 1) + _name(name) for name in ("handle", "realloc", "post")]
    handle, realloc, post = funcs, funcs + 1, funcs + 2
    result_type = count(3, 0)
    strings = bytes([0x6A, 0x01, _STRING, 0x01, _STRING])  # result<string, string>
    functype = b"\x40" + _u32(2) + _name("operation") + bytes([_STRING]) + _name("payload") + bytes([_STRING])
    functype += b"\x00" + _s33(result_type)
    options = [
        bytes([_LATIN1_UTF16]),
        b"\x03" + _u32(lift.options[0x03]),
        b"\x04" + _u32(realloc),
        b"\x05" + _u32(post),
    ]
    canon = b"\x00\x00" + _u32(handle) + _u32(len(options)) + b"".join(options) + _u32(result_type + 1)
    export = b"\x00" + _name(FAST_HANDLE) + b"\x01" + _u32(count(1, 0)) + b"\x00"
    adapter = _adapter(lift)
    return (
        wasm
        + bytes([1])
        + _u32(len(adapter))
        + adapter
        + _section(2, [orig, adapted])
        + _section(6, aliases)
        + _section(7, [strings, functype])
        + _section(8, [canon])
        + _section(11, [export])
    )
