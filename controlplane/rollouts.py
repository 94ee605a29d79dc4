"""Rollouts (SPEC §5): a new version of a deployed application replaces the old one, gated on health.

A ``PUT`` of a new version records ``rollout {state: progressing, from_version, to_version, step: 1,
percent}`` and deploys it. The new version takes over in steps (``shares``): ``percent`` of each actor
component's replicas (rounded up) run the new version, the rest the old one, which stops instance by instance
only as the new one's run (``split``: capacity is kept). ``rolling`` steps by ``step_percent`` up to 100;
``canary`` places ``step_percent`` (default 25), then the rest; ``step_percent: 100`` (the default for rolling)
is one step. ``Rollouts.watch`` (each reconcile pass, leader only) follows it; for each share:
- step 2k-1 → 2k: the share runs (its new instances up; for the last, status ``deployed``); its health window
  opens, with the new actors' call, failure and latency counters (from the hosts' heartbeats) as the baseline;
- over ``window_s``, an error rate (failed / served calls of the new version's actors, once at least
  ``MIN_CALLS`` were served) above ``max_error_rate`` rolls back at once: the previous version is deployed
  again and the rollout is ``rolled_back`` with the reason; so does a p99 latency of those calls above
  ``max_p99_ms`` (from the hosts' per-actor latency histograms, ``lattice.loadstats``: judged once
  ``P99_CALLS`` were served, or at the window's end over the whole window); a status of ``failed`` (hosts
  refuse the new version) rolls back too; a window that ends healthy moves to the next share (step 2k+1), or
  completes the rollout after the last.
A link names one actor, so traffic that comes through links (HTTP) moves to the new version with the first
share; the shares pace how many of its instances replace the old one's, each step gated.
Events: ``rollout_step``, ``rollout_complete``, ``rollout_rolled_back`` (CloudEvents, ``wasmbus.evt``).
``judge`` decides, purely.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import structlog
from nats.aio.client import Client as NATS

from lattice import events, subjects
from lattice.commands import ScaleActor
from lattice.controlplane.autoscale import Load
from lattice.controlplane.model import Command, DesiredActor, HostView, RolloutPolicy, owner_of
from lattice.controlplane.state import AppRecord, ControlState
from lattice.loadstats import add_buckets, percentile_ms, sub_buckets

log = structlog.get_logger("lattice.controlplane.rollouts")

MIN_CALLS: Final = 5
P99_CALLS: Final = 100  # calls after which a p99 means something before the window ends


def judge(
    policy: RolloutPolicy, elapsed_s: float, calls: int, failures: int, p99_ms: float | None = None
) -> tuple[str, str]:
    """``("progressing" | "complete" | "rolled_back", reason)`` for a health window ``elapsed_s`` old, in which
    the new version served ``calls``, ``failures`` of them failed, and 99 % took at most ``p99_ms``."""
    if calls >= MIN_CALLS and failures / calls > policy.max_error_rate:
        rate = failures / calls
        return "rolled_back", (
            f"error rate {rate:.0%} ({failures} of {calls} calls) over max_error_rate {policy.max_error_rate:.0%}"
        )
    limit, judged = policy.max_p99_ms, calls >= P99_CALLS or (elapsed_s >= policy.window_s and calls >= MIN_CALLS)
    if limit is not None and p99_ms is not None and judged and p99_ms > limit:
        return "rolled_back", f"p99 latency {p99_ms:.1f} ms ({calls} calls) over max_p99_ms {limit:g}"
    if elapsed_s >= policy.window_s:
        return "complete", f"healthy for {policy.window_s:g} s ({failures} of {calls} calls failed)"
    return "progressing", ""


def shares(policy: RolloutPolicy) -> list[int]:
    """The new version's share of the replicas (percent) at each step of a rollout."""
    step = policy.step_percent
    if step >= 100:
        return [100]
    return [step, 100] if policy.strategy == "canary" else [*range(step, 100, step), 100]


def split(
    new: DesiredActor, old: DesiredActor, percent: int, hosts: Sequence[HostView]
) -> tuple[DesiredActor, DesiredActor, bool]:
    """``new`` at ``percent`` of its replicas (rounded up) and ``old`` at the rest, counting only the new
    instances that run already (the old ones stop as the new ones start); and whether the new share runs."""
    total = new.scaler.replicas
    want = math.ceil(total * percent / 100)
    running = sum(
        a.count for h in hosts for a in h.actors if a.actor_id == new.actor_id and owner_of(a.annotations) == new.key
    )
    return (
        dataclasses.replace(new, scaler=dataclasses.replace(new.scaler, replicas=want)),
        dataclasses.replace(old, scaler=dataclasses.replace(old.scaler, replicas=total - min(want, running))),
        running >= want,
    )


