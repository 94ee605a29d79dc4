"""``lattice.failsafe.logged``: what it swallows is logged; cancellation is never swallowed."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from structlog.testing import capture_logs

from lattice.failsafe import logged

log = structlog.get_logger("test")


def test_an_exception_is_logged_with_its_fields_and_swallowed() -> None:
    with capture_logs() as logs, logged(log, "heartbeat not published", host_id="N1"):
        raise ConnectionError("nats is gone")
    assert logs == [
        {
            "event": "heartbeat not published",
            "error": "nats is gone",
            "error_type": "ConnectionError",
            "host_id": "N1",
            "log_level": "warning",
        }
    ]


def test_nothing_is_logged_when_the_block_succeeds() -> None:
    with capture_logs() as logs, logged(log, "never"):
        pass
    assert logs == []


def test_cancellation_passes_through() -> None:
    with pytest.raises(asyncio.CancelledError), logged(log, "never"):
        raise asyncio.CancelledError
