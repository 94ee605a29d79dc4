"""Child processes of a lattice process (provider processes of a host, hosts of ``lattice up``, a local
``nats-server``): each in its own session and, on Linux, ended with its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
from typing import Any


def child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Own session (a Ctrl-C aimed at the parent does not hit the child first) and, on Linux, die
    with the parent (PR_SET_PDEATHSIG) so a killed parent leaves nothing behind."""
    os.setsid()
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child process that stops with its parent (see ``child_setup``)."""
    return subprocess.Popen(args, preexec_fn=child_setup, **kwargs)
