"""Error kinds travel in ``InvocationResponse.error_kind``: a busy or timed-out actor is the same error (and the
same HTTP status, from one table) on the caller's side as on its own host; wasmCloud 0.x peers are unaffected."""

from __future__ import annotations

import asyncio

import msgpack
import nats
import pytest

from lattice import keys, subjects
from lattice.connection import settle
from lattice.errors import (
    ActorError,
    Busy,
    DeadlineExceeded,
    Expired,
    InvocationError,
    LatticeError,
    LimitExceeded,
    NoResponders,
    NotFound,
    RemoteError,
    Unreachable,
    error_of_kind,
    http_status,
)
from lattice.messages import Entity, InvocationResponse
from lattice.rpc import Rpc
from lattice.settings import Settings

ACTOR = "M" + "A" * 55


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Busy("full"), 503),
        (DeadlineExceeded("slow"), 504),
        (Expired("late"), 504),
        (Unreachable("gone"), 504),
        (NoResponders("nobody serves it"), 404),
        (NotFound("no such app"), 404),
        (LimitExceeded("too big"), 413),
        (ActorError("guest said no"), 502),
        (LatticeError("bad input"), 400),
    ],
)
def test_one_table_of_http_statuses(error: LatticeError, status: int) -> None:
    assert http_status(error) == status
    remote = error_of_kind(error.kind, str(error))  # the same failure answered by another host
    assert http_status(remote) == (status if isinstance(error, InvocationError) else 502)


def test_a_remote_error_is_also_its_kind() -> None:
    busy = error_of_kind("busy", "actor is busy")
    assert isinstance(busy, Busy) and isinstance(busy, RemoteError) and busy.kind == "busy"
    assert str(busy) == "actor is busy" and type(busy) is type(error_of_kind("busy", "again"))
    for unknown in (None, "", "no-such-kind", "config"):  # not an invocation failure: a plain RemoteError
        plain = error_of_kind(unknown, "x")
        assert type(plain) is RemoteError and plain.kind == "remote_error"


def test_the_kind_travels_only_with_an_error_and_unknown_keys_are_ignored() -> None:
    ok = InvocationResponse("id-1", msg=b"hi")
    assert msgpack.unpackb(ok.to_msgpack()) == {"invocation_id": "id-1", "msg": b"hi", "content_length": 2}
    failed = InvocationResponse("id-2", error="busy", content_length=0, error_kind="busy")
    assert msgpack.unpackb(failed.to_msgpack()) == {
        "invocation_id": "id-2",
        "msg": b"",
        "content_length": 0,
        "error": "busy",
        "error_kind": "busy",
    }
    assert InvocationResponse.from_msgpack(failed.to_msgpack()) == failed
    # a wasmCloud 0.x peer: no error_kind, msg as str, keys lattice does not know
    peer = msgpack.packb({"invocation_id": "id-3", "msg": "", "error": "boom", "content_length": 0, "extra": 1})
    assert InvocationResponse.from_msgpack(peer) == InvocationResponse("id-3", error="boom", content_length=0)


async def test_a_busy_answer_over_nats_raises_busy_on_the_caller(settings: Settings) -> None:
    cluster = keys.from_seed(settings.cluster_seed or "")
    nc_callee, nc_caller = await nats.connect(settings.nats_url), await nats.connect(settings.nats_url)
    try:
        callee = Rpc(nc_callee, lattice=settings.lattice, cluster_key=cluster, sender_id="NCALLEE")
        caller = Rpc(nc_caller, lattice=settings.lattice, cluster_key=cluster, sender_id="NCALLER")
        target = Entity(ACTOR)
        answers = iter([Busy("actor is busy: 1 calls running"), DeadlineExceeded("ran past its deadline")])

        async def serve(msg: nats.aio.msg.Msg) -> None:
            inv = await callee.receive(msg.data, target=target)
            await callee.answer(msg.reply, inv.id, next(answers), responder=target)

        await nc_callee.subscribe(subjects.actor_rpc(settings.lattice, ACTOR), cb=serve)
        await settle(nc_callee)
        with pytest.raises(Busy) as busy:
            await caller.invoke(Entity("V" + "B" * 55, "wasmcloud:httpserver", "default"), target, "Op.Do", b"")
        assert isinstance(busy.value, RemoteError) and http_status(busy.value) == 503
        with pytest.raises(DeadlineExceeded) as slow:
            await caller.invoke(Entity("V" + "B" * 55, "wasmcloud:httpserver", "default"), target, "Op.Do", b"")
        assert http_status(slow.value) == 504
    finally:
        await asyncio.gather(nc_callee.close(), nc_caller.close())
