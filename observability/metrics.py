"""Prometheus metrics of every participant: every metric's name, labels and meaning live here.

Each participant (a host, a provider process, a control plane) owns a ``Metrics`` with its own
``CollectorRegistry``, so several hosts in one process never collide; it serves them at ``/metrics``
(the control plane's API) or on ``--metrics HOST:PORT`` (``serve``). Counters and histograms are
updated as calls happen; gauges are read at scrape time from samples the participant hands over, so
an idle lattice costs nothing. A call is observed once per hop by ``CallMetrics`` (counter, latency,
span, log context together), so no caller times anything itself.

    host / provider process (CallMetrics)
      lattice_invocations_total{actor,operation,outcome}          calls served by actors on this host
      lattice_invocation_duration_seconds{actor,operation}        their latency (histogram)
      lattice_host_calls_total{actor,namespace,outcome}           __host_call from actors (contract or actor)
      lattice_host_call_duration_seconds{actor,namespace}         their latency, the hop included
      lattice_provider_invocations_total{provider,operation,outcome}   calls served by providers
      lattice_provider_invocation_duration_seconds{provider,operation}
      lattice_actor_instances{actor}  lattice_actor_in_flight{actor}  lattice_actor_waiting{actor}
      lattice_actor_max_instances{actor}  lattice_actor_info{actor,name,image_ref}
      lattice_provider_healthy{provider_id,provider,link_name,contract}   1/0, asked at scrape time
      lattice_provider_links{provider_id,provider,link_name,contract}
    control plane (ControlPlaneMetrics)
      lattice_reconcile_commands_total{command,outcome}           commands to hosts: accepted|refused
      lattice_reconcile_duration_seconds  lattice_reconcile_failures_total
      lattice_events_total{type}                                  lattice events seen (health_check_failed, ...)
      lattice_hosts  lattice_host_instances{host_id}  lattice_host_in_flight{host_id}
      lattice_applications{status}  lattice_component_desired{app,component}  lattice_component_running{app,component}
      lattice_control_plane_leader
    everyone
      lattice_nats_reconnects_total  lattice_nats_connected  process_* (resident memory, CPU, fds)

``outcome`` is ``ok`` or the error's ``kind`` (``outcome_of``): a small fixed set, never a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from lattice.capability import CapabilityProvider
from lattice.errors import (
    ConfigError,
    LatticeError,
)
from lattice.inventory import HostSummary
from lattice.observability import tracing

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def outcome_of(exc: BaseException) -> str:
    """The ``outcome`` label of a failed call: the error's ``kind`` (``lattice.errors``), a small fixed set."""
    if isinstance(exc, LatticeError):
        return exc.kind
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"


@dataclass(frozen=True, slots=True)
class ActorSample:
    actor_id: str
    name: str
    image_ref: str
    instances: int
    in_flight: int
    waiting: int
    max_instances: int


@dataclass(frozen=True, slots=True)
class ProviderSample:
    provider_id: str
    provider: str
    link_name: str
    contract_id: str
    healthy: bool | None  # None: not known at this scrape
    links: int


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


class _ScrapeTime(Collector):
    """Gauges computed by ``fn`` when scraped (``describe`` empty: nothing is computed at registration)."""

    def __init__(self, fn: Callable[[], Iterable[Metric]]) -> None:
        self.fn = fn

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return list(self.fn())


