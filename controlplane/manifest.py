"""Parse wadm 0.x OAM manifests (YAML or JSON) into an ``Application``; every error names field and line.

The document is composed with PyYAML into nodes that remember where they start, turned into ``_Node``s
(typed scalars plus their source text and line), and then walked once. Nothing here reads files or talks
to anyone: ``file://`` images are only checked for shape; ``resolve_file_image`` turns one into a path for
the caller that does the reading. The only exception that leaves ``parse_manifest`` is ``ManifestError``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lattice.controlplane.model import (
    BUILTIN_CONTRACTS,
    DEFAULT_LINK_NAME,
    DEFAULT_SCALER,
    ActorComponent,
    Application,
    Component,
    LinkTrait,
    ProviderComponent,
    Scaler,
    ScalerKind,
    Spread,
)
from lattice.controlplane.wadm import substitute
from lattice.errors import LatticeError, ManifestError
from lattice.oci import is_reference, parse_reference

API_VERSION = "core.oam.dev/v1beta1"
KIND = "Application"

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_APP_NAME = re.compile(r"[-\w]{1,100}", re.ASCII)  # wadm's ^[-\w]+$ (ASCII: it becomes a NATS KV key)
_LINK_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CONTRACT = re.compile(r"[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)+")
_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_NODES = 100_000  # after alias expansion: a billion-laughs document stops here
_SCALERS: tuple[ScalerKind, ...] = ("spreadscaler", "daemonscaler")
_KNOWN_TRAITS = (*_SCALERS, "linkdef")
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(slots=True)
class _Node:
    """One document value: ``kind`` map (``entries``), seq (``items``) or scalar (``value``, ``raw``)."""

    kind: str
    line: int | None
    value: Any = None
    raw: str = ""
    entries: dict[str, _Node] = field(default_factory=dict)
    key_lines: dict[str, int | None] = field(default_factory=dict)
    items: list[_Node] = field(default_factory=list)
    size: int = 1


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


# --- loading: text → _Node -----------------------------------------------------------------------------


def _looks_like_json(source: str, content_type: str | None) -> bool:
    if content_type is not None and "json" in content_type.lower():
        return True
    return content_type is None and source.lstrip().startswith("{")


def _load(source: str, json_mode: bool) -> _Node:
    if json_mode:
        try:
            json.loads(source)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"invalid JSON: {exc.msg}", line=exc.lineno) from None
        except ValueError as exc:
            raise ManifestError(f"invalid JSON: {exc}") from None
        # Outside strings a tab is only whitespace in valid JSON, and PyYAML refuses tabs there.
        source = source.replace("\t", " ")
    try:
        loader = yaml.SafeLoader(source)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found while reading ahead
        raise _reader_error(exc, source) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise ManifestError("the manifest is empty", line=1)
        return _convert(node, loader, json_mode, {}, set())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "JSON" if json_mode else "YAML"
        raise ManifestError(
            f"invalid {what}: {exc.problem or exc.context}", line=mark.line + 1 if mark else None
        ) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, source) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()


def _reader_error(exc: yaml.reader.ReaderError, source: str) -> ManifestError:
    line = source[: exc.position].count("\n") + 1
    return ManifestError(f"invalid YAML: character U+{exc.character:04X} is not allowed", line=line)


def _convert(
    node: yaml.Node, loader: yaml.SafeLoader, json_mode: bool, memo: dict[int, _Node], active: set[int]
) -> _Node:
    if id(node) in memo:
        return memo[id(node)]  # an alias: shared, but counted again by the parent's size
    if id(node) in active:
        raise ManifestError("recursive YAML alias", line=node.start_mark.line + 1)
    active.add(id(node))
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        out = _Node("scalar", line, value=_scalar(node, loader, json_mode), raw=str(node.value))
    elif isinstance(node, yaml.SequenceNode):
        out = _Node("seq", line)
        for child in node.value:
            out.items.append(_convert(child, loader, json_mode, memo, active))
            out.size += out.items[-1].size
    else:
        out = _convert_mapping(node, loader, json_mode, memo, active)
    if out.size > _MAX_NODES:
        raise ManifestError(f"the manifest is too large (over {_MAX_NODES} values)", line=line)
    active.discard(id(node))
    memo[id(node)] = out
    return out


def _convert_mapping(
    node: yaml.Node, loader: yaml.SafeLoader, json_mode: bool, memo: dict[int, _Node], active: set[int]
) -> _Node:
    merged = any(key.tag == _MERGE_TAG for key, _ in node.value)
    if merged:
        loader.flatten_mapping(node)  # type: ignore[arg-type]  # YAML `<<:` merge keys; later keys win
    out = _Node("map", node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise ManifestError("mapping keys must be plain strings", line=key_line)
        key = str(key_node.value)
        if key in out.entries and not merged:
            raise ManifestError(f"duplicate key {key!r}", line=key_line)
        out.entries[key] = _convert(value_node, loader, json_mode, memo, active)
        out.key_lines[key] = key_line
        out.size += out.entries[key].size
    return out


def _scalar(node: yaml.ScalarNode, loader: yaml.SafeLoader, json_mode: bool) -> Any:
    if json_mode and node.style is None:
        # YAML 1.1 reads some JSON numbers (1e3) as strings: type plain JSON scalars the JSON way.
        return json.loads(node.value)
    value = node.value if json_mode else loader.construct_object(node)
    if isinstance(value, str) and _SURROGATE.search(value):
        # "\ud83d\ude00" escapes (json.dumps writes them) arrive as two halves: join them.
        try:
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise ManifestError("invalid \\u escape (a lone surrogate)", line=node.start_mark.line + 1) from None
    return value


def _plain(node: _Node) -> Any:
    """The node as plain JSON-like Python data (scalars other than str/int/float/bool/None as source text)."""
    if node.kind == "map":
        return {key: _plain(child) for key, child in node.entries.items()}
    if node.kind == "seq":
        return [_plain(child) for child in node.items]
    if node.value is None or isinstance(node.value, str | int | float | bool):
        return node.value
    return node.raw


# --- field helpers ---------------------------------------------------------------------------------------


def _fail(message: str, node: _Node | None, path: str, line: int | None = None) -> ManifestError:
    if line is None and node is not None:
        line = node.line
    return ManifestError(message, field=path or None, line=line)


def _map(node: _Node, path: str, *, allowed: tuple[str, ...] | None = None) -> _Node:
    if node.kind != "map":
        raise _fail("must be a mapping", node, path)
    if allowed is not None:
        for key in node.entries:
            if key not in allowed:
                raise _fail(
                    f"unknown field {key!r} (expected one of: {', '.join(allowed)})",
                    node,
                    _join(path, key),
                    node.key_lines[key],
                )
    return node


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _req(parent: _Node, key: str, path: str) -> _Node:
    child = parent.entries.get(key)
    if child is None:
        raise _fail(f"missing required field {key!r}", parent, _join(path, key))
    return child


def _opt(parent: _Node, key: str) -> _Node | None:
    """An optional field; an explicit null counts as absent."""
    child = parent.entries.get(key)
    if child is not None and child.kind == "scalar" and child.value is None:
        return None
    return child


def _str(node: _Node, path: str) -> str:
    if node.kind != "scalar" or not isinstance(node.value, str) or not node.value:
        raise _fail("must be a non-empty string", node, path)
    return node.value


def _text(node: _Node, path: str) -> str:
    """A scalar as the text it was written as (``port: 8080`` → ``"8080"``)."""
    if node.kind != "scalar" or node.value is None:
        raise _fail("must be a string", node, path)
    return node.value if isinstance(node.value, str) else node.raw


def _int(node: _Node, path: str, minimum: int) -> int:
    if node.kind != "scalar" or isinstance(node.value, bool) or not isinstance(node.value, int):
        raise _fail("must be an integer", node, path)
    if node.value < minimum:
        raise _fail(f"must be an integer >= {minimum}, not {node.value}", node, path)
    return node.value


def _str_map(node: _Node, path: str) -> dict[str, str]:
    _map(node, path)
    return {key: _text(child, _join(path, key)) for key, child in node.entries.items()}


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
    if not _APP_NAME.fullmatch(name):
        raise _fail(
            f"application name {name!r} may hold only letters, digits, '-' and '_' (wadm's ^[-\\w]+$, up to 100)",
            name_node,
            "metadata.name",
        )
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
    return Application(name, version, description, _components(spec))


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
    _check_images(components, listing.items)
    _check_links(components, pending)
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
    props = _map(trait.props, path, allowed=("replicas", "instances", "spread"))
    given = [key for key in ("instances", "replicas") if _opt(props, key) is not None]
    if len(given) == 2:
        raise _fail(
            "give 'replicas' or 'instances' (wadm 0.10's name for it), not both",
            props.entries["replicas"],
            f"{path}.replicas",
            props.key_lines["replicas"],
        )
    if not given and trait.kind == "spreadscaler":
        raise _fail("missing required field 'replicas' (or wadm 0.10's 'instances')", props, f"{path}.replicas")
    key = given[0] if given else "replicas"
    replicas = 1 if not given else _int(props.entries[key], f"{path}.{key}", 0)
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
    return Scaler(kind, replicas, tuple(spreads))


def _spread(node: _Node, path: str) -> Spread:
    _map(node, path, allowed=("name", "requirements", "weight"))
    name = _text(_req(node, "name", path), f"{path}.name")
    requirements_node = _opt(node, "requirements")
    requirements = {} if requirements_node is None else _str_map(requirements_node, f"{path}.requirements")
    weight_node = _opt(node, "weight")
    weight = 100 if weight_node is None else _int(weight_node, f"{path}.weight", 1)
    return Spread(name, requirements, weight)


def _actor(node: _Node, name: str, path: str) -> tuple[ActorComponent, list[tuple[LinkTrait, _Node, str]]]:
    props_path = f"{path}.properties"
    props = _map(_req(node, "properties", path), props_path, allowed=("image", "wasi", "limits"))
    image = _image(_req(props, "image", props_path), f"{props_path}.image", actor=True)
    properties: dict[str, Any] = {}
    if (wasi := _opt(props, "wasi")) is not None:
        properties["wasi"] = _wasi(wasi, f"{props_path}.wasi")
    if (limits := _opt(props, "limits")) is not None:
        lpath = f"{props_path}.limits"
        _map(limits, lpath, allowed=("deadline_ms", "max_memory_mb", "max_instances"))
        properties["limits"] = {k: _int(v, f"{lpath}.{k}", 1) for k, v in limits.entries.items()}
    traits = _traits(node, path, _KNOWN_TRAITS)
    links = [
        (_linkdef(t.props, f"{t.path}.properties"), t.props, f"{t.path}.properties")
        for t in traits
        if t.kind == "linkdef"
    ]
    scaler = _scaler_from(traits)
    actor = ActorComponent(name, image, scaler, tuple(link for link, _, _ in links), properties, _custom(traits))
    return actor, links


def _wasi(node: _Node, path: str) -> dict[str, Any]:
    _map(node, path, allowed=("dirs", "readonly", "env"))
    out: dict[str, Any] = {}
    for key, child in node.entries.items():
        if key == "readonly":
            if child.kind != "scalar" or not isinstance(child.value, bool):
                raise _fail("must be true or false", child, f"{path}.readonly")
            out[key] = child.value
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


def _repository(image: str) -> str:
    """wadm's identity of an image for its duplicate checks: the reference without tag or digest."""
    if image.startswith("builtin:") or not is_reference(image):
        return image
    ref = parse_reference(image)
    return f"{ref.registry}/{ref.repository}"


