"""In process: bare wasmtime-py against our ``ActorPool`` (instantiate, call), and idle memory.

    raw_instantiate_us       Store + ``InstancePre.instantiate`` of the cached hello module, imports
                             satisfied by no-op functions: the cheapest bare wasmtime-py path
    raw_instantiate_linker_us  the same through ``Linker.instantiate`` (what most embedders write)
    raw_instantiate_start_us the bare path plus the guest's start function (``wapc_init``) called through
                             wasmtime-py's ``Func``: what a bare embedder pays for a *usable* instance
    instantiate_cold_us      ``ActorPool._new_instance()``: Store, limits, epoch deadline, ABI wiring and
                             the actor's start functions (hello.wasm has ``wapc_init``)
    instantiate_us           what a call waits for a fresh instance when none of the pool's is idle, on a
                             host's pool (``spare=True``): the warm spare an earlier call of the burst had
                             the runtime's spare maker (``host.spares``) build off the call's path, handed
                             out (the build itself is untimed: it is ``instantiate_cold_us`` on a thread)
    raw_call_us              a bare export call ``f(store, i32, i32) -> i32`` that does nothing
    wapc_echo_us             ``ActorPool.call`` of a 100-byte waPC echo (``tests/host/guests.py`` ECHO)
    idle_instance_kib        RSS per idle hello instance: ``pool.warm(101)`` in a fresh subprocess

Store teardown is outside every timed region.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import wasmtime

from bench.stats import summarize, time_each_us
from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, Runtime

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "actors" / "hello" / "hello.wasm"
NOOP = wasmtime.wat2wasm('(module (func (export "f") (param i32 i32) (result i32) (local.get 0)))')


def _plain_linker(engine: wasmtime.Engine, module: wasmtime.Module) -> wasmtime.Linker:
    """A linker satisfying every function import of ``module`` with a function that does nothing."""
    linker = wasmtime.Linker(engine)
    for imp in module.imports:
        ty = imp.type
        assert isinstance(ty, wasmtime.FuncType), imp.name
        zeros = [0] * len(ty.results)
        linker.define_func(imp.module, imp.name or "", ty, lambda *_a, z=zeros: z[0] if z else None)
    return linker


def _time_instantiation(make: object, samples: int) -> list[float]:
    """µs per ``make()``; what it returns is closed with ``_close`` outside the timed region."""
    assert callable(make)
    for _ in range(20):
        _close(make())
    clock = time.perf_counter_ns
    out = []
    for _ in range(samples):
        start = clock()
        made = make()
        out.append((clock() - start) / 1000)
        _close(made)
    return out


def _spare_handout(pool: ActorPool, samples: int) -> list[float]:
    """µs for a call to get an instance from ``pool`` when none of the instances it used is idle and the
    spare an earlier call of the burst asked for is ready; the instance is then discarded, so each sample
    asks for (untimed) and waits for a new spare."""
    clock = time.perf_counter_ns
    out = []
    for i in range(samples + 20):
        pool._ask_spare()  # what a call that found none idle does
        deadline = time.monotonic() + 10
        while not pool._idle:  # the spare maker's thread builds it
            if time.monotonic() > deadline:
                raise RuntimeError("the pool's spare was not built within 10 s")
            time.sleep(0.0002)
        holder = pool._instance()
        start = clock()
        holder.__enter__()
        elapsed = clock() - start
        holder.__exit__(RuntimeError, RuntimeError("discard"), None)  # discarded, not put back
        if i >= 20:
            out.append(elapsed / 1000)
    return out


def _close(made: object) -> None:
    store = getattr(made, "store", made)
    if isinstance(store, wasmtime.Store):
        store.close()


def run(samples: int) -> dict[str, float]:
    """The micro benchmarks with ``samples`` timed repetitions each (calls get 5× as many)."""
    from tests.host.guests import ECHO

    runtime = Runtime(None)
    try:
        hello = runtime.compile(HELLO.read_bytes())
        engine = runtime.engine
        linker = _plain_linker(engine, hello.module)
        pre = linker.instantiate_pre(hello.module)

        def raw_pre() -> wasmtime.Store:
            store = wasmtime.Store(engine)
            pre.instantiate(store)
            return store

        def raw_start() -> wasmtime.Store:
            store = wasmtime.Store(engine)
            store.set_epoch_deadline(1_000_000)
            start = pre.instantiate(store).exports(store)["wapc_init"]
            assert isinstance(start, wasmtime.Func)
            start(store)
            return store

        def raw_linker() -> wasmtime.Store:
            store = wasmtime.Store(engine)
            linker.instantiate(store, hello.module)
            return store

        pool = ActorPool(runtime, hello)
        results: dict[str, float] = {}
        results |= summarize(_time_instantiation(raw_pre, samples), "raw_instantiate", "us")
        results |= summarize(_time_instantiation(raw_linker, samples), "raw_instantiate_linker", "us")
        results |= summarize(_time_instantiation(raw_start, samples), "raw_instantiate_start", "us")
        results |= summarize(_time_instantiation(pool._new_instance, samples), "instantiate_cold", "us")
        spare = ActorPool(runtime, hello, spare=True, limits=ActorLimits(max_instances=2))
        spare._discard(spare._idle.popleft())  # the instance every pool starts with: no spare yet
        results |= summarize(_spare_handout(spare, samples), "instantiate", "us")

        store = wasmtime.Store(engine)
        store.set_epoch_deadline(1_000_000)
        noop = wasmtime.Instance(store, wasmtime.Module(engine, NOOP), []).exports(store)["f"]
        assert isinstance(noop, wasmtime.Func)
        results |= summarize(time_each_us(lambda: noop(store, 1, 2), samples * 5), "raw_call", "us")

        echo = ActorPool(runtime, runtime.compile(ECHO))
        payload = b"x" * 100
        assert echo.call("Echo.Echo", payload) == payload
        results |= summarize(time_each_us(lambda: echo.call("Echo.Echo", payload), samples * 5), "wapc_echo", "us")
        return results
    finally:
        runtime.close()


# --- idle memory, in a fresh process -------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def warm_rss(pool: ActorPool, instances: int) -> tuple[int, int]:
    """RSS before and after ``pool.warm(instances + 1)`` (a pool starts with one instance)."""
    gc.collect()
    before = rss_bytes()
    pool.warm(instances + 1)
    gc.collect()
    after = rss_bytes()
    assert pool.stats()["instances"] == instances + 1
    return before, after


def measure_idle_memory(instances: int = 100) -> dict[str, float]:
    """RSS per idle hello instance."""
    runtime = Runtime(None)
    try:
        pool = ActorPool(runtime, runtime.compile(HELLO.read_bytes()), limits=ActorLimits(max_instances=instances + 1))
        before, after = warm_rss(pool, instances)
        return {"idle_instance_kib": (after - before) / 1024 / instances, "idle_rss_base_mib": before / 2**20}
    finally:
        runtime.close()


def in_fresh_process(module: str, command: str, timeout_s: float = 120) -> dict[str, float]:
    """``python -m <module> <command>``'s last line of JSON: a measurement nothing before it skews."""
    out = subprocess.run(
        [sys.executable, "-m", module, command],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def idle_memory() -> dict[str, float]:
    """``measure_idle_memory`` in a fresh subprocess."""
    return in_fresh_process("bench.micro", "idle-memory")


if __name__ == "__main__":
    if sys.argv[1:] == ["idle-memory"]:
        print(json.dumps(measure_idle_memory()))
    else:
        print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), indent=2))
