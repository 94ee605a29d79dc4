"""The planner: desired components + observed hosts → commands, tested against a tiny lattice simulator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lattice.controlplane.model import (
    ActorInstances,
    Command,
    DesiredActor,
    DesiredProvider,
    HostView,
    ProviderRunning,
    ScaleActor,
    Scaler,
    Spread,
    StartProvider,
    StopProvider,
    owner_annotations,
)
from lattice.controlplane.scheduler import apportion, plan, unplaceable

ECHO_ID = "MECHO"
OURS = owner_annotations("shop", "echo")


def host(
    host_id: str,
    *,
    zone: str | None = None,
    in_flight: int = 0,
    draining: bool = False,
    actors: Sequence[ActorInstances] = (),
    providers: Sequence[ProviderRunning] = (),
) -> HostView:
    labels = {"zone": zone} if zone else {}
    return HostView(host_id, labels, tuple(actors), tuple(providers), in_flight, draining)


def echo(
    replicas: int, *spreads: Spread, kind: str = "spreadscaler", actor_id: str = ECHO_ID, app: str = "shop"
) -> DesiredActor:
    scaler = Scaler("daemonscaler" if kind == "daemonscaler" else "spreadscaler", replicas, spreads)
    return DesiredActor(app, "echo", actor_id, f"sha256:{actor_id.lower()}", scaler, {"limits": {}})


def ours(count: int, actor_id: str = ECHO_ID) -> ActorInstances:
    return ActorInstances(actor_id, count, dict(OURS))


def kv(replicas: int, *spreads: Spread, kind: str = "spreadscaler") -> DesiredProvider:
    scaler = Scaler("daemonscaler" if kind == "daemonscaler" else "spreadscaler", replicas, spreads)
    return DesiredProvider("shop", "store", "VKV", "builtin:keyvalue", "wasmcloud:keyvalue", "default", {}, scaler)


def zone(name: str, weight: int = 100) -> Spread:
    return Spread(name, {"zone": name}, weight)


# --- a tiny simulator: what hosts look like after the commands ran -------------------------------------


def apply(hosts: Sequence[HostView], commands: Sequence[Command]) -> list[HostView]:
    by_id = {h.id: h for h in hosts}
    for command in commands:
        h = by_id[command.host_id]
        if isinstance(command, ScaleActor):
            same = [g for g in h.actors if (g.actor_id, g.annotations) == (command.actor_id, command.annotations)]
            assert len(same) <= 1
            actors = [g for g in h.actors if g not in same]
            if command.count:
                actors.append(ActorInstances(command.actor_id, command.count, dict(command.annotations)))
            by_id[h.id] = HostView(h.id, h.labels, tuple(actors), h.providers, h.in_flight, h.draining)
        elif isinstance(command, StartProvider):
            assert all(
                (p.provider_id, p.link_name, p.annotations)
                != (command.provider_id, command.link_name, command.annotations)
                for p in h.providers
            )
            started = ProviderRunning(command.provider_id, command.link_name, command.contract_id, command.annotations)
            by_id[h.id] = HostView(h.id, h.labels, h.actors, (*h.providers, started), h.in_flight, h.draining)
        else:
            kept = tuple(
                p for p in h.providers if (p.provider_id, p.link_name) != (command.provider_id, command.link_name)
            )
            assert len(kept) == len(h.providers) - 1
            by_id[h.id] = HostView(h.id, h.labels, h.actors, kept, h.in_flight, h.draining)
    return [by_id[h.id] for h in hosts]


def running(hosts: Sequence[HostView], actor_id: str = ECHO_ID) -> dict[str, int]:
    counts = Counter[str]()
    for h in hosts:
        for g in h.actors:
            if g.actor_id == actor_id and g.annotations == OURS:
                counts[h.id] += g.count
    return dict(+counts)


def providers_on(hosts: Sequence[HostView]) -> list[str]:
    return [h.id for h in hosts for p in h.providers if p.provider_id == "VKV"]


def settle(
    actors: Sequence[DesiredActor], providers: Sequence[DesiredProvider], hosts: Sequence[HostView]
) -> list[HostView]:
    """Apply one plan and check the next plan is empty (idempotence)."""
    after = apply(hosts, plan(actors, providers, hosts))
    assert plan(actors, providers, after) == []
    return after


# --- spreadscaler ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "weights", "shares"),
    [
        (4, [3, 1], [3, 1]),
        (3, [1, 1], [2, 1]),
        (5, [1, 1, 1], [2, 2, 1]),
        (1, [1, 3], [0, 1]),
        (10, [100], [10]),
        (0, [50, 50], [0, 0]),
        (7, [70, 20, 10], [5, 1, 1]),
    ],
)
def test_replicas_are_apportioned_by_weight_with_largest_remainder(
    replicas: int, weights: list[int], shares: list[int]
) -> None:
    assert apportion(replicas, weights) == shares


def test_three_replicas_over_three_idle_hosts_is_one_each() -> None:
    hosts = [host("h1"), host("h2"), host("h3")]
    assert plan([echo(3)], [], hosts) == [
        ScaleActor(h, ECHO_ID, "sha256:mecho", 1, OURS, {"limits": {}}) for h in ("h1", "h2", "h3")
    ]


def test_weighted_spreads_follow_their_zones() -> None:
    hosts = [host("e1", zone="east"), host("e2", zone="east"), host("w1", zone="west")]
    after = settle([echo(4, zone("east", 3), zone("west", 1))], [], hosts)
    assert running(after) == {"e1": 2, "e2": 1, "w1": 1}


def test_hosts_without_the_required_labels_get_nothing() -> None:
    hosts = [host("a", zone="west"), host("b"), host("c", zone="east")]
    after = settle([echo(3, zone("east"))], [], hosts)
    assert running(after) == {"c": 3}


def test_a_busy_host_gets_fewer_instances() -> None:
    other = ActorInstances("MOTHER", 2, {})
    hosts = [host("h1", in_flight=4), host("h2", actors=[other]), host("h3")]
    after = settle([echo(6)], [], hosts)
    # loads before: h1 4, h2 2, h3 0; one at a time onto the least loaded evens them out at 4 each
    assert running(after) == {"h2": 2, "h3": 4}


def test_existing_placement_is_kept() -> None:
    hosts = [host("h1"), host("h2"), host("h3", in_flight=50, actors=[ours(1)])]
    assert plan([echo(1)], [], hosts) == []


def test_scale_up_keeps_what_runs_and_adds_on_the_least_loaded() -> None:
    hosts = [host("h1"), host("h2", in_flight=1), host("h3", actors=[ours(1)]), host("h4")]
    commands = plan([echo(3)], [], hosts)
    assert commands == [
        ScaleActor("h1", ECHO_ID, "sha256:mecho", 1, OURS, {"limits": {}}),
        ScaleActor("h4", ECHO_ID, "sha256:mecho", 1, OURS, {"limits": {}}),
    ]
    assert running(apply(hosts, commands)) == {"h1": 1, "h3": 1, "h4": 1}


def test_scale_down_takes_from_the_most_loaded_host_first() -> None:
    hosts = [host("h1", actors=[ours(2)]), host("h2", in_flight=10, actors=[ours(2)]), host("h3", actors=[ours(2)])]
    commands = plan([echo(4)], [], hosts)
    assert commands == [ScaleActor("h2", ECHO_ID, "sha256:mecho", 0, OURS, {"limits": {}})]
    assert plan([echo(0)], [], hosts) == [
        ScaleActor(h, ECHO_ID, "sha256:mecho", 0, OURS, {"limits": {}}) for h in ("h1", "h2", "h3")
    ]


def test_instances_on_a_draining_host_are_placed_elsewhere() -> None:
    hosts = [host("h1", draining=True, actors=[ours(2)]), host("h2"), host("h3")]
    after = settle([echo(2)], [], hosts)
    assert running(after) == {"h2": 1, "h3": 1}


def test_instances_on_a_host_that_lost_its_label_move() -> None:
    hosts = [host("h1", zone="west", actors=[ours(1)]), host("h2", zone="east")]
    assert running(settle([echo(1, zone("east"))], [], hosts)) == {"h2": 1}


def test_overlapping_spreads_keep_what_runs() -> None:
    # h2 satisfies both spreads; the instance on it must stay where it is
    hosts = [
        HostView("h1", {"zone": "east"}, (ours(1),)),
        HostView("h2", {"zone": "east", "gpu": "yes"}, (ours(1),)),
        HostView("h3", {"gpu": "yes"}),
    ]
    east, gpu = Spread("east", {"zone": "east"}, 1), Spread("gpu", {"gpu": "yes"}, 1)
    assert plan([echo(2, east, gpu)], [], hosts) == []
    assert plan([echo(2, gpu, east)], [], hosts) == []


def test_plan_is_deterministic_whatever_the_host_order() -> None:
    hosts = [host(f"h{i}", zone="east" if i % 2 else "west", in_flight=i % 3) for i in range(8)]
    desired = [echo(7, zone("east", 2), zone("west", 1))]
    assert plan(desired, [], hosts) == plan(desired, [], list(reversed(hosts)))


# --- daemonscaler ----------------------------------------------------------------------------------------


def test_daemonscaler_runs_replicas_on_every_eligible_host() -> None:
    hosts = [host("a", zone="east"), host("b", zone="east", draining=True), host("c", zone="west")]
    after = settle([echo(2, zone("east"), kind="daemonscaler")], [], hosts)
    assert running(after) == {"a": 2}
    assert running(settle([echo(1, kind="daemonscaler")], [], after)) == {"a": 1, "c": 1}


def test_daemonscaler_follows_a_new_host() -> None:
    hosts = [host("a", actors=[ours(1)])]
    commands = plan([echo(1, kind="daemonscaler")], [], [*hosts, host("b")])
    assert commands == [ScaleActor("b", ECHO_ID, "sha256:mecho", 1, OURS, {"limits": {}})]


# --- orphans ---------------------------------------------------------------------------------------------


def test_instances_of_undesired_components_are_stopped_and_unmanaged_ones_left_alone() -> None:
    old_app = owner_annotations("legacy", "web")
    hosts = [
        host(
            "h1",
            actors=[ActorInstances("MOLD", 2, old_app), ActorInstances("MMANUAL", 3, {})],
            providers=[
                ProviderRunning("VOLD", "default", "wasmcloud:httpserver", old_app),
                ProviderRunning("VMANUAL", "default", "wasmcloud:httpserver", {}),
            ],
        )
    ]
    assert plan([], [], hosts) == [
        ScaleActor("h1", "MOLD", "", 0, old_app, {}),
        StopProvider("h1", "VOLD", "default", old_app),
    ]
    assert plan([], [], hosts, managed_apps={"other"}) == []
    settle([], [], hosts)


def test_a_new_actor_id_replaces_the_old_one() -> None:
    hosts = [host("h1", actors=[ours(1, actor_id="MV1")]), host("h2")]
    commands = plan([echo(1, actor_id="MV2")], [], hosts)
    assert commands == [
        ScaleActor("h1", "MV1", "", 0, OURS, {}),
        ScaleActor("h1", "MV2", "sha256:mv2", 1, OURS, {"limits": {}}),
    ]
    assert plan([echo(1, actor_id="MV2")], [], apply(hosts, commands)) == []


# --- providers -------------------------------------------------------------------------------------------


def test_providers_spread_one_per_host_on_the_least_loaded() -> None:
    hosts = [host("h1", in_flight=5), host("h2"), host("h3")]
    commands = plan([], [kv(2)], hosts)
    assert commands == [
        StartProvider(
            h, "VKV", "builtin:keyvalue", "default", "wasmcloud:keyvalue", {}, owner_annotations("shop", "store")
        )
        for h in ("h2", "h3")
    ]
    assert plan([], [kv(2)], apply(hosts, commands)) == []


def test_a_provider_runs_at_most_once_per_host() -> None:
    after = settle([], [kv(5)], [host("h1"), host("h2")])
    assert providers_on(after) == ["h1", "h2"]


def test_a_provider_already_running_for_someone_else_is_joined() -> None:
    foreign = ProviderRunning("VKV", "default", "wasmcloud:keyvalue", {})
    hosts = [host("h1", providers=[foreign]), host("h2")]
    after = settle([], [kv(1)], hosts)
    assert providers_on(after) == ["h1", "h1"]  # shared with the unmanaged instance, not a second process
    assert unplaceable([], [kv(1)], [hosts[0]]) == {}


def test_a_renamed_provider_component_takes_over_the_slot() -> None:
    old = owner_annotations("shop", "kv-old")
    hosts = [host("h1", providers=[ProviderRunning("VKV", "default", "wasmcloud:keyvalue", old)])]
    commands = plan([], [kv(1)], hosts)
    assert [type(c) for c in commands] == [StopProvider, StartProvider]
    assert plan([], [kv(1)], apply(hosts, commands)) == []


def test_two_applications_wanting_the_same_provider_share_one_instance() -> None:
    other = DesiredProvider(
        "blog", "store", "VKV", "builtin:keyvalue", "wasmcloud:keyvalue", "default", {}, Scaler("spreadscaler", 1)
    )
    after = settle([], [kv(1), other], [host("h1"), host("h2")])
    assert providers_on(after) == ["h1", "h1"]  # one process on h1, owned by both applications
    assert unplaceable([], [kv(1), other], [host("h1")]) == {}
    # when one application goes, the other keeps it: only that owner's share is stopped
    assert plan([], [other], after) == [StopProvider("h1", "VKV", "default", owner_annotations("shop", "store"))]


def test_provider_daemonscaler_and_scale_down() -> None:
    hosts = [host("h1", zone="east"), host("h2", zone="east"), host("h3", zone="west")]
    after = settle([], [kv(1, zone("east"), kind="daemonscaler")], hosts)
    assert providers_on(after) == ["h1", "h2"]
    store = owner_annotations("shop", "store")
    assert plan([], [kv(1, zone("east"))], after) == [StopProvider("h2", "VKV", "default", store)]


# --- unplaceable -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "hosts", "reason"),
    [
        (echo(1, zone("east")), [host("a", zone="west")], "no host matches requirements {zone: east}"),
        (echo(1), [], "no hosts in the lattice"),
        (echo(1), [host("a", draining=True)], "every host is draining"),
        (
            echo(1, zone("east")),
            [host("a", zone="east", draining=True), host("b")],
            "every host matching {zone: east} is draining",
        ),
        (
            echo(4, zone("east", 3), zone("west", 1)),
            [host("a", zone="north"), host("b", zone="west", draining=True)],
            "spread 'east': no host matches requirements {zone: east}; "
            "spread 'west': every host matching {zone: west} is draining",
        ),
        (echo(1, zone("east"), kind="daemonscaler"), [host("a")], "no host matches requirements {zone: east}"),
    ],
)
def test_unplaceable_components_say_why(desired: DesiredActor, hosts: list[HostView], reason: str) -> None:
    assert unplaceable([desired], [], hosts) == {("shop", "echo"): reason}
    assert plan([desired], [], hosts) == []


@pytest.mark.parametrize(
    ("desired", "hosts"),
    [
        (echo(1), [host("a")]),
        (echo(0, zone("east")), [host("a")]),
        (echo(1, zone("east"), zone("west"), kind="daemonscaler"), [host("a", zone="west")]),
        (echo(1, zone("east", 1), zone("west", 1)), [host("a", zone="west")]),
        (echo(4, zone("east", 3), zone("west", 1)), [host("a", zone="east")]),
    ],
)
def test_placeable_components_are_not_reported(desired: DesiredActor, hosts: list[HostView]) -> None:
    assert unplaceable([desired], [], hosts) == {}


def test_a_spread_without_hosts_gives_its_share_to_the_others() -> None:
    desired = echo(4, zone("east", 3), zone("west", 1))
    hosts = [host("e1", zone="east"), host("e2", zone="east"), host("n1", zone="north")]
    assert running(settle([desired], [], hosts)) == {"e1": 2, "e2": 2}


def test_an_unplaceable_component_produces_no_command() -> None:
    assert plan([echo(3, zone("east"))], [kv(1, zone("east"))], [host("a", zone="west")]) == []


# --- properties ------------------------------------------------------------------------------------------

zones = st.sampled_from([None, "east", "west"])
host_sets = st.lists(
    st.builds(
        lambda z, load, draining, existing: (z, load, draining, existing),
        zones,
        st.integers(0, 5),
        st.booleans(),
        st.integers(0, 3),
    ),
    max_size=6,
)


def build(spec: list[tuple[str | None, int, bool, int]]) -> list[HostView]:
    return [
        host(f"h{i}", zone=z, in_flight=load, draining=draining, actors=[ours(n)] if n else [])
        for i, (z, load, draining, n) in enumerate(spec)
    ]


@settings(max_examples=300)
@given(host_sets, st.integers(0, 12), st.sampled_from([None, "east"]))
def test_after_the_plan_exactly_replicas_run_when_a_host_is_eligible(
    spec: list[tuple[str | None, int, bool, int]], replicas: int, required: str | None
) -> None:
    hosts = build(spec)
    desired = echo(replicas, *([zone(required)] if required else []))
    after = settle([desired], [], hosts)
    eligible = [h for h in hosts if not h.draining and (required is None or h.labels.get("zone") == required)]
    placed = running(after)
    assert sum(placed.values()) == (replicas if eligible else 0)
    assert set(placed) <= {h.id for h in eligible}
    assert (("shop", "echo") in unplaceable([desired], [], hosts)) == (not eligible and replicas > 0)
    # load-aware: counts on idle eligible hosts differ by at most one when nothing ran before
    if not any(n for *_, n in spec) and all(h.in_flight == 0 for h in eligible) and eligible:
        counts = [placed.get(h.id, 0) for h in eligible]
        assert max(counts) - min(counts) <= 1


spreads = st.lists(
    st.builds(
        lambda name, req, weight: Spread(name, req, weight),
        st.sampled_from(["a", "b", "c", "d"]),
        st.dictionaries(st.sampled_from(["zone", "gpu"]), st.sampled_from(["east", "west", "yes"]), max_size=2),
        st.integers(1, 5),
    ),
    max_size=3,
    unique_by=lambda s: s.name,
)
labelled_hosts = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["zone", "gpu"]), st.sampled_from(["east", "west", "yes"]), max_size=2),
        st.integers(0, 3),
        st.booleans(),
        st.integers(0, 3),
        st.booleans(),
    ),
    max_size=6,
)


@settings(max_examples=300)
@given(labelled_hosts, spreads, st.integers(0, 10), st.booleans(), st.integers(0, 4))
def test_any_plan_settles_in_one_step(
    spec: list[tuple[dict[str, str], int, bool, int, bool]],
    spread: list[Spread],
    replicas: int,
    daemon: bool,
    provider_replicas: int,
) -> None:
    hosts = [
        HostView(
            f"h{i}",
            labels,
            (ours(n),) if n else (),
            (ProviderRunning("VKV", "default", "wasmcloud:keyvalue", owner_annotations("shop", "store")),)
            if has_provider
            else (),
            load,
            draining,
        )
        for i, (labels, load, draining, n, has_provider) in enumerate(spec)
    ]
    actor = echo(replicas, *spread, kind="daemonscaler" if daemon else "spreadscaler")
    after = settle([actor], [kv(provider_replicas, *spread)], hosts)
    if not daemon:
        targets = apportion(replicas, [s.weight for s in spread]) if spread else [replicas]
        assert sum(running(after).values()) <= sum(targets)


def test_hosts_that_refused_a_component_are_passed_over() -> None:
    hosts = [host("h1"), host("h2"), host("h3", in_flight=50)]
    first = plan([echo(1)], [], hosts)
    assert [c.host_id for c in first] == ["h1"]
    again = plan([echo(1)], [], hosts, excluded={("shop", "echo"): {"h1"}})
    assert [c.host_id for c in again] == ["h2"]  # the next least loaded host that did not refuse
    nowhere = plan([echo(1)], [], hosts, excluded={("shop", "echo"): {"h1", "h2", "h3"}})
    assert nowhere == []


def test_a_refusal_keeps_new_instances_away_but_stops_nothing() -> None:
    store = owner_annotations("shop", "store")
    daemon = kv(1, kind="daemonscaler")
    hosts = [host("h1", providers=[ProviderRunning("VKV", "default", "wasmcloud:keyvalue", store)]), host("h2")]
    # h1's start answered too late (recorded as refused), yet the provider runs there: it keeps running
    commands = plan([], [daemon], hosts, excluded={("shop", "store"): {"h1"}})
    assert [(type(c).__name__, c.host_id) for c in commands] == [("StartProvider", "h2")]
    # an actor: h1 keeps its one instance and takes no more, the rest goes elsewhere
    hosts = [host("h1", actors=[ours(1)]), host("h2", in_flight=50)]
    after = apply(hosts, plan([echo(3)], [], hosts, excluded={("shop", "echo"): {"h1"}}))
    assert running(after) == {"h1": 1, "h2": 2}
