"""Child processes of a lattice process (provider processes of a host, hosts and the nats-server of
``lattice up``): each in its own session and, on Linux, ended with its parent (``spawn``, ``start``), with
one environment (``child_env``) and one supervisor (``Supervisor``) that starts a child again, with backoff,
when it exits on its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import IO, TYPE_CHECKING, Any, Protocol

import structlog

from lattice.connection import cancel_and_wait

if TYPE_CHECKING:
    from lattice.settings import Settings

log = structlog.get_logger("lattice.host.children")

# Waits before each restart: longer after each quick exit, from the start again after a run of STABLE_S.
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
STABLE_S = 30.0


def _libc() -> Any:
    """libc for ``prctl``, loaded in the parent (nothing may log between fork and exec); None without one."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError as exc:
        log.info("no libc: child processes will not end with their parent", error=str(exc))
        return None


_LIBC = _libc()


def child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Own session (a Ctrl-C aimed at the parent does not hit the child first) and, on Linux, die
    with the parent (PR_SET_PDEATHSIG) so a killed parent leaves nothing behind."""
    os.setsid()
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG; a failure (-1, errno) changes nothing else


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child process that stops with its parent (see ``child_setup``), from blocking code."""
    return subprocess.Popen(args, preexec_fn=child_setup, **kwargs)


async def start(args: list[str], *, env: dict[str, str], output: IO[bytes] | None = None) -> asyncio.subprocess.Process:
    """``spawn`` from the event loop: no stdin, stdout and stderr to ``output`` (default: this process's)."""
    return await asyncio.create_subprocess_exec(
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        preexec_fn=child_setup,
    )


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a lattice child process (a provider process, a host of ``lattice up``): this
    process's, with the lattice, NATS address and credentials and cluster seed of ``settings``, JSON logs, and
    metrics (when served) on a free port of the same address, since the parent holds its own; then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "LATTICE_METRICS"}
    env |= {
        "LATTICE_NATS_URL": settings.nats_url,
        "LATTICE_NAME": settings.lattice,
        "LATTICE_CLUSTER_SEED": settings.cluster_seed or "",
        "LATTICE_JSON_LOGS": "true",
    }
    if settings.metrics:
        env["LATTICE_METRICS"] = f"{settings.metrics.rpartition(':')[0]}:0"
    for key, value in (
        ("LATTICE_NATS_USER", settings.nats_user),
        ("LATTICE_NATS_PASSWORD", settings.nats_password),
        ("LATTICE_NATS_NKEY_SEED", settings.nats_nkey_seed),
        ("LATTICE_NATS_CREDS", settings.nats_creds),
    ):
        if value:
            env[key] = value
    return env | extra


class Child(Protocol):
    """A running child process as the supervisor sees it (``asyncio.subprocess.Process`` is one)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class PolledChild:
    """A ``subprocess.Popen`` (started by blocking code, e.g. ``NatsServer.start``) as a ``Child``: its exit
    is polled every ``POLL_S`` instead of awaited."""

    POLL_S = 0.2

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    async def wait(self) -> int:
        while (code := self.popen.poll()) is None:  # noqa: ASYNC110 (a Popen has nothing to await)
            await asyncio.sleep(self.POLL_S)
        return code

    def terminate(self) -> None:
        self.popen.terminate()

    def kill(self) -> None:
        self.popen.kill()


def backoff_s(attempt: int) -> float:
    """The wait before restart number ``attempt`` (1 = the first since the child last ran ``STABLE_S``)."""
    return BACKOFF_S[min(max(attempt, 1), len(BACKOFF_S)) - 1]


class Supervisor:
    """Keeps one child process running: ``start()`` launches it, ``watch()`` restarts it whenever it exits
    on its own, ``stop()`` ends it (SIGTERM, then SIGKILL) and the watching.

    ``launch()`` starts the child (a server may also wait there until it is ready). When the child exits,
    ``on_exit(code, backoff_s)`` is told, the supervisor waits ``backoff_s`` (``backoff_s()``: longer after
    each quick exit, from the start again after a run of ``STABLE_S``), launches it again and tells
    ``on_restart(child)``; ``restarts`` counts them. A launch that fails is logged and tried again on the same
    schedule. It never gives up: a child that cannot run is retried at the longest wait, every failure
    logged, so that it comes back by itself once what it lacked (a port, NATS) is there again. Log lines
    carry ``child`` (its name) and the ``fields`` given.
    """

    def __init__(
        self,
        name: str,
        launch: Callable[[], Awaitable[Child]],
        *,
        on_exit: Callable[[int, float], Awaitable[None]] | None = None,
        on_restart: Callable[[Child], Awaitable[None]] | None = None,
        **fields: Any,
    ) -> None:
        self.name = name
        self.launch = launch
        self.on_exit = on_exit
        self.on_restart = on_restart
        self.log = log.bind(child=name, **fields)
        self.child: Child | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> Child:
        """Launch the child (once); a failure raises, since nobody has seen it run yet."""
        self.child = await self.launch()
        self.log.info("child started", pid=self.child.pid)
        return self.child

    def watch(self) -> None:
        """From now on, restart the child whenever it exits on its own."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name=f"supervise-{self.name}")

    async def _watch(self) -> None:
        attempt = 0
        while not self._stopping:
            child, started = self.child, time.monotonic()
            code = await child.wait() if child is not None else None  # None: the last launch failed
            if self._stopping:
                return
            attempt = 1 if time.monotonic() - started > STABLE_S else attempt + 1
            delay = backoff_s(attempt)
            if code is not None:
                self.log.warning("child exited; restarting", code=code, backoff_s=delay, attempt=attempt)
                if self.on_exit is not None:
                    await self.on_exit(code, delay)
            await asyncio.sleep(delay)
            if not self._stopping:
                await self._relaunch(attempt)

    async def _relaunch(self, attempt: int) -> None:
        try:
            self.child = await self.launch()
        except Exception as exc:  # retried on the next pass: a supervisor never stops supervising
            self.child = None
            self.log.error("child did not start; retrying", error=str(exc), attempt=attempt)
            return
        self.restarts += 1
        self.log.info("child restarted", pid=self.child.pid, restarts=self.restarts)
        if self.on_restart is not None:
            await self.on_restart(self.child)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop watching, then end the child: SIGTERM, and SIGKILL if it is still there after ``timeout_s``."""
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait(self._task)
        child = self.child
        if child is None or child.returncode is not None:
            return
        child.terminate()
        try:
            await asyncio.wait_for(child.wait(), timeout_s)
        except TimeoutError:
            self.log.warning("child did not stop in time; killed", pid=child.pid, timeout_s=timeout_s)
            child.kill()
            await child.wait()
