"""Hard caps every participant agrees on: what a manifest may ask of one host, whatever it says.

The control plane refuses a manifest over them (400 naming the field) and hosts refuse a command over
them (``host.limits`` applies them), so an application can neither exhaust a host's address space with
warm instances nor hold a worker thread for hours. ``read_regular_file`` reads what a ``file://``
reference names without hanging on a FIFO or swallowing a huge file.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Final

MAX_DEADLINE_MS: Final = 60_000
"""Longest per-call deadline (a call holds a worker thread that long)."""
MAX_INSTANCES: Final = 256
"""Most instances (and warm replicas) of one actor on one host."""
MAX_REPLICAS: Final = 4096
"""Most replicas one component may ask of the whole lattice."""
MAX_MEMORY_MB: Final = 4096
"""Largest linear memory a manifest may grant (wasm32's own limit)."""
MAX_PAYLOAD_MB: Final = 256
"""Largest request/response a manifest may allow."""
MAX_MANIFEST_BYTES: Final = 1024 * 1024
"""Largest manifest the control plane parses."""
MAX_GUEST_ERROR: Final = 16 * 1024
"""Bytes of a guest's ``__guest_error`` kept (an answer must fit in a NATS message)."""
MAX_LOG_LINE: Final = 8 * 1024
"""Characters of one guest log line kept (the rest is cut, saying how much)."""
MAX_MODULE_BYTES: Final = 64 * 1024 * 1024
"""Largest actor module read from a ``file://`` image or uploaded."""


def read_regular_file(path: Path, limit: int = MAX_MODULE_BYTES) -> bytes:
    """The bytes of the regular file at ``path`` (blocking: run it in a thread). A FIFO or a device,
    which could block the read forever, and a file over ``limit`` bytes raise ``OSError`` saying so."""
    if not path.is_file():
        raise OSError(errno.EINVAL, "not a regular file")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit // (1024 * 1024)} MiB")
    return data
