"""The one child-process supervisor (``lattice.host.children.Supervisor``) with real processes: a child that
exits is started again with backoff, hooks and structured logs say so, a launch that fails is retried, and
``stop`` leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from structlog.testing import capture_logs

from lattice.host.children import BACKOFF_S, Child, PolledChild, Supervisor, backoff_s, spawn, start
from tests.conftest import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not reaped yet, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_backoff_grows_with_each_quick_exit_and_stays_at_the_longest() -> None:
    assert [backoff_s(n) for n in range(1, 8)] == [*BACKOFF_S, BACKOFF_S[-1], BACKOFF_S[-1]]
    assert backoff_s(0) == BACKOFF_S[0]


async def test_a_killed_child_is_restarted_with_events_and_logs_and_stop_ends_it() -> None:
    exits: list[tuple[int, float]] = []
    restarted: list[int] = []

    async def on_exit(code: int, delay: float) -> None:
        exits.append((code, delay))

    async def on_restart(child: Child) -> None:
        restarted.append(child.pid)

    async def launch() -> Child:
        return await start(SLEEPER, env=dict(os.environ))

    supervisor = Supervisor("sleeper", launch, on_exit=on_exit, on_restart=on_restart, purpose="test")
    with capture_logs() as logs:
        first = await supervisor.start()
        supervisor.watch()
        try:
            os.kill(first.pid, signal.SIGKILL)
            await wait_for(lambda: supervisor.restarts == 1, timeout=30)
            second = supervisor.child
            assert second is not None and second.pid != first.pid and alive(second.pid)
            assert exits == [(-signal.SIGKILL, BACKOFF_S[0])] and restarted == [second.pid]
        finally:
            await supervisor.stop()
    assert not alive(second.pid) and supervisor.restarts == 1
    exited = [e for e in logs if e["event"] == "child exited; restarting"]
    assert exited == [
        {
            "event": "child exited; restarting",
            "log_level": "warning",
            "child": "sleeper",
            "purpose": "test",
            "code": -signal.SIGKILL,
            "backoff_s": BACKOFF_S[0],
            "attempt": 1,
        }
    ]


async def test_a_launch_that_fails_is_logged_and_retried_until_it_works() -> None:
    calls = 0

    async def launch() -> Child:
        nonlocal calls
        calls += 1
        if calls in (2, 3):  # the first restarts find nothing to run (a binary not there yet, say)
            raise OSError("no such program")
        return await start(SLEEPER, env=dict(os.environ))

    supervisor = Supervisor("flaky", launch)
    with capture_logs() as logs:
        first = await supervisor.start()
        supervisor.watch()
        try:
            first.terminate()
            await wait_for(lambda: supervisor.restarts == 1, timeout=30)
        finally:
            await supervisor.stop()
    assert calls == 4
    failed = [e for e in logs if e["event"] == "child did not start; retrying"]
    assert [(e["error"], e["log_level"]) for e in failed] == [("no such program", "error")] * 2
    assert [e["attempt"] for e in failed] == [1, 2]


async def test_stop_kills_a_child_that_ignores_sigterm_and_a_polled_popen_is_supervised_alike() -> None:
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(600)"]  # fmt: skip

    async def launch() -> Child:
        popen = spawn(stubborn, stdout=subprocess.PIPE)
        assert popen.stdout is not None and popen.stdout.readline() == b"ready\n"  # SIGTERM is ignored from here
        return PolledChild(popen)

    supervisor = Supervisor("stubborn", launch)
    child = await supervisor.start()
    supervisor.watch()
    with capture_logs() as logs:
        await supervisor.stop(timeout_s=0.5)
    assert child.returncode == -signal.SIGKILL and not alive(child.pid)
    assert [e["event"] for e in logs] == ["child did not stop in time; killed"]
