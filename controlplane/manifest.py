"""Parse wadm 0.x OAM manifests (YAML or JSON) into an ``Application``; every error names field and line.

The text becomes ``Node``s that remember their lines (``manifest_nodes``) and is then walked once;
the checks across components are wadm's (``manifest_checks``). Nothing here reads files or talks to
anyone: ``file://`` and OCI images are only checked for shape; ``resolve_file_image`` turns a ``file://``
one into a path for the caller that does the reading. Only ``ManifestError`` leaves ``parse_manifest``.

Over 400 lines: one walk over the OAM document, a function per node kind; the node helpers and the
cross-component checks already live beside it (``manifest_nodes``, ``manifest_checks``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lattice import caps
from lattice.controlplane.manifest_checks import check_images, check_links
from lattice.controlplane.manifest_nodes import (
    Node as _Node,
)
from lattice.controlplane.manifest_nodes import (
    as_int as _int,
)
from lattice.controlplane.manifest_nodes import (
    as_map as _map,
)
from lattice.controlplane.manifest_nodes import (
    as_str as _str,
)
from lattice.controlplane.manifest_nodes import (
    fail as _fail,
)
from lattice.controlplane.manifest_nodes import (
    load as _load,
)
from lattice.controlplane.manifest_nodes import (
    looks_like_json as _looks_like_json,
)
from lattice.controlplane.manifest_nodes import (
    opt as _opt,
)
from lattice.controlplane.manifest_nodes import (
    plain as _plain,
)
from lattice.controlplane.manifest_nodes import (
    req as _req,
)
from lattice.controlplane.manifest_nodes import (
    str_map as _str_map,
)
from lattice.controlplane.manifest_nodes import (
    text as _text,
)
from lattice.controlplane.model import (
    BUILTIN_CONTRACTS,
    DEFAULT_LINK_NAME,
    DEFAULT_SCALER,
    ActorComponent,
    Application,
    Component,
    Elastic,
    LinkTrait,
    ProviderComponent,
    RolloutPolicy,
    Scaler,
    ScalerKind,
    Spread,
    app_name_problem,
)
from lattice.controlplane.wadm import substitute
from lattice.errors import LatticeError, ManifestError
from lattice.oci import is_reference, parse_reference
from lattice.properties import ACTOR_FIELDS, LIMIT_CAPS, WASI_FIELDS

API_VERSION = "core.oam.dev/v1beta1"
KIND = "Application"

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_LINK_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CONTRACT = re.compile(r"[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)+")
_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")
_SCALERS: tuple[ScalerKind, ...] = ("spreadscaler", "daemonscaler")
_KNOWN_TRAITS = (*_SCALERS, "linkdef")


def parse_manifest(text: str | bytes, *, content_type: str | None = None) -> Application:
    """Parse and validate a manifest; raise ``ManifestError`` naming the field and 1-based line."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    try:
        source = text.decode("utf-8-sig") if isinstance(text, bytes) else text
    except UnicodeDecodeError as exc:
        raise ManifestError(f"the manifest is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        root = _load(source, _looks_like_json(source, content_type))
        return _application(root, data)
    except RecursionError:
        raise ManifestError("the manifest is nested too deeply") from None


def resolve_file_image(image: str, base_dir: str | Path) -> Path:
    """The file a ``file://`` image names; a relative path is relative to ``base_dir`` (the manifest's)."""
    if not image.startswith("file://") or not image[len("file://") :]:
        raise ManifestError(f"{image!r} is not a file://<path> image")
    return Path(base_dir) / image[len("file://") :]


def _name(node: _Node, path: str, what: str) -> str:
    value = _text(node, path)
    if not _NAME.fullmatch(value):
        raise _fail(
            f"{what} {value!r} must be 1-63 letters, digits, '-' or '_', starting and ending with a letter or digit",
            node,
            path,
        )
    return value


# --- the document ----------------------------------------------------------------------------------------


def _application(root: _Node, data: bytes) -> Application:
    if root.kind != "map":
        raise _fail("the manifest must be a mapping (an OAM Application document)", root, "", 1)
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        node = _req(root, key, "")
        if node.kind != "scalar" or node.value != expected:
            raise _fail(f"must be {expected!r}, not {_plain(node)!r}", node, key)
    metadata = _map(_req(root, "metadata", ""), "metadata")
    name_node = _req(metadata, "name", "metadata")
    name = _text(name_node, "metadata.name").strip()
    if problem := app_name_problem(name):
        raise _fail(problem, name_node, "metadata.name")
    version, description = hashlib.sha256(data).hexdigest()[:12], ""
    annotations = _opt(metadata, "annotations")
    if annotations is not None:
        _map(annotations, "metadata.annotations")
        if (version_node := _opt(annotations, "version")) is not None:
            version = _text(version_node, "metadata.annotations.version")
            if version == "latest" or not version.strip():
                raise _fail(
                    f"{version!r} is not a version (wadm refuses it too)", version_node, "metadata.annotations.version"
                )
        if (desc_node := _opt(annotations, "description")) is not None:
            description = _text(desc_node, "metadata.annotations.description")
    if "spec" not in root.entries:  # a misspelt `specs:` is named as such, not just reported missing
        _map(root, "", allowed=("apiVersion", "kind", "metadata", "spec"))
    spec = _map(_req(root, "spec", ""), "spec")
    return Application(name, version, description, _components(spec), _rollout(spec))


def _rollout(spec: _Node) -> RolloutPolicy:
    policy = _opt(spec, "policy")
    if policy is None:
        return RolloutPolicy()
    _map(policy, "spec.policy", allowed=("rollout",))
    node = _opt(policy, "rollout")
    if node is None:
        return RolloutPolicy()
    path = "spec.policy.rollout"
    _map(node, path, allowed=("strategy", "step_percent", "window_s", "max_error_rate", "max_p99_ms"))
    strategy = "rolling"
    if (strategy_node := _opt(node, "strategy")) is not None:
        strategy = _text(strategy_node, f"{path}.strategy")
        if strategy not in ("rolling", "canary"):
            raise _fail(f"strategy must be 'rolling' or 'canary', not {strategy!r}", strategy_node, f"{path}.strategy")
    step = _opt(node, "step_percent")
    window = _opt(node, "window_s")
    return RolloutPolicy(
        strategy,
        (25 if strategy == "canary" else 100) if step is None else _int(step, f"{path}.step_percent", 1, 100),
        10.0 if window is None else float(_int(window, f"{path}.window_s", 1, 3600)),
        _fraction(_opt(node, "max_error_rate"), f"{path}.max_error_rate", 0.05),
        None if _opt(node, "max_p99_ms") is None else _fraction(_opt(node, "max_p99_ms"), f"{path}.max_p99_ms", 0, 1e7),
    )


def _fraction(node: _Node | None, path: str, default: float, maximum: float = 1.0) -> float:
    if node is None:
        return default
    value = _plain(node)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= maximum:
        raise _fail(f"must be a number from 0 to {maximum:g}", node, path)
    return float(value)


def _components(spec: _Node) -> tuple[Component, ...]:
    listing = _req(spec, "components", "spec")
    if listing.kind != "seq" or not listing.items:
        raise _fail("must be a non-empty list of components", listing, "spec.components")
    components: list[Component] = []
    pending: list[tuple[str, LinkTrait, _Node, str]] = []  # linkdefs, checked once all targets are known
    for index, node in enumerate(listing.items):
        path = f"spec.components[{index}]"
        _map(node, path)
        name_node = _req(node, "name", path)
        name = _name(name_node, f"{path}.name", "component name")
        if any(c.name == name for c in components):
            raise _fail(f"duplicate component name {name!r}", name_node, f"{path}.name")
        kind_node = _req(node, "type", path)
        if kind_node.value == "actor":
            actor, links = _actor(node, name, path)
            components.append(actor)
            pending.extend((name, link, props, props_path) for link, props, props_path in links)
        elif kind_node.value == "capability":
            components.append(_capability(node, name, path))
        else:
            raise _fail(
                f"unknown component type {_plain(kind_node)!r} (expected actor or capability)",
                kind_node,
                f"{path}.type",
            )
    check_images(components, listing.items)
    check_links(components, pending)
    return tuple(components)


@dataclass(frozen=True, slots=True)
class _Trait:
    kind: str
    kind_node: _Node
    props: _Node
    path: str  # of the trait; its properties are at f"{path}.properties"


def _traits(node: _Node, path: str, allowed: tuple[str, ...]) -> list[_Trait]:
    traits = _opt(node, "traits")
    if traits is None:
        return []
    if traits.kind != "seq":
        raise _fail("must be a list of traits", traits, f"{path}.traits")
    out = []
    for index, trait in enumerate(traits.items):
        trait_path = f"{path}.traits[{index}]"
        _map(trait, trait_path)
        kind_node = _req(trait, "type", trait_path)
        kind = _str(kind_node, f"{trait_path}.type")
        if kind in _KNOWN_TRAITS and kind not in allowed:
            raise _fail(
                f"trait {kind!r} does not apply here (expected one of: {', '.join(allowed)})",
                kind_node,
                f"{trait_path}.type",
            )
        props = _opt(trait, "properties") or _Node("map", trait.line)
        if kind in _KNOWN_TRAITS:
            props = _map(props, f"{trait_path}.properties")
        out.append(_Trait(kind, kind_node, props, trait_path))  # another type: a custom trait, kept (as wadm)
    return out


def _custom(traits: list[_Trait]) -> tuple[str, ...]:
    return tuple(t.kind for t in traits if t.kind not in _KNOWN_TRAITS)


def _scaler_from(traits: list[_Trait]) -> Scaler:
    scalers = [t for t in traits if t.kind in _SCALERS]
    if len(scalers) > 1:
        raise _fail("a component takes at most one scaler trait", scalers[1].kind_node, scalers[1].path)
    return _scaler(scalers[0]) if scalers else DEFAULT_SCALER


def _scaler(trait: _Trait) -> Scaler:
    path = f"{trait.path}.properties"
    props = _map(trait.props, path, allowed=("replicas", "instances", "spread", *ELASTIC_FIELDS))
    given = [key for key in ("instances", "replicas") if _opt(props, key) is not None]
    elastic = _elastic(props, path, trait.kind, given)
    if len(given) == 2:
        raise _fail(
            "give 'replicas' or 'instances' (wadm 0.10's name for it), not both",
            props.entries["replicas"],
            f"{path}.replicas",
            props.key_lines["replicas"],
        )
    if not given and trait.kind == "spreadscaler" and elastic is None:
        raise _fail("missing required field 'replicas' (or wadm 0.10's 'instances')", props, f"{path}.replicas")
    key = given[0] if given else "replicas"
    replicas = 1 if not given else _int(props.entries[key], f"{path}.{key}", 0, caps.MAX_REPLICAS)
    if elastic is not None:
        replicas = max(elastic.min_replicas, min(1, elastic.max_replicas))  # one warm, unless min says more
    spreads: list[Spread] = []
    if (spread_node := _opt(props, "spread")) is not None:
        if spread_node.kind != "seq":
            raise _fail("must be a list of spreads", spread_node, f"{path}.spread")
        for index, item in enumerate(spread_node.items):
            spread = _spread(item, f"{path}.spread[{index}]")
            if any(s.name == spread.name for s in spreads):
                raise _fail(f"duplicate spread name {spread.name!r}", item, f"{path}.spread[{index}].name")
            spreads.append(spread)
    kind: ScalerKind = "spreadscaler" if trait.kind == "spreadscaler" else "daemonscaler"
    return Scaler(kind, replicas, tuple(spreads), elastic)


ELASTIC_FIELDS = ("min_replicas", "max_replicas", "target_in_flight", "idle_timeout_s")


def _elastic(props: _Node, path: str, kind: str, given: list[str]) -> Elastic | None:
    """SPEC §5's elastic spreadscaler fields, checked: None when the scaler has none of them."""
    present = [f for f in ELASTIC_FIELDS if _opt(props, f) is not None]
    if not present:
        return None
    first = props.entries[present[0]]
    if kind != "spreadscaler":
        raise _fail(f"{present[0]} belongs to a spreadscaler, not a {kind}", first, f"{path}.{present[0]}")
    if given:
        raise _fail(
            f"give either '{given[0]}' or min_replicas/max_replicas (elastic), not both",
            props.entries[given[0]],
            f"{path}.{given[0]}",
        )

    def number(field: str, default: int, minimum: int, maximum: int) -> int:
        node = _opt(props, field)
        return default if node is None else _int(node, f"{path}.{field}", minimum, maximum)

    low = number("min_replicas", 1, 0, caps.MAX_REPLICAS)
    high = number("max_replicas", max(low, DEFAULT_MAX_REPLICAS), 1, caps.MAX_REPLICAS)
    if low > high:
        node = props.entries.get("min_replicas", first)
        raise _fail(f"min_replicas ({low}) is greater than max_replicas ({high})", node, f"{path}.min_replicas")
    target = number("target_in_flight", 4, 1, caps.MAX_INSTANCES)
    idle = number("idle_timeout_s", 60, 1, 86_400)
    return Elastic(low, high, target, float(idle))


DEFAULT_MAX_REPLICAS = 10


def _spread(node: _Node, path: str) -> Spread:
    _map(node, path, allowed=("name", "requirements", "weight"))
    name = _text(_req(node, "name", path), f"{path}.name")
    requirements_node = _opt(node, "requirements")
    requirements = {} if requirements_node is None else _str_map(requirements_node, f"{path}.requirements")
    weight_node = _opt(node, "weight")
    weight = 100 if weight_node is None else _int(weight_node, f"{path}.weight", 0)  # 0: no share (as wadm)
    return Spread(name, requirements, weight)


def _actor(node: _Node, name: str, path: str) -> tuple[ActorComponent, list[tuple[LinkTrait, _Node, str]]]:
    props_path = f"{path}.properties"
    props = _map(_req(node, "properties", path), props_path, allowed=ACTOR_FIELDS)
    image = _image(_req(props, "image", props_path), f"{props_path}.image", actor=True)
    properties: dict[str, Any] = {}
    if (wasi := _opt(props, "wasi")) is not None:
        properties["wasi"] = _wasi(wasi, f"{props_path}.wasi")
    if (hosts := _opt(props, "allowed_hosts")) is not None:
        properties["allowed_hosts"] = _allowed_hosts(hosts, f"{props_path}.allowed_hosts")
    if (limits := _opt(props, "limits")) is not None:
        lpath = f"{props_path}.limits"
        _map(limits, lpath, allowed=tuple(LIMIT_CAPS))
        properties["limits"] = {k: _int(v, f"{lpath}.{k}", 1, LIMIT_CAPS[k]) for k, v in limits.entries.items()}
    traits = _traits(node, path, _KNOWN_TRAITS)
    links = [
        (_linkdef(t.props, f"{t.path}.properties"), t.props, f"{t.path}.properties")
        for t in traits
        if t.kind == "linkdef"
    ]
    scaler = _scaler_from(traits)
    actor = ActorComponent(name, image, scaler, tuple(link for link, _, _ in links), properties, _custom(traits))
    return actor, links


def _allowed_hosts(node: _Node, path: str) -> list[str]:
    """Where a wasi:http component's outgoing HTTP may go: ``host``, ``host:port`` or ``*.domain``."""
    if node.kind != "seq":
        raise _fail("must be a list of host names, e.g. [api.example.com, '*.example.org']", node, path)
    hosts = [_str(item, f"{path}[{i}]") for i, item in enumerate(node.items)]
    for i, host in enumerate(hosts):
        if "/" in host or " " in host:
            raise _fail(f"{host!r} is not a host name (no scheme, path or spaces)", node.items[i], f"{path}[{i}]")
    return hosts


def _wasi(node: _Node, path: str) -> dict[str, Any]:
    _map(node, path, allowed=WASI_FIELDS)
    out: dict[str, Any] = {}
    for key, child in node.entries.items():
        if key == "readonly":
            if child.kind != "scalar" or not isinstance(child.value, bool):
                raise _fail("must be true or false", child, f"{path}.readonly")
            out[key] = child.value
            continue
        if key == "args":
            if child.kind != "seq":
                raise _fail("must be a list of strings, e.g. [--verbose]", child, f"{path}.args")
            out[key] = [_text(item, f"{path}.args[{i}]") for i, item in enumerate(child.items)]
            continue
        entries = _str_map(child, f"{path}.{key}")
        for name, value in entries.items():
            if not name or (key == "env" and "=" in name) or (key == "dirs" and not value):
                raise _fail(f"{name!r}: {value!r} is not a valid entry", child, f"{path}.{key}.{name}")
        out[key] = entries
    return out


def _linkdef(props: _Node, path: str) -> LinkTrait:
    _map(props, path, allowed=("target", "values", "link_name"))
    target = _str(_req(props, "target", path), f"{path}.target")
    values_node = _opt(props, "values")
    values = {} if values_node is None else _str_map(values_node, f"{path}.values")
    link_node = _opt(props, "link_name")
    link_name = None if link_node is None else _link_name(link_node, f"{path}.link_name")
    return LinkTrait(target, values, link_name)


def _link_name(node: _Node, path: str) -> str:
    value = _text(node, path)
    if not _LINK_NAME.fullmatch(value):
        raise _fail(f"link name {value!r} may hold only letters, digits, '-' and '_'", node, path)
    return value


def _capability(node: _Node, name: str, path: str) -> ProviderComponent:
    props_path = f"{path}.properties"
    allowed = ("image", "contract", "link_name", "config")
    props = _map(_req(node, "properties", path), props_path, allowed=allowed)
    image_node = _req(props, "image", props_path)
    requested = _image(image_node, f"{props_path}.image", actor=False)
    contract_node = _opt(props, "contract")
    contract = None if contract_node is None else _str(contract_node, f"{props_path}.contract")
    if requested.startswith("builtin:"):
        image, serves = requested, BUILTIN_CONTRACTS[requested.removeprefix("builtin:")]
        if contract is not None and contract != serves:
            raise _fail(
                f"{image} serves the contract {serves!r}, not {contract!r}", contract_node, f"{props_path}.contract"
            )
        contract = serves
    elif contract is None:
        raise _fail(
            "missing required field 'contract' (the capability a registry provider serves)",
            props,
            f"{props_path}.contract",
        )
    else:
        image = substitute(contract) or requested
    unsupported = None
    if not image.startswith("builtin:"):
        bundled = ", ".join(sorted(BUILTIN_CONTRACTS.values()))
        unsupported = (
            f"contract {contract} ({requested}) has no bundled provider: lattice runs no provider archives, "
            f"only the bundled providers ({bundled})"
        )
    link_node = _opt(props, "link_name")
    link_name = DEFAULT_LINK_NAME if link_node is None else _link_name(link_node, f"{props_path}.link_name")
    config_node = _opt(props, "config")
    config: dict[str, Any] = {}
    if config_node is not None and config_node.kind == "scalar" and isinstance(config_node.value, str):
        config = {"config_json": config_node.value}  # opaque (wadm's string form): handed on as is
    elif config_node is not None:
        config = _plain(_map(config_node, f"{props_path}.config"))
    traits = _traits(node, path, _SCALERS)
    return ProviderComponent(
        name,
        image,
        contract,
        link_name,
        config,
        _scaler_from(traits),
        requested if requested != image else "",
        unsupported,
        _custom(traits),
    )


def _image(node: _Node, path: str, *, actor: bool) -> str:
    image = _str(node, path)
    builtins = ", ".join(f"builtin:{b}" for b in BUILTIN_CONTRACTS)
    if image.startswith(("sha256:", "file://")):
        if image.startswith("sha256:") and not _DIGEST.fullmatch(image):
            raise _fail("an artifact digest is 'sha256:' followed by 64 hex digits", node, path)
        if image == "file://":
            raise _fail("file:// needs a path (file://./echo.wasm, file:///abs/echo.wasm)", node, path)
        if not actor:
            raise _fail(f"{image!r}: a capability provider is builtin:<name> or a registry reference", node, path)
        return image.lower() if image.startswith("sha256:") else image
    if image.startswith("builtin:"):
        if image.removeprefix("builtin:") not in BUILTIN_CONTRACTS:
            raise _fail(f"unknown bundled provider {image!r} (expected one of: {builtins})", node, path)
        if actor:
            raise _fail(
                f"{image} is a capability provider; an actor needs sha256:, file:// or an OCI reference", node, path
            )
        return image
    if is_reference(image):
        return image
    if image.lower().startswith(("http://", "https://")):
        raise _fail(
            f"{image!r}: a URL is not an image; push the module to a registry (lattice push FILE REF) and name "
            "it as registry[:port]/repo:tag, or upload it (POST /v1/artifacts) and use its sha256:<digest>",
            node,
            path,
        )
    if image.lower().startswith("oci://") or "/" in image:
        try:
            parse_reference(image)
        except LatticeError as exc:
            raise _fail(str(exc), node, path) from None
    raise _fail(
        f"unrecognised image {image!r}: expected sha256:<64 hex>, file://<path>, an OCI reference "
        "(registry[:port]/repo:tag, oci://…, …@sha256:<hex>) or builtin:<provider>",
        node,
        path,
    )
