"""Component guests for the host's tests, in component text format (wasmtime parses it)."""

from __future__ import annotations

from pathlib import Path

import wasmtime

HERE = Path(__file__).parent


def probe() -> bytes:
    """``probe.wat``: a lattice:actor/actor@0.1.0 component whose operation's first letter picks a behaviour."""
    return bytes(wasmtime.wat2wasm((HERE / "probe.wat").read_text()))


def frame(binding: str, namespace: str, operation: str, data: bytes = b"") -> bytes:
    """The probe's ``C…`` payload: a host call it makes and answers with."""
    out = b""
    for part in (binding, namespace, operation):
        raw = part.encode()
        out += bytes([len(raw)]) + raw
    return out + data


def probe_importing(name: str) -> bytes:
    """The probe, also importing an (empty) instance ``name``."""
    text = (HERE / "probe.wat").read_text().replace("(component\n", f'(component\n  (import "{name}" (instance))\n', 1)
    return bytes(wasmtime.wat2wasm(text))
