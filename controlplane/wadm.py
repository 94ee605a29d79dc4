"""wadm 0.x manifests as written: registry providers served by bundled ones, and what their values mean here.

wasmCloud 0.x capability providers are native binaries in provider archives, which a Python host cannot
run. A ``type: capability`` component whose ``contract`` lattice bundles is served by the bundled
provider instead; its link values are mapped where they mean the same (``LINK_VALUES``), the rest are
reported as ignored in the application's status. Any other contract leaves the application stored and
failed, naming the contract. Pure functions over values; the README has the same table.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import Any

from lattice.capability import BUILTIN_CONTRACTS
from lattice.controlplane.model import ActorComponent, Application, HostView, ProviderComponent, owner_of

#: contract → the bundled provider that serves it (``builtin:<name>``).
SUBSTITUTES: dict[str, str] = {contract: f"builtin:{name}" for name, contract in BUILTIN_CONTRACTS.items()}

#: contract → {wasmCloud 0.x link value (lower case) → lattice link value}; dotted names are inside
#: ``config_json`` / ``config_b64`` (the httpserver's JSON settings).
LINK_VALUES: dict[str, dict[str, str]] = {
    "wasmcloud:httpserver": {
        "address": "address",
        "port": "port",
        "timeout_ms": "timeout_ms",
        "max_content_len": "max_body_bytes",
        "tls_cert_file": "tls_cert",
        "tls_priv_key_file": "tls_key",
        "tls.cert_file": "tls_cert",
        "tls.priv_key_file": "tls_key",
        "cors_allowed_origins": "cors_origins",
        "cors.allowed_origins": "cors_origins",
    },
    "wasmcloud:keyvalue": {"bucket": "bucket"},
}
#: link values the bundled providers understand themselves: they pass unchanged.
NATIVE: dict[str, frozenset[str]] = {
    "wasmcloud:httpserver": frozenset(
        ("port", "address", "max_body_bytes", "timeout_ms", "cors_origins", "tls_cert", "tls_key", "reuse_port")
    ),
    "wasmcloud:keyvalue": frozenset(("bucket",)),
    # the messaging provider takes wasmCloud 0.x's own names (SUBSCRIPTION, URI, ...), in any case
    "wasmcloud:messaging": frozenset(
        (
            "subscription",
            "uri",
            "user",
            "password",
            "token",
            "nkey_seed",
            "creds",
            "publish",
            "stream",
            "max_deliver",
            "dead_letter",
            "max_in_flight",
        )
    ),
    "wasmcloud:blobstore": frozenset(("bucket_prefix",)),
    "wasmcloud:builtin:cron": frozenset(("schedule",)),
}
_SIZE = re.compile(r"(\d+)\s*([kmg]?)i?b?", re.IGNORECASE)
_ENCODED = ("config_json", "config_b64")


def substitute(contract: str) -> str | None:
    """The bundled provider that serves ``contract``, or None."""
    return SUBSTITUTES.get(contract)


def map_link_values(contract: str, values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """wasmCloud 0.x link values for a substituted provider → (lattice's values, names ignored).

    Names lattice's provider already understands pass unchanged; ``config_json``/``config_b64`` are
    decoded and flattened; a value that cannot be decoded is reported as ignored.
    """
    table = {**{n: n for n in NATIVE.get(contract, ())}, **LINK_VALUES.get(contract, {})}
    mapped: dict[str, str] = {}
    ignored: list[str] = []
    for key, value in values.items():
        if key.lower() in _ENCODED:
            settings = _decode(key.lower(), value)
            if settings is None:
                ignored.append(key)
                continue
            for name, setting in _flatten(settings):
                _put(table, name, setting, mapped, ignored)
        else:
            _put(table, key.lower(), value, mapped, ignored, original=key)
    return mapped, ignored


def _put(
    table: dict[str, str],
    name: str,
    value: Any,
    mapped: dict[str, str],
    ignored: list[str],
    original: str | None = None,
) -> None:
    ours = table.get(name)
    if ours is None:
        ignored.append(original or name)
        return
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    mapped[ours] = _bytes(text) if ours == "max_body_bytes" else text


def _decode(kind: str, value: str) -> dict[str, Any] | None:
    try:
        raw = base64.b64decode(value, validate=True) if kind == "config_b64" else value.encode()
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}".lower()
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{name}."))
        else:
            out.append((name, value))
    return out


def _bytes(text: str) -> str:
    """``10M`` / ``512k`` / ``1G`` (wasmCloud's max_content_len) → a byte count; other text as is."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        return text
    return str(int(match.group(1)) * 1024 ** " kmg".index(match.group(2).lower() or " "))


def annotate(status: dict[str, Any], app: Application, hosts: Sequence[HostView]) -> None:
    """Add to ``status`` what wadm users need to see: substitutions, custom traits, components not running."""
    entries = {c["name"]: c for c in status["components"]}
    for comp in app.components:
        entry = entries.get(comp.name)
        if entry is None:  # a version that cannot run: its components are listed, none placed
            running = sum(a.count for h in hosts for a in h.actors if owner_of(a.annotations) == (app.name, comp.name))
            kind = "actor" if isinstance(comp, ActorComponent) else "capability"
            entry = {"name": comp.name, "type": kind, "desired": 0, "running": running, "placements": []}
            status["components"].append(entry)
        if comp.custom_traits:
            entry["custom_traits"] = {"types": list(comp.custom_traits), "note": "kept, not acted on by lattice"}
        if isinstance(comp, ProviderComponent) and comp.substituted:
            values = [
                link.values
                for actor in app.components
                if isinstance(actor, ActorComponent)
                for link in actor.links
                if link.target == comp.name
            ]
            ignored = sorted({name for v in values for name in map_link_values(comp.contract, v)[1]})
            entry["substituted"] = {
                "image": comp.requested_image,
                "served_by": comp.image,
                "contract": comp.contract,
                "link_values_ignored": ignored,
            }
        if isinstance(comp, ProviderComponent) and comp.unsupported:
            entry["unsupported"] = comp.unsupported
