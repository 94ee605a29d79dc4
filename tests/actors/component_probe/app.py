"""A Python component actor that exercises every part of lattice_actor, for tests/actors/test_components.py."""

from lattice_actor import ActorError, Guest, HttpRequest, call, call_actor, handler, http, keyvalue, log

__all__ = ["Guest"]


@handler("Probe.Echo")
def echo(payload: bytes) -> bytes:
    return payload


@handler("Probe.Refuse")
def refuse(payload: bytes) -> bytes:
    raise ActorError(f"refused: {payload.decode()}")


@handler("Probe.Crash")
def crash(payload: bytes) -> bytes:
    return bytes([1 // len(payload)])  # ZeroDivisionError on an empty payload


@handler("Probe.Exit")
def exit_(payload: bytes) -> bytes:
    raise SystemExit(3)  # not an Exception: leaves the guest uncaught, so the call traps


@handler("Probe.CallActor")
def ask(payload: bytes) -> bytes:
    """Asks the actor named in the payload for Pong.Ping with a msgpack map; answers what it said."""
    answer = call_actor(payload.decode(), "Pong.Ping", {"n": 41})
    return str(answer["n"]).encode()


@handler("Probe.Raw")
def raw(payload: bytes) -> bytes:
    return call("wasmcloud:builtin:numbergen", "NumberGen.GenerateGuid", b"", link="other")


@handler("Probe.Kv")
def kv(payload: bytes) -> bytes:
    keyvalue.set("k", payload.decode())
    found = keyvalue.get("k")
    missing = keyvalue.get("absent")
    logged = log.warn("probe")
    return f"{found}|{missing}|{keyvalue.contains('k')}|{keyvalue.delete('k')}|{logged}".encode()


@http
def page(request: HttpRequest) -> dict[str, object]:
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "agent": request.header("User-Agent"),
        "json": request.json() if request.body else None,
    }
