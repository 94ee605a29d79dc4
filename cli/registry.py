"""``lattice push FILE REF`` and ``lattice pull REF``: Wasm actors through OCI registries (SPEC §6).

References: ``[oci://]registry[:port]/repository[:tag]`` (``pull`` also takes ``@sha256:<hex>``).
Registries on loopback (and those in ``LATTICE_OCI_INSECURE``) are reached over plain HTTP, as the control
plane reaches them (``oci.plain_http``); ``--insecure`` talks plain HTTP to any other; credentials come
from ``--username`` / ``--password`` (``LATTICE_OCI_USERNAME`` / ``LATTICE_OCI_PASSWORD``) or the Docker config file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lattice import oci
from lattice.cli.common import Output, OutputOpt, _fail, app, console
from lattice.errors import LatticeError
from lattice.settings import Settings

Insecure = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Plain HTTP, not HTTPS, to any registry (those on loopback and in LATTICE_OCI_INSECURE get it anyway).",
    ),
]
Username = Annotated[str | None, typer.Option("--username", "-u", envvar="LATTICE_OCI_USERNAME", help="Registry user.")]
Password = Annotated[
    str | None, typer.Option("--password", "-p", envvar="LATTICE_OCI_PASSWORD", help="Registry password.")
]
AuthFile = Annotated[
    Path | None,
    typer.Option("--auth-file", envvar="LATTICE_OCI_AUTH_FILE", help="Docker config file with per-registry logins."),
]


def _plain_http(ref: oci.Reference, insecure: bool) -> bool:
    return insecure or oci.plain_http(ref, Settings.from_env())


def _credentials(username: str | None, password: str | None) -> oci.Credentials | None:
    if bool(username) != bool(password):
        _fail("--username and --password go together")
    return oci.Credentials(username, password) if username and password else None


@app.command()
def push(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The actor (.wasm).")],
    ref: Annotated[str, typer.Argument(help="registry[:port]/repository:tag, oci:// optional.")],
    insecure: Insecure = False,
    username: Username = None,
    password: Password = None,
    auth_file: AuthFile = None,
    output: OutputOpt = Output.table,
) -> None:
    """Push a Wasm module as an OCI artifact (CNCF Wasm layout: one application/wasm layer)."""
    wasm = file.read_bytes()
    if not wasm.startswith(b"\0asm"):
        _fail(f"{file} is not a WebAssembly module (bad magic number)")
    try:
        reference = oci.parse_reference(ref)
        digest = oci.push(
            reference,
            wasm,
            insecure=_plain_http(reference, insecure),
            credentials=_credentials(username, password),
            auth_file=auth_file,
        )
    except LatticeError as exc:
        _fail(str(exc))
    result = {"reference": str(reference), "digest": digest, "layer_digest": oci.sha256_digest(wasm), "size": len(wasm)}
    if output == Output.json:
        print(json.dumps(result, indent=2))
    else:
        console.print(f"pushed {reference} ({len(wasm)} bytes)\ndigest: {digest}", highlight=False)


@app.command()
def pull(
    ref: Annotated[str, typer.Argument(help="registry[:port]/repository[:tag|@sha256:<hex>], oci:// optional.")],
    out: Annotated[
        Path | None, typer.Option("--file", "-f", help="Where to write the module (default: ./<repo>.wasm).")
    ] = None,
    insecure: Insecure = False,
    username: Username = None,
    password: Password = None,
    auth_file: AuthFile = None,
    output: OutputOpt = Output.table,
) -> None:
    """Pull a Wasm module, verified against the registry's digests; writes it to a file."""
    try:
        reference = oci.parse_reference(ref)
        pulled = oci.pull(
            reference,
            insecure=_plain_http(reference, insecure),
            credentials=_credentials(username, password),
            auth_file=auth_file,
        )
    except LatticeError as exc:
        _fail(str(exc))
    target = out or Path(f"{reference.repository.rsplit('/', 1)[-1]}.wasm")
    target.write_bytes(pulled.wasm)
    result = {
        "reference": str(reference),
        "file": str(target),
        "digest": pulled.manifest_digest,
        "layer_digest": pulled.digest,
        "size": len(pulled.wasm),
    }
    if output == Output.json:
        print(json.dumps(result, indent=2))
    else:
        console.print(
            f"pulled {reference} → {target} ({len(pulled.wasm)} bytes)\ndigest: {pulled.manifest_digest}",
            highlight=False,
        )
