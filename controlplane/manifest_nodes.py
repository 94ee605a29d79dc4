"""Manifest text → nodes that remember their lines, and typed field accessors that name field and line.

PyYAML composes the document into nodes that know where they start; ``load`` turns them into ``Node``s
(typed scalars plus their source text and line), guarding against alias bombs, recursion, lone
surrogates and JSON-specific typing. The accessors (``req``, ``opt``, ``as_map``, ``as_int``, …) raise
``ManifestError`` with the dotted field path and 1-based line; ``lattice.controlplane.manifest`` walks the
document with them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from lattice.errors import ManifestError

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_NODES = 100_000  # after alias expansion: a billion-laughs document stops here
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(slots=True)
class Node:
    """One document value: ``kind`` map (``entries``), seq (``items``) or scalar (``value``, ``raw``)."""

    kind: str
    line: int | None
    value: Any = None
    raw: str = ""
    entries: dict[str, Node] = field(default_factory=dict)
    key_lines: dict[str, int | None] = field(default_factory=dict)
    items: list[Node] = field(default_factory=list)
    size: int = 1


# --- loading: text → Node -----------------------------------------------------------------------------


def looks_like_json(source: str, content_type: str | None) -> bool:
    if content_type is not None and "json" in content_type.lower():
        return True
    return content_type is None and source.lstrip().startswith("{")


def load(source: str, json_mode: bool) -> Node:
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
    node: yaml.Node, loader: yaml.SafeLoader, json_mode: bool, memo: dict[int, Node], active: set[int]
) -> Node:
    if id(node) in memo:
        return memo[id(node)]  # an alias: shared, but counted again by the parent's size
    if id(node) in active:
        raise ManifestError("recursive YAML alias", line=node.start_mark.line + 1)
    active.add(id(node))
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        out = Node("scalar", line, value=_scalar(node, loader, json_mode), raw=str(node.value))
    elif isinstance(node, yaml.SequenceNode):
        out = Node("seq", line)
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
    node: yaml.Node, loader: yaml.SafeLoader, json_mode: bool, memo: dict[int, Node], active: set[int]
) -> Node:
    merged = any(key.tag == _MERGE_TAG for key, _ in node.value)
    if merged:
        loader.flatten_mapping(node)  # type: ignore[arg-type]  # YAML `<<:` merge keys; later keys win
    out = Node("map", node.start_mark.line + 1)
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


def plain(node: Node) -> Any:
    """The node as plain JSON-like Python data (scalars other than str/int/float/bool/None as source text)."""
    if node.kind == "map":
        return {key: plain(child) for key, child in node.entries.items()}
    if node.kind == "seq":
        return [plain(child) for child in node.items]
    if node.value is None or isinstance(node.value, str | int | float | bool):
        return node.value
    return node.raw


# --- field helpers ---------------------------------------------------------------------------------------


def fail(message: str, node: Node | None, path: str, line: int | None = None) -> ManifestError:
    if line is None and node is not None:
        line = node.line
    return ManifestError(message, field=path or None, line=line)


def as_map(node: Node, path: str, *, allowed: tuple[str, ...] | None = None) -> Node:
    if node.kind != "map":
        raise fail("must be a mapping", node, path)
    if allowed is not None:
        for key in node.entries:
            if key not in allowed:
                raise fail(
                    f"unknown field {key!r} (expected one of: {', '.join(allowed)})",
                    node,
                    join(path, key),
                    node.key_lines[key],
                )
    return node


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def req(parent: Node, key: str, path: str) -> Node:
    child = parent.entries.get(key)
    if child is None:
        raise fail(f"missing required field {key!r}", parent, join(path, key))
    return child


def opt(parent: Node, key: str) -> Node | None:
    """An optional field; an explicit null counts as absent."""
    child = parent.entries.get(key)
    if child is not None and child.kind == "scalar" and child.value is None:
        return None
    return child


def as_str(node: Node, path: str) -> str:
    if node.kind != "scalar" or not isinstance(node.value, str) or not node.value:
        raise fail("must be a non-empty string", node, path)
    return node.value


def text(node: Node, path: str) -> str:
    """A scalar as the text it was written as (``port: 8080`` → ``"8080"``)."""
    if node.kind != "scalar" or node.value is None:
        raise fail("must be a string", node, path)
    return node.value if isinstance(node.value, str) else node.raw


def as_int(node: Node, path: str, minimum: int, maximum: int | None = None) -> int:
    if node.kind != "scalar" or isinstance(node.value, bool) or not isinstance(node.value, int):
        raise fail("must be an integer", node, path)
    if node.value < minimum:
        raise fail(f"must be an integer >= {minimum}, not {node.value}", node, path)
    if maximum is not None and node.value > maximum:
        raise fail(f"must be at most {maximum}, not {node.value}", node, path)
    return node.value


def str_map(node: Node, path: str) -> dict[str, str]:
    as_map(node, path)
    return {key: text(child, join(path, key)) for key, child in node.entries.items()}
