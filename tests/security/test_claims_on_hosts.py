"""Signed, tampered, expired, untrusted and unsigned actors on hosts with and without trusted issuers,
and capabilities enforced at the host call (SPEC §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lattice import claims, keys
from lattice.capability import KEYVALUE, builtin_provider_id
from lattice.errors import ActorError, CapabilityDenied
from lattice.messages import Entity, LinkDefinition
from tests.conftest import wait_for
from tests.host import guests
from tests.host.test_host import command, write

ACCOUNT = keys.generate("account")
OTHER = keys.generate("account")


def sign(wasm: bytes, issuer: keys.KeyPair = ACCOUNT, **kwargs: Any) -> bytes:
    kwargs.setdefault("caps", [])
    return claims.sign_actor(wasm, issuer, name="t", **kwargs)


def tampered(wasm: bytes) -> bytes:
    signed = bytearray(sign(wasm))
    index = signed.index(b"\x01\x0b")  # inside the code: flip a constant's byte
    signed[index - 1] ^= 0x01
    return bytes(signed)


@pytest.mark.parametrize(
    ("case", "trusted", "expected"),
    [
        ("signed", None, None),
        ("signed", "issuer", None),
        ("untrusted", "issuer", "not trusted"),
        ("expired", None, "expired"),
        ("not_yet", None, "not valid before"),
        ("tampered", None, "hash mismatch"),
        ("unsigned", None, "unsigned actors are not allowed"),
    ],
)
async def test_host_admits_only_valid_claims(
    host_factory: Any, tmp_path: Path, case: str, trusted: str | None, expected: str | None
) -> None:
    wasm = {
        "signed": lambda: sign(guests.ECHO),
        "untrusted": lambda: sign(guests.ECHO, OTHER),
        "expired": lambda: sign(guests.ECHO, expires_in_s=-10),
        "not_yet": lambda: sign(guests.ECHO, not_before=4_000_000_000),
        "tampered": lambda: tampered(guests.ECHO),
        "unsigned": lambda: guests.ECHO,
    }[case]()
    host = await host_factory(
        allow_unsigned=False, trusted_issuers=frozenset({ACCOUNT.public_key}) if trusted else None
    )
    reply = await command(host, "scale", {"actor_ref": write(tmp_path, "a.wasm", wasm), "count": 1})
    if expected is None:
        assert reply["accepted"], reply
    else:
        assert not reply["accepted"]
        assert expected in reply["error"]


async def test_actor_without_keyvalue_claim_is_refused_at_the_host_call(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    await command(host, "lp", {"provider_ref": "builtin:keyvalue", "link_name": "default"})
    caller = guests.host_caller(KEYVALUE, "KeyValue.Contains")
    for caps, allowed in (([], False), ([KEYVALUE], True)):
        wasm = sign(caller, caps=caps)
        actor_id = (await command(host, "scale", {"actor_ref": write(tmp_path, f"{allowed}.wasm", wasm), "count": 1}))[
            "actor_id"
        ]
        link = LinkDefinition(actor_id, builtin_provider_id("keyvalue"), KEYVALUE)
        await host.data.put_link(link)
        await wait_for(lambda link=link: host.data.link_for(link.actor_id, KEYVALUE, "default"))
        payload = b"\xa3key"  # msgpack "key"
        if allowed:
            assert await host.invoke(actor_id, "X.Y", payload) == b"\xc2"  # msgpack false: no such key
        else:
            with pytest.raises(ActorError, match=f"without the {KEYVALUE} capability"):
                await host.invoke(actor_id, "X.Y", payload)


async def test_provider_cannot_invoke_actor_lacking_its_contract(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    wasm = sign(guests.ECHO, caps=[KEYVALUE])  # no wasmcloud:httpserver
    actor_id = (await command(a, "scale", {"actor_ref": write(tmp_path, "e.wasm", wasm), "count": 1}))["actor_id"]
    http = Entity(builtin_provider_id("httpserver"), "wasmcloud:httpserver", "default")
    with pytest.raises(CapabilityDenied, match="does not hold the wasmcloud:httpserver capability"):
        await a.router.invoke_actor(actor_id, "HttpServer.HandleRequest", b"", origin=http)
    with pytest.raises(Exception, match="does not hold the wasmcloud:httpserver capability"):
        await b.router.invoke_actor(actor_id, "HttpServer.HandleRequest", b"", origin=http)  # over NATS
    assert await b.router.invoke_actor(actor_id, "X.Y", b"ok", origin=Entity(b.id)) == b"ok"
