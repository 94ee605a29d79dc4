"""Component actors in a pool (SPEC §7): calls, host calls, errors, and failures that cost one call only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import wasmtime

from lattice.errors import ActorError, ActorTrap, DeadlineExceeded, InvalidActor
from lattice.host.component import ComponentPool, binary, components_of, new_pool
from lattice.host.component.engine import CompiledComponent, ComponentRuntime
from lattice.host.runtime import ActorLimits, Runtime
from tests.conftest import from_threads
from tests.host.component.guests import frame, probe


@pytest.fixture(scope="module")
def components(runtime: Runtime) -> ComponentRuntime:
    return components_of(runtime)


@pytest.fixture
def pool(runtime: Runtime, components: ComponentRuntime) -> Iterator[ComponentPool]:
    calls: list[tuple[str, str, str, bytes]] = []

    def host_call(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        calls.append((binding, namespace, operation, payload))
        if namespace == "nobody":
            from lattice.errors import Unreachable

            raise Unreachable("no actor is known by 'nobody'")
        return b"answer:" + payload

    compiled = components.compile(probe())
    p = new_pool(runtime, compiled, limits=ActorLimits(deadline_s=0.3, max_memory_bytes=4 << 20), host_call=host_call)
    assert isinstance(p, ComponentPool)
    p.host_calls = calls  # type: ignore[attr-defined]
    yield p
    p.close()


def test_compile_is_cached_and_names_the_kind(components: ComponentRuntime) -> None:
    wasm = probe()
    first = components.compile(wasm)
    assert isinstance(first, CompiledComponent)
    assert first.kind == "actor" and first.abi == "component"
    assert first.actor_id.startswith("MU") and len(first.actor_id) == 56
    assert first.imports == ("lattice:actor/host@0.1.0",)
    assert components.compile(wasm) is first


def test_compiled_components_are_serialized_and_mapped_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rt = Runtime(tmp_path)
    try:
        compiled = components_of(rt).compile(probe())
        cached = list(tmp_path.rglob("*.cwasm"))
        assert [p.name for p in cached] == [f"{compiled.digest[7:]}.component-{binary.REWRITE}.cwasm"]
        other = Runtime(tmp_path)  # a second process would find it too
        try:
            again = components_of(other).compile(probe())
            assert again.actor_id == compiled.actor_id
            pool = new_pool(other, again)
            assert pool.call("Echo", b"from the cache") == b"from the cache"
            pool.close()
        finally:
            other.close()
    finally:
        rt.close()


def test_echo_bytes_of_every_value(pool: ComponentPool) -> None:
    everything = bytes(range(256)) * 5
    assert pool.call("Echo.Echo", everything) == everything
    assert pool.call("Echo", b"") == b""
    big = bytes(range(256)) * 4096  # 1 MiB crosses as one block each way
    assert pool.call("Echo", big) == big


def test_guest_error_is_the_call_error(pool: ComponentPool) -> None:
    with pytest.raises(ActorError, match=r"^déjà vu$"):
        pool.call("Fail", "déjà vu".encode())
    with pytest.raises(ActorError, match=r"^Unknown\.Op$"):
        pool.call("Unknown.Op", b"")
    assert pool.call("Echo", b"still here") == b"still here"


@pytest.mark.parametrize(
    ("operation", "error", "text"),
    [
        ("Trap", ActorTrap, "unreachable"),
        ("Loop", DeadlineExceeded, "deadline of 0.3 s"),
        ("Grow", ActorTrap, "unreachable"),
    ],
)
def test_a_failing_call_costs_that_call_only(pool: ComponentPool, operation: str, error: type, text: str) -> None:
    assert pool.call("Echo", b"before") == b"before"
    with pytest.raises(error, match=text):
        pool.call(operation, b"")
    stats = pool.stats()
    assert stats["instances"] == 0  # the instance that failed is gone
    assert pool.call("Echo", b"after") == b"after"
    assert pool.stats()["failures"] == 1


def test_host_call_reaches_the_hosts_router(pool: ComponentPool) -> None:
    out = pool.call("Call", frame("", "wasmcloud:keyvalue", "KeyValue.Get", b"\xa3key"))
    assert out == b"answer:\xa3key"
    assert pool.host_calls == [("", "wasmcloud:keyvalue", "KeyValue.Get", b"\xa3key")]  # type: ignore[attr-defined]


def test_host_call_error_reaches_the_guest_as_err(pool: ComponentPool) -> None:
    with pytest.raises(ActorError, match="no actor is known by 'nobody'"):
        pool.call("Call", frame("", "nobody", "Echo.Echo"))
    assert pool.call("Echo", b"ok") == b"ok"


def test_inline_calls_give_way_to_host_calls(pool: ComponentPool) -> None:
    assert pool.call_inline("Echo", b"quick") == b"quick"
    assert pool.call_inline("Call", frame("", "a", "b")) is None  # needs the loop: run it elsewhere
    assert pool.host_calls == []  # type: ignore[attr-defined]  # nothing left the instance
    assert pool.call("Call", frame("", "a", "b", b"x")) == b"answer:x"


def test_concurrent_calls_each_get_their_own_instance(pool: ComponentPool) -> None:
    answers = from_threads(lambda payload: pool.call("Echo", payload), threads=6, per_thread=20)
    assert sorted(answers) == sorted(f"{i}-{j}".encode() for i in range(6) for j in range(20))
    assert 1 <= pool.stats()["instances"] <= 6


def test_not_a_component_or_not_an_actor(components: ComponentRuntime) -> None:
    from tests.host.guests import ECHO

    with pytest.raises(InvalidActor, match="not a WebAssembly component"):
        components.compile(ECHO)
    with pytest.raises(InvalidActor, match=r"exports neither lattice:actor/guest@0\.1\.0"):
        components.compile(bytes(wasmtime.wat2wasm("(component)")))


def test_an_import_the_host_cannot_provide_is_named(components: ComponentRuntime) -> None:
    from tests.host.component.guests import probe_importing

    with pytest.raises(InvalidActor, match=r"imports evil:thing/api@1\.0\.0, which the host does not provide"):
        components.compile(probe_importing("evil:thing/api@1.0.0"))
    assert components.compile(probe_importing("wasi:random/random@0.2.0")).kind == "actor"


def test_the_fast_entry_is_added_and_used_for_ascii_operations(pool: ComponentPool) -> None:
    from lattice.host.component.binary import FAST_HANDLE

    handle = pool.component.handle
    assert handle is not None and handle.fast is not None
    assert FAST_HANDLE not in pool.component.exports  # internal: not reported as the actor's
    text = "ünïcode, ASCII and 🙂".encode()
    assert pool.call("Echo", text) == text
    binary = bytes(range(256)) * 3
    for offset in range(3):  # the answer at odd and even addresses (the adapter aligns it)
        assert pool.call("Echo", binary[offset:]) == binary[offset:]
    assert pool.call("Echö", binary) == binary  # a non-ASCII operation name takes the plain handle
    with pytest.raises(ActorError, match=r"^ünïcode$"):
        pool.call("Fail", "ünïcode".encode())


def test_components_the_rewrite_does_not_understand_still_run(components: ComponentRuntime) -> None:
    from lattice.host.component import binary

    assert binary.add_fast_handle(b"\0asm\x0d\x00\x01\x00\x63\x00") is None  # an unknown section id
    assert binary.add_fast_handle(bytes(wasmtime.wat2wasm("(component)"))) is None  # no handle to speed up
