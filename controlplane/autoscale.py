"""Autoscaling as a pure function: an elastic actor's load → how many replicas it should have (SPEC §5).

``decide(spec, state, load, now)`` takes the actor's ``Elastic`` spec, what the autoscaler decided before
(``ScaleState``) and what the hosts' heartbeats say (``Load``, summed over every host: the calls in the actor's
pools averaged over the last heartbeat interval, calls in flight and waiting when it went out, and the total of
calls served so far), and returns the next ``ScaleState``. The reconciler keeps one state per elastic actor
and plans with ``state.target`` as the spreadscaler's replicas.

Rules, in order:
- load is the time-averaged calls in the pools (``lattice.loadstats``: fast actors are never caught in flight,
  but their calls still add up over an interval), or the calls in flight and waiting at the heartbeat if more
  (a burst that just began);
- demand is ``ceil(load / target_in_flight)`` replicas, within ``[max(min, 1), max]``;
- scale up at once when demand is above the target (a burst wants capacity now);
- scale down only after demand stayed below the target for the cooldown (``SCALE_DOWN_COOLDOWN_S``, 30 s,
  ``LATTICE_SCALE_DOWN_COOLDOWN_S``: no flapping when load wobbles), then to the highest demand seen in that
  window, never below ``min_replicas``;
- idle — no call served (``calls`` unchanged) and none in flight for ``idle_timeout_s`` — drops to
  ``min_replicas``, which may be 0 (scale to zero: a call then wakes it, ``wake``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from lattice.controlplane.model import Elastic
from lattice.inventory import HostInventory
from lattice.loadstats import add_buckets

SCALE_DOWN_COOLDOWN_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Load:
    in_flight: int = 0
    waiting: int = 0
    calls: int = 0  # served so far, summed over hosts: a change means activity
    failures: int = 0  # failed so far (rollouts judge health by it)
    load: float = 0.0  # calls in the pools, averaged over the last heartbeat interval
    latency: tuple[int, ...] = ()  # call durations so far, ``lattice.loadstats.BOUNDS_MS`` buckets

    @property
    def busy(self) -> float:
        """Calls to serve at once: the interval's average, or the heartbeat's snapshot if more."""
        return max(self.load, float(self.in_flight + self.waiting))


@dataclass(frozen=True, slots=True)
class ScaleState:
    target: int
    last_active: float  # when a call was last seen (served, in flight or waiting)
    last_calls: int = 0
    below_since: float | None = None  # since when demand has been below the target
    peak_below: int = 0  # the highest demand seen while below


def loads_of(inventories: Iterable[HostInventory]) -> dict[str, Load]:
    """Calls in flight, waiting, served and failed, load and latency per actor id, summed over hosts'
    heartbeat inventories (whose decoding already counted a load value of the wrong type as nothing)."""
    totals: dict[str, Load] = {}
    for inventory in inventories:
        for actor in inventory.actors:
            a = totals.get(actor.id, Load())
            totals[actor.id] = Load(
                in_flight=a.in_flight + actor.in_flight,
                waiting=a.waiting + actor.waiting,
                calls=a.calls + actor.calls,
                failures=a.failures + actor.failures,
                load=a.load + actor.load,
                latency=tuple(add_buckets(a.latency, actor.latency_buckets)),
            )
    return totals


def initial(spec: Elastic, now: float) -> ScaleState:
    """A freshly deployed elastic actor: warm at ``max(min, 1)`` (capped by ``max``), active now."""
    return ScaleState(target=min(max(spec.min_replicas, 1), spec.max_replicas), last_active=now)


def wake(spec: Elastic, state: ScaleState, now: float) -> ScaleState:
    """A call arrived for an actor with no instance: at least one replica, active now."""
    return replace(state, target=max(state.target, 1, spec.min_replicas), last_active=now, below_since=None)


def decide(
    spec: Elastic, state: ScaleState, load: Load, now: float, cooldown_s: float = SCALE_DOWN_COOLDOWN_S
) -> ScaleState:
    busy = round(load.busy, 2)  # a hair over a multiple of the target is not one replica more
    active = busy > 0 or load.calls != state.last_calls
    last_active = now if active else state.last_active
    if not active and now - last_active >= spec.idle_timeout_s:
        return ScaleState(spec.min_replicas, last_active, load.calls)
    floor = max(spec.min_replicas, 1) if active or state.target > 0 else spec.min_replicas
    demand = min(max(math.ceil(busy / spec.target_in_flight), floor), spec.max_replicas)
    if demand >= state.target:
        return ScaleState(demand, last_active, load.calls)
    below_since = state.below_since if state.below_since is not None else now
    peak = max(state.peak_below if state.below_since is not None else 0, demand)
    if now - below_since >= cooldown_s:
        return ScaleState(max(peak, spec.min_replicas), last_active, load.calls)
    return ScaleState(state.target, last_active, load.calls, below_since, peak)
