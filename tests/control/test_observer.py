"""The control plane's view of the hosts: an inventory taken earlier never replaces a later one."""

from __future__ import annotations

from typing import Any

from lattice.controlplane.observer import Observer

HOST = "N" + "H" * 55
ACTOR = "M" + "A" * 55


def inventory(uptime_s: float, count: int) -> dict[str, Any]:
    actors = [{"id": ACTOR, "instances": [{"annotations": {}, "count": count}], "count": count}] if count else []
    return {"host_id": HOST, "labels": {}, "uptime_seconds": uptime_s, "actors": actors, "providers": []}


def test_a_heartbeat_taken_before_the_view_held_does_not_bring_back_what_a_command_stopped() -> None:
    observer = Observer(None, "test", heartbeat_s=0.5, misses=4)  # type: ignore[arg-type]  # no NATS needed
    observer._seen(inventory(10.0, 1))  # a heartbeat: one instance
    observer._seen(inventory(12.0, 0))  # get.inv right after a stop: none
    seen_at = observer.hosts[HOST].last_seen
    observer._seen(inventory(11.0, 1))  # the heartbeat from before the stop, handled late
    (view,) = observer.views()
    assert view.actors == ()  # still none
    assert observer.hosts[HOST].last_seen >= seen_at  # yet the host counts as alive
    observer._seen(inventory(12.5, 2))  # a newer one does replace it
    (view,) = observer.views()
    assert [a.count for a in view.actors] == [2]
