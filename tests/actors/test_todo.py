"""The todo example: a JSON REST API over wasmcloud:keyvalue, on the waPC harness with a fake store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fakes import FakeKeyValue
from .wapc_harness import WapcGuest

ActorLoader = Callable[..., WapcGuest]
HANDLE = "HttpServer.HandleRequest"


class Todo:
    """The todo actor with its fake store; ``request()`` answers (status, decoded JSON or None)."""

    def __init__(self, load_actor: ActorLoader) -> None:
        self.store = FakeKeyValue()
        self.guest = load_actor("todo", host=self.store.host())

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        request = {"method": method, "path": path, "queryString": "", "header": {}, "body": data}
        result = self.guest.call(HANDLE, msgpack.packb(request))
        assert result.ok, result.payload.decode()
        response = msgpack.unpackb(result.payload)
        assert response["header"] == {"Content-Type": ["application/json"]}
        return response["statusCode"], json.loads(response["body"]) if response["body"] else None


@pytest.fixture
def todo(load_actor: ActorLoader) -> Todo:
    return Todo(load_actor)


def test_create_list_get_and_delete(todo: Todo) -> None:
    assert todo.request("GET", "/todos") == (200, [])
    assert todo.request("POST", "/todos", {"title": "buy milk"}) == (201, {"id": 1, "title": "buy milk", "done": False})
    assert todo.request("POST", "/todos", {"title": 'write ✓ "docs"', "done": True}) == (
        201,
        {"id": 2, "title": 'write ✓ "docs"', "done": True},
    )
    assert todo.request("GET", "/todos") == (
        200,
        [{"id": 1, "title": "buy milk", "done": False}, {"id": 2, "title": 'write ✓ "docs"', "done": True}],
    )
    assert todo.request("GET", "/todos/2") == (200, {"id": 2, "title": 'write ✓ "docs"', "done": True})
    assert todo.request("DELETE", "/todos/1") == (204, None)
    assert todo.request("GET", "/todos/1") == (404, {"error": "no todo with id 1"})
    assert todo.request("DELETE", "/todos/1") == (404, {"error": "no todo with id 1"})
    assert todo.request("GET", "/todos/") == (200, [{"id": 2, "title": 'write ✓ "docs"', "done": True}])
    assert todo.store.lists == {"todo:ids": ["2"]}
    assert set(todo.store.values) == {"todo:next_id", "todo:item:2"}
    assert todo.store.bindings == {"todo"}  # its own keyvalue link, as manifest.yaml names it


def test_ids_keep_counting_after_deletes(todo: Todo) -> None:
    for title in ("a", "b"):
        todo.request("POST", "/todos", {"title": title})
    todo.request("DELETE", "/todos/2")
    assert todo.request("POST", "/todos", {"title": "c"})[1]["id"] == 3


def test_json_escapes_in_the_title_are_decoded_and_reencoded(todo: Todo) -> None:
    title = 'tab\there, newline\n, quote ", backslash \\, unicode é 😀 \u0001'
    status, created = todo.request("POST", "/todos", raw=json.dumps({"title": title}, ensure_ascii=True).encode())
    assert (status, created["title"]) == (201, title)
    assert todo.request("GET", f"/todos/{created['id']}")[1]["title"] == title


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "body must be a JSON object"),
        (b"not json", "body must be a JSON object"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'"title"', "body must be a JSON object"),
        (b"{", "body is not valid JSON: expected a member name"),
        (b'{"title": "x",}', "body is not valid JSON: expected a member name"),
        (b'{"title": "x"} trailing', "body is not valid JSON: text after the object"),
        (b'{"title": "unterminated}', "body is not valid JSON: unterminated string"),
        (b'{"title": "bad \\q escape"}', "body is not valid JSON: bad escape"),
        (b'{"title": "lone \\ud800"}', "body is not valid JSON: lone surrogate in \\u escape"),
        (b'{"title": "x", "extra": [1, {"a": 01}]}', "body is not valid JSON: expected ',' or the end of a list"),
        (b'{"title": "\xff\xfe"}', "body is not valid UTF-8"),
        (b"{}", '"title" is required'),
        (b'{"done": true}', '"title" is required'),
        (b'{"title": 42}', '"title" must be a string'),
        (b'{"title": null}', '"title" must be a string'),
        (b'{"title": "   "}', '"title" must not be empty'),
        (b'{"title": ""}', '"title" must not be empty'),
        (b'{"title": "x", "done": "yes"}', '"done" must be true or false'),
        (b'{"title": "x", "priority": 1}', 'unknown field "priority": a todo has "title" and "done"'),
        (b'{"title": "x", "n": ' + b"[" * 40 + b"]" * 40 + b"}", "body is nested too deeply"),
    ],
)
def test_invalid_bodies_are_refused_with_400_saying_what_is_wrong(todo: Todo, body: bytes, error: str) -> None:
    assert todo.request("POST", "/todos", raw=body) == (400, {"error": error})
    assert todo.store.values == {} and todo.store.lists == {}


def test_title_length_is_counted_in_characters_not_bytes(todo: Todo) -> None:
    assert todo.request("POST", "/todos", {"title": "é" * 200})[0] == 201
    assert todo.request("POST", "/todos", {"title": "é" * 201}) == (
        400,
        {"error": '"title" must be at most 200 characters'},
    )


def test_valid_json_with_whitespace_numbers_and_nesting_in_ignored_places_is_accepted(todo: Todo) -> None:
    body = b' \n{ "done" : false ,\t"title":"ok" }\r\n'
    assert todo.request("POST", "/todos", raw=body) == (201, {"id": 1, "title": "ok", "done": False})


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/todos", 405),
        ("DELETE", "/todos", 405),
        ("POST", "/todos/1", 405),
        ("GET", "/", 404),
        ("GET", "/todosx", 404),
        ("GET", "/todos/abc", 404),
        ("GET", "/todos/0", 404),
        ("GET", "/todos/01", 404),
        ("GET", "/todos/1234567890", 404),
        ("GET", "/todos/1/2", 404),
    ],
)
def test_other_methods_and_paths(todo: Todo, method: str, path: str, status: int) -> None:
    code, body = todo.request(method, path)
    assert code == status
    assert isinstance(body["error"], str)


def test_store_failure_answers_500_with_the_host_error(todo: Todo) -> None:
    todo.store.failing = "no link for wasmcloud:keyvalue (todo)"
    for method, path, body in [("GET", "/todos", None), ("POST", "/todos", {"title": "x"}), ("GET", "/todos/1", None)]:
        assert todo.request(method, path, body) == (500, {"error": "no link for wasmcloud:keyvalue (todo)"})


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(title=st.text(min_size=1, max_size=200).filter(lambda t: t.strip(" \t")), ascii_only=st.booleans())
def test_any_title_round_trips_through_json_and_the_store(
    load_actor: ActorLoader, title: str, ascii_only: bool
) -> None:
    todo = Todo(load_actor)
    status, created = todo.request("POST", "/todos", raw=json.dumps({"title": title}, ensure_ascii=ascii_only).encode())
    assert (status, created["title"]) == (201, title)
    assert todo.request("GET", "/todos") == (200, [created])
