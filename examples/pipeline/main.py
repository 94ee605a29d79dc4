"""A record pipeline: an untrusted Wasm transform over every record of a CSV file, one deadline per record.

    python examples/pipeline/main.py [records.csv] [--deadline 0.2] [--workers 4]

``transform.wasm`` is a plain-function module (docs/embedding.md: ``alloc`` + ``transform_record(ptr,
len) -> i64``) that turns ``id,name,city,amount`` into JSON. It refuses bad records, and two bugs are
planted in it: one record makes it loop forever, another trips an assertion. The deadline stops the
loop, the trap discards that instance, and every other record of the batch still comes through.

Rebuild the plugin with ``python examples/build.py``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lattice.errors import ActorError, ActorTrap, DeadlineExceeded, InvocationError
from lattice.host import ActorLimits, Sandbox

HERE = Path(__file__).resolve().parent
OUTCOMES = {ActorError: "refused", ActorTrap: "trapped", DeadlineExceeded: "stopped"}


def transform(plugin: Sandbox, record: str) -> tuple[str, str]:
    """One record through the plugin: ``(outcome, text)``, outcome ``ok`` or how it failed."""
    try:
        return "ok", plugin.call("transform_record", record.encode()).decode()
    except InvocationError as exc:
        return OUTCOMES.get(type(exc), "failed"), str(exc)


def main() -> None:
    parser = argparse.ArgumentParser(description="Transform CSV records with a sandboxed Wasm plugin.")
    parser.add_argument("csv", nargs="?", type=Path, default=HERE / "records.csv")
    parser.add_argument("--deadline", type=float, default=0.2, help="seconds per record (default 0.2)")
    parser.add_argument("--workers", type=int, default=4, help="records transformed at once (default 4)")
    args = parser.parse_args()
    header, *records = args.csv.read_text().splitlines()

    limits = ActorLimits(deadline_s=args.deadline, max_memory_bytes=16 * 1024 * 1024, max_instances=args.workers)
    with (
        Sandbox(HERE / "transform.wasm", abi="function", limits=limits, name="transform") as plugin,
        ThreadPoolExecutor(args.workers) as pool,
    ):
        results = list(pool.map(lambda record: transform(plugin, record), records))

    print(f"{args.csv.name}: {header}")
    for line, (record, (outcome, text)) in enumerate(zip(records, results, strict=True), start=2):
        print(f"{outcome:<8} line {line:>2}  {record}  ->  {text}")
    counts = Counter(outcome for outcome, _ in results)
    print(
        f"{len(records)} records: {counts['ok']} ok, {counts['refused']} refused, {counts['trapped']} trapped, "
        f"{counts['stopped']} stopped at the {args.deadline:g} s deadline"
        + (f", {counts['failed']} failed otherwise" if counts["failed"] else "")
    )


if __name__ == "__main__":
    main()
