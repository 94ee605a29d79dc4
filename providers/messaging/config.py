"""A messaging link's values (SPEC §2 ``wasmcloud:messaging``), checked once when the link is put.

| value            | meaning                                                                         | default |
|------------------|---------------------------------------------------------------------------------|---------|
| `SUBSCRIPTION`   | comma-separated subjects the actor receives; `subject|queue` joins a queue group | none    |
| `URI`            | another NATS (an application's own), instead of the lattice's                    | lattice |
| `USER`/`PASSWORD`, `TOKEN`, `NKEY_SEED`, `CREDS` | credentials for `URI` (`CREDS`: a creds file path) | none |
| `PUBLISH`        | comma-separated subject patterns the actor may publish/request on (`*`, `>`)     | any     |
| `STREAM`         | deliver `SUBSCRIPTION` through this JetStream stream (at least once)             | core    |
| `MAX_DELIVER`    | with `STREAM`: attempts before a message is dead-lettered                        | 3       |
| `DEAD_LETTER`    | with `STREAM`: where a message goes after `MAX_DELIVER` failures                 | see below |
| `MAX_IN_FLIGHT`  | messages handed to the actor at once                                             | 64      |

`DEAD_LETTER` defaults to `lattice.deadletter.<STREAM>`.

On the lattice's own NATS (no `URI`) subjects under `wasmbus.`, `$JS.`, `$KV.`, `$O.` and `$SYS.` are refused
for subscribing and publishing, and so are subscriptions under `_INBOX.` (other participants' replies) and
wildcard subscriptions whose first token could reach them. Replies to a message's `replyTo` (an `_INBOX.`
subject) are always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from lattice import subjects
from lattice.errors import InvalidName, ProviderError
from lattice.messages import LinkDefinition

#: First tokens of the lattice's own subjects: nothing of an actor's may reach them on the lattice's NATS.
RESERVED: Final = frozenset({"wasmbus", "$JS", "$KV", "$O", "$SYS"})
INBOX: Final = "_INBOX"
DEFAULT_MAX_DELIVER: Final = 3
DEFAULT_IN_FLIGHT: Final = 64


@dataclass(frozen=True, slots=True)
class Subscription:
    subject: str
    queue: str = ""


@dataclass(frozen=True, slots=True)
class LinkConfig:
    subscriptions: tuple[Subscription, ...] = ()
    uri: str = ""
    user: str = ""
    password: str = ""
    token: str = ""
    nkey_seed: str = ""
    creds: str = ""
    publish: tuple[str, ...] | None = None
    stream: str = ""
    max_deliver: int = DEFAULT_MAX_DELIVER
    dead_letter: str = ""
    max_in_flight: int = DEFAULT_IN_FLIGHT

    @property
    def own_nats(self) -> bool:
        """Whether this link uses a NATS of its own (``URI``) rather than the lattice's."""
        return bool(self.uri)

    def check_publish(self, subject: str) -> str:
        """``subject`` if the actor may publish (or request) on it; ``InvalidName`` naming why not."""
        subjects.check_subject(subject, "messaging subject")
        first = subject.split(".", 1)[0]
        if first == INBOX:
            return subject  # a reply to a message's replyTo
        if not self.own_nats and first in RESERVED:
            raise InvalidName(f"subject {subject!r} belongs to the lattice itself: use another subject (or a URI)")
        if self.publish is not None and not any(subjects.matches(p, subject) for p in self.publish):
            allowed = ", ".join(self.publish)
            raise InvalidName(f"subject {subject!r} is outside this link's PUBLISH subjects ({allowed})")
        return subject


def link_config(link: LinkDefinition) -> LinkConfig:
    """The checked config of ``link``; ``ProviderError`` naming the value at fault."""
    values = {k.upper(): v for k, v in link.values.items()}
    try:
        config = LinkConfig(
            subscriptions=tuple(_subscription(part) for part in _list(values.get("SUBSCRIPTION", ""))),
            uri=values.get("URI", "").strip(),
            user=values.get("USER", ""),
            password=values.get("PASSWORD", ""),
            token=values.get("TOKEN", ""),
            nkey_seed=values.get("NKEY_SEED", ""),
            creds=values.get("CREDS", ""),
            publish=tuple(subjects.check_pattern(p, "PUBLISH subject") for p in _list(values["PUBLISH"]))
            if "PUBLISH" in values
            else None,
            stream=subjects.token(values["STREAM"], "STREAM") if values.get("STREAM") else "",
            max_deliver=_positive(values, "MAX_DELIVER", DEFAULT_MAX_DELIVER),
            dead_letter=values.get("DEAD_LETTER", ""),
            max_in_flight=_positive(values, "MAX_IN_FLIGHT", DEFAULT_IN_FLIGHT),
        )
        for sub in config.subscriptions:
            _check_subscription(sub.subject, config.own_nats)
        if config.stream:
            dead = config.dead_letter or f"lattice.deadletter.{config.stream}"
            config = replace(config, dead_letter=subjects.check_subject(dead, "DEAD_LETTER"))
    except InvalidName as exc:
        raise ProviderError(f"messaging link {link.actor_id} ({link.link_name}): {exc}") from exc
    return config


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _subscription(part: str) -> Subscription:
    subject, _, queue = part.partition("|")
    subject, queue = subject.strip(), queue.strip()
    subjects.check_pattern(subject, "SUBSCRIPTION subject")
    return Subscription(subject, subjects.token(queue, "queue group") if queue else "")


def _check_subscription(subject: str, own_nats: bool) -> None:
    first = subject.split(".", 1)[0]
    if own_nats:
        return
    if first in RESERVED or first == INBOX:
        raise InvalidName(f"subscription {subject!r} would reach the lattice's own subjects: use another subject")
    if first in ("*", ">"):
        raise InvalidName(f"subscription {subject!r} starts with a wildcard and would reach the lattice's subjects")


def _positive(values: dict[str, str], key: str, default: int) -> int:
    raw = values.get(key)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise InvalidName(f"{key} must be a whole number, got {raw!r}") from None
    if number < 1:
        raise InvalidName(f"{key} must be at least 1, got {number}")
    return number
