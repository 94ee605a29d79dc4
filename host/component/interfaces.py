"""The interfaces hosts give component actors (SPEC §7), each backed by what backs waPC actors.

- ``lattice:actor/host@0.1.0#call``: exactly ``__host_call`` (the pool's ``host_call``: providers by
  contract, actors by id or call alias, in process or over NATS; errors come back as ``err``).
- ``wasi:keyvalue/store@0.2.0-draft`` and ``wasi:keyvalue/atomics@0.2.0-draft``: the linked
  ``wasmcloud:keyvalue`` provider through the same host calls (SPEC §2 operations). ``open("")`` is
  the link ``default``; ``open(name)`` the ``wasmcloud:keyvalue`` link called ``name``. Values are the
  contract's strings: UTF-8 text is stored as is, other bytes are refused (``other``) rather than mangled.
- ``wasi:logging/logging@0.1.0-draft``: the host's structured log, tagged with the actor id.
- ``wasi:config/runtime@0.2.0-draft`` (and its later name ``wasi:config/store``): the actor's link
  values and manifest ``config`` (the pool's ``config``).
WIT: ``actors/wit/``. Keyvalue's ``list-keys`` has no ``wasmcloud:keyvalue`` operation: it answers
``other`` with that reason.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import structlog
from wasmtime import component as cm

from lattice.capability import KEYVALUE
from lattice.errors import CapabilityDenied, LatticeError, LinkNotFound
from lattice.host.component import calls, engine
from lattice.host.component.pool import current
from lattice.host.wapc import NotInline

log = structlog.get_logger("host.component")

KEYVALUE_STORE = "wasi:keyvalue/store@0.2.0-draft"
KEYVALUE_ATOMICS = "wasi:keyvalue/atomics@0.2.0-draft"
LOGGING = "wasi:logging/logging@0.1.0-draft"
CONFIG_RUNTIME = "wasi:config/runtime@0.2.0-draft"
CONFIG_STORE = "wasi:config/store@0.2.0-draft"
BUCKET_TYPE = 0x6C_6B_76_01  # host resource type ids are process-wide: this one is the keyvalue bucket
_LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "error": "error",
    "critical": "critical",
}


def _host_call(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
    inst = current()
    if inst.inline:
        raise NotInline  # unwinds the guest; nothing left the instance yet, so the call can run again
    return inst.pool.host_call(binding, namespace, operation, payload)


def lattice_call(store: Any, binding: str, namespace: str, operation: str, payload: bytes) -> bytes | str:
    """``host.call``: ``bytes`` (ok) or ``str`` (err), with the waPC host call's error texts."""
    try:
        return _host_call(binding, namespace, operation, payload)
    except LatticeError as exc:
        return str(exc)
    except NotInline:
        raise
    except Exception as exc:  # a host call never traps the guest (SPEC §2)
        log.exception("host call failed", actor_id=current().pool.actor_id)
        return f"host call failed: {exc}"


# --- wasi:keyvalue ----------------------------------------------------------------------------------


def _kv_error(exc: Exception) -> cm.Variant:
    if isinstance(exc, LinkNotFound):
        return cm.Variant("no-such-store")
    if isinstance(exc, CapabilityDenied):
        return cm.Variant("access-denied")
    return cm.Variant("other", str(exc))


def _kv(bucket: int, operation: str, args: Any) -> Any:
    link = current().resources[bucket]
    result = _host_call(link, KEYVALUE, operation, msgpack.packb(args, use_bin_type=True))
    return msgpack.unpackb(result, raw=False) if result else None


def _kv_op(fn: Any) -> Any:
    """Runs a bucket operation: its value is the ``ok`` case (these results are untagged, see
    ``values``), a lattice error the ``err`` case (an ``error`` variant)."""

    def run(store: Any, *args: Any) -> Any:
        try:
            # a borrowed bucket first becomes its rep: the borrow must end in this call whatever happens
            # after, or the guest traps ("borrow handles still remain")
            args = tuple(a.to_host(store).rep if isinstance(a, cm.ResourceAny) else a for a in args)
            return fn(store, *args)
        except NotInline:
            raise
        except LatticeError as exc:
            return _kv_error(exc)
        except Exception as exc:
            log.exception("wasi:keyvalue failed", actor_id=current().pool.actor_id)
            return cm.Variant("other", f"keyvalue failed: {exc}")

    return run


