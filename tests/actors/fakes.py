"""Host fakes for the harness: an in-memory wasmcloud:keyvalue with the provider's semantics (SPEC §2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .wapc_harness import HostFake

KV = "wasmcloud:keyvalue"


@dataclass
class FakeKeyValue:
    """Strings, counters and lists in dicts; ``host()`` is the table for ``WapcGuest(host=...)``."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    failing: str | None = None  # when set, every call fails with this text
    bindings: set[str] = field(default_factory=set)  # the link names the guest called

    def host(self) -> dict[tuple[str, str], HostFake]:
        operations: dict[str, Callable[[Any], Any]] = {
            "KeyValue.Get": self.get,
            "KeyValue.Set": self.set,
            "KeyValue.Del": self.delete,
            "KeyValue.Increment": self.increment,
            "KeyValue.ListAdd": self.list_add,
            "KeyValue.ListDel": self.list_del,
            "KeyValue.ListRange": self.list_range,
        }
        return {(KV, op): self._wrap(fn) for op, fn in operations.items()}

    def _wrap(self, fn: Callable[[Any], Any]) -> HostFake:
        def fake(binding: str, payload: bytes) -> bytes:
            self.bindings.add(binding)
            if self.failing is not None:
                raise RuntimeError(self.failing)
            reply: bytes = msgpack.packb(fn(msgpack.unpackb(payload)))
            return reply

        return fake

    def get(self, key: str) -> dict[str, Any]:
        return {"value": self.values.get(key, ""), "exists": key in self.values}

    def set(self, args: dict[str, Any]) -> None:
        self.values[args["key"]] = args["value"]

    def delete(self, key: str) -> bool:
        return self.values.pop(key, None) is not None

    def increment(self, args: dict[str, Any]) -> int:
        value = int(self.values.get(args["key"], "0")) + int(args["value"])
        self.values[args["key"]] = str(value)
        return value

    def list_add(self, args: dict[str, Any]) -> int:
        items = self.lists.setdefault(args["listName"], [])
        items.append(args["value"])
        return len(items)

    def list_del(self, args: dict[str, Any]) -> bool:
        items = self.lists.get(args["listName"], [])
        if args["value"] not in items:
            return False
        items.remove(args["value"])
        return True

    def list_range(self, args: dict[str, Any]) -> list[str]:
        items = self.lists.get(args["listName"], [])
        start, stop = args["start"], args["stop"]
        n = len(items)
        start, stop = start + n if start < 0 else start, stop + n if stop < 0 else stop
        return items[max(start, 0) : stop + 1]
