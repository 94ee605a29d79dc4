"""The manifest parser: OAM documents in, ``Application`` out, every mistake named by field and line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lattice.controlplane.manifest import parse_manifest, resolve_file_image
from lattice.controlplane.model import (
    ActorComponent,
    Application,
    LinkTrait,
    ProviderComponent,
    Scaler,
    Spread,
)
from lattice.errors import ManifestError

DIGEST = "sha256:" + "ab" * 32

ECHO = f"""\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: echo
  annotations:
    version: v0.0.1
    description: Echo over HTTP
spec:
  components:
    - name: echo
      type: actor
      properties:
        image: {DIGEST}
        wasi:
          dirs: {{"/app-data": /srv/data}}
          readonly: true
          env: {{GREETING: hello, PORT: 8080}}
        limits:
          deadline_ms: 500
          max_instances: 4
      traits:
        - type: spreadscaler
          properties:
            replicas: 4
            spread:
              - name: east
                requirements:
                  zone: east
                weight: 3
              - name: west
                requirements:
                  zone: west
                weight: 1
        - type: linkdef
          properties:
            target: httpserver
            values:
              address: 0.0.0.0:8080
    - name: httpserver
      type: capability
      properties:
        image: builtin:httpserver
        contract: wasmcloud:httpserver
        link_name: default
        config:
          max_body: 1048576
      traits:
        - type: daemonscaler
          properties:
            replicas: 1
"""

EXPECTED = Application(
    name="echo",
    version="v0.0.1",
    description="Echo over HTTP",
    components=(
        ActorComponent(
            name="echo",
            image=DIGEST,
            scaler=Scaler(
                "spreadscaler",
                4,
                (Spread("east", {"zone": "east"}, 3), Spread("west", {"zone": "west"}, 1)),
            ),
            links=(LinkTrait("httpserver", {"address": "0.0.0.0:8080"}, None),),
            properties={
                "wasi": {
                    "dirs": {"/app-data": "/srv/data"},
                    "readonly": True,
                    "env": {"GREETING": "hello", "PORT": "8080"},
                },
                "limits": {"deadline_ms": 500, "max_instances": 4},
            },
        ),
        ProviderComponent(
            name="httpserver",
            image="builtin:httpserver",
            contract="wasmcloud:httpserver",
            link_name="default",
            config={"max_body": 1048576},
            scaler=Scaler("daemonscaler", 1),
        ),
    ),
)


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_yaml_manifest_parses_into_the_model() -> None:
    assert parse_manifest(ECHO) == EXPECTED


def test_json_manifest_parses_the_same_even_when_indented_with_tabs() -> None:
    document = json.dumps(yaml.safe_load(ECHO), indent="\t")
    assert parse_manifest(document) == EXPECTED
    assert parse_manifest(document.encode(), content_type="application/json") == EXPECTED


def test_bytes_with_a_bom_parse_like_text() -> None:
    assert parse_manifest(b"\xef\xbb\xbf" + ECHO.encode()) == EXPECTED


def test_json_numbers_keep_their_json_types() -> None:
    document = yaml.safe_load(ECHO)
    document["spec"]["components"][1]["properties"]["config"] = {"big": 1e3, "small": 2}
    app = parse_manifest(json.dumps(document))
    provider = app.components[1]
    assert isinstance(provider, ProviderComponent)
    assert provider.config == {"big": 1000.0, "small": 2}


def test_escaped_astral_characters_survive_json_dumps() -> None:
    document = yaml.safe_load(ECHO)
    document["metadata"]["annotations"]["description"] = "echo \U0001f600"
    assert parse_manifest(json.dumps(document)).description == "echo \U0001f600"


def test_defaults_version_from_hash_provider_scaler_contract_and_link_name() -> None:
    text = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: kv
spec:
  components:
    - name: counter
      type: actor
      properties:
        image: file://./counter.wasm
      traits:
        - type: linkdef
          properties:
            target: store
            link_name: default
    - name: store
      type: capability
      properties:
        image: builtin:keyvalue
"""
    app = parse_manifest(text)
    assert app.version == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert app.description == ""
    actor, store = app.components
    assert isinstance(actor, ActorComponent) and isinstance(store, ProviderComponent)
    assert actor.scaler == Scaler("spreadscaler", 1)
    assert actor.links == (LinkTrait("store", {}, "default"),)
    assert actor.properties == {}
    assert store == ProviderComponent(
        "store", "builtin:keyvalue", "wasmcloud:keyvalue", "default", {}, Scaler("spreadscaler", 1)
    )


