"""Best-effort steps that must not stop what runs them, and still say when they fail.

``with logged(log, "heartbeat not published", host_id=...):`` runs the block; an ``Exception`` from it is
logged (the event, the error and its type, the given fields) and swallowed. It replaces a silent
``contextlib.suppress`` of every exception: shutdown steps, heartbeats and announcements go on, and the log says what
was lost. ``BaseException`` (cancellation, ``KeyboardInterrupt``) is never swallowed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def logged(log: Any, event: str, *, level: str = "warning", **fields: Any) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        getattr(log, level)(event, error=str(exc) or type(exc).__name__, error_type=type(exc).__name__, **fields)