def begin(record: AppRecord, to_version: str, percent: int = 100) -> None:
    """Record the start of a rollout when ``to_version`` replaces a deployed version (a no-op otherwise);
    ``percent``: the new version's first share of the replicas (``shares``)."""
    if record.deployed is not None and record.deployed != to_version:
        record.rollout = {
            "state": "progressing",
            "from_version": record.deployed,
            "to_version": to_version,
            "step": 1,
            "percent": percent,
            "reason": "",
        }


def rollback(record: AppRecord, version: str | None, reason: str) -> str | None:
    """Deploy ``version`` again (default: ``default_target``); returns it, or ``None`` (``record`` unchanged)
    when it is already the deployed version and no rollout to it is under way. The version rolled back from (one
    still in its health gate, or newer than ``version``) is remembered in ``record.failed``. Raises
    ``LookupError`` when there is nothing to roll back to."""
    target = version if version is not None else default_target(record)
    if target is None or record.version(target) is None:
        raise LookupError(_nothing_to_roll_back_to(record, version))
    if target == record.deployed and not _progressing(record):
        return None
    abandoned, names = record.deployed, [v.version for v in record.versions]
    # the abandoned version failed when it had not passed its gate yet, or when an older one replaces it
    failed = _progressing(record) or (abandoned in names and names.index(target) < names.index(abandoned))
    record.rollout = {
        "state": "rolled_back",
        "from_version": abandoned,
        "to_version": target,
        "step": (record.rollout or {}).get("step", 1),
        "percent": (record.rollout or {}).get("percent", 100),  # the share the abandoned version had reached
        "reason": reason,
    }
    record.failed = [v for v in record.failed if v not in (target, abandoned)]
    if failed and abandoned is not None and abandoned != target:
        record.failed.append(abandoned)
    record.deployed = target
    return target


def default_target(record: AppRecord) -> str | None:
    """The last healthy version deployed before the current one: the one the last rollout came from while that
    rollout stands (progressing or complete), else the newest version older than the deployed one; never a
    version that failed its health gate or was rolled back (``record.failed``); ``None`` when there is none."""
    rollout = record.rollout or {}
    came_from = rollout.get("from_version")
    if rollout.get("state") != "rolled_back" and came_from != record.deployed and came_from not in record.failed:
        return str(came_from) if record.version(came_from) is not None else None
    names = [v.version for v in record.versions]
    here = names.index(record.deployed) if record.deployed in names else len(names)
    return next((v for v in reversed(names[:here]) if v not in record.failed), None)


def _nothing_to_roll_back_to(record: AppRecord, version: str | None) -> str:
    if version is not None:
        return f"{record.name} has no version {version} to roll back to"
    skipped = f" ({', '.join(record.failed)} failed or was rolled back)" if record.failed else ""
    return f"{record.name} has no healthy version before {record.deployed} to roll back to{skipped}"


def _progressing(record: AppRecord) -> bool:
    rollout = record.rollout or {}
    return rollout.get("state") == "progressing" and rollout.get("to_version") == record.deployed


def version_load(loads: Mapping[str, Load], ids: Sequence[str]) -> Load:
    """The calls, failures and latency histogram of a version's actors, summed (the rest is left at 0)."""
    found = [loads[a] for a in ids if a in loads]
    latency: list[int] = []
    for load in found:
        latency = add_buckets(latency, load.latency)
    return Load(calls=sum(x.calls for x in found), failures=sum(x.failures for x in found), latency=tuple(latency))


def actor_ids(record: AppRecord) -> list[str]:
    """The ids of the deployed version's actors (their counters are the rollout's health)."""
    version = record.version(record.deployed)
    images = version.images.values() if version is not None else ()
    return [str(i["actor_id"]) for i in images if i.get("actor_id")]


def keeps_capacity(cmd: Command, desired: Sequence[DesiredActor], hosts: Sequence[HostView]) -> bool:
    """False for the stop of an older version's instances while the version replacing it runs nowhere yet:
    the old one serves until the new one can (rollouts keep capacity)."""
    if not isinstance(cmd, ScaleActor) or cmd.count != 0:
        return True
    owner = owner_of(cmd.annotations)
    new = next((a for a in desired if a.key == owner), None)
    if new is None or new.actor_id == cmd.actor_id or new.scaler.replicas == 0:
        return True
    return any(a.actor_id == new.actor_id and a.count > 0 for h in hosts for a in h.actors)


