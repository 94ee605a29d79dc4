"""The host ↔ control plane commands as one set of types: what the reconciler sends is what the host parses."""

from __future__ import annotations

import json

import pytest

from lattice.commands import (
    COMMANDS,
    Auction,
    CommandReply,
    DeleteLink,
    LaunchActor,
    ScaleActor,
    StartProvider,
    StopActor,
    StopHost,
    StopProvider,
    WakeActor,
)
from lattice.errors import ConfigError

ACTOR = "M" + "A" * 55
PROVIDER = "V" + "B" * 55
HOST = "N" + "C" * 55


def test_every_command_survives_the_wire() -> None:
    commands = [
        ScaleActor(HOST, ACTOR, "sha256:" + "ab" * 32, 3, {"app": "a"}, {"limits": {"max_payload_mb": 2}}),
        StartProvider(HOST, PROVIDER, "builtin:httpserver", "default", "", {"port": 8080}, {"app": "a"}),
        StopProvider(HOST, PROVIDER, "default", {"app": "a"}),
        StopProvider(HOST, PROVIDER, "default", None),  # the whole provider
        LaunchActor(HOST, "oci://r/a:1", 2, {"app": "a"}, {"wasi": {"env": {"A": "1"}}}),
        LaunchActor(HOST, "sha256:" + "cd" * 32),
        StopActor(HOST, ACTOR, {"app": "a"}),
        StopActor(HOST, ACTOR, None),  # every instance
        StopHost(HOST),
    ]
    for cmd in commands:
        body = json.loads(json.dumps(cmd.to_body()))
        assert type(cmd).from_body(HOST, body) == cmd


def test_scale_body_is_the_wire_shape() -> None:
    cmd = ScaleActor(HOST, ACTOR, "file:///srv/a.wasm", 0, {}, {})
    assert (cmd.verb, json.dumps(cmd.to_body(), separators=(",", ":"))) == (
        "scale",
        '{"actor_id":"' + ACTOR + '","actor_ref":"file:///srv/a.wasm","count":0,"annotations":{},"properties":{}}',
    )


def test_parsing_is_tolerant_where_peers_differ_and_strict_where_it_matters() -> None:
    peer = ScaleActor.from_body(HOST, {"image_ref": "oci://r/a:1", "extra": True})  # 0.x spelling, count absent
    assert (peer.image_ref, peer.count, peer.actor_id, peer.annotations) == ("oci://r/a:1", 1, "", {})
    for body, field in [
        ({"count": -1}, "count"),
        ({"count": True}, "count"),
        ({"annotations": ["a"]}, "annotations"),
        ({"properties": "x"}, "properties"),
    ]:
        with pytest.raises(ConfigError, match=field):
            ScaleActor.from_body(HOST, body)
    with pytest.raises(ConfigError, match="provider_ref"):
        StartProvider.from_body(HOST, {"link_name": "default"})
    with pytest.raises(ConfigError, match="provider_id"):
        StopProvider.from_body(HOST, {})


def test_replies() -> None:
    ok = CommandReply(True, HOST, details={"actor_id": ACTOR, "count": 2})
    assert ok.to_dict() == {"accepted": True, "host_id": HOST, "actor_id": ACTOR, "count": 2}
    assert CommandReply.from_dict(ok.to_dict()) == ok
    refused = CommandReply.from_dict({"accepted": False, "host_id": HOST, "error": "no such image"})
    assert (refused.accepted, refused.error) == (False, "no such image")
    assert not CommandReply.from_dict(["not", "a", "map"]).accepted
    assert not CommandReply.from_dict({"accepted": "yes"}).accepted  # only true is true


