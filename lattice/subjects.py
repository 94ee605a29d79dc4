"""Every NATS subject of the lattice (SPEC §4), each built by one small pure function.

Nobody else writes a subject string: a test greps the tree for ``"wasmbus.`` outside this module.
``lattice`` is the lattice name (default ``default``); ids are nkeys public keys (``M…`` actors,
``V…`` providers, ``N…`` hosts).

Every token that comes from outside this module (a lattice name, an id, a link name) is checked by
``token``: nats-server closes a connection whose protocol line (subject, reply subject, sizes) is
longer than its ``max_control_line`` (4 KiB by default), so no subject lattice builds may come near
that, whatever a user, an actor or an HTTP client typed. A bad token raises ``InvalidName`` before
anything is sent; the connection is never put at risk.
"""

from __future__ import annotations

import re
from typing import Final

from lattice.errors import InvalidName

PREFIX = "wasmbus"

#: the longest token (in UTF-8 bytes) lattice puts into a subject: ids are 56, names far shorter
MAX_TOKEN: Final = 256
#: the longest subject lattice publishes to: a quarter of nats-server's default max control line
MAX_SUBJECT: Final = 1024
#: what a token may not hold: NATS separators and wildcards, whitespace, control characters
_BAD_TOKEN: Final = re.compile(r"[.*>\s\x00-\x1f\x7f]")


