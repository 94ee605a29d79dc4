"""Serving the invocations that reach a host's actors over NATS (SPEC §4): verify, run, answer — every one.

nats-py runs one subscription's callbacks one at a time, so the callback must not wait. Each call takes
one of two paths, chosen on arrival:

- **right here**, in the callback: the payload came inline (``Rpc.admit_now`` verifies it without
  awaiting anything) and the actor serves it on the loop (``Router.try_inline``). No task is created and
  no loop turn is spent between the message and its answer;
- **a task of its own** for everything that may wait: a payload to fetch from the object store, or a call
  that must run on a worker thread (host calls, no idle instance, tracing on). A call whose inline attempt
  fell through continues in the task with its invocation already admitted (its ``jti`` is spent).

Refusals and failures are answered on either path, sealed with an ``m1`` code when the caller proved it
holds this cluster seed (``Rpc.vouched``), else ``v1``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.msg import Msg

from lattice import subjects
from lattice.errors import Expired, LatticeError, NoResponders
from lattice.host.actors import RunningActor
from lattice.host.router import Router
from lattice.messages import Entity, Invocation
from lattice.observability import tracing
from lattice.rpc import DEFAULT_MAX_PAYLOAD, Rpc

Spawn = Callable[[Coroutine[Any, Any, None], str], Any]


@dataclass(slots=True)
class _Call:
    """What answering one invocation needs, known before (and whatever) its verification says."""

    reply: str
    actor_id: str
    invocation_id: str = ""
    vouched: bool = False


class InvocationServer:
    """The callback of every actor subscription of one host (``on_message``)."""

    def __init__(
        self,
        *,
        host_id: str,
        actors: Mapping[str, RunningActor],
        rpc: Rpc,
        router: Router,
        spawn: Spawn,
        log: Any,
    ) -> None:
        self.host_id = host_id
        self.actors = actors
        self.rpc = rpc
        self.router = router
        self.spawn = spawn
        self.log = log

    async def on_message(self, msg: Msg) -> None:
        call = _Call(msg.reply, subjects.last_segment(msg.subject))
        result: bytes | Exception | None
        try:
            inv = Invocation.from_msgpack(msg.data)
            deadline = inv.deadline()  # read on arrival: a wait for verification or a worker counts
            call.invocation_id = inv.id  # known before verification, so that even a refusal is answered
            if inv.content_length > len(inv.msg):
                self.spawn(self._fetch_and_serve(call, inv, deadline), "invocation")
                return
            inv = self.rpc.admit_now(inv, target=Entity(call.actor_id), max_bytes=self._limit(call.actor_id))
            call.vouched = bool(inv.claims_mac)
            running = self._running(call.actor_id, inv)
            with structlog.contextvars.bound_contextvars(**_log_context(call, inv)):
                result = self.router.try_inline(running, inv.operation, inv.msg, deadline=deadline)
            if result is None:
                self.spawn(self._serve_on_worker(call, inv, running, deadline), "invocation")
                return
        except Exception as exc:
            result = self._failed(call, exc)
        await self._answer(call, result)

    async def _fetch_and_serve(self, call: _Call, inv: Invocation, deadline: float | None) -> None:
        try:
            inv = await self.rpc.admit(inv, target=Entity(call.actor_id), max_bytes=self._limit(call.actor_id))
            call.vouched = bool(inv.claims_mac)
            structlog.contextvars.bind_contextvars(**_log_context(call, inv))  # this task's own context
            running = self._running(call.actor_id, inv)
            result: bytes | Exception = await self.router.submit_local(
                running, inv.operation, inv.msg, parent=inv.trace_context, invocation_id=inv.id, deadline=deadline
            )
        except Exception as exc:
            result = self._failed(call, exc)
        await self._answer(call, result)

    async def _serve_on_worker(
        self, call: _Call, inv: Invocation, running: RunningActor, deadline: float | None
    ) -> None:
        # this task's own context: the bindings reach every log line of the call, here and on the worker
        structlog.contextvars.bind_contextvars(**_log_context(call, inv))
        try:
            result: bytes | Exception = await self.router.on_worker(
                running, inv.operation, inv.msg, parent=inv.trace_context, invocation_id=inv.id, deadline=deadline
            )
        except Exception as exc:
            result = self._failed(call, exc)
        await self._answer(call, result)

    def _limit(self, actor_id: str) -> int:
        running = self.actors.get(actor_id)
        return running.pool.limits.max_payload_bytes if running is not None else DEFAULT_MAX_PAYLOAD

    def _running(self, actor_id: str, inv: Invocation) -> RunningActor:
        running = self.actors.get(actor_id)
        if running is None:  # stopped after NATS routed the call here: the caller tries again (SPEC §5)
            raise NoResponders(f"actor {actor_id} stopped on host {self.host_id} as the call came")
        self.router.check_invocation_allowed(running, inv.origin)
        return running

    def _failed(self, call: _Call, exc: Exception) -> Exception:
        if isinstance(exc, Expired):  # counted and logged per burst by the router, not a line each
            self.router.drops.note(call.actor_id)
        elif isinstance(exc, LatticeError):
            self.log.info("invocation failed", actor_id=call.actor_id, invocation_id=call.invocation_id, error=str(exc))
        else:  # never leave a caller without an answer
            self.log.exception("invocation crashed", actor_id=call.actor_id, exc_info=exc)
        return exc

    async def _answer(self, call: _Call, result: bytes | Exception) -> None:
        await self.rpc.answer(call.reply, call.invocation_id, result, responder=Entity(call.actor_id), mac=call.vouched)


def _log_context(call: _Call, inv: Invocation) -> dict[str, str]:
    context = {"invocation_id": inv.id, "actor_id": call.actor_id}
    tid = tracing.trace_id(inv.trace_context)
    if tid:
        context["trace_id"] = tid
    return context
