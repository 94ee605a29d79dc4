"""One settings object per process, built from flags and environment variables (SPEC §6).

No other module reads ``os.environ``: the CLI builds a ``Settings`` and passes it down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lattice.errors import ConfigError

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_API_URL = "http://127.0.0.1:8081"
_LATTICE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def default_state_dir(env: Mapping[str, str]) -> Path:
    """``$LATTICE_STATE_DIR``, else ``$XDG_STATE_HOME/lattice``, else ``~/.local/state/lattice``."""
    if env.get("LATTICE_STATE_DIR"):
        return Path(env["LATTICE_STATE_DIR"])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lattice"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"expected a boolean (true/false), got {value!r}")


def _seconds(raw: str | None, name: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _replicas(raw: str | None) -> int:
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= 5:
        raise ConfigError(f"LATTICE_JS_REPLICAS must be 1 to 5 (JetStream's limit), got {raw!r}")
    return int(raw)


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{key} must be positive, got {raw!r}")
    return value


def _address(env: Mapping[str, str], key: str) -> str | None:
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    _, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{key} must be HOST:PORT (e.g. 127.0.0.1:9100), got {raw!r}")
    return raw


def _otlp_endpoint(env: Mapping[str, str]) -> str | None:
    traces = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    if traces:
        return traces
    base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a lattice process is configured with.

    Times are seconds. ``labels`` are host labels (``LATTICE_LABEL_<key>=<value>``). ``metrics`` is
    ``HOST:PORT`` to serve Prometheus metrics on (``LATTICE_METRICS``; port 0 picks a free one);
    ``otlp_endpoint`` the OTLP/HTTP traces URL (from ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``): spans are exported only when it is set.
    ``files_root``: the only directory the control plane reads ``file://`` actor images from (none: it
    reads none; uploads and ``lattice apply`` are the way in).
    ``drain_timeout_s``: how long a stopping host waits for its instances to be re-placed elsewhere
    (default ``heartbeat_s * heartbeat_misses * 3``; 0 leaves at once).
    ``js_replicas``: copies of each JetStream bucket lattice creates (3 on a three-node NATS cluster).
    ``nats_give_up_s``: how long a participant keeps reconnecting to an unreachable NATS before it
    gives up, stops serving and exits non-zero for its supervisor to restart it (0: never gives up).
    ``http_reuse_port``: the HTTP server provider binds with SO_REUSEPORT unless a link says
    ``reuse_port`` itself (``LATTICE_HTTP_REUSE_PORT``; set for the workers of ``lattice host --workers``
    and the hosts of ``lattice up``, so processes on one machine share a port).
    ``provider_processes``: a host runs bundled providers as supervised child processes instead of in
    its own process (isolation over speed: calls to them then take the NATS hop).
    ``allow_any_issuer``: a host runs signed actors of any issuer when no ``trusted_issuers`` are set
    (an explicit opt-out; by default such a host refuses every signed actor, naming the fix).
    ``allow_dirs``: the host directories a host lets actors' WASI ``dirs`` grants reach (none by
    default: whatever a manifest asks, a grant outside them is refused). A host also reads ``file://``
    images sent over the lattice only under its ``files_root``.
    ``oci_insecure``: registries (``host:port``) the control plane reaches over plain HTTP besides those on
    loopback (``LATTICE_OCI_INSECURE``, comma-separated); ``oci_auth_file``: the Docker config file naming
    registry logins (``LATTICE_OCI_AUTH_FILE``, default ``~/.docker/config.json``).
    ``scale_down_cooldown_s``: how long an elastic actor's demand must stay below its replicas before the
    autoscaler removes any (``LATTICE_SCALE_DOWN_COOLDOWN_S``, read by the control plane).
    """

    nats_url: str = DEFAULT_NATS_URL
    lattice: str = "default"
    nats_user: str | None = None
    nats_password: str | None = None
    nats_nkey_seed: str | None = None
    nats_creds: str | None = None
    api_url: str = DEFAULT_API_URL
    api_token: str | None = None
    allow_unsigned: bool = False
    trusted_issuers: frozenset[str] = frozenset()
    cluster_seed: str | None = None
    cluster_issuers: frozenset[str] = frozenset()
    labels: dict[str, str] = field(default_factory=dict)
    rpc_timeout_s: float = 2.0
    hold_s: float = 10.0
    scale_down_cooldown_s: float = 30.0
    heartbeat_s: float = 1.0
    heartbeat_misses: int = 3
    state_dir: Path = field(default_factory=lambda: default_state_dir(os.environ))
    json_logs: bool | None = None
    log_level: str = "info"
    metrics: str | None = None
    otlp_endpoint: str | None = None
    provider_processes: bool = False
    http_reuse_port: bool = False
    js_replicas: int = 1
    drain_timeout_s: float | None = None
    files_root: Path | None = None
    allow_any_issuer: bool = False
    allow_dirs: tuple[Path, ...] = ()
    nats_give_up_s: float = 60.0
    oci_insecure: frozenset[str] = frozenset()
    oci_auth_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (default ``os.environ``), then ``overrides`` that are not ``None``.

        Raises ``ConfigError`` naming the variable on a malformed value.
        """
        env = os.environ if env is None else env
        labels = {k[len("LATTICE_LABEL_") :].lower(): v for k, v in env.items() if k.startswith("LATTICE_LABEL_")}
        issuers = frozenset(s for s in env.get("LATTICE_TRUSTED_ISSUERS", "").replace(" ", "").split(",") if s)
        cluster_issuers = frozenset(s for s in env.get("LATTICE_CLUSTER_ISSUERS", "").replace(" ", "").split(",") if s)
        try:
            misses = int(env.get("LATTICE_HEARTBEAT_MISSES", "3"))
        except ValueError as exc:
            raise ConfigError("LATTICE_HEARTBEAT_MISSES must be an integer") from exc
        base = cls(
            nats_url=env.get("LATTICE_NATS_URL") or DEFAULT_NATS_URL,
            lattice=env.get("LATTICE_NAME") or "default",
            nats_user=env.get("LATTICE_NATS_USER") or None,
            nats_password=env.get("LATTICE_NATS_PASSWORD") or None,
            nats_nkey_seed=env.get("LATTICE_NATS_NKEY_SEED") or None,
            nats_creds=env.get("LATTICE_NATS_CREDS") or None,
            api_url=env.get("LATTICE_API_URL") or DEFAULT_API_URL,
            api_token=env.get("LATTICE_API_TOKEN") or None,
            allow_unsigned=_bool(env.get("LATTICE_ALLOW_UNSIGNED")),
            trusted_issuers=issuers,
            cluster_seed=env.get("LATTICE_CLUSTER_SEED") or None,
            cluster_issuers=cluster_issuers,
            labels=labels,
            rpc_timeout_s=_float(env, "LATTICE_RPC_TIMEOUT", 2.0),
            hold_s=_float(env, "LATTICE_HOLD_S", 10.0),
            scale_down_cooldown_s=_float(env, "LATTICE_SCALE_DOWN_COOLDOWN_S", 30.0),
            heartbeat_s=_float(env, "LATTICE_HEARTBEAT", 1.0),
            heartbeat_misses=misses,
            state_dir=default_state_dir(env),
            json_logs=_bool(env["LATTICE_JSON_LOGS"]) if env.get("LATTICE_JSON_LOGS") else None,
            log_level=env.get("LATTICE_LOG_LEVEL") or "info",
            provider_processes=_bool(env.get("LATTICE_PROVIDER_PROCESSES")),
            http_reuse_port=_bool(env.get("LATTICE_HTTP_REUSE_PORT")),
            js_replicas=_replicas(env.get("LATTICE_JS_REPLICAS")),
            drain_timeout_s=_seconds(env.get("LATTICE_DRAIN_TIMEOUT"), "LATTICE_DRAIN_TIMEOUT"),
            nats_give_up_s=_or(_seconds(env.get("LATTICE_NATS_GIVE_UP"), "LATTICE_NATS_GIVE_UP"), 60.0),
            files_root=Path(env["LATTICE_FILES_ROOT"]) if env.get("LATTICE_FILES_ROOT") else None,
            allow_any_issuer=_bool(env.get("LATTICE_ALLOW_ANY_ISSUER")),
            allow_dirs=tuple(Path(p) for p in env.get("LATTICE_ALLOW_DIRS", "").split(os.pathsep) if p),
            oci_insecure=frozenset(s for s in env.get("LATTICE_OCI_INSECURE", "").replace(" ", "").split(",") if s),
            oci_auth_file=Path(env["LATTICE_OCI_AUTH_FILE"]) if env.get("LATTICE_OCI_AUTH_FILE") else None,
            metrics=_address(env, "LATTICE_METRICS"),
            otlp_endpoint=_otlp_endpoint(env),
        )
        return base.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with every override that is not ``None`` applied (flags win over env)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "labels" in given:
            given["labels"] = {**self.labels, **given["labels"]}
        result = replace(self, **given)
        if not _LATTICE_NAME.fullmatch(result.lattice):
            raise ConfigError(
                f"lattice name {result.lattice[:80]!r} may hold only ASCII letters, digits, '-' and '_' "
                "(1 to 64 of them)"
            )
        return result
