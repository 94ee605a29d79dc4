"""Component values across the host boundary, fast: conversion plans built once per function type.

wasmtime-py's own conversion (``wasmtime/component/_types.py``) rebuilds type information on every
call and moves a ``list<u8>`` one element at a time through Python (100 bytes → 100 Python calls each
way; 1 MiB → about a second). Here a type is turned into a *plan* once — plain Python objects holding
what a conversion needs (kinds, case names, field names, whether a variant is tagged) — and a
``list<u8>`` crosses as one block: its C array of values is filled and read with strided
``memoryview`` slices (32-byte elements, kind at offset 0, byte at offset 8).

Python values follow wasmtime-py's conventions, so code written against ``wasmtime.component``
ports as is: ``bool``/``int``/``float``, ``str`` for ``char``/``string``/``enum``, ``bytes`` for
``list<u8>``, ``list`` for other lists, ``tuple``, ``Record`` (attributes) for records, ``set[str]``
for flags, ``ResourceAny``/``ResourceHost`` for ``own``/``borrow``; a variant, option or result whose
cases cannot be told apart by Python type is a ``Variant(tag, payload)``, otherwise it is its
payload as is (``None`` for a case without one; at most one such case, else it is tagged). So
``option<T>`` is ``None`` or the value, ``result<list<u8>, string>`` is ``bytes`` (ok) or ``str``
(err), ``result<_, error>`` is ``None`` (ok) or the error, and a variant with two payload-less cases
(or ``option<option<T>>``) is a ``Variant``. Unlike wasmtime-py, ``object`` never matches a case.

The API: ``plan_of(valtype)`` → ``Plan`` (``lower(store, value, c)``, ``lift(c)``) for one value type. Calls
built on the plans are ``host.component.calls``; the C layout underneath is ``host.component.capi``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from wasmtime import _bindings as _b  # private, pinned by wasmtime>=50,<51: the C value layout
from wasmtime import _ffi
from wasmtime import component as cm

from lattice.host.component.capi import (
    KIND,
    PAYLOAD,
    SIZE,
    VAL,
    kinds,
    read_name,
    set_name,
    slots_view,
    val_new,
    vallist_new_uninit,
)

__all__ = ["Plan", "plan_of"]


class Plan:
    """How one value type crosses: ``lower`` writes a Python value into a C value (Rust-owned memory),
    ``lift`` reads one (leaving it to its owner to free). ``classes`` are the Python types ``lower``
    accepts (what tells untagged variant cases apart). ``text`` is the type's canonical text."""

    classes: tuple[type, ...] = ()
    text = "?"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        raise NotImplementedError

    def lift(self, c: Any) -> Any:
        raise NotImplementedError


class _Scalar(Plan):
    def __init__(self, kind: str, field: str, cls: type, text: str) -> None:
        self.kind, self.field, self.classes, self.text = KIND[kind], field, (cls,), text
        self.cls = cls

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, self.cls):
            raise TypeError(f"expected {self.cls.__name__} for {self.text}, got {type(value).__name__}")
        c.kind = self.kind
        setattr(c.of, self.field, value)

    def lift(self, c: Any) -> Any:
        return self.cls(getattr(c.of, self.field))


class _Char(Plan):
    classes, text = (str,), "char"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, str) or len(value) != 1:
            raise TypeError("expected a one-character str for char")
        c.kind = KIND["CHAR"]
        c.of.character = ord(value)

    def lift(self, c: Any) -> Any:
        return chr(c.of.character)


class _String(Plan):
    classes, text = (str,), "string"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"expected str for string, got {type(value).__name__}")
        c.kind = KIND["STRING"]
        set_name(c.of.string, value.encode("utf-8"))

    def lift(self, c: Any) -> Any:
        return read_name(c.of.string)


class _Bytes(Plan):
    """``list<u8>`` as ``bytes``, one block each way."""

    classes, text = (bytes, bytearray, memoryview), "list<u8>"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes for list<u8>, got {type(value).__name__}")
        n = len(value)
        lst = c.of.list
        vallist_new_uninit(ctypes.addressof(lst), n)
        c.kind = KIND["LIST"]
        if n:
            block = slots_view(ctypes.cast(lst.data, ctypes.c_void_p).value or 0, n)
            block[0::SIZE] = kinds(n)
            block[PAYLOAD::SIZE] = value

    def lift(self, c: Any) -> Any:
        lst = c.of.list
        n = lst.size
        if not n:
            return b""
        return bytes(slots_view(ctypes.cast(lst.data, ctypes.c_void_p).value or 0, n)[PAYLOAD::SIZE])


