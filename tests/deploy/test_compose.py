"""compose.yaml, checked without a Docker engine: the Compose Specification schema, every command parsed by
the real CLI, every environment variable one that lattice reads, and the wiring (health, order, ports).

``compose-spec.json`` is the Compose Specification's own schema, vendored unchanged from the
compose-spec/compose-spec repository (``schema/compose-spec.json`` as of 2025-10-28, commit 08f8d51).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lattice.controlplane.manifest import parse_manifest
from lattice.controlplane.model import ActorComponent
from lattice.settings import Settings
from tests.deploy.conftest import ROOT

SCHEMA = Path(__file__).with_name("compose-spec.json")
MANIFEST = ROOT / "deploy" / "compose" / "kvcounter.yaml"
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` (enough for our file)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in env and (env[name] or not (op or "").startswith(":")):
            return env[name]
        if op and op.endswith("?"):
            raise AssertionError(f"compose would stop: ${{{name}}} unset: {arg}")
        return arg or ""

    return _VAR.sub(one, value)


def lattice_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "lattice" in str(svc.get("image", ""))}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lattice", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_a_broken_compose_file_is_caught_by_the_schema(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["nats"]["restart"] = {"policy": "always"}
    broken["services"]["host-1"]["depends_on"]["nats"]["condition"] = "service_happy"
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_service_command_is_accepted_by_the_cli(compose: dict[str, Any]) -> None:
    services = lattice_services(compose)
    assert {"control-plane", "host-1", "host-2", "host-3", "httpserver", "keyvalue", "tools"} <= set(services)
    for name, service in services.items():
        result = run_cli([*command_of(service), "--help"])
        assert result.returncode == 0, f"{name}: `lattice {' '.join(command_of(service))}`\n{result.stderr}"


def test_lattice_healthchecks_run_commands_the_cli_accepts(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in lattice_services(compose).items():
        test = service.get("healthcheck", {}).get("test")
        if not test or test[0] != "CMD-SHELL" or not test[1].startswith("lattice "):
            continue
        command = shlex.split(test[1].split("|")[0])[1:]
        result = run_cli([*command, "--help"])
        assert result.returncode == 0, f"{name} healthcheck: {test[1]}\n{result.stderr}"
        checked += 1
    assert checked == 3  # the three hosts


def test_service_environments_are_variables_lattice_reads_and_build_settings(compose: dict[str, Any]) -> None:
    sources = "\n".join(p.read_text() for d in ("lattice", "host", "providers") for p in (ROOT / d).rglob("*.py"))
    given = {"LATTICE_CLUSTER_SEED": "SCAGI4JM46PT2SMS4VTIHDTQCB5R7YU5G7LQHS6NOYV363XHN2Q4FPNU6Q"}
    for name, service in lattice_services(compose).items():
        env = {k: interpolate(str(v), given) for k, v in service.get("environment", {}).items()}
        for key in env:
            known = key.startswith("LATTICE_LABEL_") or f'"{key}"' in sources
            assert known, f"{name}: {key} is not read anywhere in lattice"
        settings = Settings.from_env(env)
        assert settings.nats_url == "nats://nats:4222", name
        assert settings.cluster_seed == given["LATTICE_CLUSTER_SEED"], name


def test_compose_stops_with_a_reason_when_the_cluster_seed_is_missing(compose: dict[str, Any]) -> None:
    seed = compose["services"]["host-1"]["environment"]["LATTICE_CLUSTER_SEED"]
    with pytest.raises(AssertionError, match="lattice keys generate cluster"):
        interpolate(seed, {})


def test_nats_runs_jetstream_on_a_volume_and_reports_health(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert interpolate(nats["image"], {}) == "nats:2.11-alpine"  # NATS_IMAGE unset: the official image
    assert interpolate(nats["image"], {"NATS_IMAGE": "lattice-nats:x"}) == "lattice-nats:x"  # scripts/images
    command = command_of(nats)
    assert "-js" in command
    store = command[command.index("-sd") + 1]
    assert any(v.split(":")[1] == store and v.split(":")[0] in compose["volumes"] for v in nats["volumes"])
    assert "healthz" in " ".join(nats["healthcheck"]["test"])


def test_three_hosts_with_different_labels_wait_for_their_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    hosts = {n: s for n, s in services.items() if command_of(s)[:1] == ["host"]}
    assert len(hosts) == 3
    labels = [
        frozenset((k, v) for k, v in s["environment"].items() if k.startswith("LATTICE_LABEL_")) for s in hosts.values()
    ]
    assert len(set(labels)) == 3 and all(labels)
    for name, service in services.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, but it has no check"
        if "tools" not in (service.get("profiles") or []):
            assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


def test_control_plane_and_httpserver_publish_their_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    cp = services["control-plane"]
    listen_port = command_of(cp)[command_of(cp).index("--listen") + 1].rsplit(":", 1)[1]
    assert any(str(p).endswith(f":{listen_port}") for p in cp["ports"])
    assert any(str(p).endswith(":8080") for p in services["httpserver"]["ports"])
    published = [interpolate(str(p), {}) for s in services.values() for p in s.get("ports", [])]
    assert sorted(published) == ["127.0.0.1:4222:4222", "127.0.0.1:8080:8080", "127.0.0.1:8081:8081"]
    moved = [interpolate(str(p), {"HTTP_PORT": "18080"}) for p in services["httpserver"]["ports"]]
    assert moved == ["127.0.0.1:18080:8080"]  # the test on a real engine picks free ports this way


def test_one_service_builds_the_image_the_others_run(compose: dict[str, Any]) -> None:
    services = lattice_services(compose)
    builders = [name for name, s in services.items() if "build" in s]
    assert builders == ["control-plane"]  # several would build the same image once each
    assert len({s["image"] for s in services.values()}) == 1
    build = services["control-plane"]["build"]
    assert build["context"] == "." and build["args"] == ["PYTHON_IMAGE", "BUILD_IMAGE"]  # unset: Dockerfile defaults


def test_compose_manifest_links_the_actor_to_the_published_port_and_to_the_provider_services() -> None:
    app = parse_manifest(MANIFEST.read_text())
    actor = next(c for c in app.components if isinstance(c, ActorComponent))
    image = Path(actor.image.removeprefix("file://"))
    assert (MANIFEST.parent / image).resolve().is_file()
    http = next(link for link in actor.links if link.target == "httpserver")
    assert http.values["address"] == "0.0.0.0:8080"  # every interface inside its container
    for name in ("httpserver", "keyvalue"):
        comp = next(c for c in app.components if c.name == name)
        assert comp.scaler.replicas == 0  # served by the compose service, not by the hosts
