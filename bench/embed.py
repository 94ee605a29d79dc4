"""Embedding benchmarks: what a plugin costs through ``host.Sandbox`` next to bare wasmtime-py and Python.

``run(quick)`` returns flat ``{name: value}`` (µs per operation, or records per second) and prints nothing:

- ``embed_instantiate_call_us_p50``/``_p90``: a new ``Sandbox`` of an already-compiled plugin on a shared
  ``Runtime`` (cache hit by SHA-256), one call, close — against ``raw_instantiate_call_us_p50``/``_p90``:
  bare wasmtime-py doing ``Store`` + ``Instance`` + the same call of the same precompiled module;
- ``embed_call_us_p50`` and ``raw_call_us_p50``: a call on a warm (pooled / kept) instance;
- ``embed_wapc_host_call_us_p50``: a waPC call whose guest makes one granted host call (the censor);
- ``pipeline_records_per_s`` (one thread) and ``pipeline_threads_records_per_s`` (4 threads on one
  sandbox) through examples/pipeline/transform.wasm, against ``python_records_per_s``: the same
  transform in pure Python (``python_transform``, which the tests hold to the plugin's output).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import wasmtime

from lattice.host import ActorLimits, Runtime, Sandbox

ROOT = Path(__file__).resolve().parent.parent
TRANSFORM_WASM = ROOT / "examples" / "pipeline" / "transform.wasm"
CENSOR_WASM = ROOT / "examples" / "text_filter" / "plugins" / "censor.wasm"
RECORDS_CSV = ROOT / "examples" / "pipeline" / "records.csv"
RECORD = b"3,grace hopper,new york,100"
LIMITS = ActorLimits(deadline_s=1.0, max_memory_bytes=16 * 1024 * 1024, max_instances=4)


def python_transform(record: bytes) -> bytes:
    """examples/pipeline/transform.c in Python, for the comparison; raises ``ValueError`` to refuse."""
    fields = record.rstrip(b"\r\n").split(b",")
    if len(fields) != 4:
        raise ValueError("expected 4 fields: id,name,city,amount")
    id_, name, city, amount = fields
    if not (0 < len(id_) <= 9 and id_.isdigit()):
        raise ValueError("malformed id")
    if not name:
        raise ValueError("empty name")
    if any(c < 0x20 for c in name + city):
        raise ValueError("control character in a text field")
    whole, dot, frac = amount.partition(b".")
    if not whole.isdigit() or (dot and not (0 < len(frac) <= 2 and frac.isdigit())) or len(whole) > 12:
        raise ValueError("malformed amount")
    cents = int(whole) * 100 + int(frac.ljust(2, b"0") or b"0")
    name_json, city_json = _json_text(name, title=True), _json_text(city)
    return b'{"id":%d,"name":%s,"city":%s,"cents":%d}' % (int(id_), name_json, city_json, cents)


def _json_text(text: bytes, *, title: bool = False) -> bytes:
    out = bytearray(b'"')
    for i, c in enumerate(text):
        upper = not title or i == 0 or text[i - 1] in b" -"
        if upper and 0x61 <= c <= 0x7A:
            c -= 32
        elif not upper and 0x41 <= c <= 0x5A:
            c += 32
        if c in b'"\\':
            out.append(0x5C)
        out.append(c)
    out.append(0x22)
    return bytes(out)


def valid_records() -> list[bytes]:
    """The records of examples/pipeline/records.csv that the transform accepts (Python refuses the two
    that hit the plugin's planted bugs)."""
    records = []
    for line in RECORDS_CSV.read_bytes().splitlines()[1:]:
        try:
            python_transform(line)
        except ValueError:
            continue
        records.append(line)
    return records


def _timed_us(fn: Callable[[], Any], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _percentiles(prefix: str, samples: list[float]) -> dict[str, float]:
    deciles = statistics.quantiles(samples, n=10)
    return {f"{prefix}_p50": round(statistics.median(samples), 2), f"{prefix}_p90": round(deciles[8], 2)}


def _raw_call(store: wasmtime.Store, exports: Any, record: bytes) -> bytes:
    """The plain-function ABI by hand: alloc, write, call, read."""
    memory = exports["memory"]
    ptr = exports["alloc"](store, len(record))
    memory.write(store, record, ptr)
    packed = exports["transform_record"](store, ptr, len(record))
    out_ptr, out_len = packed >> 32, packed & 0xFFFF_FFFF
    return bytes(memory.read(store, out_ptr, out_ptr + out_len))


def _raw(wasm: bytes, n: int) -> dict[str, float]:
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm)  # compiled once, like the sandbox's cached plugin

    def instantiate_and_call() -> None:
        store = wasmtime.Store(engine)
        exports = wasmtime.Instance(store, module, []).exports(store)
        _raw_call(store, exports, RECORD)
        store.close()

    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, module, []).exports(store)
    return {
        **_percentiles("raw_instantiate_call_us", _timed_us(instantiate_and_call, n)),
        **_percentiles("raw_call_us", _timed_us(lambda: _raw_call(store, exports, RECORD), n)),
    }


def _embed(runtime: Runtime, wasm: bytes, n: int) -> dict[str, float]:
    def instantiate_and_call() -> None:
        with Sandbox(wasm, abi="function", limits=LIMITS, runtime=runtime) as plugin:
            plugin.call("transform_record", RECORD)

    words = {"example:wordlist": lambda operation, payload: b"heck\ndarn"}
    with (
        Sandbox(wasm, abi="function", limits=LIMITS, runtime=runtime) as plugin,
        Sandbox(CENSOR_WASM, limits=LIMITS, runtime=runtime, grants=words, log_sink=lambda s, t: None) as censor,
    ):
        return {
            **_percentiles("embed_instantiate_call_us", _timed_us(instantiate_and_call, n)),
            **_percentiles("embed_call_us", _timed_us(lambda: plugin.call("transform_record", RECORD), n)),
            **_percentiles(
                "embed_wapc_host_call_us", _timed_us(lambda: censor.call("Filter.Apply", b"what the heck"), n)
            ),
        }


def _throughput(records: list[bytes], transform: Callable[[bytes], bytes], threads: int = 1) -> float:
    start = time.perf_counter()
    if threads == 1:
        for record in records:
            transform(record)
    else:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(transform, records, chunksize=64):
                pass
    return round(len(records) / (time.perf_counter() - start), 1)


def _pipeline(runtime: Runtime, wasm: bytes, n: int) -> dict[str, float]:
    records = list(islice(cycle(valid_records()), n))
    with Sandbox(wasm, abi="function", limits=LIMITS, runtime=runtime) as plugin:
        plugin.warm(4)

        def transform(record: bytes) -> bytes:
            return plugin.call("transform_record", record)

        return {
            "pipeline_records_per_s": _throughput(records, transform),
            "pipeline_threads_records_per_s": _throughput(records, transform, threads=4),
            "python_records_per_s": _throughput(records, python_transform),
        }


def run(quick: bool) -> dict[str, float]:
    """Runs every embedding benchmark; ``quick`` uses fewer iterations (seconds, for CI)."""
    n, records = (200, 2_000) if quick else (2_000, 50_000)
    wasm = TRANSFORM_WASM.read_bytes()
    runtime = Runtime()
    try:
        runtime.compile(wasm, abi="function")  # a cached plugin: the compile is not what is measured
        return {**_embed(runtime, wasm, n), **_raw(wasm, n), **_pipeline(runtime, wasm, records)}
    finally:
        runtime.close()
