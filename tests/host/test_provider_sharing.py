"""Two applications asking one host for the same bundled provider at the same moment get one instance."""

from __future__ import annotations

import asyncio
from typing import Any

from lattice.controlplane.model import owner_annotations


async def test_concurrent_starts_of_one_provider_share_one_instance(host_factory: Any) -> None:
    host = await host_factory()
    first, second = await asyncio.gather(
        host.start_provider("builtin:httpserver", "default", owner_annotations("left", "http"), {}),
        host.start_provider("builtin:httpserver", "default", owner_annotations("right", "http"), {}),
    )
    assert first is second  # not two listeners fighting over the same ports
    assert len(host.providers) == 1
