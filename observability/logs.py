"""Structured logging for every lattice process (structlog): console on a TTY, JSON lines otherwise."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(*, json_logs: bool | None = None, level: str = "info") -> None:
    """Configure structlog once per process; ``json_logs=None`` picks JSON when stderr is not a TTY."""
    as_json = (not sys.stderr.isatty()) if json_logs is None else json_logs
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
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
