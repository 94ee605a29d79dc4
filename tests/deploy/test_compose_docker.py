"""The compose path of docs/deployment.md, for real: a Docker Engine this test starts (``tests/deploy/dockerd.py``),
the images ``scripts/images --lattice lattice:local`` builds offline, the cluster seed from that image,
``docker compose up -d --build --wait`` of ``compose.yaml`` (NATS, control plane, three hosts, the HTTP server and
key-value providers), ``docker compose run --rm tools apply`` of the compose manifest, HTTP through the
published port on 127.0.0.1, then ``docker kill`` of a host running the actor (the lattice heals on the other
two; ``up -d`` brings it back as a new host), a restart of the NATS container (no acknowledged increment lost),
and ``docker compose down -v`` (nothing of the project left). Skips, saying why in one line, where no engine can
start. ``pytest -s`` prints how long each step took.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice.cli.natsserver import free_port
from tests.deploy import dockerd
from tests.deploy.conftest import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1500)]
MANIFEST = "deploy/compose/kvcounter.yaml"


@pytest.fixture(scope="module")
def engine() -> Iterator[dockerd.Engine]:
    reason = dockerd.unavailable()
    if reason:
        pytest.skip(f"no Docker Engine here: {reason}")
    engine = dockerd.Engine()
    try:
        engine.start()
    except dockerd.EngineUnavailable as e:
        engine.stop()
        pytest.skip(f"no Docker Engine could start: {e}")
    try:
        yield engine
    finally:
        # keep the cached data root from growing: dangling images go after an hour (the classic builder's cache
        # of the last runs keeps a rerun warm), BuildKit's cache beyond 1 GB, images of older recipes
        engine.docker("image", "prune", "-f", "--filter", "until=1h", check=False)
        engine.docker("builder", "prune", "-f", "--keep-storage", "1gb", check=False)
        current = set(engine.images.values())
        refs = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        stale = [r for r in refs if r.split(":")[0] in {"lattice-python", "lattice-build", "lattice-nats"}]
        stale += [r for r in refs if r in {"lattice:images-test", "lattice:split"}]  # tags of earlier versions
        if stale := [r for r in stale if r not in current]:
            engine.docker("rmi", *stale, check=False)
        engine.stop()


class Project:
    """``docker compose`` of the repository's compose.yaml as its own project, with its own variables."""

    def __init__(self, engine: dockerd.Engine, tmp: Path, given: dict[str, str]) -> None:
        self.engine = engine
        self.name = f"lattice-test-{os.getpid()}"
        self.ports = {name: free_port() for name in ("NATS_PORT", "API_PORT", "HTTP_PORT")}
        variables = {**given, **self.ports}
        self.env_file = tmp / "compose.env"  # instead of the repository's .env, which a developer may have
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))

    def compose(self, *args: str, timeout_s: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        base = ["compose", "--project-name", self.name, "--file", str(ROOT / "compose.yaml")]
        return self.engine.docker(*base, "--env-file", str(self.env_file), *args, timeout_s=timeout_s, check=check)

    def container(self, service: str) -> str:
        return self.compose("ps", "--all", "-q", service).stdout.strip()

    def left(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.name}"
        return {
            kind: self.engine.docker(*cmd, "--filter", label).stdout.split()
            for kind, cmd in {
                "containers": ("ps", "-aq"),
                "networks": ("network", "ls", "-q"),
                "volumes": ("volume", "ls", "-q"),
            }.items()
        }

    def logs(self) -> str:
        """The services' last lines, and what the health checks of unhealthy containers said."""
        health = []
        for cid in self.compose("ps", "--all", "-q", check=False).stdout.split():
            state = self.engine.docker("inspect", "--format", "{{.Name}} {{json .State.Health}}", cid, check=False)
            if '"Status":"unhealthy"' in state.stdout:
                health.append(state.stdout.strip()[-3000:])
        logs = self.compose("logs", "--no-color", "--tail", "40", check=False).stdout[-12000:]
        return "\n".join([logs, *health])


class Counter(threading.Thread):
    """GETs /hello one after another and keeps every acknowledged count (HTTP 200) in order."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.counts: list[int] = []
        self.times: list[float] = []  # when each count was acknowledged (monotonic)
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=3) as client:
            while not self.done.is_set():
                try:
                    r = client.get(self.url)
                    if r.status_code == 200:
                        self.counts.append(r.json()["count"])
                        self.times.append(time.monotonic())
                        continue
                except httpx.HTTPError:
                    pass
                self.failures += 1
                time.sleep(0.2)

    def stop(self) -> list[int]:
        self.done.set()
        self.join(10)
        return self.counts

    def longest_gap(self, since: float) -> float:
        """The longest time without an answer after ``since``."""
        times = [since, *(t for t in self.times if t > since)]
        return max(b - a for a, b in itertools.pairwise(times))


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, diagnose: Callable[[], str]) -> float:
    start = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            if check():
                return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s:g} s\n{diagnose()}")
        time.sleep(0.5)


def build_images(engine: dockerd.Engine) -> dict[str, str]:
    """``scripts/images --lattice lattice:local``, as docs/deployment.md has it: the variables it prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "images"), "--lattice", "lattice:local"],
        env={**env, **engine.env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"scripts/images\n{result.stdout}\n{result.stderr}"
    print(f"\n{result.stderr.strip()}")
    images = dict(line.split("=", 1) for line in result.stdout.split())
    assert set(images) == {"PYTHON_IMAGE", "BUILD_IMAGE", "NATS_IMAGE"}, result.stdout
    engine.images = images
    # the image runs lattice as an unprivileged user, without nats-server
    check = "id -u; lattice --help >/dev/null && echo cli; command -v nats-server || echo no-nats"
    out = engine.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", "lattice:local", "-c", check)
    assert out.stdout.split() == ["10001", "cli", "no-nats"], out.stdout
    return images


def cluster_seed(engine: dockerd.Engine) -> str:
    """The documented way to the seed: ``docker run --rm lattice:local keys generate cluster``."""
    out = engine.docker("run", "--rm", "--network", "none", "lattice:local", "keys", "generate", "cluster").stdout
    seed = next(line.split()[1] for line in out.splitlines() if line.startswith("seed:"))
    assert seed.startswith("SC"), out
    return seed


def test_compose_up_apply_kill_restart_down(engine: dockerd.Engine, tmp_path: Path) -> None:
    times: dict[str, float] = {}
    start = time.monotonic()
    images = build_images(engine)
    times["scripts/images"] = time.monotonic() - start
    project = Project(engine, tmp_path, {**images, "LATTICE_CLUSTER_SEED": cluster_seed(engine)})
    try:
        run_the_compose_path(project, times)
    finally:
        down = project.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
    assert down.returncode == 0, down.stderr
    assert project.left() == {"containers": [], "networks": [], "volumes": []}
    size = int(engine.docker("image", "inspect", "--format", "{{.Size}}", "lattice:local").stdout)
    times["total"] = time.monotonic() - start
    print(
        f"\ncompose test: image lattice:local {size / 1e6:.0f} MB; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    )


def run_the_compose_path(project: Project, times: dict[str, float]) -> None:
    step = time.monotonic()
    up = project.compose("up", "-d", "--build", "--wait", timeout_s=900, check=False)
    assert up.returncode == 0, f"docker compose up\n{up.stdout}\n{up.stderr}\n{project.logs()}"
    times["up --build --wait"] = time.monotonic() - step

    step = time.monotonic()
    apply = project.compose("run", "--rm", "tools", "apply", MANIFEST, "--wait", "--timeout", "90", check=False)
    assert apply.returncode == 0, f"tools apply\n{apply.stdout}\n{apply.stderr}\n{project.logs()}"
    assert "deployed" in apply.stdout
    times["apply"] = time.monotonic() - step

    with httpx.Client(base_url=f"http://127.0.0.1:{project.ports['API_PORT']}", timeout=5) as api:
        faults(project, api, times)


def faults(project: Project, api: httpx.Client, times: dict[str, float]) -> None:
    hello = f"http://127.0.0.1:{project.ports['HTTP_PORT']}/hello"
    first = httpx.get(hello, timeout=5).json()["count"]
    assert httpx.get(hello, timeout=5).json()["count"] == first + 1

    def kvcounter() -> dict[str, Any]:
        app = api.get("/v1/applications/kvcounter").json()
        return next(c for c in app["status"]["components"] if c["name"] == "kvcounter")

    hosts = api.get("/v1/hosts").json()
    assert sorted(h["labels"]["zone"] for h in hosts) == ["zone-a", "zone-b", "zone-c"]
    assert kvcounter()["running"] == 3 and all(len(h["actors"]) == 1 for h in hosts), hosts

    # docker kill of a host running the actor: HTTP keeps answering, its replica moves to the other two
    victim = sorted(hosts, key=lambda h: h["labels"]["node"])[0]
    counter = Counter(hello)
    counter.start()
    project.engine.docker("kill", project.container(victim["labels"]["node"]))

    def healed() -> bool:
        live = {h["id"] for h in api.get("/v1/hosts").json()}
        placed = {p["host_id"] for p in kvcounter()["placements"]}
        return victim["id"] not in live and kvcounter()["running"] == 3 and placed <= live

    times["heal after docker kill"] = wait_for("kvcounter back to 3 replicas", healed, 60, project.logs)
    assert counter.counts, "HTTP stopped answering while a host was down"

    # `docker kill` counts as stopped by hand (no restart policy): `up -d` brings the host back, as a new host
    step = time.monotonic()
    back = project.compose("up", "-d", "--wait", timeout_s=300, check=False)
    assert back.returncode == 0, f"docker compose up after the kill\n{back.stderr}\n{project.logs()}"
    rejoined = [h for h in api.get("/v1/hosts").json() if h["labels"]["node"] == victim["labels"]["node"]]
    assert len(rejoined) == 1 and rejoined[0]["id"] != victim["id"], rejoined
    times["up -d: killed host back"] = time.monotonic() - step

    # restart of the NATS container: every acknowledged increment survives (JetStream on its volume)
    nats = project.container("nats")
    started = project.engine.docker("inspect", "--format", "{{.State.StartedAt}}", nats).stdout
    step = time.monotonic()
    project.engine.docker("restart", "--time", "5", nats)
    restarted = time.monotonic()
    assert project.engine.docker("inspect", "--format", "{{.State.StartedAt}}", nats).stdout != started
    wait_for("HTTP after the NATS restart", lambda: counter.times[-1] > restarted + 3, 90, project.logs)
    times["docker restart nats"] = restarted - step
    times["longest HTTP gap around it"] = counter.longest_gap(step)
    counts = counter.stop()
    assert all(b > a for a, b in itertools.pairwise(counts)), f"a count went back or repeated: {counts}"
    after = httpx.get(hello, timeout=5).json()["count"]
    assert after > counts[-1] >= first + 1 + len(counts)
    print(f"\n{len(counts)} acknowledged increments, {counter.failures} failed requests during the faults")
