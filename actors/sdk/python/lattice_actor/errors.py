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
