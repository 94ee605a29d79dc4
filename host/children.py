"""Child processes of a lattice process (provider processes of a host, hosts of ``lattice up``, a local
``nats-server``): each in its own session and, on Linux, ended with its parent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from lattice.settings import Settings

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
