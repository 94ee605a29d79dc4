"""A text-filter plugin host: each line of a text file goes through Wasm plugins, each with only its grants.

    python examples/text_filter/main.py [input.txt] [--grant-secrets]

- ``plugins/censor.wasm`` masks the words of a list the host owns; it may call ``example:wordlist``
  because this program grants it. The same plugin loaded again without the grant is refused that host call.
- ``plugins/snoop.wasm`` tries to read ``/secrets/token.txt``. No directory is granted, so the open fails
  inside the guest and the plugin reports it; ``--grant-secrets`` opens ``secrets/`` read-only as
  ``/secrets`` to show the difference.

Rebuild the plugins with ``python examples/build.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from lattice.errors import InvocationError
from lattice.host import ActorLimits, Runtime, Sandbox, WasiGrants

HERE = Path(__file__).resolve().parent
WORDS = ("heck", "darn", "drat")  # owned by the host; a plugin sees them only through its grant
LIMITS = ActorLimits(deadline_s=1.0, max_memory_bytes=8 * 1024 * 1024, max_instances=2)


def word_list(operation: str, payload: bytes) -> bytes:
    """The ``example:wordlist`` capability: ``Words.List`` → the words, one per line."""
    if operation != "Words.List":
        raise ValueError(f"example:wordlist has no operation {operation}")
    return "\n".join(WORDS).encode()


def show_output(name: str) -> Callable[[str, str], None]:
    """Where a plugin's log lines (``__console_log``, WASI stdout/stderr) go: indented under its results."""
    return lambda stream, text: print(f"    [{name} {stream}] {text.rstrip()}")


def run(plugin: Sandbox, title: str, lines: list[str]) -> None:
    print(f"{plugin.name}: {title}")
    for line in lines:
        try:
            print(f"  {line}  ->  {plugin.call('Filter.Apply', line.encode()).decode()}")
        except InvocationError as exc:
            print(f"  {line}  ->  refused: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Filter text through sandboxed Wasm plugins.")
    parser.add_argument("input", nargs="?", type=Path, default=HERE / "input.txt")
    parser.add_argument("--grant-secrets", action="store_true", help="open secrets/ read-only as /secrets")
    args = parser.parse_args()
    lines = [line for line in args.input.read_text().splitlines() if line.strip()]

    runtime = Runtime()  # one engine, module cache and epoch ticker for every plugin
    censor_wasm = HERE / "plugins" / "censor.wasm"
    secrets = WasiGrants(dirs={"/secrets": str(HERE / "secrets")}, readonly=True)
    try:
        with (
            Sandbox(
                censor_wasm,
                grants={"example:wordlist": word_list},
                limits=LIMITS,
                runtime=runtime,
                name="censor",
                log_sink=show_output("censor"),
            ) as censor,
            Sandbox(censor_wasm, limits=LIMITS, runtime=runtime, name="censor-without-grant") as ungranted,
            Sandbox(
                HERE / "plugins" / "snoop.wasm",
                limits=LIMITS,
                wasi=secrets if args.grant_secrets else None,
                runtime=runtime,
                name="snoop",
                log_sink=show_output("snoop"),
            ) as snoop,
        ):
            run(censor, "granted example:wordlist", lines)
            run(ungranted, "no grants", lines[:1])
            run(snoop, "/secrets granted read-only" if args.grant_secrets else "no directories granted", lines[:1])
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
