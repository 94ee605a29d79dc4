"""Key-value for actors: the ``wasmcloud:keyvalue`` contract (SPEC §2) as functions.

Every function takes ``link=""`` (the link name; "" = default) and raises HostCallError when the call
fails (no link, the provider's error). Values are strings, as the contract has them.
"""

from __future__ import annotations

from typing import Any

from lattice_actor.host import call_value

CONTRACT = "wasmcloud:keyvalue"


def _kv(operation: str, value: Any, link: str) -> Any:
    return call_value(CONTRACT, f"KeyValue.{operation}", value, link)


def get(key: str, link: str = "") -> str | None:
    """The value of ``key``, or None when it does not exist."""
    answer = _kv("Get", key, link) or {}
    return answer.get("value") if answer.get("exists") else None


def set(key: str, value: str, expires: int = 0, link: str = "") -> None:
    """Sets ``key``; ``expires`` in seconds, 0 = never."""
    _kv("Set", {"key": key, "value": value, "expires": expires}, link)


def delete(key: str, link: str = "") -> bool:
    """Deletes ``key``; whether it existed."""
    return bool(_kv("Del", key, link))


def contains(key: str, link: str = "") -> bool:
    return bool(_kv("Contains", key, link))


def increment(key: str, by: int = 1, link: str = "") -> int:
    """Adds ``by`` to the integer at ``key`` (0 when missing), atomically; the new value."""
    return int(_kv("Increment", {"key": key, "value": by}, link))


def list_add(name: str, value: str, link: str = "") -> int:
    """Appends to list ``name``; its new length."""
    return int(_kv("ListAdd", {"listName": name, "value": value}, link))


def list_range(name: str, start: int = 0, stop: int = -1, link: str = "") -> list[str]:
    """Items ``start``..``stop`` of list ``name``, inclusive (Redis semantics; -1 = the last)."""
    return list(_kv("ListRange", {"listName": name, "start": start, "stop": stop}, link) or [])


def list_del(name: str, value: str, link: str = "") -> bool:
    return bool(_kv("ListDel", {"listName": name, "value": value}, link))


def set_add(name: str, value: str, link: str = "") -> int:
    return int(_kv("SetAdd", {"setName": name, "value": value}, link))


def set_del(name: str, value: str, link: str = "") -> int:
    return int(_kv("SetDel", {"setName": name, "value": value}, link))


def set_query(name: str, link: str = "") -> list[str]:
    return list(_kv("SetQuery", name, link) or [])
