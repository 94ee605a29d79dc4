"""The host ↔ control plane commands as one set of types: what the reconciler sends is what the host parses."""

from __future__ import annotations

import json

import pytest

from lattice.commands import CommandReply, ScaleActor, StartProvider, StopProvider
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
