"""Child processes of a lattice process (provider processes of a host, hosts of ``lattice up``, a local
``nats-server``): each in its own session and, on Linux, ended with its parent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
from typing import Any

import structlog

log = structlog.get_logger("lattice.host.children")


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
    """Start a child process that stops with its parent (see ``child_setup``)."""
    return subprocess.Popen(args, preexec_fn=child_setup, **kwargs)
