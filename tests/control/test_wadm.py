"""wadm 0.x manifests as wadm writes them (our own manifests in wadm 0.10's shapes): fields, meanings, refusals."""

from __future__ import annotations

import base64
import json

import pytest

from lattice.controlplane.manifest import parse_manifest
from lattice.controlplane.model import ActorComponent, ProviderComponent
from lattice.controlplane.wadm import map_link_values
from lattice.errors import ManifestError

# wadm 0.10: registry images everywhere, `instances`, a custom trait, provider config as a string and as a map
WADM = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop_front-2
  annotations:
    version: v0.0.1
    description: "A wadm 0.10 application"
spec:
  components:
    - name: frontend
      type: actor
      properties:
        image: wasmcloud.azurecr.io/frontend:0.3.7
      traits:
        - type: spreadscaler
          properties:
            instances: 4
            spread:
              - name: eastcoast
                requirements:
                  zone: us-east-1
                weight: 80
              - name: westcoast
                requirements:
                  zone: us-west-1
                weight: 20
        - type: linkdef
          properties:
            target: webserver
            values:
              address: 0.0.0.0:8080
        - type: linkdef
          properties:
            target: cache
            values:
              URL: redis://127.0.0.1:6379
        - type: autoscaler
          properties:
            metric: cpu
            max: 10
    - name: worker
      type: actor
      properties:
        image: registry.example.com:5000/team/a/very/long/path/to/the/worker@sha256:{digest}
      traits:
        - type: daemonscaler
          properties:
            replicas: 2
    - name: webserver
      type: capability
      properties:
        image: wasmcloud.azurecr.io/httpserver:0.17.0
        contract: wasmcloud:httpserver
        config: '{{"raw": "json", "data": {{}}}}'
      traits:
        - type: spreadscaler
          properties:
            instances: 1
    - name: cache
      type: capability
      properties:
        image: wasmcloud.azurecr.io/kvredis:0.21.0
        contract: wasmcloud:keyvalue
        link_name: default
        config:
          some: value
          nested: {{deep: [1, 2]}}
