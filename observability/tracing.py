"""Traces across hops and the trace id in every log line of a call.

A call carries W3C trace context (``traceparent``, ``tracestate``) in ``Invocation.trace_context`` on
every hop: HTTP provider → host → actor → provider → back. Each participant opens a span per hop with
``span()`` (a child of the carrier it received, else of the current span) and sends ``carrier()`` on.

Tracing is **off** until ``enable()`` (tests, embedders) or ``configure()`` (the CLI, when an OTLP
endpoint is configured) installs a tracer provider. Off, ``span()`` creates nothing: it passes the
received carrier through unchanged (or starts a fresh ``traceparent`` so logs still correlate across
hosts) and binds ``trace_id`` for the logs. On, spans go to OpenTelemetry and its exporter.

Worker threads: ``span()`` keeps its state in context variables. A thread pool does not copy them, so
whoever submits work to one runs it in ``contextvars.copy_context().run`` (``host.router`` does).
"""

from __future__ import annotations

import contextvars
import random as _random
import re
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lattice.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

SERVER, CLIENT, INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL
TRACEPARENT = "traceparent"
_VALID = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None  # None: tracing is off
_carried: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("lattice_trace", default=None)


def enabled() -> bool:
    return _tracer is not None


def enable(provider: trace.TracerProvider) -> None:
    """Record spans through ``provider`` from now on (this process)."""
    global _tracer
    _tracer = provider.get_tracer("lattice")


def disable() -> None:
    """Back to pass-through: no spans, trace context still carried."""
    global _tracer
    _tracer = None


def configure(settings: Settings, service: str) -> SdkTracerProvider | None:
    """Export spans over OTLP/HTTP when ``settings.otlp_endpoint`` is set (and tracing is not on yet);
    returns the tracer provider it installed (``shutdown()`` flushes it; so does the process's exit).

    The exporter's other options (headers, timeout, compression) come from the standard
    ``OTEL_EXPORTER_OTLP_*`` variables, read by OpenTelemetry itself.
    """
    if not settings.otlp_endpoint or enabled():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    enable(provider)
    return provider


def new_traceparent() -> str:
    """A fresh, sampled W3C ``traceparent``. Ids need to be unique, not secret: ``random`` (reseeded
    after a fork) as OpenTelemetry's own generator, without the two ``getrandom`` syscalls per request."""
    return f"00-{_random.getrandbits(128) or 1:032x}-{_random.getrandbits(64) or 1:016x}-01"


def trace_id(carrier: Mapping[str, str] | None) -> str | None:
    """The trace id (32 hex digits) of a carrier's valid ``traceparent``, else ``None``."""
    match = _VALID.match(carrier.get(TRACEPARENT, "")) if carrier else None
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)


def current_trace_id() -> str | None:
    """The trace id of the call this code runs in, if any."""
    if _tracer is not None:
        ctx = trace.get_current_span().get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None
    return trace_id(_carried.get())


class Hop:
    """The context manager ``span()`` returns (a class, not a generator: it sits on every call's path)."""

    __slots__ = ("_cm", "_log", "_token", "_tokens", "attributes", "kind", "name", "parent")

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        parent: Mapping[str, str] | None,
        attributes: Mapping[str, Any] | None,
        log: Mapping[str, Any] | None,
    ) -> None:
        self.name, self.kind, self.parent, self.attributes, self._log = name, kind, parent, attributes, log
        self._cm: Any = None
        self._token: contextvars.Token[Mapping[str, str] | None] | None = None
        self._tokens: Mapping[str, Any] | None = None

    def __enter__(self) -> Span | None:
        parent = self.parent if self.parent and TRACEPARENT in self.parent else None
        current: Span | None = None
        tid: str | None
        if _tracer is None:
            carried = parent or _carried.get()
            if carried is None:
                tid = f"{_random.getrandbits(128) or 1:032x}"
                carried = {TRACEPARENT: f"00-{tid}-{_random.getrandbits(64) or 1:016x}-01"}
            else:
                tid = trace_id(carried)
            self._token = _carried.set(carried)
        else:
            ctx = _propagator.extract(parent) if parent else None
            self._cm = _tracer.start_as_current_span(self.name, context=ctx, kind=self.kind, attributes=self.attributes)
            current = self._cm.__enter__()
            tid = format(current.get_span_context().trace_id, "032x")
        fields = dict(self._log) if self._log else {}
        if tid:
            fields["trace_id"] = tid
        self._tokens = structlog.contextvars.bind_contextvars(**fields) if fields else None
        return current

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._tokens is not None:
            structlog.contextvars.reset_contextvars(**self._tokens)
        if self._cm is not None:
            self._cm.__exit__(kind, exc, tb)
        elif self._token is not None:
            _carried.reset(self._token)


def span(
    name: str,
    *,
    kind: SpanKind = INTERNAL,
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    log: Mapping[str, Any] | None = None,
) -> Hop:
    """Open one hop's span as the current one: a child of ``parent`` (a received carrier) when it holds a
    ``traceparent``, else of the current span (a new trace if none). Entering yields the span (``None``
    when tracing is off). ``trace_id`` and the ``log`` fields are bound in the structlog context
    meanwhile; an exception that escapes marks the span failed."""
    return Hop(name, kind, parent, attributes, log)


def carrier() -> dict[str, str]:
    """The trace context to send with an outbound call made within the current span."""
    if _tracer is None:
        return dict(_carried.get() or {})
    out: dict[str, str] = {}
    _propagator.inject(out)
    return out


def fail(current: Span | None, message: str) -> None:
    """Mark ``current`` failed when the failure was answered rather than raised (an error reply)."""
    if current is not None:
        current.set_status(StatusCode.ERROR, message)


def annotate(current: Span | None, **attributes: Any) -> None:
    """Set attributes on ``current`` (dots in names are written as ``__``: ``http__status_code``)."""
    if current is not None:
        current.set_attributes({k.replace("__", "."): v for k, v in attributes.items()})


class RpcTracer:
    """``lattice.rpc.CallTracer`` over this module: a client span per invocation sent, its context carried on."""

    def client_span(self, operation: str, target: str, parent: Mapping[str, str] | None) -> Hop:
        attributes = {"rpc.system": "nats", "rpc.method": operation, "lattice.target": target}
        return span(f"send {operation}", kind=CLIENT, parent=parent, attributes=attributes if enabled() else None)

    def carrier(self) -> dict[str, str]:
        return carrier()


RPC_TRACER = RpcTracer()
"""What every participant hands its ``Rpc`` (``Rpc.from_settings(..., tracer=RPC_TRACER)``)."""
