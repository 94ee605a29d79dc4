"""Regression cases from public bug reports, status side: what `GET /v1/applications/{name}` says (SPEC §5).

Pure: ``app_status`` over hand-made lattices, as the scheduler's own tests do.
"""

from __future__ import annotations

from lattice.controlplane.model import (
    ActorInstances,
    DesiredActor,
    DesiredProvider,
    HostView,
    ProviderRunning,
    Scaler,
    Spread,
    owner_annotations,
)
from lattice.controlplane.reconciler import Desired, app_status
from lattice.controlplane.scheduler import unplaceable
from lattice.controlplane.state import AppRecord, AppVersion

PINNED = Scaler("spreadscaler", 1, (Spread("edge", {"zone": "edge"}),))


def record(name: str = "web") -> AppRecord:
    return AppRecord(name, [AppVersion("v1", "manifest", 0.0)], deployed="v1")


def httpserver(scaler: Scaler = PINNED) -> DesiredProvider:
    return DesiredProvider("web", "http", "VHTTP", "builtin:httpserver", "wasmcloud:httpserver", "default", {}, scaler)


def echo(actor_id: str = "MNEW", replicas: int = 1) -> DesiredActor:
    return DesiredActor("web", "echo", actor_id, f"sha256:{actor_id.lower()}", Scaler("spreadscaler", replicas))


def status_of(desired: Desired, hosts: list[HostView]) -> dict[str, object]:
    unplaced = unplaceable(desired.actors, desired.providers, hosts)
    return app_status(record(), desired, hosts, unplaced, {})


def test_wadm346_capability_pinned_to_a_dead_host_is_failed_with_the_schedulers_reason() -> None:
    survivor = HostView("NOTHEEDGE", {"zone": "core"})  # the edge host died: only this one is left
    status = status_of(Desired(providers=[httpserver()]), [survivor])
    assert status["type"] == "failed"
    assert "no host matches requirements {zone: edge}" in str(status["message"])


def test_wadm346_capability_only_app_with_no_hosts_is_failed_not_deployed() -> None:
    status = status_of(Desired(providers=[httpserver(Scaler("spreadscaler", 1))]), [])
    assert status["type"] == "failed"
    assert "no hosts in the lattice" in str(status["message"])


def test_capability_that_runs_is_still_deployed() -> None:
    running = ProviderRunning("VHTTP", "default", "wasmcloud:httpserver", owner_annotations("web", "http"))
    edge = HostView("EDGE", {"zone": "edge"}, providers=(running,))
    assert status_of(Desired(providers=[httpserver()]), [edge])["type"] == "deployed"


def test_apply_wait_is_not_done_while_the_old_version_still_runs() -> None:
    old = ActorInstances("MOLD", 1, owner_annotations("web", "echo"))
    host = HostView("H1", actors=(old,))
    status = status_of(Desired(actors=[echo("MNEW")]), [host])
    assert status["type"] == "reconciling"  # counts match (1/1) but the instance is the old image
    new = ActorInstances("MNEW", 1, owner_annotations("web", "echo"))
    both = HostView("H1", actors=(old, new))
    assert status_of(Desired(actors=[echo("MNEW")]), [both])["type"] == "reconciling"
    done = HostView("H1", actors=(new,))
    assert status_of(Desired(actors=[echo("MNEW")]), [done])["type"] == "deployed"
