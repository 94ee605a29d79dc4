"""NATS authorisation for ``lattice up``'s embedded nats-server: one user per role, the server's own
permission model (``authorization { users [...] }``), passwords made on the first run and kept in the
state directory (``upsecrets``).

Roles (docs/security.md): ``host`` and ``control`` are lattice members (they also hold the cluster
seed): they publish and subscribe everywhere but ``$SYS``, since hosts carry actors' own messaging
subjects. ``observer`` is what a person or a dashboard gets: it may watch the lattice's events and ask
the read-only control questions (``ping.hosts``, ``get.*``), nothing else — no invocations, no
commands, no JetStream (so no links, state or artifacts). Anonymous clients are refused.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from lattice import subjects
from lattice.cli.upsecrets import kept, write_secret
from lattice.errors import ConfigError

ROLES = ("host", "control", "observer")
CREDENTIALS_FILE = "nats-credentials.json"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user and password for each role."""

    host: tuple[str, str]
    control: tuple[str, str]
    observer: tuple[str, str]

    @classmethod
    def generate(cls) -> Credentials:
        return cls(*((role, secrets.token_urlsafe(24)) for role in ROLES))

    @classmethod
    def from_json(cls, text: str) -> Credentials:
        doc = json.loads(text)
        users = [doc[role] for role in ROLES]
        if not all(isinstance(u, list) and len(u) == 2 and all(isinstance(x, str) and x for x in u) for u in users):
            raise ValueError("each role wants [user, password]")
        return cls(*(tuple(u) for u in users))  # type: ignore[arg-type]


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
    conf, saved = directory / "nats-auth.conf", directory / CREDENTIALS_FILE
    write_secret(saved, _to_json(creds))
    return write_secret(conf, server_config(creds, lattice)), saved


def _to_json(creds: Credentials) -> str:
    return json.dumps(asdict(creds), indent=2)


def kept_credentials(directory: Path) -> Credentials:
    """The users kept in ``directory`` (``lattice up``'s state), made and written on the first run."""
    path = directory / CREDENTIALS_FILE
    text = kept(path, lambda: _to_json(Credentials.generate()))
    try:
        return Credentials.from_json(text)
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"{path} is not lattice up's NATS credentials ({exc}); delete it to have new ones made"
        ) from None
