"""A host's inventory as one type: the bytes a host sends are pinned, what it sends reads back equal, wasmCloud
0.x-shaped documents read, and a document that would mislead the scheduler is refused naming the field."""

from __future__ import annotations

import json

import pytest

from lattice.errors import ConfigError
from lattice.inventory import (
    ActorInventory,
    ActorSummary,
    HostInventory,
    HostSummary,
    InstanceShare,
    ProviderInventory,
    WasiView,
)

ACTOR = "M" + "A" * 55
PROVIDER = "V" + "B" * 55
HOST = "N" + "C" * 55

ACTOR_INV = ActorInventory(
    ACTOR,
    "sha256:" + "ab" * 32,
    "echo",
    None,
    1,
    "wapc",
    (InstanceShare({"app": "a"}, 2), InstanceShare({}, 1)),
    3,
    in_flight=1,
    waiting=0,
    live_instances=2,
    calls=40,
    failures=1,
    load=0.75,
    latency_buckets=(0, 3, 30, 7),
    max_instances=8,
    wasi=WasiView({"/data": "/srv/data"}, True, ("HOME",)),
)
PROVIDER_INV = ProviderInventory(PROVIDER, "default", "wasmcloud:keyvalue", "builtin:keyvalue", (ACTOR,), {"app": "a"})
HOST_INV = HostInventory.of(
    HOST,
    {"zone": "west"},
    "0.9.0",
    12.5,
    (ACTOR_INV,),
    (PROVIDER_INV, ProviderInventory(PROVIDER, "other")),
    draining=False,
    metrics_url=None,
)

GOLDEN = (
    '{"host_id":"' + HOST + '","labels":{"zone":"west"},"version":"0.9.0","uptime_seconds":12.5,'
    '"actors":[{"id":"' + ACTOR + '","image_ref":"sha256:' + "ab" * 32 + '","name":"echo","call_alias":null,'
    '"api_version":1,"abi":"wapc","instances":[{"annotations":{"app":"a"},"count":2},{"annotations":{},"count":1}],'
    '"count":3,"in_flight":1,"waiting":0,"live_instances":2,"calls":40,"failures":1,"load":0.75,'
    '"latency_buckets":[0,3,30,7],"max_instances":8,'
    '"wasi":{"dirs":{"/data":"/srv/data"},"readonly":true,"env":["HOME"]},"properties_key":""}],'
    '"providers":[{"id":"' + PROVIDER + '","link_name":"default","contract_id":"wasmcloud:keyvalue",'
    '"image_ref":"builtin:keyvalue","links":["' + ACTOR + '"],"annotations":{"app":"a"}},'
    '{"id":"' + PROVIDER + '","link_name":"other","contract_id":"","image_ref":"","links":null,"annotations":{}}],'
    '"instances":3,"in_flight":1,"draining":false,"metrics_url":null}'
)


def _wire(doc: object) -> str:
    return json.dumps(doc, separators=(",", ":"))


def test_inventory_bytes_are_the_wire_shape() -> None:
    assert _wire(HOST_INV.to_dict()) == GOLDEN
    assert (HOST_INV.instances, HOST_INV.in_flight) == (3, 1)  # summed from the actors


def test_inventory_survives_the_wire() -> None:
    assert HostInventory.from_dict(json.loads(GOLDEN)) == HOST_INV


def test_ping_and_bid_are_parts_of_the_inventory() -> None:
    assert HOST_INV.ping() == {"host_id": HOST, "labels": {"zone": "west"}, "version": "0.9.0", "uptime_seconds": 12.5}
    assert HOST_INV.bid() == {"host_id": HOST, "labels": {"zone": "west"}, "instances": 3}
    assert HostInventory.from_dict(HOST_INV.ping()) == HostInventory(HOST, {"zone": "west"}, "0.9.0", 12.5)


