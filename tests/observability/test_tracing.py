"""Traces across hops: HTTP → httpserver → actor → keyvalue, in one host and across hosts over NATS,
with the trace id in every log line of the call; and pass-through when tracing is off."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from structlog.testing import capture_logs

from lattice.observability import tracing
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.observability.conftest import Spans, parent_of, serve_kvcounter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
HANDLE = "actor HttpServer.HandleRequest"
KV_CALL = "call wasmcloud:keyvalue KeyValue.Increment"
KV_SERVED = "keyvalue KeyValue.Increment"


def of_request(spans: Spans, path: str) -> list[ReadableSpan]:
    """Every span of the trace whose HTTP span served ``path``."""
    http = next(s for s in spans.named("HTTP GET") if (s.attributes or {}).get("url.path") == path)
    return [s for s in spans.all() if s.context.trace_id == http.context.trace_id]


async def get(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url, headers=headers)


async def test_one_request_in_one_host_is_one_trace_http_actor_host_call_keyvalue(
    host_factory: Any, spans: Spans
) -> None:
    host = await host_factory()
    app = await serve_kvcounter(http_host=host, actor_host=host, kv_host=host)

    assert (await get(f"{app.url}/one-host")).status_code == 200
    await wait_for(lambda: len(of_request(spans, "/one-host")) >= 4 and spans.named(KV_SERVED))

    trace = of_request(spans, "/one-host")
    http = next(s for s in trace if s.name == "HTTP GET")
    actor = next(s for s in trace if s.name == HANDLE)
    call = next(s for s in trace if s.name == KV_CALL)
    served = next(s for s in trace if s.name == KV_SERVED)
    assert http.parent is None and http.kind == SpanKind.SERVER
    assert parent_of(actor, trace) == http  # the provider → actor hop, onto a worker thread
    assert parent_of(call, trace) == actor  # the actor's host call, on that worker thread
    assert parent_of(served, trace) == call  # back onto the event loop, into the provider
    assert (actor.attributes or {})["lattice.actor_id"] == app.actor_id
    assert (http.attributes or {})["http.response.status_code"] == 200
    assert any(s.name == "logging Logging.WriteLog" for s in trace)


async def test_an_incoming_traceparent_keeps_its_trace_id_through_every_hop(host_factory: Any, spans: Spans) -> None:
    host = await host_factory()
    app = await serve_kvcounter(http_host=host, actor_host=host, kv_host=host)

    assert (await get(f"{app.url}/given", traceparent=INCOMING)).status_code == 200
    await wait_for(lambda: len(of_request(spans, "/given")) >= 4 and spans.named(KV_SERVED))

    trace = of_request(spans, "/given")
    assert format(trace[0].context.trace_id, "032x") == TRACE_ID
    http = next(s for s in trace if s.name == "HTTP GET")
    assert http.parent is not None and format(http.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert {s.name for s in trace} >= {"HTTP GET", HANDLE, KV_CALL, KV_SERVED}


async def test_across_hosts_the_nats_hops_join_the_same_trace(host_factory: Any, spans: Spans) -> None:
    edge, worker = await host_factory(), await host_factory()
    app = await serve_kvcounter(http_host=edge, actor_host=worker, kv_host=edge)

    assert (await get(f"{app.url}/across", traceparent=INCOMING)).status_code == 200
    await wait_for(lambda: len([s for s in of_request(spans, "/across") if s.name == KV_SERVED]) == 1)

    trace = of_request(spans, "/across")
    names = [s.name for s in trace]
    chain = ["HTTP GET", "send HttpServer.HandleRequest", HANDLE, KV_CALL, "send KeyValue.Increment", KV_SERVED]
    assert set(chain) <= set(names), names
    spans_in_chain = [next(s for s in trace if s.name == n) for n in chain]
    for child, parent in zip(spans_in_chain[1:], spans_in_chain, strict=False):
        assert parent_of(child, trace) == parent, (child.name, parent.name)
    assert all(format(s.context.trace_id, "032x") == TRACE_ID for s in trace)


async def test_every_log_line_of_a_call_carries_trace_actor_invocation_and_host_ids(
    host_factory: Any, spans: Spans
) -> None:
    edge, worker = await host_factory(), await host_factory()
    app = await serve_kvcounter(http_host=edge, actor_host=worker, kv_host=edge)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        assert (await get(f"{app.url}/logged", traceparent=INCOMING)).status_code == 200
        await wait_for(lambda: any("/logged" in str(e.get("event")) for e in logs))
    line = next(e for e in logs if "/logged" in str(e.get("event")))  # the actor's log line, via logging
    assert line["trace_id"] == TRACE_ID
    assert line["actor_id"] == app.actor_id
    assert line["host_id"] == edge.id  # the logging provider runs on the edge host
    assert line["invocation_id"]


async def test_with_tracing_off_no_span_is_made_and_the_trace_context_still_travels(host_factory: Any) -> None:
    assert not tracing.enabled()
    edge, worker = await host_factory(), await host_factory()
    app = await serve_kvcounter(http_host=edge, actor_host=worker, kv_host=edge)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        assert (await get(f"{app.url}/untraced", traceparent=INCOMING)).status_code == 200
        await wait_for(lambda: any("/untraced" in str(e.get("event")) for e in logs))
    line = next(e for e in logs if "/untraced" in str(e.get("event")))
    assert line["trace_id"] == TRACE_ID  # httpserver → NATS → actor → NATS → logging, passed through


# --- the tracing module on its own --------------------------------------------------------------------


def test_off_a_received_carrier_passes_through_unchanged() -> None:
    given = {"traceparent": "00-ab-cd-01", "tracestate": "vendor=1"}  # not even valid: passed on as is
    with tracing.span("x", parent=given) as span:
        assert span is None
        assert tracing.carrier() == given
    assert tracing.carrier() == {}


def test_off_a_call_without_trace_context_starts_one_and_nested_calls_keep_it() -> None:
    with tracing.span("outer"):
        outer = tracing.carrier()
        assert tracing.trace_id(outer) is not None
        with tracing.span("inner"):
            assert tracing.carrier() == outer
        assert tracing.current_trace_id() == tracing.trace_id(outer)


@pytest.mark.parametrize(
    "traceparent",
    ["", "garbage", f"00-{'0' * 32}-00f067aa0ba902b7-01", f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01"],
)
def test_invalid_traceparents_have_no_trace_id(traceparent: str) -> None:
    assert tracing.trace_id({"traceparent": traceparent}) is None


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_collector() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_configured_with_an_otlp_endpoint_spans_are_exported_over_http(otlp_collector: str) -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_collector})
    provider = tracing.configure(settings, "lattice-test")
    assert provider is not None and tracing.enabled()
    try:
        with tracing.span("exported", kind=tracing.SERVER):
            pass
        assert provider.force_flush(5000)
    finally:
        tracing.disable()
        provider.shutdown()
    paths = [path for path, _ in _Collector.received]
    assert "/v1/traces" in paths
    assert any(b"exported" in body for _, body in _Collector.received)
    assert tracing.configure(Settings.from_env({}), "lattice-test") is None  # no endpoint: stays off
