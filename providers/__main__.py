"""``python -m lattice.providers <name> --nats-url URL [--lattice NAME] [--link-name NAME] [--cluster-seed SEED]``.

One bundled provider as its own process; it needs the hosts' cluster seed (``--cluster-seed`` or env
``LATTICE_CLUSTER_SEED``). The ``lattice provider`` command calls ``run_standalone`` the same way;
this is the plain entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import nats.errors
import uvloop

from lattice.capability import BUILTIN_CONTRACTS
from lattice.errors import LatticeError
from lattice.providers.sdk import load_provider_class
from lattice.providers.sdk.runner import run_standalone
from lattice.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lattice.providers", description="Run a bundled capability provider."
    )
    parser.add_argument("name", choices=sorted(BUILTIN_CONTRACTS), help="which bundled provider")
    parser.add_argument("--nats-url", help="NATS server(s), comma separated (env LATTICE_NATS_URL)")
    parser.add_argument("--lattice", help="lattice name (env LATTICE_NAME, default 'default')")
    parser.add_argument("--link-name", default="default", help="the link name this provider serves")
    parser.add_argument("--provider-id", help="V… id to serve as (default: the bundled provider's stable id)")
    parser.add_argument(
        "--cluster-seed", help="the lattice's cluster seed, the same as the hosts' (env LATTICE_CLUSTER_SEED)"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(nats_url=args.nats_url, lattice=args.lattice, cluster_seed=args.cluster_seed)
        provider = load_provider_class(args.name)()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run_standalone(provider, settings, link_name=args.link_name, provider_id=args.provider_id))
    except LatticeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, nats.errors.Error) as exc:
        print(f"error: cannot connect to NATS: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