def test_digest_is_normalised_to_lower_case() -> None:
    app = parse_manifest(ECHO.replace(DIGEST, DIGEST.upper().replace("SHA256", "sha256")))
    assert app.components[0].image == DIGEST


def test_version_keeps_the_text_as_written() -> None:
    app = parse_manifest(ECHO.replace("version: v0.0.1", "version: 1.10"))
    assert app.version == "1.10"


def test_merge_keys_let_later_keys_win() -> None:
    text = ECHO.replace(
        "        limits:\n          deadline_ms: 500\n",
        "        limits:\n          <<: {deadline_ms: 100, max_memory_mb: 64}\n          deadline_ms: 500\n",
    )
    actor = parse_manifest(text).components[0]
    assert isinstance(actor, ActorComponent)
    assert actor.properties["limits"] == {"deadline_ms": 500, "max_memory_mb": 64, "max_instances": 4}


def test_resolve_file_image_is_relative_to_the_manifest_directory(tmp_path: Path) -> None:
    assert resolve_file_image("file://./echo.wasm", tmp_path) == tmp_path / "echo.wasm"
    assert resolve_file_image("file://build/echo.wasm", tmp_path) == tmp_path / "build" / "echo.wasm"
    assert resolve_file_image("file:///opt/echo.wasm", tmp_path) == Path("/opt/echo.wasm")
    with pytest.raises(ManifestError):
        resolve_file_image(DIGEST, tmp_path)


