"""The result table (metric, lattice, peer, ratio, goal, met?) and the JSON files.

``bench/results/latest.json`` and a dated copy ``bench/results/YYYY-MM-DDTHHMMSS.json`` hold one flat
map of numbers; ratios and whether each goal was met are in it too (``<row>_ratio``,
``<row>_goal_met`` as 1/0). A missed goal is reported, never an error.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table. ``peer`` is the key of the number it is compared with, if any.

    ``goal``: ``("ratio<=", x)`` lattice/peer at most x, ``("ratio>=", x)`` at least x, ``("<=", x)``
    the lattice number itself at most x; ``None`` for rows that only inform.
    """

    name: str
    lattice: str
    peer: str | None = None
    goal: tuple[str, float] | None = None


# The HTTP peers (key prefix → what ran): the "best peer" rows compare lattice with the strongest of
# them in the same run (most req/s; least p99), and the table names which one that was.
HTTP_PEERS = {
    "uvicorn": "plain uvicorn",
    "wasmtime_serve": "wasmtime serve p2 pooling",
    "wasmtime_serve_p3": "wasmtime serve p3 pooling",
    "wash_host_pool": "wash host pool 2×16",
    "wash": "wash dev defaults",
}
BEST = {
    "best_peer_rps": ("_rps", max),
    "best_peer_p99_ms": ("_p99_ms", min),
    "best_peer_cpu_us_per_req": ("_cpu_us_per_req", min),
}


def best_peer(results: dict[str, float], key: str) -> tuple[str, float] | None:
    """The HTTP peer with the best ``key`` (one of ``BEST``'s): (label, value)."""
    suffix, pick = BEST[key]
    found = [(results[f"{k}{suffix}"], label) for k, label in HTTP_PEERS.items() if f"{k}{suffix}" in results]
    if not found:
        return None
    value, label = pick(found)
    return label, value


