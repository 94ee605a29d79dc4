"""The five examples deployed from their own manifests on a real lattice (``lattice up``: nats-server, two
hosts, control plane, bundled providers), answering real HTTP. One lattice for the module; every example
keeps running while the next one deploys, as they would for a user trying them side by side."""

from __future__ import annotations

import httpx
import pytest

from lattice.actors.build import ACTORS_DIR, EXAMPLES, _keypair

from .lattice_up import LatticeUp

pytestmark = pytest.mark.timeout(300)


def deployed(lattice: LatticeUp, name: str) -> str:
    """The HTTP base URL of example ``name``, deploying it first if this module has not yet."""
    if name not in lattice.deployed:
        lattice.deploy(ACTORS_DIR / name / "manifest.yaml")
    return lattice.deployed[name]


def test_hello_answers_hello_world(lattice: LatticeUp) -> None:
    response = httpx.get(deployed(lattice, "hello") + "/anything", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}


def test_echo_in_zig_echoes_method_path_query_and_body(lattice: LatticeUp) -> None:
    url = deployed(lattice, "echo")
    response = httpx.put(url + "/a/b?x=1&y=two", content='body ✓ "quoted"'.encode(), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"method": "PUT", "path": "/a/b", "queryString": "x=1&y=two", "body": 'body ✓ "quoted"'}


def test_kvcounter_counts_per_path_in_the_key_value_store(lattice: LatticeUp) -> None:
    url = deployed(lattice, "kvcounter")
    counts = [httpx.get(url + path, timeout=10).json() for path in ("/deploy-a", "/deploy-a", "/deploy-b")]
    assert [(c["path"], c["count"]) for c in counts] == [("/deploy-a", 1), ("/deploy-a", 2), ("/deploy-b", 1)]


def test_pingpong_pinger_reaches_the_signed_ponger_by_its_call_alias(lattice: LatticeUp) -> None:
    url = deployed(lattice, "pingpong")
    for path in ("/one", "/two"):
        response = httpx.get(url + path, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json() == {"ping": path, "pong": f"pong {path}"}
    ponger_signing = EXAMPLES["pingpong"][1].signing
    assert ponger_signing is not None
    ponger_id = _keypair(ponger_signing, "module").public_key  # the signed identity, not an MU… hash
    running = {a["id"] for h in lattice.call(lambda c: c.hosts()) for a in h["actors"]}
    assert ponger_id in running


def test_todo_rest_api_over_the_key_value_store(lattice: LatticeUp) -> None:
    url = deployed(lattice, "todo")
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/todos").json() == []
        first = http.post("/todos", json={"title": "deploy the examples"})
        assert (first.status_code, first.json()) == (201, {"id": 1, "title": "deploy the examples", "done": False})
        second = http.post("/todos", json={"title": "write the guide", "done": True}).json()
        # Two replicas on two hosts share one store: whichever instance answers sees both.
        for _ in range(4):
            assert http.get("/todos").json() == [first.json(), second]
        assert http.get(f"/todos/{second['id']}").json() == second
        assert http.delete("/todos/1").status_code == 204
        assert http.get("/todos/1").status_code == 404
        invalid = http.post("/todos", content=b'{"title": ""}')
        assert (invalid.status_code, invalid.json()) == (400, {"error": '"title" must not be empty'})
        assert http.post("/todos", content=b"not json").status_code == 400
        assert http.get("/todos").json() == [second]


def test_all_five_run_side_by_side_on_one_lattice(lattice: LatticeUp) -> None:
    urls = {name: deployed(lattice, name) for name in EXAMPLES}
    for name, url in urls.items():
        assert httpx.get(url + "/", timeout=10).status_code in (200, 404), name  # todo answers 404 on /
    apps = {a["name"]: a["status"]["type"] for a in lattice.call(lambda c: c.apps())}
    assert apps == dict.fromkeys(EXAMPLES, "deployed")
