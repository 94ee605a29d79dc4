"""wasi:http components on a lattice host (SPEC §7): the peer hello and a componentize-py probe, through
the HTTP server provider in the host and in its own process, on a real nats-server and real sockets."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice import seal, subjects
from lattice.capability import HTTPSERVER, builtin_provider_id
from lattice.cli.natsserver import free_port
from lattice.host.component import components_of
from lattice.host.component.wasi_http.outgoing import allowed
from lattice.host.component.wasi_http.serve import incoming_request
from lattice.host.host import Host
from lattice.host.runtime import Runtime
from lattice.messages import LinkDefinition
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
PEER_HELLO = ROOT / "bench" / "peer_hello" / "hello.component.wasm"
PROBE = Path(__file__).resolve().parent / "wasi_http_probe"
LOGGING_PROBE = Path(__file__).resolve().parent / "wasi_http_logging"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One host state directory for the module: the probe is compiled once (~10 s), then mapped."""
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def probe(state_dir: Path) -> Path:
    from bench.componentize import build_proxy

    try:
        wasm = build_proxy(PROBE)
    except FileNotFoundError as exc:
        pytest.skip(f"cannot build the componentize-py probe: {exc}")
    _precompile(state_dir, wasm)
    return wasm


def _precompile(state_dir: Path, wasm: Path) -> None:
    runtime = Runtime(state_dir / "cache")
    try:
        components_of(runtime).compile(wasm.read_bytes())
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def logging_probe(state_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wasi:http component importing wasi:logging and wasi:config too."""
    from lattice.actors.componentize import WIT_DIR, build_python, wasi_http_wit

    wit = tmp_path_factory.mktemp("wit")
    shutil.copyfile(LOGGING_PROBE / "world.wit", wit / "world.wit")
    try:
        (wit / "deps").mkdir()
        shutil.copyfile(wasi_http_wit(), wit / "deps" / "wasi-http.wit")
        for dep in ("logging", "config"):
            shutil.copytree(WIT_DIR / "deps" / dep, wit / "deps" / dep)
        wasm = build_python(LOGGING_PROBE / "app", world="lattice:wasi-http-probe/logging-proxy", wit=wit).path
    except FileNotFoundError as exc:
        pytest.skip(f"cannot build the componentize-py logging probe: {exc}")
    _precompile(state_dir, wasm)
    return wasm


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        yield c


async def serve(host: Host, wasm: Path, link: dict[str, str] | None = None, **properties: Any) -> str:
    """Run ``wasm`` on ``host``, linked to a bundled httpserver on a free port; the base URL."""
    assert host.settings.files_root is not None
    image = host.settings.files_root / wasm.name  # a host reads file:// images only under its files root
    if not image.exists():
        shutil.copyfile(wasm, image)
    body = {"actor_ref": f"file://{image}", "count": 1, "annotations": {"app": "t"}, "properties": properties}
    subject = subjects.ctl_cmd(host.settings.lattice, host.id, "scale")
    raw = await seal.request(host.nc, host.rpc.sealer, subject, json.dumps(body).encode(), timeout=60)
    reply = json.loads(raw.data)
    assert reply["accepted"], reply
    port = free_port()
    provider = builtin_provider_id("httpserver")
    await host.start_provider("builtin:httpserver", "default", {"app": "t"}, {})
    values = {"port": str(port), **(link or {})}
    await host.data.put_link(LinkDefinition(reply["actor_id"], provider, HTTPSERVER, "default", values))
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        try:
            async with httpx.AsyncClient(trust_env=False) as c:
                return (await c.get(url + "/")).status_code < 500
        except httpx.HTTPError:
            return False

    await wait_for(up, timeout=30)
    return url


async def test_peer_hello_component_serves_http_through_the_in_host_provider(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient
) -> None:
    host = await host_factory(allow_unsigned=True, state_dir=state_dir)
    url = await serve(host, PEER_HELLO)
    for _ in range(3):
        response = await client.get(url + "/anything?x=1")
        assert response.status_code == 200
        assert response.json() == {"hello": "world"}


async def test_peer_hello_component_serves_http_through_a_provider_process(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient
) -> None:
    host = await host_factory(allow_unsigned=True, provider_processes=True, state_dir=state_dir)
    url = await serve(host, PEER_HELLO)
    response = await client.get(url + "/")
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}


async def test_request_and_response_cross_whole_with_streamed_bodies(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient, probe: Path
) -> None:
    host = await host_factory(allow_unsigned=True, state_dir=state_dir)
    url = await serve(host, probe)
    response = await client.put(
        url + "/items/7?status=201&b=%20x", content=b"abc", headers=[("X-One", "1"), ("X-Two", "2")]
    )
    assert response.status_code == 201
    assert response.headers["x-probe"] == "yes"
    echo = response.json()
    assert echo["method"] == "PUT" and echo["path"] == "/items/7" and echo["query"] == "status=201&b=%20x"
    assert ["x-one", "1"] in echo["headers"] and ["x-two", "2"] in echo["headers"]
    assert echo["body_len"] == 3
    big = bytes(range(256)) * 2000  # 512 KB: many 4 KB writes out, many reads in
    response = await client.post(url + "/echo-body", content=big)
    assert response.status_code == 200
    assert response.content == big


async def test_streamed_bodies_cross_through_a_provider_process(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient, probe: Path
) -> None:
    host = await host_factory(allow_unsigned=True, provider_processes=True, state_dir=state_dir)
    url = await serve(host, probe)
    big = bytes(range(256)) * 800  # 200 KB each way over NATS
    response = await client.post(url + "/echo-body?x=1", content=big, headers={"x-over": "nats"})
    assert response.status_code == 200 and response.content == big
    assert response.headers["x-probe"] == "yes"
    assert (await client.get(url + "/noresponse")).status_code == 502


async def test_bad_handlers_answer_502_with_the_reason_and_the_next_request_succeeds(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient, probe: Path
) -> None:
    host = await host_factory(allow_unsigned=True, state_dir=state_dir)
    url = await serve(host, probe, limits={"max_payload_mb": 1})
    cases = {
        "/noresponse": "without setting a response",
        "/error": "answered with an error: internal-error: probe says no",
        "/nofinish": "dropped the response body without finishing it",
        "/trap": "RuntimeError: probe asked to trap",
        "/trap-mid-body": "RuntimeError: probe trapped mid-body",
        f"/big?n={1024 * 1024 + 1}": "over the limit of 1048576 bytes",
    }
    for path, reason in cases.items():
        response = await client.get(url + path)
        assert response.status_code == 502, (path, response.text)
        assert reason in response.text, (path, response.text)
        ok = await client.get(url + "/")
        assert ok.status_code == 200, (path, ok.text)
    assert (await client.get(url + f"/big?n={1024 * 1024 - 4096}")).status_code == 200
    response = await client.get(url + f"/big?n={1024 * 1024}")  # the body fits, with its headers it does not
    assert response.status_code == 502 and "over the limit" in response.text


async def test_a_handler_past_its_deadline_is_504_and_the_next_request_succeeds(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient, probe: Path
) -> None:
    host = await host_factory(allow_unsigned=True, state_dir=state_dir)
    url = await serve(host, probe, limits={"deadline_ms": 300})
    response = await client.get(url + "/spin")
    assert response.status_code == 504, response.text
    assert (await client.get(url + "/")).status_code == 200


@pytest.fixture
def upstream() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"upstream": self.path}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_outgoing_http_goes_only_to_allowed_hosts(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient, probe: Path, upstream: str
) -> None:
    host = await host_factory(allow_unsigned=True, state_dir=state_dir)
    denied = await serve(host, probe)
    response = await client.get(f"{denied}/fetch?url=http://{upstream}/data")
    assert response.status_code == 599 and "HttpRequestDenied" in response.text
    host2 = await host_factory(allow_unsigned=True, state_dir=state_dir)
    url = await serve(host2, probe, allowed_hosts=["127.0.0.1"])
    response = await client.get(f"{url}/fetch?url=http://{upstream}/data")
    assert response.status_code == 200, response.text
    assert response.json() == {"upstream": "/data"}


async def test_a_wasi_http_component_may_import_logging_and_config_too(
    host_factory: Any, state_dir: Path, client: httpx.AsyncClient, logging_probe: Path
) -> None:
    host = await host_factory(allow_unsigned=True, state_dir=state_dir)
    url = await serve(host, logging_probe, link={"greeting": "hi from the link"})
    response = await client.get(url + "/")
    assert response.status_code == 200 and response.text == "hi from the link"


def test_allowed_hosts_match_host_port_and_subdomains() -> None:
    assert allowed("api.example.com", ("api.example.com",))
    assert allowed("api.example.com:8443", ("api.example.com",))
    assert allowed("127.0.0.1:9000", ("127.0.0.1:9000",)) and not allowed("127.0.0.1:9001", ("127.0.0.1:9000",))
    assert allowed("a.b.example.com", ("*.example.com",)) and not allowed("example.com", ("*.example.com",))
    assert not allowed("evil.com", ()) and not allowed("notexample.com", ("*.example.com",))


def test_http_request_becomes_an_incoming_request() -> None:
    request = incoming_request(
        {"method": "POST", "path": "/a", "queryString": "q=1", "header": {"Host": ["h:1"], "x": "y"}, "body": b"b"}
    )
    assert request.method == "POST" and request.path_with_query == "/a?q=1" and request.body == b"b"
    assert request.headers == [("Host", b"h:1"), ("x", b"y")] and request.authority == "h:1"
