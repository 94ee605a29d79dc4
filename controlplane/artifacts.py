"""Checking an uploaded actor module before it is stored (SPEC §5 ``POST /v1/artifacts``).

Valid Wasm (wasmtime's validator), a waPC actor (exports ``__guest_call`` and ``memory``), and — when
it carries claims — claims that verify (signature, module hash, validity period).
"""

from __future__ import annotations

import hashlib
from typing import Any

import wasmtime

from lattice import abi
from lattice import claims as claims_mod
from lattice.errors import InvalidActor

_ENGINE = wasmtime.Engine()


def inspect_actor(wasm: bytes) -> dict[str, Any]:
    """``{digest, size, actor_id, claims}`` for a module that passes; raises ``InvalidActor`` or
    ``ClaimsError`` with the reason otherwise."""
    if not wasm.startswith(b"\0asm"):
        raise InvalidActor("not a WebAssembly module (bad magic number)")
    # claims first: a tampered module is reported as tampered, even when the change also broke the code
    claims = claims_mod.verify_actor(wasm) if claims_mod.extract_claims(wasm) is not None else None
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
    }