# (what to replace, its replacement, the field named, text on the line named — or a line number, message)
BAD: list[tuple[str, str, str | None, str | int, str]] = [
    ("core.oam.dev/v1beta1", "core.oam.dev/v1", "apiVersion", 1, "core.oam.dev/v1beta1"),
    ("kind: Application", "kind: Deployment", "kind", 2, "Application"),
    ("  name: echo\n", "  name: Echo App!\n", "metadata.name", "Echo App!", "application name"),
    ("  name: echo\n", "", "metadata.name", "annotations:", "missing required field 'name'"),
    ("metadata:\n", "metadata: []\nx:\n", "metadata", "metadata: []", "mapping"),
    (
        "  components:\n    - name: echo\n",
        "  components: []\n  x:\n    - name: echo\n",
        "spec.components",
        "components: []",
        "non-empty",
    ),
    (
        "    - name: httpserver",
        "    - name: echo",
        "spec.components[1].name",
        line_of(ECHO, "- name: httpserver"),
        "duplicate",
    ),
    (
        "replicas: 4",
        "replicas: -1",
        "spec.components[0].traits[0].properties.replicas",
        "replicas: -1",
        ">= 0",
    ),
    (
        "replicas: 4",
        "replicas: three",
        "spec.components[0].traits[0].properties.replicas",
        "replicas: three",
        "integer",
    ),
    (
        "replicas: 4",
        "replicas: true",
        "spec.components[0].traits[0].properties.replicas",
        "replicas: true",
        "integer",
    ),
    (
        "            replicas: 4\n",
        "",
        "spec.components[0].traits[0].properties.replicas",
        "spread:",
        "missing required field 'replicas'",
    ),
    (
        "weight: 1",
        "weight: -1",
        "spec.components[0].traits[0].properties.spread[1].weight",
        "weight: -1",
        ">= 0",
    ),
    (
        "- name: west",
        "- name: east",
        "spec.components[0].traits[0].properties.spread[1].name",
        "- name: east\n                requirements:\n                  zone: west",
        "duplicate spread",
    ),
    (
        "target: httpserver",
        "target: nowhere",
        "spec.components[0].traits[1].properties.target",
        "target: nowhere",
        "not a capability component",
    ),
    (
        "target: httpserver",
        "target: echo",
        "spec.components[0].traits[1].properties.target",
        "target: echo",
        "not a capability component",
    ),
    (
        "      type: capability",
        "      type: provider",
        "spec.components[1].type",
        "type: provider",
        "unknown component type",
    ),
    (
        "- type: daemonscaler",
        "- type: linkdef",
        "spec.components[1].traits[0].type",
        "- type: linkdef\n          properties:\n            replicas",
        "does not apply here",
    ),
    (
        "- type: linkdef",
        "- type: daemonscaler",
        "spec.components[0].traits[1]",
        "type: daemonscaler",
        "at most one scaler",
    ),
    (DIGEST, "sha256:abc", "spec.components[0].properties.image", "sha256:abc", "64 hex"),
    (
        DIGEST,
        "https://example.com/echo.wasm",
        "spec.components[0].properties.image",
        "https://",
        "not an image",
    ),
    (
        DIGEST,
        "oci://ghcr.io/Acme/echo:0.3",
        "spec.components[0].properties.image",
        "oci://",
        "lowercase",
    ),
    (
        DIGEST,
        "builtin:httpserver",
        "spec.components[0].properties.image",
        "image: builtin:httpserver\n",
        "capability provider",
    ),
    (DIGEST, "echo.wasm", "spec.components[0].properties.image", "image: echo.wasm", "unrecognised image"),
    (
        "builtin:httpserver",
        "builtin:redis",
        "spec.components[1].properties.image",
        "builtin:redis",
        "unknown bundled provider",
    ),
    (
        "builtin:httpserver",
        "file://./http.par",
        "spec.components[1].properties.image",
        "http.par",
        "builtin:<name> or a registry reference",
    ),
    (
        "contract: wasmcloud:httpserver",
        "contract: wasmcloud:keyvalue",
        "spec.components[1].properties.contract",
        "contract: wasmcloud:keyvalue",
        "serves the contract",
    ),
    (
        "readonly: true",
        'readonly: "yes"',
        "spec.components[0].properties.wasi.readonly",
        "readonly:",
        "true or false",
    ),
    (
        "deadline_ms: 500",
        "deadline_ms: 0",
        "spec.components[0].properties.limits.deadline_ms",
        "deadline_ms: 0",
        ">= 1",
    ),
    (
        "max_instances: 4",
        "max_instances: 4.5",
        "spec.components[0].properties.limits.max_instances",
        "max_instances: 4.5",
        "integer",
    ),
    (
        "max_instances: 4",
        "max_stuff: 4",
        "spec.components[0].properties.limits.max_stuff",
        "max_stuff",
        "unknown field",
    ),
    (
        "        image: sha",
        "        imgae: sha",
        "spec.components[0].properties.imgae",
        "imgae",
        "unknown field",
    ),
    (
        "env: {GREETING: hello, PORT: 8080}",
        "env: [GREETING]",
        "spec.components[0].properties.wasi.env",
        "env: [GREETING]",
        "mapping",
    ),
    (
        "address: 0.0.0.0:8080",
        "address: [a, b]",
        "spec.components[0].traits[1].properties.values.address",
        "address: [a, b]",
        "string",
    ),
    (
        "            target: httpserver\n",
        "            target: httpserver\n            link_name: other\n",
        "spec.components[0].traits[1].properties.link_name",
        "link_name: other",
        "does not match",
    ),
    ("    version: v0.0.1\n", "    version: v0.0.1\n    version: v2\n", None, "version: v2", "duplicate key"),
    ("readonly: true", "readonly: [true", None, "env: {GREETING", "invalid YAML"),
    ("  components:\n", "  components:\n\t- x\n", None, "\t- x", "invalid YAML"),
]


@pytest.mark.parametrize(("old", "new", "field", "where", "message"), BAD, ids=[b[1][:40] for b in BAD])
def test_bad_manifest_names_field_and_line(
    old: str, new: str, field: str | None, where: str | int, message: str
) -> None:
    assert old in ECHO
    text = ECHO.replace(old, new, 1)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    expected_line = where if isinstance(where, int) else text[: text.index(where)].count("\n") + 1
    error = caught.value
    assert message in str(error)
    assert (error.field, error.line) == (field, expected_line), str(error)


def test_bad_field_in_json_names_its_line() -> None:
    document = yaml.safe_load(ECHO)
    document["spec"]["components"][0]["traits"][0]["properties"]["replicas"] = -2
    text = json.dumps(document, indent=2)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.field == "spec.components[0].traits[0].properties.replicas"
    assert caught.value.line == line_of(text, '"replicas": -2')


def test_invalid_json_names_its_line() -> None:
    with pytest.raises(ManifestError, match="invalid JSON") as caught:
        parse_manifest('{\n  "apiVersion": "core.oam.dev/v1beta1",\n  "kind": \n}')
    assert caught.value.line == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n# only a comment\n", "empty"),
        ("just words", "must be a mapping"),
        ("- a\n- b\n", "must be a mapping"),
        ("a: 1\n---\nb: 2\n", "invalid YAML"),
        ("a: &x [*x]\n", "recursive"),
        ("a: !!python/object:os.system ls\n", "invalid YAML"),
        ("a: !custom 3\n", "invalid YAML"),
        ("{?: 1}", "invalid JSON"),
    ],
)
def test_odd_documents_are_refused_cleanly(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(text)


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(ManifestError, match="too large"):
        parse_manifest("\n".join(lines))


def test_non_utf8_bytes_are_refused() -> None:
    with pytest.raises(ManifestError, match="UTF-8"):
        parse_manifest(b"apiVersion: \xff\xfe\n")


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ManifestError):
        parse_manifest("[" * 5000 + "]" * 5000, content_type="application/yaml")


