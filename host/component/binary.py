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

The rewrite reads only top-level sections and their index spaces (``host.component.sections``); it never
changes a byte of what is there. Anything it does not recognise (an unknown section entry, a ``handle`` that
is not a local lift) makes it return ``None``, and the component runs through ``handle`` alone. Ids and claims
are computed from the component as uploaded, never from this copy.
"""

from __future__ import annotations

from lattice.host.component.sections import CORE_FUNC, CORE_INSTANCE, CORE_MODULE, Lift, Spaces, Unknown, read

FAST_HANDLE = "lattice-internal-fast-handle"
REWRITE = 2  # part of compiled components' cache names: a changed rewrite never meets an old cache entry
GUEST = "lattice:actor/guest@0.1.0"

_STRING = 0x73
_LATIN1_UTF16 = 0x02

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


def _handle_lift(spaces: Spaces) -> Lift:
    sort, index = spaces.exports.get(GUEST, (-1, -1))
    if sort != 5:
        raise Unknown(f"{GUEST} is not exported as an instance")
    instance = spaces.instances.get(index)
    while isinstance(instance, int):  # a re-export of another instance
        instance = spaces.instances.get(instance)
    if not isinstance(instance, dict):
        raise Unknown(f"{GUEST} is not an instance defined here")
    funcs = [idx for name, (s, idx) in instance.items() if s == 1 and (name == "handle" or name.endswith("handle"))]
    if len(funcs) != 1:
        raise Unknown("no single handle function")
    func = spaces.funcs.get(funcs[0])
    while isinstance(func, int):
        func = spaces.funcs.get(func)
    if not isinstance(func, Lift):
        raise Unknown("handle is not lifted here")
    return func


def _section(section_id: int, entries: list[bytes]) -> bytes:
    body = _u32(len(entries)) + b"".join(entries)
    return bytes([section_id]) + _u32(len(body)) + body


def _adapter(lift: Lift) -> bytes:
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
        spaces = read(wasm)
        if FAST_HANDLE in spaces.exports:
            return None  # the name is taken: this component keeps its own
        lift = _handle_lift(spaces)
    except Unknown:
        return None
    if 0x03 not in lift.options or 0x04 not in lift.options:
        return None  # a handle without memory or realloc is not one this host knows
    count = spaces.counts.get
    module, instance, funcs = count(CORE_MODULE, 0), count(CORE_INSTANCE, 0), count(CORE_FUNC, 0)
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
