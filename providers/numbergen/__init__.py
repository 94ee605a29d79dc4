"""``wasmcloud:builtin:numbergen`` (SPEC §2): GUIDs and random numbers from the OS CSPRNG.

No link values; an actor needs no link to use it (as wasmCloud's builtin numbergen).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Final

from lattice.capability import NUMBERGEN
from lattice.errors import InvocationError
from lattice.providers.sdk import Provider, arg_int, operation

__all__ = ["NumberGenProvider"]

_U32_MAX: Final = 2**32 - 1


class NumberGenProvider(Provider):
    name = "numbergen"
    contract_id = NUMBERGEN

    @operation("NumberGen.GenerateGuid")
    async def generate_guid(self, actor_id: str, args: Any) -> str:
        return str(uuid.uuid4())

    @operation("NumberGen.RandomInRange")
    async def random_in_range(self, actor_id: str, args: Any) -> int:
        low, high = arg_int(args, "min", 0, _U32_MAX), arg_int(args, "max", 0, _U32_MAX)
        if low > high:
            raise InvocationError(f"min ({low}) is greater than max ({high})")
        return low + secrets.randbelow(high - low + 1)

    @operation("NumberGen.Random32")
    async def random32(self, actor_id: str, args: Any) -> int:
        return secrets.randbits(32)
