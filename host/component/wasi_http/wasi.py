"""The WASI 0.2 surface a component gets besides HTTP, defined once per linker on host resources.

wasi:http bodies are ``wasi:io`` streams, and a component's stdout is one too, so every interface here
shares the ONE ``wasi:io`` this module defines (wasmtime's own WASI would bring a second, incompatible
one). What each interface does (SPEC §7: WASI grants nothing unless the manifest's ``wasi`` grants it):

    wasi:io/error, poll, streams       implemented; pollables of bodies are always ready, clock
                                       pollables become ready at their time (``poll`` sleeps until then)
    wasi:cli/stdout, stderr            implemented: lines go to the host log with the actor id
    wasi:cli/stdin                     an empty stream
    wasi:cli/environment               the manifest's ``wasi.env`` and ``wasi.args``; no cwd
    wasi:cli/exit                      ends the call (status ok: the handler's work stands; err: 502)
    wasi:cli/terminal-*                no terminal (``none``)
    wasi:clocks/monotonic-clock,
    wasi:clocks/wall-clock             implemented
    wasi:random/random, insecure,
    wasi:random/insecure-seed          implemented (``os.urandom``; the seed is random per instance)
    wasi:filesystem/preopens           no directories (nothing granted)
    wasi:filesystem/types              ``filesystem-error-code`` answers ``none``; with no descriptor
                                       ever handed out, every other function traps if called
    wasi:sockets/*                     every function traps if called (no network but wasi:http)

Owns those definitions; HTTP is ``types.py`` and ``outgoing.py``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from wasmtime.component import LinkerInstance

from lattice.host.component.wasi_http import cabi
from lattice.host.component.wasi_http.cabi import Ctx, HostFunc, HostTrap, Vals
from lattice.host.component.wasi_http.state import (
    T_DESCRIPTOR,
    T_DIRECTORY_ENTRY_STREAM,
    T_ERROR,
    T_INPUT_STREAM,
    T_OUTPUT_STREAM,
    T_POLLABLE,
    T_TERMINAL_INPUT,
    T_TERMINAL_OUTPUT,
    BodyTooLarge,
    Error,
    InputStream,
    OutputStream,
    Pollable,
    current,
    may_block,
)

EXIT_OK = "component called wasi:cli/exit with ok"


class Exit(HostTrap):
    """``wasi:cli/exit`` was called: the guest stops here (a trap, without the host logging an error)."""

    def __init__(self, ok: bool) -> None:
        super().__init__(EXIT_OK if ok else "component called wasi:cli/exit with err")


Resources = dict[str, tuple[int, Callable[[int], None]]]


def drop(rep: int) -> None:
    """The default destructor: forget the resource (the guest dropped its handle)."""
    state = current()
    state.table.pop(rep)


def define_interface(root: LinkerInstance, full: str, resources: Resources, funcs: dict[str, HostFunc]) -> None:
    """Interface ``full`` (``name@version``) with its resources and functions.

    Defined at the exact version the component imports: wasmtime matches 0.2.x versions when
    instantiating, but ``define_unknown_imports_as_traps`` would not see the definition and stub it."""
    with root.add_instance(full) as instance:
        for resource, (type_id, dtor) in resources.items():
            cabi.define_resource(instance, resource, type_id, dtor)
        for func_name, func in funcs.items():
            cabi.define_func(instance, func_name, func, f"{full}#{func_name}")


def new(ctx: Ctx, out: Any, type_id: int, item: Any) -> None:
    """Hand the guest a new ``own`` handle to ``item``."""
    cabi.put_own(ctx, out, type_id, current().table.add(item))


def put_stream_error(ctx: Ctx, out: Any, message: str | None) -> None:
    """``err(stream-error)``: ``closed`` when ``message`` is ``None``, else ``last-operation-failed``."""
    if message is None:
        cabi.put_result(out, False, lambda v: cabi.put_variant(v, "closed"))
    else:
        cabi.put_result(
            out,
            False,
            lambda v: cabi.put_variant(v, "last-operation-failed", lambda e: new(ctx, e, T_ERROR, Error(message))),
        )


# --- wasi:io ---------------------------------------------------------------------------------------------


def _error_to_debug_string(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_string(results[0], current().table.get(cabi.rep(ctx, args[0]), Error).message)


def _pollable_ready(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_bool(results[0], current().table.get(cabi.rep(ctx, args[0]), Pollable).ready())


def _pollable_block(ctx: Ctx, args: Vals, results: Vals) -> None:
    _wait([current().table.get(cabi.rep(ctx, args[0]), Pollable)])


def _wait(pollables: list[Pollable]) -> None:
    """Sleep until the first of ``pollables`` is ready (the call's deadline still interrupts the guest)."""
    soonest = min(p.ready_at for p in pollables)
    delay = soonest - time.monotonic()
    if delay > 0:
        may_block()
        time.sleep(delay)


def _poll(ctx: Ctx, args: Vals, results: Vals) -> None:
    table = current().table
    pollables = [table.get(cabi.rep(ctx, v), Pollable) for v in cabi.items(args[0])]
    if not pollables:
        raise HostTrap("poll needs at least one pollable")
    ready = [i for i, p in enumerate(pollables) if p.ready()]
    if not ready:
        _wait(pollables)
        ready = [i for i, p in enumerate(pollables) if p.ready()]
    cabi.put_list(results[0], ready, cabi.put_u32)


def _subscribe(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_POLLABLE, Pollable())


def _read(ctx: Ctx, args: Vals, results: Vals) -> None:
    stream = current().table.get(cabi.rep(ctx, args[0]), InputStream)
    chunk = stream.read(args[1].of.u64)
    if chunk is None:
        put_stream_error(ctx, results[0], None)
    else:
        cabi.put_result(results[0], True, lambda v: cabi.put_blob(v, chunk))


def _skip(ctx: Ctx, args: Vals, results: Vals) -> None:
    stream = current().table.get(cabi.rep(ctx, args[0]), InputStream)
    chunk = stream.read(args[1].of.u64)
    if chunk is None:
        put_stream_error(ctx, results[0], None)
    else:
        cabi.put_result(results[0], True, lambda v: cabi.put_u64(v, len(chunk)))


CHECK_WRITE = 1024 * 1024  # what ``check-write`` allows at once (bodies are bounded on their own)


def _check_write(ctx: Ctx, args: Vals, results: Vals) -> None:
    stream = current().table.get(cabi.rep(ctx, args[0]), OutputStream)
    if stream.closed:
        put_stream_error(ctx, results[0], None)
    else:
        cabi.put_result(results[0], True, lambda v: cabi.put_u64(v, CHECK_WRITE))


def _write_bytes(ctx: Ctx, stream_val: Any, data: bytes, out: Any) -> None:
    stream = current().table.get(cabi.rep(ctx, stream_val), OutputStream)
    if stream.closed:
        put_stream_error(ctx, out, None)
        return
    try:
        stream.sink(data)
    except BodyTooLarge as exc:
        stream.closed = True
        put_stream_error(ctx, out, str(exc))
        return
    cabi.put_result(out, True)


def _write(ctx: Ctx, args: Vals, results: Vals) -> None:
    _write_bytes(ctx, args[0], cabi.blob(args[1]), results[0])


def _write_zeroes(ctx: Ctx, args: Vals, results: Vals) -> None:
    _write_bytes(ctx, args[0], bytes(args[1].of.u64), results[0])


def _flush(ctx: Ctx, args: Vals, results: Vals) -> None:
    stream = current().table.get(cabi.rep(ctx, args[0]), OutputStream)
    if stream.closed:
        put_stream_error(ctx, results[0], None)
    else:
        cabi.put_result(results[0], True)


def _splice(ctx: Ctx, args: Vals, results: Vals) -> None:
    table = current().table
    sink = table.get(cabi.rep(ctx, args[0]), OutputStream)
    source = table.get(cabi.rep(ctx, args[1]), InputStream)
    chunk = source.read(args[2].of.u64)
    if chunk is None or sink.closed:
        put_stream_error(ctx, results[0], None)
        return
    try:
        sink.sink(chunk)
    except BodyTooLarge as exc:
        sink.closed = True
        put_stream_error(ctx, results[0], str(exc))
        return
    cabi.put_result(results[0], True, lambda v: cabi.put_u64(v, len(chunk)))


Interface = tuple[Resources, dict[str, HostFunc]]

IO: dict[str, Interface] = {
    "wasi:io/error": ({"error": (T_ERROR, drop)}, {"[method]error.to-debug-string": _error_to_debug_string}),
    "wasi:io/poll": (
        {"pollable": (T_POLLABLE, drop)},
        {"[method]pollable.ready": _pollable_ready, "[method]pollable.block": _pollable_block, "poll": _poll},
    ),
    "wasi:io/streams": (
        {"input-stream": (T_INPUT_STREAM, drop), "output-stream": (T_OUTPUT_STREAM, drop)},
        {
            "[method]input-stream.read": _read,
            "[method]input-stream.blocking-read": _read,
            "[method]input-stream.skip": _skip,
            "[method]input-stream.blocking-skip": _skip,
            "[method]input-stream.subscribe": _subscribe,
            "[method]output-stream.check-write": _check_write,
            "[method]output-stream.write": _write,
            "[method]output-stream.blocking-write-and-flush": _write,
            "[method]output-stream.flush": _flush,
            "[method]output-stream.blocking-flush": _flush,
            "[method]output-stream.subscribe": _subscribe,
            "[method]output-stream.write-zeroes": _write_zeroes,
            "[method]output-stream.blocking-write-zeroes-and-flush": _write_zeroes,
            "[method]output-stream.splice": _splice,
            "[method]output-stream.blocking-splice": _splice,
        },
    ),
}


# --- wasi:cli, wasi:clocks, wasi:random, wasi:filesystem -------------------------------------------------


def _log_stream(stream: str) -> HostFunc:
    def get(ctx: Ctx, args: Vals, results: Vals) -> None:
        state = current()
        new(ctx, results[0], T_OUTPUT_STREAM, OutputStream(lambda data: state.write_log(stream, data)))

    return get


def _get_stdin(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_INPUT_STREAM, InputStream(b""))


def _get_environment(ctx: Ctx, args: Vals, results: Vals) -> None:
    def pair(out: Any, kv: tuple[str, str]) -> None:
        cabi.put_tuple(out, [lambda v: cabi.put_string(v, kv[0]), lambda v: cabi.put_string(v, kv[1])])

    cabi.put_list(results[0], list(current().grants.env.items()), pair)


def _get_arguments(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_list(results[0], list(current().grants.args), cabi.put_string)


def _none(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_option(results[0], None)


def _exit(ctx: Ctx, args: Vals, results: Vals) -> None:
    raise Exit(bool(args[0].of.result.is_ok))


def _monotonic_now(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_u64(results[0], time.monotonic_ns())


def _resolution(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_u64(results[0], 1)


def _subscribe_instant(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_POLLABLE, Pollable(args[0].of.u64 / 1e9))


def _subscribe_duration(ctx: Ctx, args: Vals, results: Vals) -> None:
    new(ctx, results[0], T_POLLABLE, Pollable(time.monotonic() + args[0].of.u64 / 1e9))


def _datetime(out: Any, ns: int) -> None:
    cabi.put_record(
        out,
        [("seconds", lambda v: cabi.put_u64(v, ns // 10**9)), ("nanoseconds", lambda v: cabi.put_u32(v, ns % 10**9))],
    )


def _wall_now(ctx: Ctx, args: Vals, results: Vals) -> None:
    _datetime(results[0], time.time_ns())


def _wall_resolution(ctx: Ctx, args: Vals, results: Vals) -> None:
    _datetime(results[0], 1000)


MAX_RANDOM = 1024 * 1024


def _random_bytes(ctx: Ctx, args: Vals, results: Vals) -> None:
    n = args[0].of.u64
    if n > MAX_RANDOM:
        raise HostTrap(f"asked for {n} random bytes, at most {MAX_RANDOM} at once")
    cabi.put_blob(results[0], os.urandom(n))


def _random_u64(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_u64(results[0], int.from_bytes(os.urandom(8), "little"))


def _insecure_seed(ctx: Ctx, args: Vals, results: Vals) -> None:
    a, b = random.getrandbits(64), random.getrandbits(64)
    cabi.put_tuple(results[0], [lambda v: cabi.put_u64(v, a), lambda v: cabi.put_u64(v, b)])


def _no_directories(ctx: Ctx, args: Vals, results: Vals) -> None:
    cabi.put_list(results[0], [], cabi.put_u32)


CLI: dict[str, Interface] = {
    "wasi:cli/stdout": ({}, {"get-stdout": _log_stream("stdout")}),
    "wasi:cli/stderr": ({}, {"get-stderr": _log_stream("stderr")}),
    "wasi:cli/stdin": ({}, {"get-stdin": _get_stdin}),
    "wasi:cli/environment": (
        {},
        {"get-environment": _get_environment, "get-arguments": _get_arguments, "initial-cwd": _none},
    ),
    "wasi:cli/exit": ({}, {"exit": _exit}),
    "wasi:cli/terminal-input": ({"terminal-input": (T_TERMINAL_INPUT, drop)}, {}),
    "wasi:cli/terminal-output": ({"terminal-output": (T_TERMINAL_OUTPUT, drop)}, {}),
    "wasi:cli/terminal-stdin": ({}, {"get-terminal-stdin": _none}),
    "wasi:cli/terminal-stdout": ({}, {"get-terminal-stdout": _none}),
    "wasi:cli/terminal-stderr": ({}, {"get-terminal-stderr": _none}),
    "wasi:clocks/monotonic-clock": (
        {},
        {
            "now": _monotonic_now,
            "resolution": _resolution,
            "subscribe-instant": _subscribe_instant,
            "subscribe-duration": _subscribe_duration,
        },
    ),
    "wasi:clocks/wall-clock": ({}, {"now": _wall_now, "resolution": _wall_resolution}),
    "wasi:random/random": ({}, {"get-random-bytes": _random_bytes, "get-random-u64": _random_u64}),
    "wasi:random/insecure": (
        {},
        {"get-insecure-random-bytes": _random_bytes, "get-insecure-random-u64": _random_u64},
    ),
    "wasi:random/insecure-seed": ({}, {"insecure-seed": _insecure_seed}),
    "wasi:filesystem/preopens": ({}, {"get-directories": _no_directories}),
    "wasi:filesystem/types": (
        {"descriptor": (T_DESCRIPTOR, drop), "directory-entry-stream": (T_DIRECTORY_ENTRY_STREAM, drop)},
        {"filesystem-error-code": _none},
    ),
}
