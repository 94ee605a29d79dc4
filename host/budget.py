"""A call's deadline counts the guest's own time, never the time it waits in host calls.

wasmcloud-otp#397: with the waits charged, an actor whose provider answered after most of the
deadline had gone was interrupted right after the host call returned — its side effect done, its
caller told it failed. The rule here: a host call's wait is bounded by the RPC timeout (the
router's ``_wait``) and not charged to the deadline; when it returns, the instance's epoch deadline
is re-armed with what the guest has left of its own time. An actor runs at most ``deadline`` of guest
code plus, per host call, at most the RPC timeout of waiting.

``guest_time`` arms a call's budget (both pools' ``_guest``); ``uncharged`` wraps the host-call entry
point. The budget is per worker thread and nests: an actor→actor call on the same thread arms its
own and gives the caller's back on return.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import wasmtime

_T = TypeVar("_T")
_local = threading.local()


@dataclass(slots=True)
class _Budget:
    store: wasmtime.Store
    seconds: float
    tick_s: float
    started: float
    waited: float = 0.0

    def rearm(self) -> None:
        left = self.seconds - (time.monotonic() - self.started - self.waited)
        self.store.set_epoch_deadline(max(1, math.ceil(left / self.tick_s)))


@contextlib.contextmanager
def guest_time(store: wasmtime.Store, seconds: float, tick_s: float, ticks: int) -> Iterator[None]:
    """Guest code of one call runs inside: ``store``'s deadline armed at ``ticks`` epochs (``seconds``)."""
    store.set_epoch_deadline(ticks)
    previous = getattr(_local, "budget", None)
    _local.budget = _Budget(store, seconds, tick_s, time.monotonic())
    try:
        yield
    finally:
        _local.budget = previous


def uncharged(host_call: Callable[..., _T]) -> Callable[..., _T]:
    """``host_call`` whose wait is not charged to the calling guest's deadline."""

    @functools.wraps(host_call)
    def call(*args: Any) -> _T:
        budget: _Budget | None = getattr(_local, "budget", None)
        start = time.monotonic()
        try:
            return host_call(*args)
        finally:
            if budget is not None:
                budget.waited += time.monotonic() - start
                budget.rearm()

    return call