def test_a_wasmcloud_0x_heartbeat_reads() -> None:
    heartbeat = {
        "host_id": HOST,
        "actors": {ACTOR: 2},
        "providers": [{"public_key": PROVIDER, "link_name": "default", "contract_id": "wasmcloud:httpserver"}],
        "labels": {"hostcore.os": "linux"},
        "friendly_name": "quiet-snow-1234",
        "uptime_seconds": 30,
        "version": "0.63.0",
    }
    inv = HostInventory.from_dict(heartbeat)
    assert [(a.id, a.count, a.instances) for a in inv.actors] == [(ACTOR, 2, (InstanceShare({}, 2),))]
    assert inv.providers == (ProviderInventory(PROVIDER, "default", "wasmcloud:httpserver"),)
    assert (inv.instances, inv.in_flight, inv.draining, inv.metrics_url) == (2, 0, False, None)


def test_a_wasmcloud_0x_inventory_reads() -> None:
    """0.x lists one entry per instance, without a count: each is one instance."""
    doc = {
        "host_id": HOST,
        "issuer": "A" * 56,
        "actors": [
            {"id": ACTOR, "image_ref": "r/a:1", "instances": [{"instance_id": "x", "annotations": {}, "revision": 0}]}
        ],
        "providers": [{"id": PROVIDER, "link_name": "default", "annotations": {}, "revision": 0}],
    }
    inv = HostInventory.from_dict(doc)
    assert (inv.actors[0].count, inv.actors[0].abi, inv.actors[0].max_instances, inv.instances) == (1, "wapc", None, 1)
    assert inv.labels == {} and inv.version is None


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "host_id"),
        ({"host_id": 7}, "host_id"),
        ({"host_id": HOST, "labels": ["zone"]}, "labels"),
        ({"host_id": HOST, "actors": "many"}, "actors"),
        ({"host_id": HOST, "actors": [{"count": 1}]}, "id"),
        ({"host_id": HOST, "actors": [{"id": ACTOR, "count": -1}]}, "count"),
        ({"host_id": HOST, "actors": [{"id": ACTOR, "instances": [{"count": True}]}]}, "count"),
        ({"host_id": HOST, "actors": {ACTOR: "two"}}, "count"),
        ({"host_id": HOST, "providers": [{"link_name": "default"}]}, "id"),
        ({"host_id": HOST, "providers": [{"id": PROVIDER, "annotations": "a=b"}]}, "annotations"),
        ({"host_id": HOST, "uptime_seconds": "long"}, "uptime_seconds"),
        ("not a map", "map"),
    ],
)
def test_a_misleading_inventory_is_refused_naming_the_field(doc: object, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        HostInventory.from_dict(doc)


def test_load_gauges_of_the_wrong_type_count_as_nothing() -> None:
    """The autoscaler sums them over hosts: one host's junk must not refuse its whole heartbeat."""
    junk = {"id": ACTOR, "count": 1, "calls": "x", "in_flight": -1, "load": float("nan"), "latency_buckets": "junk"}
    inv = HostInventory.from_dict({"host_id": HOST, "in_flight": 1.5, "actors": [junk]})
    actor = inv.actors[0]
    assert (actor.calls, actor.in_flight, actor.load, actor.latency_buckets, inv.in_flight) == (0, 0, 0.0, (), 0)
    buckets = HostInventory.from_dict({"host_id": HOST, "actors": [{"id": ACTOR, "latency_buckets": [1, "a", True]}]})
    assert buckets.actors[0].latency_buckets == (1, 0, 0)


def test_host_summary_row_is_the_inventory_seen_from_the_control_plane() -> None:
    summary = HostSummary.of(HOST_INV, 0.25)
    row = summary.to_dict()
    assert _wire(row["actors"]) == '[{"id":"' + ACTOR + '","name":"echo","count":3}]'
    assert list(row) == [
        "id",
        "labels",
        "version",
        "uptime_seconds",
        "last_seen_seconds_ago",
        "actors",
        "providers",
        "instances",
        "in_flight",
        "draining",
        "metrics_url",
    ]
    assert row["providers"] == [p.to_dict() for p in HOST_INV.providers]
    assert HostSummary.from_dict(json.loads(json.dumps(row))) == summary


def test_actor_label_never_cuts_an_id() -> None:
    assert ActorSummary(ACTOR, "echo", 1).label() == "echo"
    assert ActorSummary(ACTOR, "echo", 1).label(wide=True) == f"echo {ACTOR}"
    assert ActorSummary(ACTOR, None, 1).label() == ACTOR