# --- nothing but ManifestError, whatever comes in -----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _mutate(document: Any, data: st.DataObject) -> Any:
    """Replace one value somewhere in the document with a random one."""
    if isinstance(document, dict) and document and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(document)))
        return {**document, key: _mutate(document[key], data)}
    if isinstance(document, list) and document and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(document) - 1))
        return [*document[:index], _mutate(document[index], data), *document[index + 1 :]]
    return data.draw(json_values)


def _parses_or_manifest_error(text: str | bytes, content_type: str | None = None) -> None:
    try:
        app = parse_manifest(text, content_type=content_type)
    except ManifestError as exc:
        assert exc.line is None or exc.line >= 1
    else:
        assert isinstance(app, Application)


@settings(max_examples=300)
@given(st.text())
def test_random_text_gives_only_manifest_errors(text: str) -> None:
    _parses_or_manifest_error(text)


@settings(max_examples=200)
@given(st.binary())
def test_random_bytes_give_only_manifest_errors(data: bytes) -> None:
    _parses_or_manifest_error(data)


@settings(max_examples=200)
@given(json_values)
def test_random_yaml_and_json_values_give_only_manifest_errors(value: Any) -> None:
    _parses_or_manifest_error(yaml.safe_dump(value))
    _parses_or_manifest_error(json.dumps(value), "application/json")


@settings(max_examples=500)
@given(st.data())
def test_mutated_manifests_give_only_manifest_errors(data: st.DataObject) -> None:
    document = _mutate(yaml.safe_load(ECHO), data)
    _parses_or_manifest_error(yaml.safe_dump(document))
    _parses_or_manifest_error(json.dumps(document))


def test_a_misspelt_spec_is_named() -> None:
    text = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: x}\nspecs: {components: []}\n"
    with pytest.raises(ManifestError, match=r"unknown field 'specs' .* \(line 4\)"):
        parse_manifest(text)


def test_allowed_hosts_are_kept_for_the_hosts_and_checked() -> None:
    text = ECHO.replace(
        "        limits:\n", "        allowed_hosts: [api.example.com, '*.example.org:8443']\n        limits:\n", 1
    )
    actor = parse_manifest(text).components[0]
    assert isinstance(actor, ActorComponent)
    assert actor.properties["allowed_hosts"] == ["api.example.com", "*.example.org:8443"]
    for bad, message in (("api.example.com", "must be a list"), ("[https://api.example.com/]", "not a host name")):
        with pytest.raises(ManifestError) as caught:
            parse_manifest(text.replace("[api.example.com, '*.example.org:8443']", bad))
        assert message in str(caught.value)
        assert caught.value.field is not None and caught.value.field.startswith(
            "spec.components[0].properties.allowed_hosts"
        )


def test_every_limit_and_wasi_field_a_host_applies_is_accepted() -> None:
    """One schema (lattice.properties) for the parser and the hosts: max_payload_mb and wasi.args included."""
    from lattice.host.actors import limits_from, wasi_from

    text = ECHO.replace(
        "        limits:\n", "        limits:\n          max_payload_mb: 2\n          max_memory_mb: 32\n", 1
    ).replace("readonly: true", "readonly: true\n          args: [--verbose, '2']", 1)
    (actor,) = [c for c in parse_manifest(text).components if c.name == "echo"]
    assert actor.properties["limits"]["max_payload_mb"] == 2
    assert actor.properties["wasi"]["args"] == ["--verbose", "2"]
    assert limits_from(actor.properties, 1).max_payload_bytes == 2 * 1024 * 1024
    assert wasi_from({"wasi": {"args": actor.properties["wasi"]["args"]}}).args == ("--verbose", "2")


def test_wasi_args_must_be_a_list() -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest(ECHO.replace("readonly: true", "readonly: true\n          args: --verbose", 1))
    assert "spec.components[0].properties.wasi.args" in str(err.value) and "list" in str(err.value)