""".format(digest="c" * 64)


def test_a_wadm_010_manifest_is_accepted_as_written() -> None:
    app = parse_manifest(WADM)
    assert app.name == "shop_front-2" and app.version == "v0.0.1"
    frontend, worker, web, cache = app.components
    assert isinstance(frontend, ActorComponent) and isinstance(worker, ActorComponent)
    assert frontend.image == "wasmcloud.azurecr.io/frontend:0.3.7"
    assert frontend.scaler.replicas == 4 and [s.weight for s in frontend.scaler.spread] == [80, 20]
    assert frontend.scaler.spread[0].requirements == {"zone": "us-east-1"}
    assert frontend.custom_traits == ("autoscaler",)  # kept, not acted on
    assert worker.scaler.kind == "daemonscaler" and worker.scaler.replicas == 2 and "@sha256:" in worker.image
    assert isinstance(web, ProviderComponent) and isinstance(cache, ProviderComponent)
    assert web.image == "builtin:httpserver" and web.requested_image == "wasmcloud.azurecr.io/httpserver:0.17.0"
    assert web.substituted and web.unsupported is None
    assert web.config == {"config_json": '{"raw": "json", "data": {}}'}  # opaque: handed on as is
    assert cache.image == "builtin:keyvalue" and cache.config == {"some": "value", "nested": {"deep": [1, 2]}}
    assert [(link.target, link.values) for link in frontend.links] == [
        ("webserver", {"address": "0.0.0.0:8080"}),
        ("cache", {"URL": "redis://127.0.0.1:6379"}),
    ]


def test_a_spread_of_weight_zero_gets_no_share() -> None:
    app = parse_manifest(WADM.replace("weight: 20", "weight: 0"))
    assert [s.weight for s in app.components[0].scaler.spread] == [80, 0]


def test_replicas_is_the_same_as_instances_and_both_is_an_error() -> None:
    renamed = parse_manifest(WADM.replace("instances: 4", "replicas: 4"))
    assert renamed.components[0].scaler.replicas == 4
    both = WADM.replace("instances: 4", "instances: 4\n            replicas: 4")
    with pytest.raises(ManifestError, match=r"'replicas' or 'instances'.*not both") as caught:
        parse_manifest(both)
    assert caught.value.field == "spec.components[0].traits[0].properties.replicas" and caught.value.line == 18


def test_a_contract_lattice_does_not_bundle_is_kept_and_named() -> None:
    app = parse_manifest(WADM.replace("contract: wasmcloud:keyvalue", "contract: wasmcloud:sqldb"))
    cache = app.components[3]
    assert isinstance(cache, ProviderComponent) and cache.image == "wasmcloud.azurecr.io/kvredis:0.21.0"
    assert cache.unsupported and "wasmcloud:sqldb" in cache.unsupported and not cache.substituted


def _error(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    return caught.value


def _line(text: str, needle: str, nth: int = 1) -> int:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text[:index].count("\n") + 1


# wadm's validate_manifest, case by case: (change, field, line of, message)
VALIDATIONS = [
    (
        "- name: worker",
        "- name: frontend",
        "spec.components[1].name",
        ("- name: frontend", 2),
        "duplicate component name",
    ),
    (
        "registry.example.com:5000/team/a/very/long/path/to/the/worker@sha256:" + "c" * 64,
        "wasmcloud.azurecr.io/frontend:0.3.7",
        "spec.components[1].properties.image",
        ("wasmcloud.azurecr.io/frontend:0.3.7", 2),
        "duplicate image reference",
    ),
    (
        "wasmcloud.azurecr.io/kvredis:0.21.0\n        contract: wasmcloud:keyvalue\n        link_name: default",
        "wasmcloud.azurecr.io/httpserver:0.18.0\n        contract: wasmcloud:httpserver\n        link_name: default",
        "spec.components[3].properties.image",
        ("httpserver:0.18.0", 1),
        "duplicate image reference",
    ),
    (
        "target: cache",
        "target: webserver",
        "spec.components[0].traits[2].properties.target",
        ("target: webserver", 2),
        "duplicate linkdef target",
    ),
    (
        "target: cache",
        "target: database",
        "spec.components[0].traits[2].properties.target",
        ("target: database", 1),
        "missing capability component",
    ),
    (
        "            instances: 4\n",
        "",
        "spec.components[0].traits[0].properties.replicas",
        ("spread:", 1),
        "missing required field 'replicas' (or wadm 0.10's 'instances')",
    ),
    ("name: shop_front-2", "name: shop front!", "metadata.name", ("name: shop front!", 1), "^[-\\w]+$"),
    ("version: v0.0.1", "version: latest", "metadata.annotations.version", ("version: latest", 1), "wadm refuses"),
    (
        "        contract: wasmcloud:httpserver\n",
        "",
        "spec.components[2].properties.contract",
        ("image: wasmcloud.azurecr.io/httpserver", 1),
        "missing required field 'contract'",
    ),
    (
        "      type: actor\n      properties:\n        image: wasmcloud.azurecr.io/frontend:0.3.7",
        "      type: actor\n      properties:\n        image: frontend:0.3.7",
        "spec.components[0].properties.image",
        ("image: frontend:0.3.7", 1),
        "unrecognised image",
    ),
]


@pytest.mark.parametrize(("old", "new", "field", "where", "message"), VALIDATIONS, ids=[v[4][:30] for v in VALIDATIONS])
def test_wadm_validations_name_field_and_line(
    old: str, new: str, field: str, where: tuple[str, int], message: str
) -> None:
    assert old in WADM
    text = WADM.replace(old, new, 1)
    error = _error(text)
    assert message in str(error) and error.field == field, str(error)
    assert error.line == _line(text, *where)


def test_wadm_names_and_providers_on_other_link_names_are_accepted() -> None:
    assert parse_manifest(WADM.replace("name: shop_front-2", "name: -shop_")).name == "-shop_"
    two = WADM.replace(
        "wasmcloud.azurecr.io/kvredis:0.21.0\n        contract: wasmcloud:keyvalue\n        link_name: default",
        "wasmcloud.azurecr.io/httpserver:0.18.0\n        contract: wasmcloud:httpserver\n        link_name: admin",
    )
    assert (
        parse_manifest(
            two.replace("target: cache", "target: webserver-admin").replace(
                "    - name: cache", "    - name: webserver-admin"
            )
        )
        .components[3]
        .link_name
        == "admin"
    )


def test_without_a_version_the_content_names_it() -> None:
    text = WADM.replace("    version: v0.0.1\n", "")
    first, again = parse_manifest(text), parse_manifest(text)
    assert first.version == again.version and len(first.version) == 12  # the same content, the same version
    assert parse_manifest(text.replace("instances: 4", "instances: 5")).version != first.version


def test_link_values_of_wasmcloud_providers_map_onto_the_bundled_ones() -> None:
    http = "wasmcloud:httpserver"
    assert map_link_values(http, {"address": "0.0.0.0:8080"}) == ({"address": "0.0.0.0:8080"}, [])
    assert map_link_values(http, {"PORT": "8081", "reuse_port": "true"}) == ({"port": "8081", "reuse_port": "true"}, [])
    settings = {
        "address": "127.0.0.1:9000",
        "timeout_ms": 500,
        "max_content_len": "10M",
        "tls": {"cert_file": "/c.pem", "priv_key_file": "/k.pem"},
        "cors": {"allowed_origins": ["https://a", "https://b"], "allowed_headers": ["x"]},
        "cache_control": "no-cache",
    }
    mapped, ignored = map_link_values(http, {"config_json": json.dumps(settings)})
    assert mapped == {
        "address": "127.0.0.1:9000",
        "timeout_ms": "500",
        "max_body_bytes": str(10 * 2**20),
        "tls_cert": "/c.pem",
        "tls_key": "/k.pem",
        "cors_origins": "https://a,https://b",
    }
    assert ignored == ["cors.allowed_headers", "cache_control"]
    b64 = base64.b64encode(json.dumps({"address": "127.0.0.1:9001"}).encode()).decode()
    assert map_link_values(http, {"config_b64": b64}) == ({"address": "127.0.0.1:9001"}, [])
    assert map_link_values(http, {"config_json": "{not json"}) == ({}, ["config_json"])
    assert map_link_values("wasmcloud:keyvalue", {"URL": "redis://x", "bucket": "b"}) == ({"bucket": "b"}, ["URL"])
    nats = {"SUBSCRIPTION": "orders.>", "URI": "nats://127.0.0.1:4222", "CLIENT_JWT": "eyJ..."}
    assert map_link_values("wasmcloud:messaging", nats) == (
        {"subscription": "orders.>", "uri": "nats://127.0.0.1:4222"},
        ["CLIENT_JWT"],
    )
    assert map_link_values("wasmcloud:blobstore", {"ROOT": "/tmp/x"}) == ({}, ["ROOT"])
