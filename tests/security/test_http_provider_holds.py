"""Issue 17, finding 9: the HTTP server provider against header floods and slowloris, over real sockets."""

from __future__ import annotations

import asyncio

import pytest

from lattice.providers.httpserver import HttpServerProvider
from tests.providers.conftest import Harness, HarnessFactory
from tests.providers.test_httpserver import replying, serve


@pytest.fixture
async def http(start_provider: HarnessFactory) -> Harness:
    return await start_provider(HttpServerProvider())


async def _exchange(url: str, request: bytes) -> bytes:
    """Send ``request`` raw and read until the server closes (or 10 s)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_hundred_thousand_headers_are_431(http: Harness) -> None:
    _, url = await serve(http, replying())
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(100_000))
    answer = await _exchange(url, b"GET / HTTP/1.1\r\nhost: a\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]


async def test_one_eight_mib_header_is_431_and_the_server_keeps_serving(http: Harness) -> None:
    _, url = await serve(http, replying(body=b"fine"))
    answer = await _exchange(url, b"GET / HTTP/1.1\r\nhost: a\r\nx-big: " + b"a" * (8 << 20) + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    ok = await _exchange(url, b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"fine")


async def test_slowloris_connection_is_closed_after_the_header_timeout(http: Harness) -> None:
    _, url = await serve(http, replying(body=b"fine"), header_timeout_ms="300")
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    idle_reader, idle_writer = await asyncio.open_connection(host, int(port))  # never sends a byte
    try:
        writer.write(b"GET / HTTP/1.1\r\nhost: a\r\n")
        for _ in range(20):  # a header line trickling in, never finished
            if writer.is_closing():
                break
            try:
                writer.write(b"x-a: b\r\n")
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                break
            await asyncio.sleep(0.05)
        answer = await asyncio.wait_for(reader.read(), 10)
        idle = await asyncio.wait_for(idle_reader.read(), 10)
    finally:
        writer.close()
        idle_writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert idle.startswith(b"HTTP/1.1 408") or idle == b""
    ok = await _exchange(url, b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")


def test_header_limits_come_from_link_values() -> None:
    from lattice.messages import LinkDefinition
    from lattice.providers.httpserver import listener_config

    cfg = listener_config(
        LinkDefinition(
            "M",
            "V",
            "wasmcloud:httpserver",
            values={
                "max_headers": "10",
                "max_header_bytes": "2048",
                "header_timeout_ms": "500",
                "idle_timeout_ms": "2000",
            },
        )
    )
    assert (cfg.headers.max_headers, cfg.headers.max_header_bytes, cfg.headers.header_timeout_s) == (10, 2048, 0.5)
    assert cfg.idle_timeout_s == 2.0