class Rollouts:
    """Follows progressing rollouts for the reconciler: health windows in memory, decisions in the store."""

    def __init__(self, nc: NATS, lattice: str, state: ControlState) -> None:
        self.nc, self.lattice, self.state = nc, lattice, state
        self._windows: dict[tuple[str, str, int], tuple[float, Load]] = {}  # (app, version, share) → start, then
        self._ready: dict[str, bool] = {}  # app → whether the new version's current share runs (``split``)

    def split(
        self,
        actors: Sequence[DesiredActor],
        records: Sequence[AppRecord],
        hosts: Sequence[HostView],
        old_actors: Callable[[AppRecord], list[DesiredActor]],
    ) -> list[DesiredActor]:
        """What the planner places: ``actors``, with each progressing rollout's spreadscaled actors split between
        the new version (its current share) and the one it replaces (``old_actors``)."""
        out, self._ready = list(actors), {}
        for record in records:
            rollout = record.rollout or {}
            percent = int(rollout.get("percent", 100))
            if not _progressing(record) or percent >= 100:
                continue
            olds, ready = {a.key: a for a in old_actors(record)}, True
            for i, new in enumerate(actors):
                old = olds.get(new.key)
                if (
                    new.app == record.name
                    and new.scaler.kind == "spreadscaler"
                    and old
                    and old.actor_id != new.actor_id
                ):
                    out[i], extra, runs = split(new, old, percent, hosts)
                    out.append(extra)
                    ready = ready and runs
            self._ready[record.name] = ready
        return out

    async def watch(
        self,
        records: list[AppRecord],
        status_of: Callable[[AppRecord], Any],
        policy_of: Callable[[AppRecord], RolloutPolicy],
        loads: Mapping[str, Load],
        actor_ids: Callable[[AppRecord], list[str]],
    ) -> None:
        for record in records:
            rollout = record.rollout or {}
            if not _progressing(record):
                continue
            status = await status_of(record)
            policy, step = policy_of(record), int(rollout.get("step", 1))
            steps = shares(policy)
            index = min((step - 1) // 2, len(steps) - 1)
            key = (record.name, str(record.deployed), index)
            seen = version_load(loads, actor_ids(record))
            if status["type"] == "failed":
                await self._finish(record, "rolled_back", f"the new version failed: {status['message']}")
            elif key not in self._windows:
                last = index == len(steps) - 1
                if status["type"] == "deployed" if last else self._ready.get(record.name, False):
                    self._windows[key] = (time.monotonic(), seen)
                    await self._step(record, 2 * index + 2)
            else:
                start, then = self._windows[key]
                p99 = percentile_ms(sub_buckets(seen.latency, then.latency))
                calls, fails = seen.calls - then.calls, seen.failures - then.failures
                verdict, reason = judge(policy, time.monotonic() - start, calls, fails, p99)
                if verdict == "complete" and index + 1 < len(steps):
                    self._windows.pop(key)
                    await self._step(record, 2 * index + 3, steps[index + 1])
                elif verdict != "progressing":
                    await self._finish(record, verdict, reason)

    async def _step(self, record: AppRecord, step: int, percent: int | None = None) -> None:
        def apply(r: AppRecord) -> bool:
            if r.rollout is None:
                return False
            r.rollout.update(step=step, **({} if percent is None else {"percent": percent}))
            return True

        if await self._update(record, apply):
            await self._event(events.ROLLOUT_STEP, record)

    async def _finish(self, record: AppRecord, verdict: str, reason: str) -> None:
        def apply(r: AppRecord) -> bool:
            if verdict == "rolled_back":
                rollback(r, None, reason)
            elif r.rollout is not None:
                r.rollout.update(state="complete", reason=reason)
                r.failed = [v for v in r.failed if v != r.deployed]  # healthy now, after all
            return True

        for key in [k for k in self._windows if k[:2] == (record.name, str(record.deployed))]:
            self._windows.pop(key)
        if await self._update(record, apply):
            name = events.ROLLOUT_ROLLED_BACK if verdict == "rolled_back" else events.ROLLOUT_COMPLETE
            await self._event(name, record)
            log.info("rollout " + verdict.replace("_", " "), app=record.name, reason=reason)

    async def _update(self, record: AppRecord, change: Callable[[AppRecord], Any]) -> bool:
        """Apply ``change`` to the stored record with compare-and-set; ``record`` is updated in place."""
        stored, revision = await self.state.get_app_revision(record.name)
        if stored is None or stored.deployed != record.deployed or stored.rollout != record.rollout:
            return False  # changed meanwhile (a new PUT, a manual rollback): the next pass sees the new state
        change(stored)
        if not await self.state.put_app(stored, revision=revision):
            return False
        record.deployed, record.rollout = stored.deployed, stored.rollout
        return True

    async def _event(self, name: str, record: AppRecord) -> None:
        data = {"application": record.name, **(record.rollout or {})}
        await self.nc.publish(subjects.events(self.lattice), events.make(name, record.name, data))
