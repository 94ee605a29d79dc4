"""The ``lattice`` command (SPEC §6), installed as ``lattice.cli``: the CLI itself (``app``), the key and
claims commands (``security``), OCI push/pull (``registry``), the embedded default ``lattice up``
(``up``), actor scaffolding (``scaffold``), a local ``nats-server`` (``natsserver``) and the control
plane's HTTP client (``client``).

The top floor: it may import every other room (host, control plane, providers' SDK, observability).
"""


def main() -> None:
    """The console script ``lattice`` and ``python -m lattice``: the Typer app, imported when run."""
    from lattice.cli.app import main as run

    run()
