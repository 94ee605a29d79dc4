"""The httpserver provider's HTTP/1.1 connection (``protocol.HttpConnection``) over real loopback sockets.

A handler that answers without waiting is answered inline, one that waits through a task: every case
runs both ways. The provider-level behaviour (mapping, limits through link values) is in
``test_httpserver.py`` and ``tests/security/test_http_provider_holds.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from lattice.providers.httpserver.guard import HeaderLimits
from lattice.providers.httpserver.protocol import HttpConnection, Request, Response, ServerSettings


@dataclass
class Server:
    port: int
    seen: list[Request]


@pytest.fixture(params=["inline", "task"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    seen: list[Request] = []
    waits = request.param == "task"

    async def handler(req: Request) -> Response:
        if waits:
            await asyncio.sleep(0.001)
        seen.append(req)
        body = b"%s %s?%s %d" % (req.method.encode(), req.path.encode(), req.query.encode(), len(req.body))
        return 200, [(b"x-n", str(len(seen)).encode())], body

    loop = asyncio.get_running_loop()
    shared = ServerSettings(handler, HeaderLimits(header_timeout_s=5), 100, 0.3, set(), set())
    srv = await loop.create_server(lambda: HttpConnection(shared, loop), "127.0.0.1", 0)
    try:
        yield Server(srv.sockets[0].getsockname()[1], seen)
    finally:
        srv.close()
        for connection in list(shared.connections):
            if connection.transport is not None:
                connection.transport.close()
        await srv.wait_closed()


async def exchange(port: int, *parts: bytes, pause_s: float = 0.0) -> bytes:
    """Send ``parts`` (``pause_s`` apart) and read until the server closes (or 10 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause_s)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


GET = b"GET /a%20b?q=%20 HTTP/1.1\r\nhost: t\r\n\r\n"
CLOSE = b"GET /last HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"


async def test_pipelined_requests_on_one_connection_are_answered_in_order(server: Server) -> None:
    post = b"POST /p HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    answer = await exchange(server.port, GET + post + CLOSE)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    first, second, third = answer.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert b"x-n: 1" in first and first.endswith(b"GET /a b?q=%20 0")
    assert b"x-n: 2" in second and second.endswith(b"POST /p? 5")
    assert b"connection: close" in third and third.endswith(b"GET /last? 0")
    assert server.seen[1].body == b"abcde"


async def test_head_gets_the_headers_of_the_body_and_no_body(server: Server) -> None:
    answer = await exchange(server.port, b"HEAD /h HTTP/1.1\r\nhost: t\r\n\r\n" + CLOSE)
    head, rest = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 10" in head  # len(b"HEAD /h? 0")
    assert rest.startswith(b"HTTP/1.1 200")  # the next response follows at once: no body in between


async def test_http_1_0_is_answered_and_closed(server: Server) -> None:
    answer = await exchange(server.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer and answer.endswith(b"/old? 0")


async def test_expect_100_continue_is_answered_before_the_body(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"POST /e HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"body")
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 101\r\n\r\n" + b"x" * 101, b"413"),
        (
            b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n65\r\n" + b"x" * 101 + b"\r\n0\r\n\r\n",
            b"413",
        ),
    ],
    ids=["no-host", "garbage", "declared-too-large", "chunked-too-large"],
)
async def test_refusals_answer_and_close(server: Server, request_bytes: bytes, status: bytes) -> None:
    answer = await exchange(server.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status) and b"connection: close" in answer, answer[:200]
    assert not server.seen


async def test_a_refusal_after_a_request_in_flight_comes_after_its_answer(server: Server) -> None:
    too_large = b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 101\r\n\r\n" + b"x" * 101
    answer = await exchange(server.port, GET + too_large)
    assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 413" in answer
    assert len(server.seen) == 1


async def test_an_idle_keep_alive_connection_is_closed_quietly(server: Server) -> None:
    answer = await exchange(server.port, GET)  # idle timeout 0.3 s: the server closes, no 408
    assert answer.count(b"HTTP/1.1") == 1 and answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /n HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (b"GET /h HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n", b"400"),  # two Hosts (RFC 9112 section 3.2)
        (b"GET /big HTTP/1.1\r\nhost: t\r\nx-big: " + b"y" * 70_000 + b"\r\n\r\n", b"431"),
        (b"POST /d HTTP/1.1\r\nhost: t\r\ncontent-length: 99999999\r\n\r\n", b"413"),  # body never sent
    ],
    ids=["garbage", "no-host", "two-hosts", "headers-too-large", "declared-too-large"],
)
@pytest.mark.parametrize("half_close", [False, True], ids=["open", "half-closed"])
async def test_a_pipelined_refusal_waits_behind_the_answers_owed(
    server: Server, bad: bytes, status: bytes, half_close: bool
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(GET + b"GET /second HTTP/1.1\r\nhost: t\r\n\r\n" + bad)
        await writer.drain()
        if half_close:
            writer.write_eof()  # as `printf ... | nc` does: the answers owed must still arrive
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    empty, first, rest = answer.split(b"HTTP/1.1 200 OK\r\n")
    second, refused = rest.split(b"HTTP/1.1 " + status + b" ")
    assert not empty and first.endswith(b"GET /a b?q=%20 0") and b"connection" not in first
    assert second.endswith(b"GET /second? 0") and b"connection" not in second
    assert b"connection: close" in refused, refused[:200]
    assert [req.path for req in server.seen] == ["/a b", "/second"]


async def test_two_host_headers_are_refused(server: Server) -> None:
    answer = await exchange(server.port, b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") and b"at most one Host" in answer
    assert not server.seen
