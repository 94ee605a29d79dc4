"""Host worker processes: several full hosts from one command, supervised (``lattice host --workers``).

One Python process serves HTTP on one core. ``lattice host --workers N`` (``LATTICE_HOST_WORKERS``;
``auto`` = one per core the process may use, when there is more than one) runs N ``lattice host``
children instead, each a whole host with its own id, and sets ``LATTICE_HTTP_REUSE_PORT`` for them:
their HTTP server providers bind with SO_REUSEPORT, so the kernel spreads connections to one port
over every worker that runs the provider (a daemonscaler puts one on each). ``WorkerGroup`` starts
them and starts again one that exits (killed, crashed), with backoff; ``lattice up`` runs its hosts
through it too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from typing import Final

import structlog

from lattice.errors import ConfigError

log = structlog.get_logger("lattice.host.workers")

POLL_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0
STEADY_S: Final = 60.0  # a worker that ran this long before it exited starts again without backoff
STOP_WAIT_S: Final = 30.0  # a worker asked to stop drains first (``LATTICE_DRAIN_TIMEOUT``)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_workers(text: str) -> int:
    """``auto`` → the usable cores (1 on a single core), else a whole number from 1 to 64;
    ``ConfigError`` naming the setting otherwise."""
    text = text.strip().lower()
    if text == "auto":
        return usable_cores()
    try:
        count = int(text)
    except ValueError:
        raise ConfigError(f"--workers (LATTICE_HOST_WORKERS) must be auto or a number, got {text!r}") from None
    if not 1 <= count <= 64:
        raise ConfigError(f"--workers (LATTICE_HOST_WORKERS) must be in 1–64, got {count}")
    return count


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` with ``option`` and its value removed (``--workers 2`` and ``--workers=2`` alike)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


class WorkerGroup:
    """``count`` child processes made by ``start(i)``; ``supervise()`` starts again one that exits."""

    def __init__(
        self,
        count: int,
        start: Callable[[int], subprocess.Popen[bytes]],
        *,
        name: str = "host",
        on_exit: Callable[[int, int], None] | None = None,
    ) -> None:
        """``on_exit(i, status)`` is told when worker ``i`` exited on its own (before it starts again)."""
        self.count = count
        self._start = start
        self.name = name
        self.on_exit = on_exit
        self.children: list[subprocess.Popen[bytes]] = []
        self.started: list[float] = []
        self.restarts = [0] * count

    def start(self) -> WorkerGroup:
        self.children = [self._start(i) for i in range(self.count)]
        self.started = [time.monotonic()] * self.count
        return self

    def exited(self) -> list[int]:
        """The workers (by index) that are not running."""
        return [i for i, child in enumerate(self.children) if child.poll() is not None]

    async def supervise(self) -> None:
        """Forever (until cancelled): start again every worker that exits."""
        while True:
            await asyncio.sleep(POLL_S)
            await self.check()

    async def check(self) -> None:
        """One pass: each worker that exited is started again, after a backoff that grows with its
        restarts in a row (one that ran ``STEADY_S`` counts as a first restart)."""
        for i in self.exited():
            status = self.children[i].returncode
            ran = time.monotonic() - self.started[i]
            self.restarts[i] = 1 if ran >= STEADY_S else self.restarts[i] + 1
            log.warning(f"{self.name} worker exited; starting it again", worker=i + 1, status=status, ran_s=int(ran))
            if self.on_exit is not None:
                self.on_exit(i, status)
            await asyncio.sleep(min(0.5 * 2 ** (self.restarts[i] - 1), BACKOFF_MAX_S))
            self.children[i] = self._start(i)
            self.started[i] = time.monotonic()

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """SIGTERM to every worker (they drain), then SIGKILL to one still running after ``wait_s``."""
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + wait_s
        for child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(f"{self.name} worker did not stop in time: killed", pid=child.pid, wait_s=wait_s)
                child.kill()
                child.wait()
