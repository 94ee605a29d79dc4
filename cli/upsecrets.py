"""The secrets ``lattice up`` keeps in its state directory across runs (``<state>/up/``, mode 0600).

The cluster seed (``cluster-seed``), the API token (``api-token``) and the embedded nats-server's users
(``nats-credentials.json``, see ``natsauth``) are made on the first run and read back on every later one: links, sealed
state and configuration persisted in JetStream are sealed with the cluster seed, so a new seed per run
would make the next run refuse all of it. ``LATTICE_CLUSTER_SEED`` / ``LATTICE_API_TOKEN`` override the
kept ones (and are not written). A file that is not this user's only (group/other bits) is refused: a
secret someone else could read is no secret. Delete ``<state>/up`` to start over with new ones.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from lattice import keys
from lattice.errors import ClaimsError, ConfigError

CLUSTER_SEED_FILE = "cluster-seed"
API_TOKEN_FILE = "api-token"


def write_secret(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable and writable by this user only (mode 0600, also when it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def read_secret(path: Path) -> str | None:
    """The text of ``path`` (stripped), ``None`` when it does not exist or is empty; ``ConfigError`` when
    group or others may read or write it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(
            f"{path} holds a secret of `lattice up` but its mode is {stat.S_IMODE(mode):o}: "
            f"make it private (chmod 600 {path}) or delete it to have a new one made"
        )
    return path.read_text().strip() or None


def kept(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path``; made with ``make()`` and written (mode 0600) when there is none yet."""
    value = read_secret(path)
    if value is None:
        value = make()
        write_secret(path, value)
    return value


def cluster_seed(up_dir: Path) -> str:
    """The cluster seed of this state directory's lattice (made on the first run)."""
    path = up_dir / CLUSTER_SEED_FILE
    seed = kept(path, lambda: keys.generate("cluster").seed)
    try:
        kind = keys.from_seed(seed).prefix
    except ClaimsError as exc:
        kind = str(exc)
    if kind != "C":
        raise ConfigError(f"{path} does not hold a cluster seed (SC…): {kind}; delete it to have one made")
    return seed


def api_token(up_dir: Path) -> str:
    """The API token of this state directory's ``lattice up`` (made on the first run)."""
    return kept(up_dir / API_TOKEN_FILE, lambda: secrets.token_urlsafe(24))
