"""Logging for actors: ``Logging.WriteLog`` on ``wasmcloud:builtin:logging`` (SPEC §2).

A log line must never fail a request, so a failed write (no logging link) is dropped: ``write`` returns
whether the line was delivered.
"""

from __future__ import annotations

from lattice_actor.errors import HostCallError
from lattice_actor.host import call_value

CONTRACT = "wasmcloud:builtin:logging"
LEVELS = ("debug", "info", "warn", "error")


def write(level: str, text: str, link: str = "") -> bool:
    """Writes one line at ``level`` (debug, info, warn, error); False when no logging link took it."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
    try:
        call_value(CONTRACT, "Logging.WriteLog", {"level": level, "text": text}, link)
    except HostCallError:
        return False
    return True


def debug(text: str) -> bool:
    return write("debug", text)


def info(text: str) -> bool:
    return write("info", text)


def warn(text: str) -> bool:
    return write("warn", text)


def error(text: str) -> bool:
    return write("error", text)