@pytest.mark.parametrize(
    ("cmd", "verb", "wire"),
    [
        (
            LaunchActor(HOST, "oci://r/a:1", 2, {"app": "a"}),
            "la",
            '{"actor_ref":"oci://r/a:1","count":2,"annotations":{"app":"a"}}',
        ),
        (StopActor(HOST, ACTOR, {}), "sa", '{"actor_id":"' + ACTOR + '","annotations":{}}'),
        (StopActor(HOST, ACTOR), "sa", '{"actor_id":"' + ACTOR + '"}'),
        (StopHost(HOST), "stop", '{"host_id":"' + HOST + '"}'),
    ],
)
def test_wasmcloud_verbs_are_the_wire_shape(cmd: object, verb: str, wire: str) -> None:
    assert isinstance(cmd, LaunchActor | StopActor | StopHost)
    assert (cmd.verb, json.dumps(cmd.to_body(), separators=(",", ":"))) == (verb, wire)
    assert COMMANDS[verb] is type(cmd)


def test_every_verb_of_the_spec_has_its_type() -> None:
    assert sorted(COMMANDS) == sorted(["la", "sa", "scale", "lp", "sp", "stop"])  # SPEC §4


def test_wasmcloud_verbs_parse_tolerantly_and_refuse_what_would_do_harm() -> None:
    launch = LaunchActor.from_body(HOST, {"image_ref": "r/a:1", "host_id": HOST, "extra": 1})  # count absent
    assert launch == LaunchActor(HOST, "r/a:1", 1, {}, {})
    assert launch.scale_to(3) == ScaleActor(HOST, "", "r/a:1", 3, {}, {})
    assert StopHost.from_body(HOST, {"host_id": HOST, "timeout": 500}) == StopHost(HOST)
    assert StopActor.from_body(HOST, {"actor_id": ACTOR, "count": 1}) == StopActor(HOST, ACTOR, None)
    for parse, body, field in [
        (LaunchActor.from_body, {}, "actor_ref"),
        (LaunchActor.from_body, {"actor_ref": "r/a:1", "count": -2}, "count"),
        (LaunchActor.from_body, {"actor_ref": "r/a:1", "annotations": "a"}, "annotations"),
        (LaunchActor.from_body, {"actor_ref": "r/a:1", "properties": []}, "properties"),
        (StopActor.from_body, {"actor_ref": 3}, "actor_id"),
        (StopActor.from_body, {"actor_id": ACTOR, "annotations": ["a"]}, "annotations"),
    ]:
        with pytest.raises(ConfigError, match=field):
            parse(HOST, body)


def test_link_deletion_body() -> None:
    link = DeleteLink(ACTOR, "wasmcloud:keyvalue", "cache")
    wire = '{"actor_id":"' + ACTOR + '","contract_id":"wasmcloud:keyvalue","link_name":"cache"}'
    assert json.dumps(link.to_body(), separators=(",", ":")) == wire
    assert DeleteLink.from_body(json.loads(wire)) == link
    assert DeleteLink.from_body({"actor_id": ACTOR, "contract_id": "c"}).link_name == "default"
    for body, field in [({"contract_id": "c"}, "actor_id"), ({"actor_id": ACTOR}, "contract_id"), ([1], "object")]:
        with pytest.raises(ConfigError, match=field):
            DeleteLink.from_body(body)


def test_wake_request_and_its_reply() -> None:
    assert json.dumps(WakeActor(ACTOR).to_body(), separators=(",", ":")) == '{"actor_id":"' + ACTOR + '"}'
    assert WakeActor.from_body({"actor_id": ACTOR, "extra": 1}) == WakeActor(ACTOR)
    assert json.dumps(CommandReply(True).to_dict()) == '{"accepted": true}'  # what a waiting caller reads
    for body in ({}, {"actor_id": ""}, "MABC"):
        with pytest.raises(ConfigError):
            WakeActor.from_body(body)


def test_auction_body_and_who_bids() -> None:
    auction = Auction({"zone": "west"})
    assert json.dumps(auction.to_body(), separators=(",", ":")) == '{"constraints":{"zone":"west"}}'
    assert Auction.from_body({"actor_ref": "r/a:1", "constraints": {"zone": "west"}}) == auction  # 0.x keys ignored
    assert auction.admits({"zone": "west", "os": "linux"}) and not auction.admits({"zone": "east"})
    assert Auction.from_body({}).admits({})  # no constraints: every host bids
    for body in ({"constraints": ["zone"]}, [1]):
        with pytest.raises(ConfigError):
            Auction.from_body(body)