class Metrics:
    """One participant's registry, with what every participant reports."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        if process:
            ProcessCollector(registry=self.registry)
        self.nats_reconnects = Counter(
            "lattice_nats_reconnects", "NATS reconnections since this participant started", registry=self.registry
        )
        self._connected: Callable[[], bool] | None = None
        self.registry.register(_ScrapeTime(self._common))

    def watch_connection(self, connected: Callable[[], bool]) -> None:
        self._connected = connected

    def _common(self) -> Iterable[Metric]:
        if self._connected is not None:
            yield _gauge("lattice_nats_connected", "1 while connected to NATS", [], [([], float(self._connected()))])

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class CallMetrics(Metrics):
    """Metrics of a participant that serves calls (a host, a provider process); observes each hop.

    ``context`` (e.g. ``{"host_id": …}``) is bound into the log context of every call observed here.
    """

    def __init__(self, *, context: Mapping[str, str] | None = None, process: bool = True) -> None:
        super().__init__(process=process)
        self.context = dict(context or {})
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        r = self.registry
        self.invocations = Counter(
            "lattice_invocations", "Calls served by actors", ["actor", "operation", "outcome"], registry=r
        )
        self.invocation_seconds = Histogram(
            "lattice_invocation_duration_seconds",
            "Latency of calls served by actors",
            ["actor", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.host_calls = Counter(
            "lattice_host_calls", "Host calls made by actors", ["actor", "namespace", "outcome"], registry=r
        )
        self.host_call_seconds = Histogram(
            "lattice_host_call_duration_seconds",
            "Latency of host calls made by actors, including the hop",
            ["actor", "namespace"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_calls = Counter(
            "lattice_provider_invocations",
            "Calls served by capability providers",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.provider_call_seconds = Histogram(
            "lattice_provider_invocation_duration_seconds",
            "Latency of calls served by capability providers",
            ["provider", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def watch(
        self,
        *,
        actors: Callable[[], Iterable[ActorSample]] | None = None,
        providers: Callable[[], Iterable[ProviderSample]] | None = None,
    ) -> None:
        """Report these samples as gauges at every scrape."""

        def collect() -> Iterator[Metric]:
            if actors is not None:
                yield from _actor_gauges(list(actors()))
            if providers is not None:
                yield from _provider_gauges(list(providers()))

        self.registry.register(_ScrapeTime(collect))

    # --- one hop each ------------------------------------------------------------------------------

    def _done(self, counter: Counter, histogram: Histogram, labels: tuple[str, ...]) -> Callable[[str, float], None]:
        """Count and time one finished hop; label children are looked up once per label set."""

        def done(outcome: str, seconds: float) -> None:
            key = (*labels, outcome)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = (counter.labels(*labels, outcome), histogram.labels(*labels))
            child[0].inc()
            child[1].observe(seconds)

        return done

    def actor_call(
        self,
        actor_id: str,
        operation: str,
        *,
        parent: Mapping[str, str] | None = None,
        invocation_id: str | None = None,
    ) -> _Timed:
        """An actor serving ``operation``: span (child of ``parent``, else of the current span), log
        context (``actor_id``, ``invocation_id``, ``trace_id``), counter and latency."""
        attributes = {"lattice.actor_id": actor_id, "rpc.method": operation} if tracing.enabled() else None
        log = {**self.context, "actor_id": actor_id, "invocation_id": invocation_id or os.urandom(8).hex()}
        hop = tracing.span(f"actor {operation}", kind=tracing.SERVER, parent=parent, attributes=attributes, log=log)
        return _Timed(hop, self._done(self.invocations, self.invocation_seconds, (actor_id, operation)))

    def observe_actor_call(self, actor_id: str, operation: str, seconds: float, error: BaseException | None) -> None:
        """Count a call served without ``actor_call``'s span and log context (the inline fast path)."""
        outcome = "ok" if error is None else outcome_of(error)
        child = self._children.get((actor_id, operation, outcome))
        if child is None:
            self._done(self.invocations, self.invocation_seconds, (actor_id, operation))(outcome, seconds)
            return
        child[0].inc()
        child[1].observe(seconds)

    def host_call(self, actor_id: str, namespace: str, operation: str) -> _Timed:
        """An actor calling out; entering gives the trace context to send with the call."""
        attributes = {"lattice.namespace": namespace, "rpc.method": operation} if tracing.enabled() else None
        hop = tracing.span(f"call {namespace} {operation}", kind=tracing.CLIENT, attributes=attributes)
        return _Timed(hop, self._done(self.host_calls, self.host_call_seconds, (actor_id, namespace)), carrier=True)

    async def provider_call(
        self,
        provider: CapabilityProvider,
        actor_id: str,
        operation: str,
        payload: bytes,
        *,
        parent: Mapping[str, str] | None = None,
        invocation_id: str | None = None,
    ) -> bytes:
        """``provider.handle`` observed: span, log context, counter and latency."""
        attributes = {"lattice.caller": actor_id, "rpc.method": operation} if tracing.enabled() else None
        log = {**self.context, "actor_id": actor_id}
        if invocation_id:
            log["invocation_id"] = invocation_id
        name = f"{provider.name} {operation}"
        hop = tracing.span(name, kind=tracing.SERVER, parent=parent, attributes=attributes, log=log)
        with _Timed(hop, self._done(self.provider_calls, self.provider_call_seconds, (provider.name, operation))):
            return await provider.handle(actor_id, operation, payload)


class _Timed:
    """A hop's span and log context, timed and counted on exit by ``done(outcome, seconds)``. Entering
    gives the trace context to send on (``carrier=True``) or nothing."""

    __slots__ = ("_carrier", "_done", "_hop", "_start")

    def __init__(self, hop: tracing.Hop, done: Callable[[str, float], None], *, carrier: bool = False) -> None:
        self._hop, self._done, self._carrier, self._start = hop, done, carrier, 0.0

    def __enter__(self) -> dict[str, str]:
        self._start = time.perf_counter()
        self._hop.__enter__()
        return tracing.carrier() if self._carrier else {}

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._hop.__exit__(kind, exc, tb)
        finally:
            self._done("ok" if exc is None else outcome_of(exc), time.perf_counter() - self._start)