class _List(Plan):
    classes = (list,)

    def __init__(self, element: Plan) -> None:
        self.element = element
        self.text = f"list<{element.text}>"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, list):
            raise TypeError(f"expected list for {self.text}, got {type(value).__name__}")
        lst = c.of.list
        vallist_new_uninit(ctypes.addressof(lst), len(value))
        c.kind = KIND["LIST"]
        _lower_items(store, [self.element] * len(value), value, lst.data)

    def lift(self, c: Any) -> Any:
        lst = c.of.list
        lift = self.element.lift
        return [lift(lst.data[i]) for i in range(lst.size)]


def _lower_items(store: Any, plans: Sequence[Plan], values: Sequence[Any], data: Any) -> None:
    """Lower into a freshly allocated (uninitialised) array; on failure the rest is made harmless so
    that the caller's delete of the whole value frees only what was written."""
    i = 0
    try:
        for i, (plan, value) in enumerate(zip(plans, values, strict=True)):
            plan.lower(store, value, data[i])
    except BaseException:
        for j in range(i, len(values)):
            data[j].kind = KIND["BOOL"]
            data[j].of.boolean = False
        raise


class _Tuple(Plan):
    classes = (tuple,)

    def __init__(self, elements: list[Plan]) -> None:
        self.elements = elements
        self.text = "tuple<" + ",".join(e.text for e in elements) + ">"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, tuple) or len(value) != len(self.elements):
            raise TypeError(f"expected a tuple of {len(self.elements)} for {self.text}")
        tup = c.of.tuple
        _b.wasmtime_component_valtuple_new_uninit(tup, len(value))
        c.kind = KIND["TUPLE"]
        _lower_items(store, self.elements, value, tup.data)

    def lift(self, c: Any) -> Any:
        tup = c.of.tuple
        return tuple(p.lift(tup.data[i]) for i, p in enumerate(self.elements))


class _Record(Plan):
    classes = (cm.Record,)

    def __init__(self, fields: list[tuple[str, Plan]]) -> None:
        self.fields = fields
        self.names = [(n, n.encode()) for n, _ in fields]
        self.text = "record{" + ",".join(f"{n}:{p.text}" for n, p in fields) + "}"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        rec = c.of.record
        n = len(self.fields)
        _b.wasmtime_component_valrecord_new_uninit(rec, n)
        c.kind = KIND["RECORD"]
        i = 0
        try:
            for i, (name, plan) in enumerate(self.fields):
                entry = rec.data[i]
                plan.lower(store, getattr(value, name), entry.val)
                set_name(entry.name, self.names[i][1])
        except BaseException:
            for j in range(i, n):
                rec.data[j].val.kind = KIND["BOOL"]
                rec.data[j].name.size = 0
                rec.data[j].name.data = None
            raise

    def lift(self, c: Any) -> Any:
        rec = c.of.record
        out = cm.Record()
        for i, (name, plan) in enumerate(self.fields):
            setattr(out, name, plan.lift(rec.data[i].val))
        return out


class _Enum(Plan):
    classes = (str,)

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.text = "enum{" + ",".join(names) + "}"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if value not in self.names:
            raise TypeError(f"{value!r} is not a case of {self.text}")
        c.kind = KIND["ENUM"]
        set_name(c.of.enumeration, value.encode())

    def lift(self, c: Any) -> Any:
        return read_name(c.of.enumeration)


class _Flags(Plan):
    classes = (set,)

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.text = "flags{" + ",".join(names) + "}"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, set) or not value <= self.names:
            raise TypeError(f"expected a set of names of {self.text}")
        flags = c.of.flags
        _b.wasmtime_component_valflags_new_uninit(flags, len(value))
        c.kind = KIND["FLAGS"]
        for i, name in enumerate(value):
            set_name(flags.data[i], name.encode())

    def lift(self, c: Any) -> Any:
        flags = c.of.flags
        return {read_name(flags.data[i]) for i in range(flags.size)}


class _Resource(Plan):
    classes = (cm.ResourceAny, cm.ResourceHost)

    def __init__(self, own: bool) -> None:
        self.own = own
        self.text = "own" if own else "borrow"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if isinstance(value, cm.ResourceHost):
            ptr = value.to_any(store)._consume()
        elif isinstance(value, cm.ResourceAny):
            ptr = value._consume() if self.own else _b.wasmtime_component_resource_any_clone(value.ptr())
        else:
            raise TypeError(f"expected ResourceAny or ResourceHost for {self.text}")
        c.kind = KIND["RESOURCE"]
        c.of.resource = ptr

    def lift(self, c: Any) -> Any:
        return cm.ResourceAny._from_ptr(_ffi.take_pointer(c.of, "resource"))


