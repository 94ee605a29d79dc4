"""Structured logging for every lattice process (structlog): console on a TTY, JSON lines otherwise.

A warning or error that repeats (same event, same fields: a reconcile pass failing every second while
NATS is away) is logged once, then counted: the next one after ``REPEAT_WINDOW_S`` carries
``repeated=N``, the number left out since.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

REPEAT_WINDOW_S = 30.0
_LOUD = frozenset({"warning", "warn", "error", "exception", "critical"})
_VOLATILE = frozenset({"timestamp", "exc_info", "stack_info"})


class Deduplicate:
    """The structlog processor that logs a repeated warning or error once per ``window_s``, with a count."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S, clock: Any = time.monotonic, size: int = 1024) -> None:
        self.window_s = window_s
        self.clock = clock
        self.size = size
        self._seen: dict[tuple[Any, ...], list[float]] = {}  # key -> [last logged at, left out since]

    def __call__(self, logger: Any, method_name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if method_name not in _LOUD:
            return event
        key = (method_name, *sorted((k, repr(v)) for k, v in event.items() if k not in _VOLATILE))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            raise structlog.DropEvent
        if seen is not None and seen[1]:
            event["repeated"] = int(seen[1])
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return event


def configure(*, json_logs: bool | None = None, level: str = "info") -> None:
    """Configure structlog once per process; ``json_logs=None`` picks JSON when stderr is not a TTY."""
    as_json = (not sys.stderr.isatty()) if json_logs is None else json_logs
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        Deduplicate(),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
