"""Messaging for actors: the ``wasmcloud:messaging`` contract (SPEC §2) as functions.

Messages arrive through ``@handler("MessageSubscriber.HandleMessage")`` as ``{subject, replyTo?, body}``
(``message(payload)`` decodes it); answer a request by publishing to its ``replyTo``. Every function takes
``link=""`` (the link name; "" = default) and raises HostCallError when the call fails.
"""

from __future__ import annotations

from typing import Any

from lattice_actor import codec
from lattice_actor.host import call_value

CONTRACT = "wasmcloud:messaging"


def message(payload: bytes) -> dict[str, Any]:
    """A ``HandleMessage`` payload as ``{subject, replyTo (or None), body}``."""
    value = codec.unpack(payload) or {}
    return {"subject": value.get("subject", ""), "replyTo": value.get("replyTo"), "body": value.get("body", b"")}


def publish(subject: str, body: bytes, reply_to: str | None = None, link: str = "") -> None:
    args: dict[str, Any] = {"subject": subject, "body": bytes(body)}
    if reply_to:
        args["replyTo"] = reply_to
    call_value(CONTRACT, "Messaging.Publish", args, link)


def request(subject: str, body: bytes, timeout_ms: int = 2000, link: str = "") -> bytes:
    """Sends ``body`` to ``subject`` and returns the reply's body."""
    args = {"subject": subject, "body": bytes(body), "timeoutMs": timeout_ms}
    answer = call_value(CONTRACT, "Messaging.Request", args, link)
    return bytes((answer or {}).get("body", b""))
