"""msgpack for the guest: the ``msgpack`` package, whose pure-Python fallback runs inside a component.

``MSGPACK_PUREPYTHON`` is set before the import so that a build which does carry the C extension (it cannot
load in a component) never tries it; maps decode with str keys and bin as bytes, as SPEC §2 writes them.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("MSGPACK_PUREPYTHON", "1")

import msgpack


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