def _value(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LatticeError(
            "wasi:keyvalue: the value is not UTF-8 text, and the wasmcloud:keyvalue contract stores strings"
        ) from None


def _open(store: Any, identifier: str) -> Any:
    rep = current().add_resource(identifier)
    return cm.ResourceHost.own(rep, BUCKET_TYPE)


def _get(store: Any, bucket: int, key: str) -> bytes | None:
    answer = _kv(bucket, "KeyValue.Get", key) or {}
    if not answer.get("exists"):
        return None
    value = answer.get("value", "")
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _set(store: Any, bucket: int, key: str, value: bytes) -> None:
    _kv(bucket, "KeyValue.Set", {"key": key, "value": _value(value), "expires": 0})


def _delete(store: Any, bucket: int, key: str) -> None:
    _kv(bucket, "KeyValue.Del", key)


def _exists(store: Any, bucket: int, key: str) -> bool:
    return bool(_kv(bucket, "KeyValue.Contains", key))


def _list_keys(store: Any, bucket: int, cursor: int | None) -> Any:
    raise LatticeError("list-keys: the wasmcloud:keyvalue contract has no operation to list keys")


def _increment(store: Any, bucket: int, key: str, delta: int) -> int:
    if delta > 2**31 - 1:
        raise LatticeError(f"increment by {delta}: wasmcloud:keyvalue counters are 32-bit")
    value = int(_kv(bucket, "KeyValue.Increment", {"key": key, "value": delta}))
    if value < 0:
        raise LatticeError(f"counter {key!r} is negative ({value}): not a u64")
    return value


def _drop(store: Any, rep: int) -> None:
    # dropped while no call runs (the Store is closing): the table goes with the instance
    with contextlib.suppress(LatticeError):
        current().resources.pop(rep, None)


# --- wasi:logging, wasi:config ---------------------------------------------------------------------


def _log(store: Any, level: str, context: str, message: str) -> None:
    pool = current().pool
    method = _LEVELS.get(level, "info")
    getattr(log, method)(message, actor_id=pool.actor_id, context=context or None, stream="wasi:logging")


def _config_get(store: Any, key: str) -> Any:
    return current().pool.config().get(key)


def _config_all(store: Any) -> Any:
    return sorted(current().pool.config().items())


def _define(rt: engine.ComponentRuntime, root: cm.LinkerInstance) -> dict[str, calls.HostFunc]:
    funcs: dict[str, calls.HostFunc] = {}

    def add(li: cm.LinkerInstance, iface: str, name: str, impl: Any) -> None:
        func = calls.HostFunc(f"{iface}#{name}", impl)
        calls.define_func(li, name, func)
        funcs[func.name] = func

    bucket = cm.ResourceType.host(BUCKET_TYPE)
    with root.add_instance(engine.HOST) as li:
        add(li, engine.HOST, "call", lattice_call)
    with root.add_instance(KEYVALUE_STORE) as li:
        li.add_resource("bucket", bucket, _drop)
        add(li, KEYVALUE_STORE, "open", _kv_op(_open))
        for name, impl in (("get", _get), ("set", _set), ("delete", _delete), ("exists", _exists)):
            add(li, KEYVALUE_STORE, f"[method]bucket.{name}", _kv_op(impl))
        add(li, KEYVALUE_STORE, "[method]bucket.list-keys", _kv_op(_list_keys))
    with root.add_instance(KEYVALUE_ATOMICS) as li:
        li.add_resource("bucket", bucket, _drop)
        add(li, KEYVALUE_ATOMICS, "increment", _kv_op(_increment))
    with root.add_instance(LOGGING) as li:
        add(li, LOGGING, "log", _log)
    for iface in (CONFIG_RUNTIME, CONFIG_STORE):
        with root.add_instance(iface) as li:
            add(li, iface, "get", _config_get)
            add(li, iface, "get-all", _config_all)
    return funcs


engine.register_interfaces("lattice", _define)
