"""A failure repeated every second is logged once, then counted (issue 13, item 5)."""

from __future__ import annotations

import pytest
import structlog

from lattice.observability.logs import Deduplicate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_warning_is_logged_once_then_with_the_count_of_those_left_out() -> None:
    clock = Clock()
    dedup = Deduplicate(window_s=30, clock=clock)
    first = dedup(None, "warning", {"event": "leader lease check failed", "error": "timeout", "timestamp": "t0"})
    assert "repeated" not in first
    for second in range(1, 30):
        clock.now = second
        with pytest.raises(structlog.DropEvent):
            dedup(None, "warning", {"event": "leader lease check failed", "error": "timeout", "timestamp": "t"})
    clock.now = 31
    again = dedup(None, "warning", {"event": "leader lease check failed", "error": "timeout"})
    assert again["repeated"] == 29


def test_other_fields_other_events_and_info_lines_pass() -> None:
    dedup = Deduplicate(window_s=30, clock=Clock())
    dedup(None, "warning", {"event": "x", "error": "a"})
    assert dedup(None, "warning", {"event": "x", "error": "b"})["error"] == "b"
    assert dedup(None, "error", {"event": "x", "error": "a"})["event"] == "x"
    for _ in range(3):
        assert dedup(None, "info", {"event": "request"})["event"] == "request"
