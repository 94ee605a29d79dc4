"""Machines as Linux network namespaces, for tests that must not fake the network.

``Network`` makes one namespace per machine, each with its own address on a private /24 (10.203.N.0/24,
N chosen free) behind a bridge in the root namespace, so this test process reaches every machine and the
machines reach each other by address and by name (``/etc/netns/<ns>/hosts``, bind-mounted over
``/etc/hosts`` by ``ip netns exec``). Processes run inside with ``ip netns exec``, in their own session and
with ``PR_SET_PDEATHSIG`` (``lattice.cli.natsserver.spawn``), so they die with this process even when a test
is killed. ``cut``/``heal`` take a machine's link down and up. ``close`` (also on ``__exit__``) kills every
process and removes every namespace, link and file it made, whatever happened before.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lattice.cli.natsserver import spawn

PREFIX = "ltn"  # every namespace and link this module makes starts with it


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"{PREFIX}probe{os.getpid()}"
    result = ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"`ip netns add` is not permitted here: {result.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def remove_stale() -> None:
    """Namespaces left by a run whose process is gone (killed before its teardown ran)."""
    listed = ip("netns", "list", check=False).stdout
    for name in re.findall(rf"^({PREFIX}(\d+)[a-z][\w-]*)", listed, re.M):
        ns, pid = name[0], int(name[1])
        if not Path(f"/proc/{pid}").exists():
            ip("netns", "del", ns, check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
    for link in re.findall(rf"^\d+: ({PREFIX}(\d+)\w*)[@:]", ip("-o", "link", "show", check=False).stdout, re.M):
        if not Path(f"/proc/{link[1]}").exists():
            ip("link", "del", link[0], check=False)


@dataclass
class Machine:
    name: str
    ns: str
    address: str
    link: str  # the root-namespace end of its veth pair
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


class Network:
    """``count`` machines named ``names`` on one bridge; see the module docstring."""

    def __init__(self, logs: Path, names: list[str]) -> None:
        self.logs = logs
        self.names = names
        self.tag = f"{PREFIX}{os.getpid()}"
        self.bridge = f"{self.tag}br"
        self.subnet = _free_subnet()
        self.machines: dict[str, Machine] = {}
        self._files: list[IO[bytes]] = []

    def __enter__(self) -> Network:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        remove_stale()
        self.logs.mkdir(parents=True, exist_ok=True)
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"10.203.{self.subnet}.254/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"10.203.{self.subnet}.{i} {name}\n" for i, name in enumerate(self.names, 1)
        )
        for i, name in enumerate(self.names, 1):
            ns, link = f"{self.tag}{name}", f"{self.tag}v{i}"
            self.machines[name] = Machine(name, ns, f"10.203.{self.subnet}.{i}", link)
            ip("netns", "add", ns)
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts)
            ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p")
            ip("link", "set", f"{link}p", "netns", ns)
            ip("link", "set", link, "master", self.bridge)
            ip("link", "set", link, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", f"{link}p", "name", "eth0")
            ip("-n", ns, "addr", "add", f"10.203.{self.subnet}.{i}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def spawn(
        self, machine: str, role: str, argv: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Run ``argv`` inside ``machine`` as ``role`` (one process per role); output to ``logs/``."""
        m = self.machines[machine]
        out = (self.logs / f"{machine}-{role}.log").open("ab")
        self._files.append(out)
        argv = ["ip", "netns", "exec", m.ns, *argv]
        proc = spawn(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        m.procs[role] = proc
        return proc

    def run(
        self, machine: str, argv: list[str], env: dict[str, str], cwd: Path | None = None, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``machine`` to completion (a health check, a one-off command)."""
        argv = ["ip", "netns", "exec", self.machines[machine].ns, *argv]
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)

    def kill(self, machine: str, role: str, sig: int = signal.SIGKILL, timeout_s: float = 10.0) -> None:
        proc = self.machines[machine].procs.pop(role, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def kill_machine(self, machine: str) -> None:
        """Every process of ``machine``, at once, without warning (a power cut)."""
        for role in list(self.machines[machine].procs):
            self.kill(machine, role)

    def cut(self, machine: str) -> None:
        ip("link", "set", self.machines[machine].link, "down")

    def heal(self, machine: str) -> None:
        ip("link", "set", self.machines[machine].link, "up")

    def log_tail(self, limit: int = 3000) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name}\n{text[-limit:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for machine in self.machines.values():
            for role in list(machine.procs):
                with contextlib.suppress(Exception):
                    self.kill(machine.name, role, signal.SIGKILL, timeout_s=5)
        for machine in self.machines.values():
            ip("netns", "del", machine.ns, check=False)
            ip("link", "del", machine.link, check=False)
            shutil.rmtree(Path("/etc/netns") / machine.ns, ignore_errors=True)
        ip("link", "del", self.bridge, check=False)
        with contextlib.suppress(OSError):
            Path("/etc/netns").rmdir()  # only when no other namespace keeps files there
        for f in self._files:
            f.close()
        self._files.clear()


def _free_subnet() -> int:
    """A third octet N such that no interface here has an address in 10.203.N.0/24."""
    used = set(re.findall(r"10\.203\.(\d+)\.", ip("-o", "addr", "show", check=False).stdout))
    for n in range(10 + os.getpid() % 200, 256):
        if str(n) not in used:
            return n
    for n in range(10, 256):
        if str(n) not in used:
            return n
    raise RuntimeError("no free 10.203.N.0/24 subnet")
