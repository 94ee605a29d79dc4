"""The fast path between members holding the same cluster seed (docs/security.md): an invocation's
``claims_mac`` replaces the Ed25519 check of its claims, and the answer carries an ``m1`` seal. Each test
is one way to abuse it; the pure ones check the codes, the others a real host on the test's nats-server.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS

from lattice import claims, keys, seal, subjects
from lattice.connection import settle
from lattice.errors import ClaimsError
from lattice.messages import Entity, Invocation, InvocationResponse
from lattice.rpc import Rpc, response_context
from lattice.settings import Settings
from tests.host import guests
from tests.host.test_host import command, write

CLUSTER = keys.generate("cluster")
OTHER = keys.generate("cluster")
ORIGIN, TARGET = claims.actor_url("M" + "A" * 55), claims.actor_url("M" + "B" * 55)


def _token(signer: keys.KeyPair = CLUSTER, msg: bytes = b"x") -> str:
    return claims.sign_invocation(
        signer, origin_url=ORIGIN, target_url=TARGET, operation="Op.Run", msg=msg, host_id="N"
    )


def _with_bad_signature(token: str) -> str:
    head, body, _ = token.split(".")
    return f"{head}.{body}.{base64.urlsafe_b64encode(bytes(64)).rstrip(b'=').decode()}"


def test_mac_seal_checks_only_with_the_seed_that_made_it() -> None:
    mine = seal.Sealer(CLUSTER)
    sealed = mine.seal("ctx", b"body", mac=True)
    assert sealed.startswith("m1.") and mine.check(sealed, "ctx", b"body", what="t") == CLUSTER.public_key
    with pytest.raises(ClaimsError, match="does not verify"):
        mine.check(sealed.replace("m1.", "m1.", 1), "ctx", b"other body", what="t")
    with pytest.raises(ClaimsError, match="does not verify"):
        mine.check(sealed, "other ctx", b"body", what="t")
    # a member of another cluster that trusts ours as an issuer cannot check a code made with our seed: refused,
    # never accepted unchecked
    with pytest.raises(ClaimsError, match="only holders"):
        seal.Sealer(OTHER, issuers={CLUSTER.public_key}).check(sealed, "ctx", b"body", what="t")


def test_mac_seal_claiming_the_cluster_key_but_made_with_another_seed_is_refused() -> None:
    forged = seal.Sealer(OTHER).seal("ctx", b"body", mac=True).replace(OTHER.public_key, CLUSTER.public_key)
    with pytest.raises(ClaimsError, match="does not verify"):
        seal.Sealer(CLUSTER).check(forged, "ctx", b"body", what="t")


def test_vouch_is_bound_to_the_seed_and_the_token() -> None:
    mine, token = seal.Sealer(CLUSTER), _token()
    assert mine.vouched(token, mine.vouch(token))
    assert not mine.vouched(token, seal.Sealer(OTHER).vouch(token))
    assert not mine.vouched(_token(msg=b"y"), mine.vouch(token))
    assert not mine.vouched(token, b"")
    assert not mine.vouched(token, bytes(32))
    # the code over the claims is not a seal code: one cannot stand in for the other
    assert mine.vouch(token) != mine._mac(token.encode())


def test_vouched_claims_skip_only_the_signature() -> None:
    bad = _with_bad_signature(_token())
    call = {"origin_url": ORIGIN, "target_url": TARGET, "operation": "Op.Run", "msg": b"x"}
    with pytest.raises(ClaimsError, match="signature invalid"):
        claims.verify_invocation(bad, cluster_issuers={CLUSTER.public_key}, **call)  # type: ignore[arg-type]
    assert claims.verify_invocation(bad, cluster_issuers={CLUSTER.public_key}, vouched_by=CLUSTER.public_key, **call)  # type: ignore[arg-type]
    # vouched by one key, issued by another: the signature is checked
    other = _with_bad_signature(_token(OTHER))
    with pytest.raises(ClaimsError, match="signature invalid"):
        claims.verify_invocation(
            other,
            cluster_issuers={CLUSTER.public_key, OTHER.public_key},
            vouched_by=CLUSTER.public_key,
            **call,  # type: ignore[arg-type]
        )
    # everything else is still checked on the fast path
    with pytest.raises(ClaimsError, match="hash mismatch"):
        claims.verify_invocation(
            bad,
            cluster_issuers={CLUSTER.public_key},
            vouched_by=CLUSTER.public_key,
            **{**call, "msg": b"altered"},  # type: ignore[arg-type]
        )
    with pytest.raises(ClaimsError, match="target mismatch"):
        claims.verify_invocation(
            bad,
            cluster_issuers={CLUSTER.public_key},
            vouched_by=CLUSTER.public_key,
            **{**call, "target_url": ORIGIN},  # type: ignore[arg-type]
        )


@pytest.fixture
async def attacker(settings: Settings) -> Any:
    nc = await nats.connect(settings.nats_url)
    yield nc
    await nc.close()


async def _echo(host_factory: Any, tmp_path: Path, **overrides: Any) -> tuple[Any, str]:
    host = await host_factory(**overrides)
    reply = await command(host, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1})
    return host, reply["actor_id"]


async def test_invocation_with_a_made_up_claims_mac_is_refused(
    host_factory: Any, attacker: NATS, tmp_path: Path
) -> None:
    """Without the seed, a code cannot be made: altered claims with any ``claims_mac`` fall back to the
    signature check and are refused; the host runs nothing."""
    host, actor_id = await _echo(host_factory, tmp_path)
    genuine = host.rpc.sign(Invocation(Entity(host.id), Entity(actor_id), "Echo.Echo", b"pay 1"))
    head, body, sig = genuine.encoded_claims.split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields["wascap"]["hash"] = claims.invocation_hash(
        claims.actor_url(host.id), claims.actor_url(actor_id), "Echo.Echo", b"pay 1000"
    )
    fields["jti"] = "fresh"
    altered = f"{head}.{base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b'=').decode()}.{sig}"
    subject = subjects.actor_rpc(host.settings.lattice, actor_id)
    for code in (genuine.claims_mac, bytes(32), seal.Sealer(OTHER).vouch(altered)):
        forged = Invocation(
            genuine.origin, genuine.target, "Echo.Echo", b"pay 1000", encoded_claims=altered, claims_mac=code
        )
        reply = await attacker.request(subject, forged.to_msgpack(), timeout=5)
        assert "signature invalid" in (InvocationResponse.from_msgpack(reply.data).error or "")
    assert host.actors[actor_id].pool.calls == 0


async def test_spec_shaped_invocation_gets_an_ed25519_seal_and_a_members_gets_a_code(
    host_factory: Any, attacker: NATS, settings: Settings, tmp_path: Path
) -> None:
    """A 0.x-shaped invocation (no ``claims_mac``) is still served, answered with a ``v1`` seal any issuer
    can check; the same call from a member holding the seed is answered with an ``m1`` code."""
    host, actor_id = await _echo(host_factory, tmp_path)
    member = Rpc(
        attacker, lattice=settings.lattice, cluster_key=keys.from_seed(settings.cluster_seed or ""), sender_id="N"
    )
    subject = subjects.actor_rpc(settings.lattice, actor_id)
    for vouched in (False, True):
        inv = member.sign(Invocation(Entity(host.id), Entity(actor_id), "Echo.Echo", b"hi"))
        if not vouched:
            inv = Invocation(inv.origin, inv.target, inv.operation, inv.msg, encoded_claims=inv.encoded_claims)
        reply = await attacker.request(subject, inv.to_msgpack(), timeout=5)
        header = (reply.headers or {}).get(seal.HEADER, "")
        assert header.startswith("m1." if vouched else "v1."), header
        member.sealer.check_headers(reply.headers, response_context(inv.id, Entity(actor_id)), reply.data, what="t")
        assert InvocationResponse.from_msgpack(reply.data).msg == b"hi"


async def test_member_of_a_trusted_other_cluster_gets_answers_it_can_check(
    host_factory: Any, settings: Settings, tmp_path: Path
) -> None:
    """A caller with another seed, trusted as a cluster issuer: its ``claims_mac`` cannot vouch here, so
    the host checks the signature and answers with a ``v1`` seal, which the caller can check."""
    host, actor_id = await _echo(host_factory, tmp_path, cluster_issuers=frozenset({OTHER.public_key}))
    nc = await nats.connect(settings.nats_url)
    try:
        await settle(nc)
        caller = Rpc(
            nc,
            lattice=settings.lattice,
            cluster_key=OTHER,
            cluster_issuers=frozenset({host.rpc.cluster_key.public_key}),
            sender_id="N",
        )
        assert await caller.invoke(Entity(host.id), Entity(actor_id), "Echo.Echo", b"across") == b"across"
    finally:
        await nc.close()
