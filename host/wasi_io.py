"""WASI for a pool's instances: the ``WasiConfig`` a ``WasiGrants`` allows (SPEC §1: nothing by default) and the
guest's stdout/stderr as sinks to the pool's log sink, counted until wasmtime releases them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import wasmtime

from lattice.host.runtime import LogSink, WasiGrants

LINE_BUFFER = 4096  # bytes of a WASI output line held back waiting for its end (``line_buffered``)


def config(grants: WasiGrants, output: Callable[[str], Callable[[bytes], None]]) -> wasmtime.WasiConfig:
    """The WASI context of one instance: env, args and preopened directories as granted, output to ``output``."""
    cfg = wasmtime.WasiConfig()
    if grants.env:
        cfg.env = list(grants.env.items())
    if grants.args:
        cfg.argv = list(grants.args)
    for guest, host_path in grants.dirs.items():
        cfg.preopen_dir(host_path, guest, fs_mutable=not grants.readonly)
    cfg.stdout_custom = output("stdout")
    cfg.stderr_custom = output("stderr")
    return cfg


def sink(stream: str, log_sink: LogSink, line_buffered: bool, live: LiveCount) -> Callable[[bytes], None]:
    """A WASI output sink, counted in ``live`` until wasmtime releases it.

    wasmtime releases a store's sinks from one of its own threads just after the store closes; one
    released while Python shuts down aborts that thread with a panic, so a pool's ``close`` waits for them.
    ``line_buffered``: whole lines only (up to ``LINE_BUFFER``), for guests that write a line in pieces.
    """
    pending = bytearray()

    def write(data: bytes) -> None:
        if not line_buffered:
            log_sink(stream, bytes(data).decode("utf-8", "replace"))
            return
        pending.extend(data)
        end = pending.rfind(b"\n") + 1 if len(pending) < LINE_BUFFER else len(pending)
        if end:
            log_sink(stream, bytes(pending[:end]).decode("utf-8", "replace"))
            del pending[:end]

    live.add()
    weakref.finalize(write, live.release)
    return write


class LiveCount:
    """A count of live objects that can be waited on; released from any thread, even re-entrantly."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.RLock())
        self._count = 0

    def add(self) -> None:
        with self._changed:
            self._count += 1

    def release(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_until_at_most(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count <= count, timeout)
