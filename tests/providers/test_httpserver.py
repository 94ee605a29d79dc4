"""wasmcloud:httpserver (SPEC §2), in process and over NATS, with real sockets and stand-in actors."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import structlog.testing

from lattice.cli.natsserver import free_port
from lattice.errors import Busy, ProviderError
from lattice.messages import LinkDefinition, pack, unpack
from lattice.providers.httpserver import HttpServerProvider, ListenerConfig, decode_response, listener_config
from tests.conftest import wait_for
from tests.providers.conftest import ActorHandler, Harness, HarnessFactory, actor_id, link_to

OP = "HttpServer.HandleRequest"


@pytest.fixture
async def http(start_provider: HarnessFactory) -> Harness:
    return await start_provider(HttpServerProvider())


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        yield c


def replying(status: int = 200, body: bytes = b"ok", **header: Any) -> ActorHandler:
    async def handle(operation: str, payload: bytes) -> bytes:
        assert operation == OP
        return pack({"statusCode": status, "header": header, "body": body})

    return handle


def echoing(seen: list[dict[str, Any]]) -> ActorHandler:
    async def handle(operation: str, payload: bytes) -> bytes:
        request = unpack(payload)
        seen.append(request)
        return pack({"statusCode": 201, "header": {"x-path": [request["path"]]}, "body": b"echo:" + request["body"]})

    return handle


async def serve(http: Harness, handler: ActorHandler, **values: Any) -> tuple[str, str]:
    """A new actor answered by ``handler`` and linked on a free port; ``(actor id, base url)``."""
    actor, port = actor_id(), free_port()
    await http.serve_actor(actor, handler)
    await http.link(actor, port=port, **values)
    return actor, f"http://127.0.0.1:{port}"


async def refused(client: httpx.AsyncClient, url: str) -> bool:
    try:
        await client.get(url)
    except httpx.ConnectError:
        return True
    return False


async def test_a_link_opens_a_listener_that_maps_requests_and_responses(
    http: Harness, client: httpx.AsyncClient
) -> None:
    seen: list[dict[str, Any]] = []
    _, url = await serve(http, echoing(seen))
    response = await client.post(
        f"{url}/items/1?x=1&y=%20",
        content=b"\x00\x01binary",
        headers=[("X-Multi", "a"), ("X-Multi", "b"), ("Content-Type", "application/octet-stream")],
    )
    assert response.status_code == 201
    assert response.headers["x-path"] == "/items/1"
    assert response.content == b"echo:\x00\x01binary"
    (request,) = seen
    assert request["method"] == "POST"
    assert request["path"] == "/items/1"
    assert request["queryString"] == "x=1&y=%20"
    assert request["header"]["x-multi"] == ["a", "b"]
    assert request["header"]["content-type"] == ["application/octet-stream"]
    assert request["body"] == b"\x00\x01binary"
    assert (await client.get(f"{url}/")).status_code == 201


async def test_deleting_the_link_closes_its_listener(http: Harness, client: httpx.AsyncClient) -> None:
    actor, url = await serve(http, replying())
    assert (await client.get(url)).status_code == 200
    await http.del_link(link_to(http.provider, actor))
    await wait_for(lambda: refused(client, url))


async def test_two_links_listen_on_two_ports_at_once(http: Harness, client: httpx.AsyncClient) -> None:
    first, url1 = await serve(http, replying(body=b"one"))
    _, url2 = await serve(http, replying(body=b"two"))
    results = await asyncio.gather(*(client.get(u) for u in [url1, url2] * 10))
    assert [r.content for r in results] == [b"one", b"two"] * 10
    await http.del_link(link_to(http.provider, first))
    await wait_for(lambda: refused(client, url1))
    assert (await client.get(url2)).content == b"two"


async def test_a_body_over_the_limit_is_413(http: Harness, client: httpx.AsyncClient) -> None:
    seen: list[dict[str, Any]] = []
    echo = echoing(seen)

    async def short(operation: str, payload: bytes) -> bytes:  # the echo, with a body under the limit too
        response = unpack(await echo(operation, payload))
        return pack({**response, "body": response["body"][:10]})

    _, url = await serve(http, short, max_body_bytes=10)
    assert (await client.post(url, content=b"x" * 10)).status_code == 201
    response = await client.post(url, content=b"x" * 11)
    assert response.status_code == 413 and b"over 10 bytes" in response.content

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"abcd"

    assert (await client.post(url, content=chunked())).status_code == 413
    assert len(seen) == 1
    assert (await client.get(url)).status_code == 201  # still serving


async def test_a_response_body_over_the_limit_is_502(http: Harness, client: httpx.AsyncClient) -> None:
    _, url = await serve(http, replying(body=b"y" * 11), max_body_bytes=10)
    response = await client.get(url)
    assert response.status_code == 502 and b"body over 10 bytes" in response.content
    _, url = await serve(http, replying(body=b"y" * 10), max_body_bytes=10)
    assert (await client.get(url)).content == b"y" * 10


async def test_an_actor_error_is_500_with_a_request_id_and_the_details_only_in_the_log(
    http: Harness, client: httpx.AsyncClient
) -> None:
    async def failing(operation: str, payload: bytes) -> bytes:
        raise RuntimeError("division by zero in handler")

    actor, url = await serve(http, failing)
    with structlog.testing.capture_logs() as logs:
        response = await client.get(url)
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.text == f"the actor failed (request id {request_id})\n"
    assert actor not in response.text and "division" not in response.text  # issue 13: no internals to clients
    logged = [e for e in logs if e.get("request_id") == request_id]
    assert logged and "division by zero" in logged[0]["error"]


async def test_no_answer_in_time_is_504_and_nobody_serving_is_503(http: Harness, client: httpx.AsyncClient) -> None:
    never = asyncio.Event()

    async def stuck(operation: str, payload: bytes) -> bytes:
        await never.wait()
        return b""

    actor, url = await serve(http, stuck, timeout_ms=100)
    response = await client.get(url)
    assert response.status_code == 504 and "did not answer in time" in response.text and actor not in response.text
    ghost, ghost_port = actor_id(), free_port()
    await http.link(ghost, port=ghost_port)
    response = await client.get(f"http://127.0.0.1:{ghost_port}/")
    assert response.status_code == 503 and "not running" in response.text and ghost not in response.text


@pytest.mark.parametrize(
    "answer",
    [b"\xc1", pack("just a string"), pack({"statusCode": 42}), pack({"header": {"bad name": ["x"]}})],
    ids=["not-msgpack", "not-a-map", "bad-status", "bad-header-name"],
)
async def test_a_malformed_response_is_502(http: Harness, client: httpx.AsyncClient, answer: bytes) -> None:
    async def broken(operation: str, payload: bytes) -> bytes:
        return answer

    actor, url = await serve(http, broken)
    response = await client.get(url)
    assert response.status_code == 502 and "malformed HttpResponse" in response.text and actor not in response.text


async def test_responses_are_read_tolerantly(http: Harness, client: httpx.AsyncClient) -> None:
    async def loose(operation: str, payload: bytes) -> bytes:
        return pack({"header": {"Content-Type": "text/plain", "X-Many": ["1", "2"]}, "body": "héllo"})

    _, url = await serve(http, loose)
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.headers.get_list("x-many") == ["1", "2"]
    assert response.content == "héllo".encode()


async def test_cors_preflight_and_response_headers(http: Harness, client: httpx.AsyncClient) -> None:
    _, url = await serve(http, replying(), cors_origins="https://app.example, https://other.example")
    preflight = await client.options(
        url,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "x-token",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "x-token"
    denied = await client.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}
    )
    assert denied.status_code == 403
    allowed = await client.get(url, headers={"Origin": "https://other.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://other.example"
    assert "access-control-allow-origin" not in (await client.get(url, headers={"Origin": "https://x"})).headers
    _, any_url = await serve(http, replying(), cors_origins="*")
    assert (await client.get(any_url, headers={"Origin": "https://x"})).headers["access-control-allow-origin"] == "*"


async def test_bad_link_values_are_refused_and_the_provider_keeps_serving(
    http: Harness, client: httpx.AsyncClient
) -> None:
    _, url = await serve(http, replying(body=b"alive"))
    taken = int(url.rsplit(":", 1)[1])
    bad_values: list[tuple[dict[str, Any], str]] = [
        ({"port": "abc"}, "port must be a number"),
        ({"port": "70000"}, "port must be in 1–65535"),
        ({"address": "nohost"}, "address must be host:port"),
        ({"port": taken}, "cannot listen on"),
        ({"port": free_port(), "max_body_bytes": "-1"}, "max_body_bytes must be positive"),
        ({"port": free_port(), "tls_cert": "/nonexistent.pem"}, "tls_cert and tls_key go together"),
        ({"port": free_port(), "tls_cert": "/nope.pem", "tls_key": "/nope.key"}, "cannot load TLS files"),
    ]
    for values, reason in bad_values:
        actor = actor_id()
        with pytest.raises(ProviderError, match=reason) as refusal:
            await http.put_link(link_to(http.provider, actor, **values))
        assert actor in str(refusal.value)
        assert (await client.get(url)).content == b"alive"
    _, other = await serve(http, replying(body=b"new"))
    assert (await client.get(other)).content == b"new"
    healthy, message = await http.health()
    assert healthy and message.startswith("2 listener(s)")


async def test_an_incoming_traceparent_is_passed_on(http: Harness, client: httpx.AsyncClient) -> None:
    _, url = await serve(http, replying())
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await client.get(url, headers={"traceparent": traceparent})
    assert http.trace_contexts[-1]["traceparent"] == traceparent


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run([*args, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_https_with_a_tls_certificate(http: Harness, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    actor, port = actor_id(), free_port()
    await http.serve_actor(actor, replying(body=b"secure"))
    await http.link(actor, port=port, tls_cert=cert, tls_key=key)
    async with httpx.AsyncClient(verify=False, trust_env=False, timeout=10) as c:
        assert (await c.get(f"https://127.0.0.1:{port}/")).content == b"secure"


# --- pure parts -------------------------------------------------------------------------------------


def link(**values: str) -> LinkDefinition:
    return LinkDefinition("MACTOR", "VPROV", "wasmcloud:httpserver", "default", values)


def test_link_values_become_a_listener_config() -> None:
    assert listener_config(link()) == ListenerConfig("127.0.0.1", 8000)
    assert listener_config(link(PORT="8080")).port == 8080
    cfg = listener_config(
        link(address="0.0.0.0:9000", port="1", max_body_bytes="5", timeout_ms="1500", cors_origins="a, b,")
    )
    assert (cfg.host, cfg.port, cfg.max_body_bytes, cfg.timeout_s, cfg.cors_origins) == (
        "0.0.0.0",
        9000,
        5,
        1.5,
        ("a", "b"),
    )
    assert listener_config(link(address="[::1]:8081")).url == "http://[::1]:8081"
    assert listener_config(link(address=":8082")).host == "127.0.0.1"


def test_decode_response_is_tolerant_but_strict_about_what_http_cannot_carry() -> None:
    assert decode_response(pack({})) == (200, [], b"")
    status, headers, body = decode_response(
        pack({"statusCode": 404, "header": {"X-A": "1", "x-b": ["2", "3"], "Content-Length": ["99"]}, "body": b"no"})
    )
    assert (status, headers, body) == (404, [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-b", b"3")], b"no")
    assert decode_response(pack({"headers": {"a": "b"}, "body": [104, 105]}))[1:] == ([(b"a", b"b")], b"hi")
    for bad in [{"statusCode": True}, {"header": {"a": "x\r\ny: z"}}, {"header": ["a"]}, {"body": 5}]:
        with pytest.raises(ValueError):
            decode_response(pack(bad))


async def test_a_busy_actor_is_503_with_retry_after(http: Harness, client: httpx.AsyncClient) -> None:
    async def busy(operation: str, payload: bytes) -> bytes:
        raise Busy("every instance is busy")

    actor, url = await serve(http, busy)
    response = await client.get(url)
    if http.mode == "in_process":  # over NATS the far end's error arrives as text: a plain 500
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "busy" in response.text and actor not in response.text
    else:
        assert response.status_code == 500 and "request id" in response.text
