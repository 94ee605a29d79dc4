"""``wasmcloud:builtin:logging`` (SPEC §2): an actor's log lines into the lattice's structured log.

``Logging.WriteLog {level, text}`` becomes one structlog event (the text) on the ``lattice.actor``
logger, tagged with ``actor_id`` at that level: ``debug``, ``info``, ``warn`` (``warning``),
``error``; ``trace`` is logged as debug, anything else as info with ``actor_level`` set to what the
actor sent. No link values; an actor needs no link to use it.
"""

from __future__ import annotations

from typing import Any, Final

import structlog

from lattice.capability import LOGGING
from lattice.providers.sdk import Provider, arg_map, arg_str, operation

__all__ = ["LoggingProvider"]

_LEVELS: Final = {"trace": "debug", "debug": "debug", "info": "info", "warn": "warning", "warning": "warning"}
_LEVELS_ERROR: Final = {"error": "error", "critical": "critical"}

actor_log = structlog.get_logger("lattice.actor")


class LoggingProvider(Provider):
    name = "logging"
    contract_id = LOGGING

    @operation("Logging.WriteLog")
    async def write_log(self, actor_id: str, args: Any) -> None:
        fields = arg_map(args)
        text = arg_str(fields, "text")
        level = arg_str(fields, "level").lower() if "level" in fields else "info"
        method = _LEVELS.get(level) or _LEVELS_ERROR.get(level)
        extra = {} if method else {"actor_level": level}
        getattr(actor_log, method or "info")(text, actor_id=actor_id, **extra)
