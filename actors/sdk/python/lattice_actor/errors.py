"""The exceptions of lattice_actor: what a handler raises to fail a call, and what a failed host call raises."""

from __future__ import annotations


class ActorError(Exception):
    """Raise it in a handler to fail the call with exactly this text (the waPC ``__guest_error``)."""


class HostCallError(ActorError):
    """A host call failed (no link, the provider's error, the target actor's error); the host's text.

    Uncaught in a handler, it fails the call with the same text, as waPC actors pass errors on.
    """

    def __init__(self, namespace: str, operation: str, text: str) -> None:
        super().__init__(text)
        self.namespace = namespace
        self.operation = operation
        self.text = text


OUT_OF_MEMORY = "out of memory: an allocation failed at the actor's memory limit"


def describe(exc: BaseException) -> str:
    """``exc`` as the text of a failed call, never empty: ``MemoryError`` (which has no message) says the
    memory ran out, so the host can name the limit; others their message, else their type."""
    if isinstance(exc, MemoryError):
        return f"MemoryError: {OUT_OF_MEMORY}"
    return str(exc) or type(exc).__name__