def _actor_gauges(samples: list[ActorSample]) -> Iterator[Metric]:
    labels = ["actor"]
    yield _gauge("lattice_actor_instances", "Live instances", labels, [([s.actor_id], s.instances) for s in samples])
    yield _gauge("lattice_actor_in_flight", "Calls running now", labels, [([s.actor_id], s.in_flight) for s in samples])
    yield _gauge(
        "lattice_actor_waiting", "Calls waiting for an instance", labels, [([s.actor_id], s.waiting) for s in samples]
    )
    yield _gauge(
        "lattice_actor_max_instances",
        "Instance limit",
        labels,
        [([s.actor_id], s.max_instances) for s in samples],
    )
    yield _gauge(
        "lattice_actor_info",
        "Actors running here (always 1)",
        ["actor", "name", "image_ref"],
        [([s.actor_id, s.name, s.image_ref], 1) for s in samples],
    )


def _provider_gauges(samples: list[ProviderSample]) -> Iterator[Metric]:
    labels = ["provider_id", "provider", "link_name", "contract"]

    def key(s: ProviderSample) -> list[str]:
        return [s.provider_id, s.provider, s.link_name, s.contract_id]

    yield _gauge(
        "lattice_provider_healthy",
        "1 when the provider's health check passes",
        labels,
        [(key(s), float(s.healthy)) for s in samples if s.healthy is not None],
    )
    yield _gauge("lattice_provider_links", "Links served", labels, [(key(s), s.links) for s in samples])


def provider_sample(
    provider: CapabilityProvider, provider_id: str, link_name: str, loop: asyncio.AbstractEventLoop
) -> ProviderSample:
    """A provider's sample, its health asked on ``loop`` (from the scraping thread; unknown on the loop)."""
    return ProviderSample(
        provider_id, provider.name, link_name, provider.contract_id, _health(provider, loop), len(provider.links)
    )


def _health(provider: CapabilityProvider, loop: asyncio.AbstractEventLoop, timeout_s: float = 1.0) -> bool | None:
    with contextlib.suppress(RuntimeError):
        if asyncio.get_running_loop() is loop:
            return None  # scraped from the loop itself: waiting here would block it
    if loop.is_closed():
        return None
    future = asyncio.run_coroutine_threadsafe(provider.health(), loop)
    try:
        return bool(future.result(timeout_s)[0])
    except Exception:
        future.cancel()
        return False


class ControlPlaneMetrics(Metrics):
    """The control plane's metrics; lattice-wide gauges come from ``observe`` before each scrape."""

    def __init__(self, *, process: bool = True) -> None:
        super().__init__(process=process)
        r = self.registry
        self.reconcile_commands = Counter(
            "lattice_reconcile_commands", "Commands the reconciler issued to hosts", ["command", "outcome"], registry=r
        )
        self.reconcile_seconds = Histogram(
            "lattice_reconcile_duration_seconds", "Duration of one reconcile pass", buckets=LATENCY_BUCKETS, registry=r
        )
        self.reconcile_failures = Counter("lattice_reconcile_failures", "Reconcile passes that crashed", registry=r)
        self.events = Counter("lattice_events", "Lattice events seen, by type", ["type"], registry=r)
        self._lattice: list[Metric] = []
        self.registry.register(_ScrapeTime(lambda: self._lattice))

    def observe(self, *, hosts: Sequence[HostSummary], apps: list[dict[str, Any]], leader: bool) -> None:
        """Set the lattice-wide gauges from the ``GET /v1/hosts`` rows and ``GET /v1/applications`` documents."""
        statuses: dict[str, int] = {}
        desired, running = [], []
        for app in apps:
            status = app.get("status") or {}
            statuses[str(status.get("type"))] = statuses.get(str(status.get("type")), 0) + 1
            for comp in status.get("components", []):
                desired.append(([app["name"], comp["name"]], float(comp["desired"])))
                running.append(([app["name"], comp["name"]], float(comp["running"])))
        per_host = ["host_id"]
        self._lattice = [
            _gauge("lattice_hosts", "Live hosts", [], [([], len(hosts))]),
            _gauge("lattice_host_instances", "Actor instances", per_host, [([h.id], h.instances) for h in hosts]),
            _gauge("lattice_host_in_flight", "Calls running", per_host, [([h.id], h.in_flight) for h in hosts]),
            _gauge("lattice_applications", "By status", ["status"], [([k], v) for k, v in sorted(statuses.items())]),
            _gauge("lattice_component_desired", "Desired instances per component", ["app", "component"], desired),
            _gauge("lattice_component_running", "Running instances per component", ["app", "component"], running),
            _gauge("lattice_control_plane_leader", "1 on the leading control plane", [], [([], float(leader))]),
        ]


class MetricsServer:
    """``registry`` served at ``http://HOST:PORT/metrics`` from a thread of its own (port 0: a free one).

    The scraping thread, not the event loop, runs the collectors, so a scrape never delays a call and
    may wait for the loop (provider health). Raises ``ConfigError`` when the address is unusable.
    """

    def __init__(self, registry: CollectorRegistry, address: str) -> None:
        host, sep, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not sep or not port.isdigit():
            raise ConfigError(f"metrics address must be HOST:PORT, got {address!r}")
        try:
            self._server, self._thread = start_http_server(int(port), host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from exc
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self._server.server_port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)
