"""The autoscaler as a pure function (SPEC §5 elastic spreadscaler): load → replicas, no NATS."""

from __future__ import annotations

import pytest

from lattice.controlplane import autoscale
from lattice.controlplane.autoscale import SCALE_DOWN_COOLDOWN_S, Load, decide, initial, wake
from lattice.controlplane.manifest import parse_manifest
from lattice.controlplane.model import Elastic
from lattice.errors import ManifestError
from lattice.inventory import HostInventory
from lattice.loadstats import BOUNDS_MS

SPEC = Elastic(min_replicas=0, max_replicas=8, target_in_flight=4, idle_timeout_s=60)


def test_scales_up_at_once_to_the_demand_within_max() -> None:
    state = initial(SPEC, 0.0)
    assert state.target == 1
    assert decide(SPEC, state, Load(in_flight=10, calls=3), 1.0).target == 3  # ceil(10 / 4)
    assert decide(SPEC, state, Load(in_flight=400, calls=3), 1.0).target == 8  # never past max


def test_scales_down_only_after_the_cooldown_and_to_the_window_peak() -> None:
    state = decide(SPEC, initial(SPEC, 0.0), Load(in_flight=16, calls=1), 0.0)
    assert state.target == 4
    t, calls = 0.0, 1
    for demand in (5, 1, 9, 2):  # wobbling load, all below 16 in flight
        t, calls = t + 5, calls + 1
        state = decide(SPEC, state, Load(in_flight=demand, calls=calls), t)
        assert state.target == 4  # no flapping inside the cooldown
    state = decide(SPEC, state, Load(in_flight=1, calls=calls + 1), 5 + SCALE_DOWN_COOLDOWN_S + 1)
    assert state.target == 3  # the highest demand seen while below: ceil(9 / 4)


def test_idle_drops_to_min_replicas_even_zero_and_a_call_wakes_it() -> None:
    state = decide(SPEC, initial(SPEC, 0.0), Load(calls=5), 0.0)
    state = decide(SPEC, state, Load(calls=5), 30.0)
    assert state.target == 1  # quiet, but not for idle_timeout_s yet
    state = decide(SPEC, state, Load(calls=5), 61.0)
    assert state.target == 0
    assert decide(SPEC, state, Load(calls=5), 100.0).target == 0  # stays at zero while nobody calls
    woken = wake(SPEC, state, 101.0)
    assert woken.target == 1
    assert decide(SPEC, woken, Load(calls=5), 102.0).target == 1  # not idle again straight away


def test_min_replicas_is_a_floor() -> None:
    spec = Elastic(min_replicas=2, max_replicas=5)
    state = initial(spec, 0.0)
    assert state.target == 2
    assert decide(spec, state, Load(), 1000.0).target == 2


def manifest(props: str) -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: elastic, annotations: {{version: v1}}}}
spec:
  components:
    - name: echo
      type: actor
      properties: {{image: "sha256:{"0" * 64}"}}
      traits:
        - type: spreadscaler
          properties: {props}
"""


def test_manifest_fields_are_parsed_with_their_defaults() -> None:
    app = parse_manifest(manifest("{min_replicas: 0, max_replicas: 5}"))
    scaler = app.components[0].scaler
    assert scaler.elastic == Elastic(0, 5, 4, 60.0)
    full = parse_manifest(manifest("{min_replicas: 1, max_replicas: 3, target_in_flight: 2, idle_timeout_s: 9}"))
    assert full.components[0].scaler.elastic == Elastic(1, 3, 2, 9.0)


@pytest.mark.parametrize(
    ("props", "field", "reason"),
    [
        ("{min_replicas: 3, max_replicas: 2}", "min_replicas", "greater than max_replicas"),
        ("{min_replicas: 0, max_replicas: 2, target_in_flight: 0}", "target_in_flight", ""),
        ("{max_replicas: 100000}", "max_replicas", ""),
        ("{replicas: 2, max_replicas: 4}", "replicas", "not both"),
        ("{min_replicas: -1}", "min_replicas", ""),
    ],
)
def test_bad_elastic_fields_name_the_field(props: str, field: str, reason: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest(props))
    assert caught.value.field is not None and caught.value.field.endswith(field), caught.value
    assert reason in str(caught.value)


def test_planner_is_pure() -> None:
    assert autoscale.decide(SPEC, initial(SPEC, 0.0), Load(in_flight=8), 1.0) == autoscale.decide(
        SPEC, initial(SPEC, 0.0), Load(in_flight=8), 1.0
    )


def test_the_time_averaged_load_drives_the_planner_when_no_call_is_caught_in_flight() -> None:
    """A fast actor: heartbeats never catch a call in flight, but 9.5 calls were in its pools on average."""
    state = decide(SPEC, initial(SPEC, 0.0), Load(calls=5000, load=9.5), 1.0)
    assert state.target == 3  # ceil(9.5 / 4)
    assert decide(SPEC, state, Load(calls=9000, load=9.5), 2.0).target == 3  # steady: stays
    assert decide(SPEC, state, Load(in_flight=20, calls=9000, load=2.0), 2.0).target == 5  # a burst: the snapshot
    fresh = initial(SPEC, 0.0)
    assert decide(SPEC, fresh, Load(calls=1, load=8.001), 1.0).target == 2  # a hair over 2 × 4 is not 3 replicas
    assert decide(SPEC, fresh, Load(calls=1, load=8.1), 1.0).target == 3
    assert Load(in_flight=1, waiting=2, load=2.5).busy == 3.0


def test_the_cooldown_is_a_parameter_and_load_falls_back_to_the_peak_after_it() -> None:
    state = decide(SPEC, initial(SPEC, 0.0), Load(calls=1, load=30.0), 0.0)
    assert state.target == 8
    state = decide(SPEC, state, Load(calls=2, load=3.0), 1.0, cooldown_s=2.0)
    assert state.target == 8  # below since t=1, cooldown 2 s
    state = decide(SPEC, state, Load(calls=3, load=5.0), 2.0, cooldown_s=2.0)
    state = decide(SPEC, state, Load(calls=4, load=1.0), 3.0, cooldown_s=2.0)
    assert state.target == 2  # the window's peak: ceil(5 / 4)


def test_loads_are_summed_over_hosts_with_latency_and_bad_values_ignored() -> None:
    size = len(BOUNDS_MS) + 1
    buckets = [1] * size
    hosts = [
        {"actors": [{"id": "MA", "in_flight": 1, "calls": 10, "failures": 1, "load": 1.5, "latency_buckets": buckets}]},
        {"actors": [{"id": "MA", "waiting": 2, "calls": 5, "load": 0.25, "latency_buckets": buckets}]},
        {"actors": [{"id": "MA", "calls": "x", "load": float("nan"), "latency_buckets": "junk"}, {"id": "MB"}]},
    ]
    loads = autoscale.loads_of(HostInventory.from_dict({"host_id": f"N{i}", **h}) for i, h in enumerate(hosts))
    assert loads["MA"] == Load(1, 2, 15, 1, 1.75, tuple([2] * size))
    assert loads["MB"] == Load(latency=tuple([0] * size))
