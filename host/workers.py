"""Host worker processes: several full hosts from one command, supervised (``lattice host --workers``).

One Python process serves HTTP on one core. ``lattice host --workers N`` (``LATTICE_HOST_WORKERS``;
``auto`` = one per core this process may use) runs N ``lattice host`` children instead, each a whole
host with its own id and a ``worker`` label, and sets ``LATTICE_HTTP_REUSE_PORT`` for them: their HTTP
server providers bind with SO_REUSEPORT, so the kernel spreads the connections to one port over every
worker that runs the provider (a daemonscaler puts one on each). Each worker has its own
``host.children.Supervisor``: one that exits (killed, crashed) is started again, with backoff.
"""

from __future__ import annotations

import asyncio
import os
import sys
from functools import partial

from lattice.errors import ConfigError
from lattice.host.children import Child, Supervisor, start

STOP_WAIT_S = 30.0  # a worker asked to stop leaves the lattice first (``LATTICE_DRAIN_TIMEOUT``)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_workers(text: str) -> int:
    """``auto`` → the usable cores, else a whole number from 1 to 64; ``ConfigError`` otherwise."""
    text = text.strip().lower()
    if text == "auto":
        return usable_cores()
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ConfigError(f"--workers (LATTICE_HOST_WORKERS) must be auto or a number from 1 to 64, got {text!r}")
    return int(text)


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


def option_value(argv: list[str], option: str) -> str | None:
    """The value ``argv`` gives ``option`` (``--metrics X`` or ``--metrics=X``; the last one wins), else ``None``."""
    value = None
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(option + "="):
            value = arg.partition("=")[2]
    return value


def worker_command(command: list[str], worker: int, metrics: str | None) -> list[str]:
    """``lattice host`` arguments for worker ``worker`` (from 1): its label and, when metrics are served, its
    own port — worker i on the given port + i - 1 (port 0 stays 0: each picks a free one), so the workers do
    not fight over one address."""
    args = [*without_option(command, "--metrics"), "--label", f"worker={worker}"]
    if metrics:
        host, _, port = metrics.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--metrics (LATTICE_METRICS) must be HOST:PORT, got {metrics!r}")
        args += ["--metrics", f"{host}:{int(port) + worker - 1 if int(port) else 0}"]
    return args


async def _launch(args: list[str], env: dict[str, str]) -> Child:
    return await start(args, env=env)


class WorkerHosts:
    """``lattice host --workers N``: ``run()`` the workers, ``lattice host`` with this process's other
    options (``command``, default from ``sys.argv``) plus ``--label worker=<i>``, until ``stop()``; then
    stop them all (SIGTERM: each leaves the lattice; SIGKILL after ``STOP_WAIT_S``)."""

    def __init__(self, workers: str, command: list[str] | None = None) -> None:
        self.workers = workers
        self.command = command if command is not None else without_option(sys.argv[1:], "--workers")
        self.supervisors: list[Supervisor] = []
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        count = resolve_workers(self.workers)  # ConfigError: the CLI says what is wrong
        env = {**os.environ, "LATTICE_HOST_WORKERS": "1", "LATTICE_HTTP_REUSE_PORT": "true"}
        metrics = option_value(self.command, "--metrics") or env.pop("LATTICE_METRICS", None)
        for i in range(1, count + 1):
            args = [sys.executable, "-m", "lattice", *worker_command(self.command, i, metrics)]
            self.supervisors.append(Supervisor(f"host-worker-{i}", partial(_launch, args, env), worker=i))
        try:
            for supervisor in self.supervisors:
                await supervisor.start()
                supervisor.watch()
            await self._stopping.wait()
        finally:
            await asyncio.gather(*(supervisor.stop(STOP_WAIT_S) for supervisor in self.supervisors))
