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

The API:
- ``plan_of(valtype)`` → ``Plan`` (``lower(store, value, c)``, ``lift(c)``) for one value type;
- ``FuncPlan(functype)`` and ``FuncPlan.call(store, func, *args)``: call a component export;
- ``HostFunc`` and ``define_func(linker_instance, name, host_func)``: a host function whose plan is
  fixed when the first component importing it is loaded (``HostFunc.bind``); a later component that
  imports the same name with another type is refused then (``InvalidActor``), never at call time.
- ``signature(functype)``: a type's canonical text (what ``bind`` compares).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from typing import Any

import wasmtime
from wasmtime import _bindings as _b  # private, pinned by wasmtime>=50,<51: the C value layout
from wasmtime import _ffi
from wasmtime import component as cm
from wasmtime.component import _enter as _cm_enter

from lattice.errors import InvalidActor

__all__ = [
    "FuncPlan",
    "HostFunc",
    "Plan",
    "define_func",
    "plan_of",
    "raise_pending",
    "signature",
]

VAL = _b.wasmtime_component_val_t
SIZE = ctypes.sizeof(VAL)
_PAYLOAD = VAL.of.offset  # where a value's payload starts inside its 32-byte slot
_K = {name: getattr(_ffi, f"WASMTIME_COMPONENT_{name}").value for name in (
    "BOOL", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64", "CHAR", "STRING", "LIST",
    "RECORD", "TUPLE", "VARIANT", "ENUM", "OPTION", "RESULT", "FLAGS", "RESOURCE",
)}  # fmt: skip
_VT = _ffi  # valtype kinds: WASMTIME_COMPONENT_VALTYPE_*

_dll = _b.dll  # type: ignore[attr-defined]
_byte_vec_new = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)(("wasm_byte_vec_new", _dll))
_byte_vec_delete = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(("wasm_byte_vec_delete", _dll))
_vallist_new_uninit = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t)(
    ("wasmtime_component_vallist_new_uninit", _dll)
)
_val_delete = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(("wasmtime_component_val_delete", _dll))
_val_new = _b.wasmtime_component_val_new

_u8_kinds = bytes([_K["U8"]]) * 4096  # grown on demand: the kind byte of every element of a list<u8>


def _kinds(n: int) -> memoryview:
    global _u8_kinds
    if len(_u8_kinds) < n:
        _u8_kinds = bytes([_K["U8"]]) * max(n, 2 * len(_u8_kinds))
    return memoryview(_u8_kinds)[:n]


def _block(address: int, n: int) -> memoryview:
    """The ``n`` 32-byte value slots at ``address`` as one byte view."""
    return memoryview((ctypes.c_uint8 * (n * SIZE)).from_address(address)).cast("B")


def _name(vec: Any) -> str:
    size = vec.size
    return ctypes.string_at(vec.data, size).decode("utf-8") if size else ""


def _set_name(vec: Any, raw: bytes) -> None:
    _byte_vec_new(ctypes.addressof(vec), len(raw), raw)


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
        self.kind, self.field, self.classes, self.text = _K[kind], field, (cls,), text
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
        c.kind = _K["CHAR"]
        c.of.character = ord(value)

    def lift(self, c: Any) -> Any:
        return chr(c.of.character)


class _String(Plan):
    classes, text = (str,), "string"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"expected str for string, got {type(value).__name__}")
        c.kind = _K["STRING"]
        _set_name(c.of.string, value.encode("utf-8"))

    def lift(self, c: Any) -> Any:
        return _name(c.of.string)


class _Bytes(Plan):
    """``list<u8>`` as ``bytes``, one block each way."""

    classes, text = (bytes, bytearray, memoryview), "list<u8>"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes for list<u8>, got {type(value).__name__}")
        n = len(value)
        lst = c.of.list
        _vallist_new_uninit(ctypes.addressof(lst), n)
        c.kind = _K["LIST"]
        if n:
            block = _block(ctypes.cast(lst.data, ctypes.c_void_p).value or 0, n)
            block[0::SIZE] = _kinds(n)
            block[_PAYLOAD::SIZE] = value

    def lift(self, c: Any) -> Any:
        lst = c.of.list
        n = lst.size
        if not n:
            return b""
        return bytes(_block(ctypes.cast(lst.data, ctypes.c_void_p).value or 0, n)[_PAYLOAD::SIZE])


class _List(Plan):
    classes = (list,)

    def __init__(self, element: Plan) -> None:
        self.element = element
        self.text = f"list<{element.text}>"

    def lower(self, store: Any, value: Any, c: Any) -> None:
        if not isinstance(value, list):
            raise TypeError(f"expected list for {self.text}, got {type(value).__name__}")
        lst = c.of.list
        _vallist_new_uninit(ctypes.addressof(lst), len(value))
        c.kind = _K["LIST"]
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
            data[j].kind = _K["BOOL"]
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
        c.kind = _K["TUPLE"]
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
        c.kind = _K["RECORD"]
        i = 0
        try:
            for i, (name, plan) in enumerate(self.fields):
                entry = rec.data[i]
                plan.lower(store, getattr(value, name), entry.val)
                _set_name(entry.name, self.names[i][1])
        except BaseException:
            for j in range(i, n):
                rec.data[j].val.kind = _K["BOOL"]
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
        c.kind = _K["ENUM"]
        _set_name(c.of.enumeration, value.encode())

    def lift(self, c: Any) -> Any:
        return _name(c.of.enumeration)


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
        c.kind = _K["FLAGS"]
        for i, name in enumerate(value):
            _set_name(flags.data[i], name.encode())

    def lift(self, c: Any) -> Any:
        flags = c.of.flags
        return {_name(flags.data[i]) for i in range(flags.size)}


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
        c.kind = _K["RESOURCE"]
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
        return _val_new(ctypes.byref(tmp))  # moves tmp's contents into a Rust-owned box

    def lower(self, store: Any, value: Any, c: Any) -> None:
        name, plan, payload = self._choose(value)
        boxed = self._boxed(store, plan, payload)
        c.kind = _K[self.kind]
        if self.kind == "RESULT":
            c.of.result.is_ok = name == "ok"
            c.of.result.val = boxed
        elif self.kind == "OPTION":
            c.of.option = boxed
        else:
            _set_name(c.of.variant.discriminant, name.encode())
            c.of.variant.val = boxed

    def lift(self, c: Any) -> Any:
        if self.kind == "RESULT":
            name, ptr = ("ok" if c.of.result.is_ok else "err"), c.of.result.val
        elif self.kind == "OPTION":
            ptr = c.of.option
            name = "some" if ptr else "none"
        else:
            name, ptr = _name(c.of.variant.discriminant), c.of.variant.val
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


