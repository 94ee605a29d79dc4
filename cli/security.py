"""``lattice keys`` and ``lattice claims``: nkeys and signed actors (SPEC §3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lattice import claims as claims_mod
from lattice import keys
from lattice.cli.common import Output, OutputOpt, _fail, claims_app, console, keys_app
from lattice.errors import LatticeError

KINDS = ("account", "module", "cluster", "service", "server", "user", "operator")


@keys_app.command("generate")
def generate(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}.")],
    output: OutputOpt = Output.table,
) -> None:
    """Generate a key pair; prints the public key and the seed (keep the seed secret)."""
    if kind not in KINDS:
        _fail(f"unknown key kind {kind!r}; choose one of {', '.join(KINDS)}")
    pair = keys.generate(kind)  # type: ignore[arg-type]
    if output == Output.json:
        print(json.dumps({"kind": kind, "public_key": pair.public_key, "seed": pair.seed}))
    else:
        console.print(f"public key: {pair.public_key}\nseed:       {pair.seed}", highlight=False)


@claims_app.command("sign")
def sign(
    wasm: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The actor module.")],
    issuer: Annotated[str, typer.Option("--issuer", envvar="LATTICE_ISSUER_SEED", help="Account seed (SA…).")],
    name: Annotated[str | None, typer.Option(help="Actor name (default: the file name).")] = None,
    caps: Annotated[list[str], typer.Option("--caps", "-c", help="Contract IDs the actor may use.")] = [],  # noqa: B006
    call_alias: Annotated[str | None, typer.Option("--call-alias", help="e.g. wasmcloud/ponger")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Module seed (SM…); new one if omitted.")] = None,
    expires: Annotated[
        int | None, typer.Option("--expires", help="Valid for this many days (0 or omitted: never expires).")
    ] = None,
    rev: Annotated[int | None, typer.Option(help="Revision number.")] = None,
    ver: Annotated[str | None, typer.Option(help="Version string.")] = None,
    destination: Annotated[Path | None, typer.Option("--destination", "-d", help="Output (default *_s.wasm).")] = None,
) -> None:
    """Sign an actor: writes a copy with a 'jwt' custom section holding its claims (SPEC §3)."""
    capabilities = [c for cap in caps for c in cap.split(",") if c]
    if expires is not None and expires < 0:
        _fail(f"--expires takes a number of days from now, 1 or more (0: never expires), got {expires}")
    try:
        signed = claims_mod.sign_actor(
            wasm.read_bytes(),
            keys.from_seed(issuer),
            module=keys.from_seed(subject) if subject else None,
            name=name or wasm.stem,
            caps=capabilities,
            call_alias=call_alias,
            rev=rev,
            ver=ver,
            expires_in_s=expires * 86400 if expires else None,
        )
    except LatticeError as exc:
        _fail(str(exc))
    out = destination or wasm.with_name(f"{wasm.stem}_s.wasm")
    out.write_bytes(signed)
    console.print(f"signed {out} as {claims_mod.actor_id_of(signed)}", highlight=False)


@claims_app.command("inspect")
def inspect(
    wasm: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The actor module.")],
    output: OutputOpt = Output.table,
) -> None:
    """Show an actor's claims and whether they verify."""
    data = wasm.read_bytes()
    try:
        found = claims_mod.extract_claims(data)
    except LatticeError as exc:
        _fail(str(exc))
    if found is None:
        result = {"actor_id": claims_mod.actor_id_of(data), "signed": False}
    else:
        try:
            claims_mod.verify_actor(data)
            verdict = "valid"
        except LatticeError as exc:
            verdict = f"INVALID: {exc}"
        result = {"actor_id": found.sub, "signed": True, "verification": verdict, **found.to_dict()}
    if output == Output.json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"claims of {wasm.name}", show_header=False)
    for key, value in result.items():
        if key in ("iat", "exp", "nbf") and isinstance(value, int):
            value = datetime.fromtimestamp(value, UTC).isoformat()
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)
