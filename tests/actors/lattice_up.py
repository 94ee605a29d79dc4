"""``lattice up`` as a subprocess for deployment tests: free ports only, and nothing left behind.

``LatticeUp`` runs ``python -m lattice up --no-demo`` (its own session, state under a temp dir), waits for
its "Ctrl-C stops everything." line, and on ``stop()`` sends SIGINT as a user would, then SIGKILLs the
process group and any descendant still alive (by pid: only processes this test started).
``deploy()`` applies an example's manifest with its HTTP port moved to a free one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from lattice.cli.client import Client, local_api_token
from lattice.cli.natsserver import free_port

READY_LINE = "Ctrl-C stops everything."
T = TypeVar("T")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children of children too), read from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def group_members(pgid: int) -> set[int]:
    """Live processes whose process group is ``pgid``."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.add(int(stat.parent.name))
    return members


def stop_process_group(pgid: int, grace_s: float = 30.0) -> list[int]:
    """SIGINT every process of group ``pgid`` (a child started with ``start_new_session=True``), wait up
    to ``grace_s``, then SIGKILL whatever of the group and its descendants is still alive, by pid.
    Returns the pids that were alive when this was called and had to be signalled."""
    family = group_members(pgid)
    for pid in list(family):
        family |= descendants(pid)
    family = {p for p in family if alive(p)}
    if not family:
        return []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while any(alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in family:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return sorted(family)


def stop_process_tree(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> list[int]:
    """Stops ``proc`` (started with ``start_new_session=True``) and everything it started."""
    stopped = stop_process_group(proc.pid, grace_s)
    proc.wait()
    return stopped


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(0.1)


def answers_http(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


class LatticeUp:
    """One ``lattice up`` (``--no-demo`` unless ``demo``; the demo on ``self.http``) on free ports, its
    state and log (``log_name``) under ``workdir``."""

    def __init__(self, workdir: Path, hosts: int = 2, *, demo: bool = False, log_name: str = "lattice-up.log") -> None:
        self.workdir = workdir
        self.hosts = hosts
        self.demo = demo
        self.api = f"127.0.0.1:{free_port()}"
        self.api_url = f"http://{self.api}"
        self.http = f"127.0.0.1:{free_port()}"
        self.log = workdir / log_name
        self.env = {**os.environ, "LATTICE_STATE_DIR": str(workdir / "state"), "COLUMNS": "200"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.deployed: dict[str, str] = {}  # app name → its HTTP base URL

    def start(self, timeout: float = 90) -> None:
        command = [sys.executable, "-m", "lattice", "up", "--hosts", str(self.hosts), "--api", self.api]
        command += ["--http", self.http] if self.demo else ["--no-demo"]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        proc = self.proc
        try:
            wait_until(lambda: READY_LINE in self.output() or proc.poll() is not None, timeout, "lattice up not ready")
        except AssertionError:
            self.stop()
            raise
        if proc.poll() is not None:
            raise AssertionError(f"lattice up exited with {proc.returncode}:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_tree(self.proc)

    def call(self, fn: Callable[[Client], T]) -> T:
        """``fn`` with an API client, closed afterwards: ``lattice.call(lambda c: c.apps())``."""
        client = Client(self.api_url, local_api_token(self.workdir / "state"))
        try:
            return fn(client)
        finally:
            client.close()

    def deploy(self, manifest: Path, timeout: float = 60) -> str:
        """Applies ``manifest`` with its httpserver link on a free port; returns the HTTP base URL once
        the application is deployed and the port answers."""
        url = f"http://127.0.0.1:{free_port()}"

        def apply(client: Client) -> dict[str, Any]:
            app = client.apply(manifest, overrides={"httpserver": url.removeprefix("http://")})
            return client.wait_deployed(app["name"], timeout)

        app = self.call(apply)
        wait_until(lambda: answers_http(url), 30, f"{app['name']} does not answer on {url}")
        self.deployed[app["name"]] = url
        return url
