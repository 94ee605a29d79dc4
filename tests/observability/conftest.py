"""Fixtures for observability tests: spans recorded in memory, and a lattice serving kvcounter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lattice.capability import HTTPSERVER, KEYVALUE, LOGGING, builtin_provider_id
from lattice.cli.natsserver import free_port
from lattice.host.host import Host
from lattice.messages import LinkDefinition
from lattice.observability import tracing
from tests.conftest import wait_for

KVCOUNTER = Path(__file__).resolve().parents[2] / "actors" / "kvcounter" / "kvcounter.wasm"


class Spans:
    """Finished spans, recorded in memory while tracing is on for one test."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all() if s.name == name]

    async def wait_for(self, *names: str, timeout: float = 30.0) -> list[ReadableSpan]:
        """Wait until a span of each name has finished; returns the first of each."""
        await wait_for(lambda: all(self.named(n) for n in names), timeout=timeout)
        return [self.named(n)[0] for n in names]


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield Spans(exporter)
    finally:
        tracing.disable()
        provider.shutdown()


@dataclass
class Kvcounter:
    actor_id: str
    url: str


async def serve_kvcounter(*, http_host: Host, actor_host: Host, kv_host: Host) -> Kvcounter:
    """kvcounter on ``actor_host``; httpserver on ``http_host``; keyvalue and logging on ``kv_host``."""
    running = await actor_host.scale_actor(f"file://{KVCOUNTER}", 1, {"app": "obs"}, {})
    assert running is not None
    await http_host.start_provider("builtin:httpserver", "default", {"app": "obs"}, {})
    for name in ("keyvalue", "logging"):
        await kv_host.start_provider(f"builtin:{name}", "default", {"app": "obs"}, {})
    port = free_port()
    for name, contract, values in (
        ("httpserver", HTTPSERVER, {"port": str(port)}),
        ("keyvalue", KEYVALUE, {}),
        ("logging", LOGGING, {}),
    ):
        link = LinkDefinition(running.actor_id, builtin_provider_id(name), contract, "default", values)
        await actor_host.data.put_link(link)
    url = f"http://127.0.0.1:{port}"

    async def answers() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{url}/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_for(answers, timeout=20)
    return Kvcounter(running.actor_id, url)


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    assert span.parent is not None, f"{span.name} has no parent"
    return by_id(spans).get(span.parent.span_id)
