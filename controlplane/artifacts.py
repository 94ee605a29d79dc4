"""Checking an uploaded actor before it is stored (SPEC §5 ``POST /v1/artifacts``).

Valid Wasm (wasmtime's validator), a waPC actor (exports ``__guest_call`` and ``memory``) or a
component actor (SPEC §7: exports ``lattice:actor/guest@0.1.0`` or ``wasi:http/incoming-handler``,
imports only what hosts provide — the hosts' own check, through ``host.component``), and — when it
carries claims — claims that verify (signature, module hash, validity period). A component is
compiled to be checked (seconds for a large one; the caller runs this off the event loop), and the
compiled result is cached under ``cache_dir`` like a host's.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import wasmtime

from lattice import claims as claims_mod
from lattice.errors import InvalidActor
from lattice.host import abi
from lattice.host.component import components_of
from lattice.host.runtime import Runtime
from lattice.wasm import is_component

_ENGINE = wasmtime.Engine()
_RUNTIMES: dict[Path | None, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def recheck_claims(wasm: bytes) -> None:
    """The claims check of ``inspect_actor`` alone, for a module that passed it before (and was stored)."""
    if claims_mod.extract_claims(wasm) is not None:
        claims_mod.verify_actor(wasm)


def inspect_actor(wasm: bytes, cache_dir: Path | None = None) -> dict[str, Any]:
    """``{digest, size, actor_id, claims, abi}`` for an actor that passes; raises ``InvalidActor`` or
    ``ClaimsError`` with the reason otherwise."""
    if not wasm.startswith(b"\0asm"):
        raise InvalidActor("not a WebAssembly module (bad magic number)")
    # claims first: a tampered module is reported as tampered, even when the change also broke the code
    claims = claims_mod.verify_actor(wasm) if claims_mod.extract_claims(wasm) is not None else None
    if is_component(wasm):
        compiled = components_of(_runtime(cache_dir)).compile(wasm)
        return {
            "digest": compiled.digest,
            "size": len(wasm),
            "actor_id": compiled.actor_id,
            "claims": claims.to_dict() if claims else None,
            "abi": "component",
        }
    try:
        module = wasmtime.Module(_ENGINE, wasm)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidActor(f"invalid WebAssembly module: {first}") from exc
    abi.check_wapc(module)  # the hosts' own check: what they would refuse is refused here
    return {
        "digest": "sha256:" + hashlib.sha256(wasm).hexdigest(),
        "size": len(wasm),
        "actor_id": claims.sub if claims else claims_mod.actor_id_of(wasm),
        "claims": claims.to_dict() if claims else None,
        "abi": "wapc",
    }


def _runtime(cache_dir: Path | None) -> Runtime:
    """One engine per cache directory, configured as the hosts' are (so cached code is shared)."""
    with _RUNTIMES_LOCK:
        if cache_dir not in _RUNTIMES:
            _RUNTIMES[cache_dir] = Runtime(cache_dir)
        return _RUNTIMES[cache_dir]
