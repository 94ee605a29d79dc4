"""wasmcloud:builtin:logging and wasmcloud:builtin:numbergen (SPEC §2), in process and over NATS."""

from __future__ import annotations

import uuid

import pytest
from structlog.testing import capture_logs

from lattice.errors import LatticeError
from lattice.providers.logging import LoggingProvider
from lattice.providers.numbergen import NumberGenProvider
from tests.providers.conftest import Harness, HarnessFactory, actor_id


@pytest.fixture
async def numbergen(start_provider: HarnessFactory) -> Harness:
    return await start_provider(NumberGenProvider())


@pytest.fixture
async def logging_provider(start_provider: HarnessFactory) -> Harness:
    return await start_provider(LoggingProvider())


async def test_guids_are_distinct_uuid4_strings(numbergen: Harness) -> None:
    a = actor_id()  # builtins need no link
    guids = {await numbergen.call(a, "NumberGen.GenerateGuid") for _ in range(20)}
    assert len(guids) == 20
    assert all(uuid.UUID(g).version == 4 for g in guids)


async def test_random_in_range_is_inclusive_and_checks_its_bounds(numbergen: Harness) -> None:
    a = actor_id()
    seen = {await numbergen.call(a, "NumberGen.RandomInRange", {"min": 1, "max": 3}) for _ in range(200)}
    assert seen == {1, 2, 3}
    assert await numbergen.call(a, "NumberGen.RandomInRange", {"min": 7, "max": 7}) == 7
    top = 2**32 - 1
    assert await numbergen.call(a, "NumberGen.RandomInRange", {"min": top, "max": top}) == top
    with pytest.raises(LatticeError, match=r"NumberGen.RandomInRange: min \(5\) is greater than max \(4\)"):
        await numbergen.call(a, "NumberGen.RandomInRange", {"min": 5, "max": 4})
    with pytest.raises(LatticeError, match=r"'min' must be in \[0, 4294967295\]"):
        await numbergen.call(a, "NumberGen.RandomInRange", {"min": -1, "max": 4})
    with pytest.raises(LatticeError, match="'max' must be an integer"):
        await numbergen.call(a, "NumberGen.RandomInRange", {"min": 1})


async def test_random32_is_a_u32(numbergen: Harness) -> None:
    values = [await numbergen.call(actor_id(), "NumberGen.Random32") for _ in range(50)]
    assert all(isinstance(v, int) and 0 <= v < 2**32 for v in values)
    assert len(set(values)) > 1


async def test_write_log_goes_to_the_structured_log_tagged_with_the_actor(logging_provider: Harness) -> None:
    a = actor_id()
    with capture_logs() as logs:
        for level in ["debug", "info", "warn", "error", "shout"]:
            assert await logging_provider.call(a, "Logging.WriteLog", {"level": level, "text": f"at {level}"}) is None
    lines = [entry for entry in logs if entry["event"].startswith("at ")]
    assert [(e["event"], e["log_level"]) for e in lines] == [
        ("at debug", "debug"),
        ("at info", "info"),
        ("at warn", "warning"),
        ("at error", "error"),
        ("at shout", "info"),
    ]
    assert all(e["actor_id"] == a for e in lines)
    assert lines[-1]["actor_level"] == "shout"


async def test_write_log_needs_text(logging_provider: Harness) -> None:
    with pytest.raises(LatticeError, match=r"wasmcloud:builtin:logging Logging.WriteLog: 'text' must be a string"):
        await logging_provider.call(actor_id(), "Logging.WriteLog", {"level": "info"})
    with pytest.raises(LatticeError, match=r"has no operation 'Logging.Shout'"):
        await logging_provider.call(actor_id(), "Logging.Shout", {"text": "x"})


async def test_health_is_answered(numbergen: Harness) -> None:
    assert await numbergen.health() == (True, "healthy")
