"""Prometheus metrics: per-host registries, calls by outcome, scrape-time gauges, the control plane's
``/metrics``, standalone providers, and the settings that turn them on."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from lattice.cli.natsserver import free_port
from lattice.errors import ActorError, ConfigError
from lattice.observability.metrics import MetricsServer
from lattice.providers.keyvalue import KeyValueProvider
from lattice.providers.sdk.runner import ProviderRunner
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.e2e.test_kvcounter import deploy_kvcounter
from tests.host import guests
from tests.observability.conftest import serve_kvcounter


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Exposition text → {(sample name, labels): value}."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def start_actor(host: Any, tmp_path: Path, name: str, wasm: bytes) -> str:
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(wasm)
    running = await host.scale_actor(f"file://{path}", 1, {"app": "metrics"}, {})
    return str(running.actor_id)


async def test_calls_are_counted_by_actor_operation_and_outcome_and_timed(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    echo = await start_actor(host, tmp_path, "echo", guests.ECHO)
    fails = await start_actor(host, tmp_path, "fails", guests.FAILS)
    for _ in range(2):
        assert await host.invoke(echo, "Echo.Echo", b"hi") == b"hi"
    with pytest.raises(ActorError):
        await host.invoke(fails, "Fail.Now", b"")

    registry = host.metrics.registry
    ok = {"actor": echo, "operation": "Echo.Echo", "outcome": "ok"}
    assert registry.get_sample_value("lattice_invocations_total", ok) == 2
    failed = {"actor": fails, "operation": "Fail.Now", "outcome": "actor_error"}
    assert registry.get_sample_value("lattice_invocations_total", failed) == 1
    timed = {"actor": echo, "operation": "Echo.Echo"}
    assert registry.get_sample_value("lattice_invocation_duration_seconds_count", timed) == 2
    assert registry.get_sample_value("lattice_invocation_duration_seconds_sum", timed) > 0


async def test_two_hosts_in_one_process_keep_separate_registries(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    echo = await start_actor(a, tmp_path, "echo", guests.ECHO)
    assert await b.invoke(echo, "Echo.Echo", b"over nats") == b"over nats"  # served by a, through NATS

    labels = {"actor": echo, "operation": "Echo.Echo", "outcome": "ok"}
    assert a.metrics.registry is not b.metrics.registry
    assert a.metrics.registry.get_sample_value("lattice_invocations_total", labels) == 1
    assert b.metrics.registry.get_sample_value("lattice_invocations_total", labels) is None


async def test_a_host_serves_its_metrics_on_the_metrics_address(host_factory: Any) -> None:
    host = await host_factory(metrics="127.0.0.1:0")
    assert host.metrics_url and host.inventory().metrics_url == host.metrics_url
    app = await serve_kvcounter(http_host=host, actor_host=host, kv_host=host)
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{app.url}/scraped")).status_code == 200

    text = await scrape(host.metrics_url)
    actor = app.actor_id
    # the instance that served, and perhaps the warm spare its pool asked for while it did (host/spares.py)
    assert value(text, "lattice_actor_instances", actor=actor) in (1, 2)
    assert value(text, "lattice_actor_in_flight", actor=actor) == 0
    assert value(text, "lattice_actor_max_instances", actor=actor) == 16
    handled = value(text, "lattice_invocations_total", actor=actor, operation="HttpServer.HandleRequest", outcome="ok")
    assert (handled or 0) >= 2  # the readiness probe and ours
    called = value(text, "lattice_host_calls_total", actor=actor, namespace="wasmcloud:keyvalue", outcome="ok")
    assert (called or 0) >= 2
    kv = {"provider": "keyvalue", "operation": "KeyValue.Increment", "outcome": "ok"}
    assert value(text, "lattice_provider_invocations_total", **kv) == called
    healthy = {k: v for k, v in samples(text).items() if k[0] == "lattice_provider_healthy"}
    assert sorted(dict(k[1])["provider"] for k in healthy) == ["httpserver", "keyvalue", "logging"]
    assert set(healthy.values()) == {1.0}  # asked at scrape time, on the host's loop, from the scraping thread
    assert value(text, "lattice_nats_connected") == 1
    assert value(text, "process_resident_memory_bytes") is not None


async def test_the_control_plane_exposes_reconcile_commands_events_and_the_lattice(
    host_factory: Any, control_plane_factory: Any
) -> None:
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    await deploy_kvcounter(client, free_port(), replicas=2)

    async def deployed() -> bool:
        return bool((await client.get("/v1/applications/kvcounter")).json()["status"]["type"] == "deployed")

    await wait_for(deployed, timeout=20)
    await wait_for(cp.is_leader)
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert value(text, "lattice_hosts") == 1
    assert value(text, "lattice_host_instances", host_id=host.id) == 2
    assert value(text, "lattice_applications", status="deployed") == 1
    assert value(text, "lattice_component_desired", app="kvcounter", component="kvcounter") == 2
    assert value(text, "lattice_component_running", app="kvcounter", component="kvcounter") == 2
    assert (value(text, "lattice_reconcile_commands_total", command="ScaleActor", outcome="accepted") or 0) >= 1
    assert (value(text, "lattice_reconcile_commands_total", command="StartProvider", outcome="accepted") or 0) >= 3
    assert (value(text, "lattice_reconcile_duration_seconds_count") or 0) >= 1
    assert (value(text, "lattice_events_total", type="actor_started") or 0) >= 1
    assert value(text, "lattice_control_plane_leader") == 1
    assert value(text, "lattice_nats_connected") == 1


async def test_control_plane_metrics_need_the_token_when_one_is_set(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory(api_token="s3cret")
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"authorization": "Bearer s3cret"})).status_code == 200


async def test_a_standalone_provider_serves_its_metrics(settings: Settings) -> None:
    async with ProviderRunner(KeyValueProvider(), settings.with_overrides(metrics="127.0.0.1:0")) as runner:
        assert runner.metrics_server is not None
        text = await scrape(runner.metrics_server.url)
    labels = {"provider_id": runner.provider_id, "provider": "keyvalue", "link_name": "default"}
    assert value(text, "lattice_provider_healthy", **labels, contract="wasmcloud:keyvalue") == 1
    assert value(text, "lattice_provider_links", **labels, contract="wasmcloud:keyvalue") == 0
    assert value(text, "lattice_nats_connected") == 1


def test_a_metrics_address_in_use_is_a_config_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(ConfigError, match=f"cannot serve metrics on {address}"):
            MetricsServer(CollectorRegistry(), address)


def test_settings_read_the_metrics_address_and_the_otlp_endpoint() -> None:
    s = Settings.from_env({"LATTICE_METRICS": "0.0.0.0:9100", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318/"})
    assert s.metrics == "0.0.0.0:9100"
    assert s.otlp_endpoint == "http://otel:4318/v1/traces"
    traces = Settings.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel:4318/custom"})
    assert traces.otlp_endpoint == "http://otel:4318/custom"
    assert Settings.from_env({}).metrics is None and Settings.from_env({}).otlp_endpoint is None
    with pytest.raises(ConfigError, match="LATTICE_METRICS must be HOST:PORT"):
        Settings.from_env({"LATTICE_METRICS": "9100"})