ROWS = (
    Row(
        "instance for a call when none is idle µs p50, warm spare (vs raw Store+instantiate)",
        "instantiate_us_p50",
        "raw_instantiate_us_p50",
        ("ratio<=", 1.5),
    ),
    Row(
        "new instance µs p50, start function included (vs raw, with start)",
        "instantiate_cold_us_p50",
        "raw_instantiate_start_us_p50",
    ),
    Row(
        "new instance µs p50, start function included (vs raw, without)",
        "instantiate_cold_us_p50",
        "raw_instantiate_us_p50",
    ),
    Row("waPC echo 100 B µs p50 (vs raw export call)", "wapc_echo_us_p50", "raw_call_us_p50", ("ratio<=", 2.0)),
    Row(
        "actor call over NATS µs p50 (vs raw req/reply)", "nats_actor_call_us_p50", "raw_nats_us_p50", ("ratio<=", 1.5)
    ),
    Row("response seal+check µs p50 (share of the NATS call)", "response_seal_us_p50", "nats_actor_call_us_p50"),
    Row("response seal+check µs p50, m1 code (vs Ed25519 v1)", "response_seal_us_p50", "response_seal_ed25519_us_p50"),
    Row("claims check µs p50, with claims_mac (vs Ed25519)", "claims_check_us_p50", "claims_check_ed25519_us_p50"),
    Row("HTTP local req/s (vs plain uvicorn)", "http_local_rps", "uvicorn_rps", ("ratio>=", 0.5)),
    Row("HTTP local p50 ms (vs plain uvicorn)", "http_local_p50_ms", "uvicorn_p50_ms"),
    Row("HTTP local p99 ms (vs plain uvicorn)", "http_local_p99_ms", "uvicorn_p99_ms"),
    Row("HTTP local, 2 hosts on one port req/s (vs uvicorn)", "http_local2_rps", "uvicorn_rps", ("ratio>=", 0.5)),
    Row("HTTP local, 2 hosts p99 ms (vs plain uvicorn)", "http_local2_p99_ms", "uvicorn_p99_ms"),
    Row("HTTP remote provider req/s (vs plain uvicorn)", "http_remote_rps", "uvicorn_rps"),
    Row("HTTP remote p50 ms (vs plain uvicorn)", "http_remote_p50_ms", "uvicorn_p50_ms"),
    Row("HTTP remote p99 ms (vs plain uvicorn)", "http_remote_p99_ms", "uvicorn_p99_ms"),
    Row("HTTP remote, 3 hosts + 1 provider req/s (vs 1 host)", "http_remote3_rps", "http_remote_rps"),
    Row("HTTP remote, 3 hosts + 1 provider p99 ms (vs 1 host)", "http_remote3_p99_ms", "http_remote_p99_ms"),
    Row("actors deployed at once: s to deployed (count in deploy_many_actors)", "deploy_many_s", None),
    Row("actors deployed at once: host RSS KiB per idle actor", "deploy_many_rss_kib_per_actor", None),
    Row("HTTP local req/s (vs best peer)", "http_local_rps", "best_peer_rps"),
    Row("HTTP local p99 ms (vs best peer)", "http_local_p99_ms", "best_peer_p99_ms", ("ratio<=", 2.0)),
    Row("HTTP local, 2 hosts req/s (vs best peer)", "http_local2_rps", "best_peer_rps"),
    Row("HTTP local CPU µs/request (vs plain uvicorn)", "http_local_cpu_us_per_req", "uvicorn_cpu_us_per_req"),
    Row("HTTP local CPU µs/request (vs best peer)", "http_local_cpu_us_per_req", "best_peer_cpu_us_per_req"),
    Row(
        "HTTP local, 2 hosts req/s (vs wash host, warm pool)", "http_local2_rps", "wash_host_pool_rps", ("ratio>=", 1.0)
    ),
    Row("HTTP local, 2 hosts p99 ms (vs best peer)", "http_local2_p99_ms", "best_peer_p99_ms", ("ratio<=", 2.0)),
    Row("HTTP local, 2 hosts CPU µs/request (vs uvicorn)", "http_local2_cpu_us_per_req", "uvicorn_cpu_us_per_req"),
    Row("HTTP local req/s (vs wasmtime serve p3, pooling)", "http_local_rps", "wasmtime_serve_p3_rps"),
    Row("HTTP local req/s (vs wash host, warm pool)", "http_local_rps", "wash_host_pool_rps"),
    Row("HTTP local req/s (vs wasmtime serve p2, pooling)", "http_local_rps", "wasmtime_serve_rps"),
    Row("HTTP local req/s (vs wash dev, dev defaults)", "http_local_rps", "wash_rps"),
    Row("wasi:http hello req/s (vs wasmtime serve)", "wasi_http_hello_rps", "wasmtime_serve_rps", ("ratio>=", 0.5)),
    Row("wasi:http hello req/s (vs waPC hello)", "wasi_http_hello_rps", "http_local_rps", ("ratio>=", 0.5)),
    Row("wasi:http hello p99 ms (vs wasmtime serve)", "wasi_http_hello_p99_ms", "wasmtime_serve_p99_ms"),
    Row(
        "wasi:http componentize-py req/s (vs wasmtime serve)",
        "wasi_http_py_rps",
        "wasmtime_serve_py_rps",
        ("ratio>=", 10.0),
    ),
    Row("cold start ms (PUT app → first 200)", "cold_start_ms", None, ("<=", 500.0)),
    Row("idle instance KiB (RSS / instance)", "idle_instance_kib", None, ("<=", 200.0)),
    Row("failover s (kill -9 → HTTP 200)", "failover_s", None, ("<=", 10.0)),
    Row("component echo 100 B µs p50 (vs waPC echo)", "component_echo_us_p50", "wapc_echo_us_p50", ("ratio<=", 2.0)),
    Row("component echo 1 MiB text ms (vs waPC echo)", "component_echo_1mib_ms", "wapc_echo_1mib_ms", ("ratio<=", 2.0)),
    Row("component echo 1 MiB binary ms (vs waPC echo)", "component_echo_1mib_binary_ms", "wapc_echo_1mib_ms"),
    Row(
        "Python kvcounter HTTP req/s (vs wasmtime serve, componentize-py hello)",
        "py_actor_http_rps",
        "wasmtime_serve_py_rps",
        ("ratio>=", 10.0),
    ),
    Row("scaled to zero → first response ms (vs warm)", "zero_to_first_response_ms", "warm_response_ms"),
    Row(
        "scaled to zero → first response ms, across hosts (vs warm)",
        "zero_to_first_response_remote_ms",
        "warm_response_remote_ms",
    ),
    Row(
        "Python actor scaled to zero → first response ms (vs warm)",
        "py_zero_to_first_response_ms",
        "py_warm_response_ms",
    ),
    Row("scale-up s, load step → 4 replicas (vs fixed, PUT 1 → 4)", "scale_up_s", "fixed_scale_up_s"),
    Row("rollout s, 3 hosts, gated 1 s (vs ungated)", "rollout_s", "fixed_replace_s"),
    Row("messages/s through an actor (vs raw nats-py)", "messaging_msgs_per_s", "raw_nats_msgs_per_s"),
    Row("blob put+get MB/s (vs raw object store)", "blob_put_get_mb_per_s", "raw_object_store_mb_per_s"),
    Row("Python actor idle instance KiB (RSS / instance)", "py_instance_idle_kib", None, ("<=", 2048.0)),
    Row("Python actor cold start ms (upload → 200, compiling)", "py_cold_start_ms", None),
    Row("Python actor cold start ms (compiled code cached)", "py_cold_start_cached_ms", None),
)