def token(value: str, what: str = "name") -> str:
    """``value`` if it can be one subject token; ``InvalidName`` naming ``what`` and the rule otherwise."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size == 0:
        raise InvalidName(f"{what} is empty")
    if size > MAX_TOKEN:
        raise InvalidName(f"{what} is {size} bytes long; at most {MAX_TOKEN} are allowed")
    bad = _BAD_TOKEN.search(value)
    if bad:
        raise InvalidName(
            f"{what} {_show(value)} holds {bad.group()!r}: "
            "'.', '*', '>', whitespace and control characters are not allowed"
        )
    return value


def check_subject(subject: str, what: str = "subject") -> str:
    """``subject`` if it is a literal subject lattice may publish to: non-empty tokens (``token``'s rules),
    at most ``MAX_SUBJECT`` bytes. For subjects that come from users (messaging links, config)."""
    size = len(subject.encode("utf-8", "surrogatepass"))
    if size > MAX_SUBJECT:
        raise InvalidName(f"{what} is {size} bytes long; at most {MAX_SUBJECT} are allowed")
    for part in subject.split("."):
        token(part, f"a token of {what} {_show(subject)}")
    return subject


def check_pattern(pattern: str, what: str = "subject") -> str:
    """``pattern`` if it is a subject a subscription may name: ``check_subject``'s rules, except that a
    token may be the wildcard ``*`` and the last one ``>``."""
    size = len(pattern.encode("utf-8", "surrogatepass"))
    if size > MAX_SUBJECT:
        raise InvalidName(f"{what} is {size} bytes long; at most {MAX_SUBJECT} are allowed")
    parts = pattern.split(".")
    for i, part in enumerate(parts):
        if part == "*" or (part == ">" and i == len(parts) - 1):
            continue
        token(part, f"a token of {what} {_show(pattern)}")
    return pattern


def matches(pattern: str, subject: str) -> bool:
    """Whether the literal ``subject`` matches the NATS ``pattern`` (``*`` one token, ``>`` the rest)."""
    want, have = pattern.split("."), subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part != "*" and part != have[i]):
            return False
    return len(want) == len(have)


#: JetStream KV's own key rule (as nats-py and nats.go check it), and the longest key lattice writes
_KV_KEY: Final = re.compile(r"[-/_=.a-zA-Z0-9]+")
MAX_KV_KEY: Final = 512


def kv_key(key: str, what: str = "key") -> str:
    """``key`` if it is a JetStream KV key (``[-/_=.a-zA-Z0-9]``, no ``.`` at either end, no empty
    token) of at most ``MAX_KV_KEY`` characters; ``InvalidName`` naming ``what`` otherwise. The key
    becomes the subject ``$KV.<bucket>.<key>``, so the same control-line reasoning as ``token`` applies."""
    if len(key) > MAX_KV_KEY:
        raise InvalidName(f"{what} is too long to store: {len(key)} characters, at most {MAX_KV_KEY}")
    if not _KV_KEY.fullmatch(key) or key.startswith(".") or key.endswith(".") or ".." in key:
        raise InvalidName(
            f"{what} {_show(key)} cannot be stored: use ASCII letters, digits, '-', '_', '/', '=' and '.'"
        )
    return key


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def actor_rpc(lattice: str, actor_id: str) -> str:
    """Where an actor's instances queue-subscribe (queue group = ``actor_id``)."""
    return _rpc(lattice, actor_id, "actor id")


def _rpc(lattice: str, target: str, what: str) -> str:
    return f"{PREFIX}.rpc.{token(lattice, 'lattice name')}.{token(target, what)}"


def provider_rpc(lattice: str, provider_id: str, link_name: str) -> str:
    """Where a provider serves invocations for one link name."""
    return f"{_rpc(lattice, provider_id, 'provider id')}.{token(link_name, 'link name')}"


def provider_linkdefs(lattice: str, provider_id: str, link_name: str, action: str) -> str:
    """``action`` is ``put`` or ``del``."""
    return f"{provider_rpc(lattice, provider_id, link_name)}.linkdefs.{token(action, 'action')}"


def provider_health(lattice: str, provider_id: str, link_name: str) -> str:
    return f"{provider_rpc(lattice, provider_id, link_name)}.health"


def provider_shutdown(lattice: str, provider_id: str, link_name: str) -> str:
    return f"{provider_rpc(lattice, provider_id, link_name)}.shutdown"


def ctl(lattice: str) -> str:
    """The control interface's root: ``wasmbus.ctl.{lattice}``."""
    return f"{PREFIX}.ctl.{token(lattice, 'lattice name')}"


def ctl_cmd(lattice: str, host_id: str, command: str) -> str:
    """A command to one host: ``la`` ``sa`` ``scale`` ``lp`` ``sp`` ``stop``."""
    return f"{ctl(lattice)}.cmd.{token(host_id, 'host id')}.{token(command, 'command')}"


def ctl_wake(lattice: str) -> str:
    """Where a caller asks the leading control plane to start an actor scaled to zero (beyond SPEC §4)."""
    return f"{ctl(lattice)}.wake"


def ctl_cmd_all(lattice: str, host_id: str) -> str:
    """Wildcard a host subscribes to for its commands."""
    return f"{ctl(lattice)}.cmd.{token(host_id, 'host id')}.*"


def ctl_ping_hosts(lattice: str) -> str:
    return f"{ctl(lattice)}.ping.hosts"


def ctl_get_inventory(lattice: str, host_id: str) -> str:
    return f"{ctl(lattice)}.get.{token(host_id, 'host id')}.inv"


def ctl_get(lattice: str, what: str) -> str:
    """``what`` is ``claims`` or ``links``."""
    return f"{ctl(lattice)}.get.{token(what, 'what')}"


def ctl_linkdefs(lattice: str, action: str) -> str:
    """``action`` is ``put`` or ``del``."""
    return f"{ctl(lattice)}.linkdefs.{token(action, 'action')}"


def ctl_auction(lattice: str, kind: str) -> str:
    """``kind`` is ``actor`` or ``provider``."""
    return f"{ctl(lattice)}.auction.{token(kind, 'kind')}"


def events(lattice: str) -> str:
    """CloudEvents of the lattice (SPEC §4)."""
    return f"{PREFIX}.evt.{token(lattice, 'lattice name')}"


def last_segment(subject: str) -> str:
    return subject.rsplit(".", 1)[-1]


def latticedata_bucket(lattice: str) -> str:
    """The JetStream KV bucket that holds link definitions and claims."""
    return f"LATTICEDATA_{lattice}"


def artifacts_bucket(lattice: str) -> str:
    """The JetStream object store that holds uploaded actor modules, by digest."""
    return f"LATTICE_ARTIFACTS_{lattice}"


def payloads_bucket(lattice: str) -> str:
    """The JetStream object store for invocation payloads over the NATS max payload."""
    return f"LATTICE_PAYLOADS_{lattice}"


def cron_ticks_bucket(lattice: str) -> str:
    """The JetStream KV bucket where cron providers claim each tick, so that one fires it lattice-wide."""
    return f"LATTICE_CRON_{lattice}"


def control_state_bucket(lattice: str) -> str:
    """The JetStream KV bucket of the control plane's desired state and leader lease."""
    return f"LATTICE_CP_{lattice}"