def _check_images(components: list[Component], nodes: list[_Node]) -> None:
    """wadm's duplicate image rules: an actor image used twice; one provider image twice on one link name."""
    actors: dict[str, str] = {}
    providers: dict[tuple[str, str], str] = {}
    for index, (comp, node) in enumerate(zip(components, nodes, strict=True)):
        path = f"spec.components[{index}].properties.image"
        image_node = node.entries["properties"].entries["image"]
        if isinstance(comp, ActorComponent):
            if comp.image in actors:
                raise _fail(f"duplicate image reference {comp.image!r} (also {actors[comp.image]!r})", image_node, path)
            actors[comp.image] = comp.name
            continue
        key = (_repository(comp.requested_image or comp.image), comp.link_name)
        if key in providers:
            raise _fail(
                f"duplicate image reference {comp.requested_image or comp.image!r} on link name {comp.link_name!r} "
                f"(also {providers[key]!r}): give one of them another link_name",
                image_node,
                path,
            )
        providers[key] = comp.name


def _check_links(components: list[Component], pending: list[tuple[str, LinkTrait, _Node, str]]) -> None:
    capabilities = {c.name: c for c in components if isinstance(c, ProviderComponent)}
    seen: dict[tuple[str, str, str], str] = {}
    targets: set[tuple[str, str]] = set()
    for actor, link, props, path in pending:
        target = capabilities.get(link.target)
        if target is None:
            names = ", ".join(sorted(capabilities)) or "none"
            raise _fail(
                f"missing capability component: link target {link.target!r} is not a capability component of "
                f"this manifest (capability components: {names})",
                props.entries["target"],
                f"{path}.target",
            )
        if (actor, link.target) in targets:
            raise _fail(
                f"duplicate linkdef target {link.target!r} for {actor!r}", props.entries["target"], f"{path}.target"
            )
        targets.add((actor, link.target))
        if link.link_name is not None and link.link_name != target.link_name:
            raise _fail(
                f"link name {link.link_name!r} does not match {target.name!r}, which runs as {target.link_name!r}",
                props.entries["link_name"],
                f"{path}.link_name",
            )
        key = (actor, target.contract, target.link_name)
        if key in seen:
            raise _fail(
                f"{actor!r} already links {target.contract} ({target.link_name}) through {seen[key]!r}",
                props,
                path,
            )
        seen[key] = target.name