class _Cases(Plan):
    """variant, option and result: tagged (``Variant``) when two cases share a Python type (a case
    without a payload counts as ``NoneType``), so an untagged value always names exactly one case."""

    def __init__(self, kind: str, cases: list[tuple[str, Plan | None]]) -> None:
        self.kind = kind
        self.cases = cases
        self.by_name = {name: plan for name, plan in cases}
        seen: set[type] = set()
        self.tagged = False
        for _, plan in cases:
            classes = set(plan.classes) if plan is not None else {type(None)}
            if classes & seen:
                self.tagged = True
            seen |= classes
        self.classes = (cm.Variant,) if self.tagged else tuple(seen)
        inner = ",".join(f"{n}:{p.text if p else '_'}" for n, p in cases)
        self.text = f"{kind.lower()}{{{inner}}}"

    def _choose(self, value: Any) -> tuple[str, Plan | None, Any]:
        if self.tagged:
            if not isinstance(value, cm.Variant) or value.tag not in self.by_name:
                raise TypeError(f"expected Variant(tag, payload) with a tag of {self.text}")
            return value.tag, self.by_name[value.tag], value.payload
        for name, plan in self.cases:
            if plan is None:
                if value is None:
                    return name, None, None
            elif isinstance(value, plan.classes):
                return name, plan, value
        raise TypeError(f"{type(value).__name__} is no case of {self.text}")

    def _boxed(self, store: Any, plan: Plan | None, payload: Any) -> Any:
        if plan is None:
            return None
        tmp = VAL()
        plan.lower(store, payload, tmp)
        return val_new(ctypes.byref(tmp))  # moves tmp's contents into a Rust-owned box

    def lower(self, store: Any, value: Any, c: Any) -> None:
        name, plan, payload = self._choose(value)
        boxed = self._boxed(store, plan, payload)
        c.kind = KIND[self.kind]
        if self.kind == "RESULT":
            c.of.result.is_ok = name == "ok"
            c.of.result.val = boxed
        elif self.kind == "OPTION":
            c.of.option = boxed
        else:
            set_name(c.of.variant.discriminant, name.encode())
            c.of.variant.val = boxed

    def lift(self, c: Any) -> Any:
        if self.kind == "RESULT":
            name, ptr = ("ok" if c.of.result.is_ok else "err"), c.of.result.val
        elif self.kind == "OPTION":
            ptr = c.of.option
            name = "some" if ptr else "none"
        else:
            name, ptr = read_name(c.of.variant.discriminant), c.of.variant.val
        plan = self.by_name[name]
        payload = plan.lift(ptr.contents) if plan is not None and ptr else None
        return cm.Variant(name, payload) if self.tagged else payload


def _from_type(ty: Any) -> Plan:
    if isinstance(ty, cm.Bool):
        return _Scalar("BOOL", "boolean", bool, "bool")
    for cls, kind, field in (
        (cm.S8, "S8", "s8"), (cm.U8, "U8", "u8"), (cm.S16, "S16", "s16"), (cm.U16, "U16", "u16"),
        (cm.S32, "S32", "s32"), (cm.U32, "U32", "u32"), (cm.S64, "S64", "s64"), (cm.U64, "U64", "u64"),
    ):  # fmt: skip
        if isinstance(ty, cls):
            return _Scalar(kind, field, int, field)
    if isinstance(ty, cm.F32):
        return _Scalar("F32", "f32", float, "f32")
    if isinstance(ty, cm.F64):
        return _Scalar("F64", "f64", float, "f64")
    if isinstance(ty, cm.Char):
        return _Char()
    if isinstance(ty, cm.String):
        return _String()
    if isinstance(ty, cm.ListType):
        element = ty.element
        return _Bytes() if isinstance(element, cm.U8) else _List(_from_type(element))
    if isinstance(ty, cm.TupleType):
        return _Tuple([_from_type(e) for e in ty.elements])
    if isinstance(ty, cm.RecordType):
        return _Record([(name, _from_type(t)) for name, t in ty.fields])
    if isinstance(ty, cm.EnumType):
        return _Enum(ty.names)
    if isinstance(ty, cm.FlagsType):
        return _Flags(ty.names)
    if isinstance(ty, cm.OwnType):
        return _Resource(own=True)
    if isinstance(ty, cm.BorrowType):
        return _Resource(own=False)
    if isinstance(ty, cm.OptionType):
        return _Cases("OPTION", [("none", None), ("some", _from_type(ty.payload))])
    if isinstance(ty, cm.ResultType):
        ok, err = ty.ok, ty.err
        return _Cases("RESULT", [("ok", _opt(ok)), ("err", _opt(err))])
    if isinstance(ty, cm.VariantType):
        return _Cases("VARIANT", [(name, _opt(t)) for name, t in ty.cases])
    raise TypeError(f"component values of type {type(ty).__name__} are not supported by this host")


def _opt(ty: Any) -> Plan | None:
    return None if ty is None else _from_type(ty)


def plan_of(valtype: Any) -> Plan:
    """The conversion plan of a ``wasmtime.component`` value type (built once; reuse it)."""
    return _from_type(valtype)