def signature(functype: cm.FuncType) -> str:
    """A function type's canonical text, e.g. ``(string,list<u8>)->result{ok:list<u8>,err:string}``."""
    return FuncPlan(functype).text


class FuncPlan:
    """The plans of one function type's parameters and result; ``call`` calls a component export."""

    def __init__(self, functype: cm.FuncType) -> None:
        self.fast: FuncPlan | None = None  # a faster entry to the same function, if its owner has one
        self.params = [plan_of(t) for _, t in functype.params]
        result = functype.result
        self.result = plan_of(result) if result is not None else None
        self.text = "(" + ",".join(p.text for p in self.params) + ")"
        if self.result is not None:
            self.text += "->" + self.result.text

    def call(self, store: wasmtime.Store, func: cm.Func, *args: Any) -> Any:
        """``func(*args)`` in ``store``; a trap or error raises (a host function's exception first)."""
        n = len(self.params)
        if len(args) != n:
            raise TypeError(f"expected {n} arguments, got {len(args)}")
        params = (VAL * max(n, 1))()
        done = 0
        try:
            for done, (plan, value) in enumerate(zip(self.params, args, strict=True)):
                plan.lower(store, value, params[done])
            done = n
            result = VAL()
            nres = 1 if self.result is not None else 0
            error = _b.wasmtime_component_func_call(
                ctypes.byref(func._func), store._context(), params, n, ctypes.byref(result), nres
            )
        finally:
            for i in range(done):
                _val_delete(ctypes.addressof(params[i]))
        if error:
            exc = wasmtime.WasmtimeError._from_ptr(error)
            raise_pending()
            raise exc
        if self.result is None:
            return None
        try:
            return self.result.lift(result)
        finally:
            _val_delete(ctypes.addressof(result))


# --- host functions -------------------------------------------------------------------------------

_pending = threading.local()


def raise_pending() -> None:
    """Re-raise the exception a host function raised on this thread (it trapped the guest), if any."""
    exc = getattr(_pending, "exc", None)
    if exc is not None:
        _pending.exc = None
        raise exc
    _cm_enter.maybe_raise_last_exn()  # one raised in a host function defined through wasmtime-py


HostImpl = Callable[..., Any]
"""``impl(store, *args) -> result``: the Python values of the parameters in, the result out."""


class HostFunc:
    """A host function: ``impl`` and, once bound, the plan of the type its importers use."""

    __slots__ = ("callback", "impl", "name", "plan")

    def __init__(self, name: str, impl: HostImpl) -> None:
        self.name = name
        self.impl = impl
        self.plan: FuncPlan | None = None
        self.callback = _b.wasmtime_component_func_callback_t(self._call)

    def bind(self, functype: cm.FuncType, importer: str) -> None:
        """Fix the plan from the first importer's type; refuse an importer whose type differs."""
        plan = FuncPlan(functype)
        if self.plan is None:
            self.plan = plan
        elif plan.text != self.plan.text:
            raise InvalidActor(f"{importer} imports {self.name} as {plan.text}, but the host provides {self.plan.text}")

    def _call(self, env: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int) -> int:
        try:
            plan = self.plan
            if plan is None:  # defined but never bound: build from this call's type (and keep it)
                plan = self.plan = FuncPlan(cm.FuncType._from_ptr(ty, owner=True))
            values = [p.lift(args[i]) for i, p in enumerate(plan.params)]
            store = wasmtime.StoreContext(context)
            try:
                result = self.impl(store, *values)
                if plan.result is not None:  # a resource is lowered through the store: before it goes
                    plan.result.lower(store, result, results[0])
            finally:
                store._invalidate()
            return 0
        except BaseException as exc:  # handed back to the caller of the guest; the guest traps
            _pending.exc = exc
            error = wasmtime.WasmtimeError("python exception")._consume()
            return ctypes.cast(error, ctypes.c_void_p).value or 0


# a NULL function pointer: nothing to free, and no Python callback to call while Python shuts down
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()
_DEFINED: list[HostFunc] = []  # ctypes callbacks must outlive every linker that holds them


def define_func(linker_instance: cm.LinkerInstance, name: str, func: HostFunc) -> None:
    """Define ``func`` as ``name`` in ``linker_instance`` (through the plan, not wasmtime-py's types)."""
    raw = name.encode()
    error = _b.wasmtime_component_linker_instance_add_func(
        linker_instance.ptr(), ctypes.create_string_buffer(raw), len(raw), func.callback, None, _NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    _DEFINED.append(func)