def _slug(row: Row) -> str:
    peer = row.peer.removesuffix("_rps").removesuffix("_p50").removesuffix("_us") if row.peer else ""
    return f"{row.lattice}_vs_{peer}" if peer else row.lattice


def evaluate(results: dict[str, float]) -> list[tuple[Row, float | None, bool | None]]:
    """Each row with its ratio (lattice/peer) and whether its goal was met (``None``: no goal or no data)."""
    out: list[tuple[Row, float | None, bool | None]] = []
    for row in ROWS:
        value = results.get(row.lattice)
        peer = results.get(row.peer) if row.peer else None
        ratio = value / peer if value is not None and peer else None
        met: bool | None = None
        if row.goal is not None and value is not None:
            kind, bound = row.goal
            if kind == "<=":
                met = value <= bound
            elif ratio is not None:
                met = ratio <= bound if kind == "ratio<=" else ratio >= bound
        out.append((row, ratio, met))
    return out


def with_verdicts(results: dict[str, float]) -> dict[str, float]:
    """``results`` plus ``<slug>_ratio`` and ``<slug>_goal_met`` for every row that has them."""
    out = dict(results)
    for key in BEST:
        found = best_peer(results, key)
        if found is not None:
            out[key] = found[1]
    met_count = total = 0
    for row, ratio, met in evaluate(out):
        slug = _slug(row)
        if ratio is not None:
            out[f"{slug}_ratio"] = ratio
        if met is not None:
            out[f"{slug}_goal_met"] = 1.0 if met else 0.0
            total += 1
            met_count += int(met)
    out["goals_met"] = float(met_count)
    out["goals_total"] = float(total)
    return out


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: dict[str, float], extra: dict[str, float]) -> str:
    """The comparison table, then every other key (``extra``: numbers no row shows)."""
    header = ("metric", "lattice", "peer", "ratio", "goal", "met?")
    lines: list[tuple[str, ...]] = [header]
    for row, ratio, met in evaluate(results):
        goal = ""
        if row.goal is not None:
            kind, bound = row.goal
            goal = f"{'ratio ' if kind.startswith('ratio') else ''}{kind.removeprefix('ratio')} {bound:g}"
        verdict = "" if row.goal is None else ("—" if met is None else ("yes" if met else "NO"))
        peer = results.get(row.peer) if row.peer else None
        best = best_peer(results, row.peer) if row.peer in BEST else None
        name = f"{row.name.removesuffix(')')}: {best[0]})" if best else row.name
        lines.append((name, fmt(results.get(row.lattice)), fmt(peer), fmt(ratio), goal, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True))]
        rendered.append("  ".join(cells))
        if n == 0:
            rendered.append("  ".join("-" * w for w in widths))
    if extra:
        rendered.append("")
        rendered.append("other numbers: " + ", ".join(f"{k}={fmt(v)}" for k, v in sorted(extra.items())))
    return "\n".join(rendered)


def write(results: dict[str, float], out_dir: Path) -> tuple[Path, Path]:
    """``latest.json`` and the dated copy in ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = {k: float(v) for k, v in sorted(results.items()) if v is not None and not math.isnan(float(v))}
    text = json.dumps(clean, indent=2) + "\n"
    latest = out_dir / "latest.json"
    dated = out_dir / f"{time.strftime('%Y-%m-%dT%H%M%S')}.json"
    latest.write_text(text)
    dated.write_text(text)
    return latest, dated
