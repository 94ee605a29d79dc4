"""A componentize-py actor on the host (SPEC §7): WASI grants, logging, config, host calls, and what a
Python guest can do wrong — an uncaught exception, an endless loop, unbounded allocation — each costing
only that call. Key-value through wasi:keyvalue on a real host with the real provider and nats-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from lattice.capability import builtin_provider_id
from lattice.errors import ActorError, ActorTrap, DeadlineExceeded
from lattice.host.component import ComponentPool, components_of, new_pool
from lattice.host.component.engine import CompiledComponent
from lattice.host.runtime import ActorLimits, Runtime, WasiGrants
from lattice.messages import LinkDefinition
from tests.host.component import pyprobe
from tests.host.test_host import command, write


@pytest.fixture(scope="module")
def wasm() -> bytes:
    return pyprobe.build()


@pytest.fixture(scope="module")
def cached_runtime() -> Iterator[Runtime]:
    rt = Runtime(pyprobe.compile_cache())
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def compiled(cached_runtime: Runtime, wasm: bytes) -> CompiledComponent:
    return components_of(cached_runtime).compile(wasm)


def make_pool(runtime: Runtime, compiled: CompiledComponent, **options: Any) -> ComponentPool:
    pool = new_pool(runtime, compiled, **options)
    assert isinstance(pool, ComponentPool)
    return pool


@pytest.fixture
def pool(cached_runtime: Runtime, compiled: CompiledComponent, tmp_path: Path) -> Iterator[ComponentPool]:
    (tmp_path / "visible.txt").write_text("x")
    lines: list[tuple[str, str]] = []
    p = make_pool(
        cached_runtime,
        compiled,
        limits=ActorLimits(deadline_s=1.0, max_memory_bytes=96 << 20),
        wasi=WasiGrants(dirs={"/data": str(tmp_path)}, readonly=True, env={"GREETING": "hello"}),
        host_call=lambda b, ns, op, data: f"{b or 'default'}/{ns}/{op}: {data.decode()}".encode(),
        log_sink=lambda stream, text: lines.append((stream, text)),
        config=lambda: {"color": "blue", "size": "9"},
    )
    p.lines = lines  # type: ignore[attr-defined]
    yield p
    p.close()


def call(pool: ComponentPool, operation: str, text: str = "") -> str:
    return pool.call(operation, text.encode()).decode()


def test_imports_are_the_standard_interfaces(compiled: CompiledComponent) -> None:
    assert compiled.kind == "actor"
    assert {
        "wasi:keyvalue/store@0.2.0-draft",
        "wasi:keyvalue/atomics@0.2.0-draft",
        "wasi:logging/logging@0.1.0-draft",
        "wasi:config/runtime@0.2.0-draft",
        "lattice:actor/host@0.1.0",
    } <= set(compiled.imports)
    assert compiled.handle is not None and compiled.handle.fast is not None


def test_wasi_grants_only_what_the_manifest_grants(pool: ComponentPool, cached_runtime: Runtime, compiled: Any) -> None:
    assert call(pool, "Env", "GREETING") == "hello"
    assert call(pool, "Env", "HOME") == "<unset>"
    assert call(pool, "Files", "/data") == "visible.txt"
    bare = make_pool(cached_runtime, compiled)  # no grants: no env, no directories
    try:
        assert call(bare, "Env", "GREETING") == "<unset>"
        assert call(bare, "Files", "/data").startswith("OSError:")
    finally:
        bare.close()


def test_stdout_stderr_and_wasi_logging_reach_the_host_log(pool: ComponentPool) -> None:
    with structlog.testing.capture_logs() as logs:
        assert call(pool, "Log", "careful") == "logged"
    entry = next(e for e in logs if e.get("stream") == "wasi:logging")
    assert entry["event"] == "careful" and entry["log_level"] == "warning"
    assert entry["actor_id"] == pool.actor_id and entry["context"] == "probe"
    assert ("stdout", "to stdout: careful\n") in pool.lines  # type: ignore[attr-defined]
    assert ("stderr", "to stderr: careful\n") in pool.lines  # type: ignore[attr-defined]


def test_wasi_config_is_the_pools_config(pool: ComponentPool) -> None:
    assert call(pool, "Config.Get", "color") == "blue"
    assert call(pool, "Config.Get", "missing") == "<none>"
    assert call(pool, "Config.All") == "color=blue,size=9"


def test_host_call_from_python(pool: ComponentPool) -> None:
    assert call(pool, "Call", "wasmcloud:example|Thing.Do|data") == "default/wasmcloud:example/Thing.Do: data"


def test_an_uncaught_exception_is_named_in_the_trap(pool: ComponentPool) -> None:
    with pytest.raises(ActorTrap, match="RuntimeError: uncaught on purpose"):
        call(pool, "Raise")


def test_err_is_the_call_error(pool: ComponentPool) -> None:
    with pytest.raises(ActorError, match="unknown operation Nope"):
        call(pool, "Nope")


@pytest.mark.parametrize(
    ("operation", "error"),
    [("Raise", ActorTrap), ("Loop", DeadlineExceeded), ("Hog", ActorTrap)],
)
def test_guest_failures_cost_one_call(pool: ComponentPool, operation: str, error: type) -> None:
    assert call(pool, "Env", "GREETING") == "hello"
    with pytest.raises(error):
        call(pool, operation)
    assert pool.stats()["instances"] == 0  # discarded
    assert call(pool, "Env", "GREETING") == "hello"  # a fresh instance serves the next call


async def test_wasi_keyvalue_through_the_linked_provider(
    host_factory: Any, tmp_path: Path, wasm: bytes, compiled: CompiledComponent
) -> None:
    host = await host_factory(state_dir=pyprobe.host_state())  # the compiled probe is in its cache
    reply = await command(host, "scale", {"actor_ref": write(tmp_path, "py.wasm", wasm), "count": 1})
    assert reply["accepted"], reply
    actor_id = reply["actor_id"]

    async def kv(operation: str, text: str = "") -> str:
        return (await host.invoke(actor_id, operation, text.encode())).decode()

    with pytest.raises(ActorError, match="NoSuchStore"):  # no link yet
        await kv("Kv.Get", "k")
    provider = builtin_provider_id("keyvalue")
    await host.start_provider("builtin:keyvalue", "default", {}, {})
    await host.data.put_link(LinkDefinition(actor_id, provider, "wasmcloud:keyvalue", "default", {"bucket": "pyprobe"}))
    from tests.conftest import wait_for

    async def linked() -> bool:
        try:
            return await kv("Kv.Exists", "k") == "False"
        except ActorError:
            return False

    await wait_for(linked, timeout=30)
    assert await kv("Kv.Set", "k=välue") == "ok"
    assert await kv("Kv.Get", "k") == "välue"
    assert await kv("Kv.Exists", "k") == "True"
    assert await kv("Kv.Increment", "n+5") == "5"
    assert await kv("Kv.Increment", "n+2") == "7"
    assert await kv("Kv.Delete", "k") == "deleted"
    assert await kv("Kv.Get", "k") == "<none>"
    with pytest.raises(ActorError, match="NoSuchStore"):  # open("other"): a link called "other", absent
        await kv("Kv.Other", "other")
    with pytest.raises(ActorError, match="Other:wasi:keyvalue: the value is not UTF-8 text"):
        await kv("Kv.SetBinary", "b")
    with pytest.raises(ActorError, match="Other:list-keys: the wasmcloud:keyvalue contract has no operation"):
        await kv("Kv.List")
    assert await kv("Kv.Get", "b") == "<none>"  # nothing half-written
