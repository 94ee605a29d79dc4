"""Call and failure counters per actor that only ever grow, from hosts' counters that reset.

A host reports each actor's calls and failures served so far by its pool (heartbeat inventory). Those
counters start again from 0 whenever the pool does (a restart, a scale to zero and back, a host that
restarts), and vanish while the actor runs nowhere on the host. Summed across hosts they can fall, and a
rollout's window (calls now − calls at its start) then read ``0 of -1 calls failed``.

``CallCounters`` follows each (host, actor) counter and adds only what it grew by: a counter lower than
last seen was reset, so all of it is new; one seen for the first time counts whole. The totals per actor
id are what the rollouts and the autoscaler read as ``Load.calls`` and ``Load.failures``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from lattice.controlplane.autoscale import Load
from lattice.inventory import HostInventory

Pair = tuple[int, int]  # (calls, failures)


def grown(previous: Pair | None, current: Pair) -> Pair:
    """What a host's counter pair added since ``previous``; a counter below it was reset (counts whole)."""
    if previous is None:
        return current
    calls = current[0] - previous[0] if current[0] >= previous[0] else current[0]
    failures = current[1] - previous[1] if current[1] >= previous[1] else current[1]
    return max(calls, 0), max(failures, 0)


class CallCounters:
    """Monotonic (calls, failures) per actor id over every host that ever ran it (see module doc)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], Pair] = {}  # (host id, actor id) → counters last seen
        self._totals: dict[str, Pair] = {}

    def update(self, inventories: Iterable[HostInventory]) -> Mapping[str, Pair]:
        """Take the hosts' current counters in; returns the totals per actor id."""
        seen: dict[tuple[str, str], Pair] = {}
        for inventory in inventories:
            for actor in inventory.actors:
                key = (inventory.host_id, actor.id)
                current = (max(actor.calls, 0), max(actor.failures, 0))
                calls, failures = grown(self._last.get(key), current)
                total = self._totals.get(actor.id, (0, 0))
                self._totals[actor.id] = (total[0] + calls, total[1] + failures)
                seen[key] = current
        self._last = seen  # a counter that vanished starts again from 0 when it comes back
        return dict(self._totals)

    def applied(self, inventories: Iterable[HostInventory], loads: Mapping[str, Load]) -> dict[str, Load]:
        """``loads`` (summed over hosts) with calls and failures replaced by the monotonic totals; an actor
        that runs nowhere now keeps its totals (its calls did not un-happen)."""
        totals = self.update(inventories)
        out = dict(loads)
        for actor_id, (calls, failures) in totals.items():
            out[actor_id] = dataclasses.replace(loads.get(actor_id, Load()), calls=calls, failures=failures)
        return out
