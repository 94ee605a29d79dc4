"""NATS authorisation for ``lattice up``'s embedded nats-server: one user per role, the server's own
permission model (``authorization { users [...] }``), passwords made fresh for each run.

Roles (docs/security.md): ``host`` and ``control`` are lattice members (they also hold the cluster
seed): they publish and subscribe everywhere but ``$SYS``, since hosts carry actors' own messaging
subjects. ``observer`` is what a person or a dashboard gets: it may watch the lattice's events and ask
the read-only control questions (``ping.hosts``, ``get.*``), nothing else — no invocations, no
commands, no JetStream (so no links, state or artifacts). Anonymous clients are refused.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from lattice import subjects

ROLES = ("host", "control", "observer")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user and password for each role."""

    host: tuple[str, str]
    control: tuple[str, str]
    observer: tuple[str, str]

    @classmethod
    def generate(cls) -> Credentials:
        return cls(*((role, secrets.token_urlsafe(24)) for role in ROLES))


def _quoted(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def _user(user: str, password: str, publish: list[str], subscribe: list[str], deny: list[str]) -> str:
    return (
        f"    {{user: {json.dumps(user)}, password: {json.dumps(password)}, permissions: {{"
        f"publish: {{allow: {_quoted(publish)}, deny: {_quoted(deny)}}}, "
        f"subscribe: {{allow: {_quoted(subscribe)}, deny: {_quoted(deny)}}}}}}}"
    )


def server_config(creds: Credentials, lattice: str) -> str:
    """The nats-server configuration (authorisation only; the rest comes from the command line)."""
    ctl = subjects.ctl(lattice)
    member: tuple[list[str], list[str], list[str]] = ([">"], [">"], ["$SYS.>"])
    observer: tuple[list[str], list[str], list[str]] = (
        [subjects.ctl_ping_hosts(lattice), f"{ctl}.get.>"],
        [subjects.events(lattice), "_INBOX.>"],
        [],
    )
    users = [
        _user(*creds.host, *member),
        _user(*creds.control, *member),
        _user(*creds.observer, *observer),
    ]
    return "authorization {\n  users: [\n" + ",\n".join(users) + "\n  ]\n}\n"


def write(creds: Credentials, lattice: str, directory: Path) -> tuple[Path, Path]:
    """Write the server's configuration and the credentials (both readable by this user only)."""
    directory.mkdir(parents=True, exist_ok=True)
    conf, saved = directory / "nats-auth.conf", directory / "nats-credentials.json"
    for path, text in ((conf, server_config(creds, lattice)), (saved, json.dumps(asdict(creds), indent=2))):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    return conf, saved
