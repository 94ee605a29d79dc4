"""Calls across the component boundary with the fast value plans of ``values``: ``FuncPlan`` (a function
type's plans; ``FuncPlan.call`` calls a component export), ``HostFunc`` and ``define_func`` (a host function
whose plan is fixed when the first component importing it is loaded, ``HostFunc.bind``; a later component
that imports the same name with another type is refused then, ``InvalidActor``, never at call time),
``raise_pending`` (a host function's exception, re-raised in the caller of the guest) and ``signature`` (a
function type's canonical text, what ``bind`` compares).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _bindings as _b  # private, pinned by wasmtime>=50,<51: the C value layout
from wasmtime import component as cm
from wasmtime.component import _enter as _cm_enter

from lattice.errors import InvalidActor
from lattice.host.component.capi import VAL, val_delete
from lattice.host.component.values import plan_of


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
                val_delete(ctypes.addressof(params[i]))
        if error:
            exc = wasmtime.WasmtimeError._from_ptr(error)
            raise_pending()
            raise exc
        if self.result is None:
            return None
        try:
            return self.result.lift(result)
        finally:
            val_delete(ctypes.addressof(result))


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
