"""Every NATS subject of the lattice (SPEC §4), each built by one small pure function.

Nobody else writes a subject string: a test greps the tree for ``"wasmbus.`` outside this module.
``lattice`` is the lattice name (default ``default``); ids are nkeys public keys (``M…`` actors,
``V…`` providers, ``N…`` hosts).
"""

from __future__ import annotations

PREFIX = "wasmbus"


def actor_rpc(lattice: str, actor_id: str) -> str:
    """Where an actor's instances queue-subscribe (queue group = ``actor_id``)."""
    return f"{PREFIX}.rpc.{lattice}.{actor_id}"


def provider_rpc(lattice: str, provider_id: str, link_name: str) -> str:
    """Where a provider serves invocations for one link name."""
    return f"{PREFIX}.rpc.{lattice}.{provider_id}.{link_name}"


def provider_linkdefs(lattice: str, provider_id: str, link_name: str, action: str) -> str:
    """``action`` is ``put`` or ``del``."""
    return f"{provider_rpc(lattice, provider_id, link_name)}.linkdefs.{action}"


def provider_health(lattice: str, provider_id: str, link_name: str) -> str:
    return f"{provider_rpc(lattice, provider_id, link_name)}.health"


def provider_shutdown(lattice: str, provider_id: str, link_name: str) -> str:
    return f"{provider_rpc(lattice, provider_id, link_name)}.shutdown"


def ctl(lattice: str) -> str:
    """The control interface's root: ``wasmbus.ctl.{lattice}``."""
    return f"{PREFIX}.ctl.{lattice}"


def ctl_cmd(lattice: str, host_id: str, command: str) -> str:
    """A command to one host: ``la`` ``sa`` ``scale`` ``lp`` ``sp`` ``stop``."""
    return f"{ctl(lattice)}.cmd.{host_id}.{command}"


def ctl_cmd_all(lattice: str, host_id: str) -> str:
    """Wildcard a host subscribes to for its commands."""
    return f"{ctl(lattice)}.cmd.{host_id}.*"


def ctl_ping_hosts(lattice: str) -> str:
    return f"{ctl(lattice)}.ping.hosts"


def ctl_get_inventory(lattice: str, host_id: str) -> str:
    return f"{ctl(lattice)}.get.{host_id}.inv"


def ctl_get(lattice: str, what: str) -> str:
    """``what`` is ``claims`` or ``links``."""
    return f"{ctl(lattice)}.get.{what}"


def ctl_linkdefs(lattice: str, action: str) -> str:
    """``action`` is ``put`` or ``del``."""
    return f"{ctl(lattice)}.linkdefs.{action}"


def ctl_auction(lattice: str, kind: str) -> str:
    """``kind`` is ``actor`` or ``provider``."""
    return f"{ctl(lattice)}.auction.{kind}"


def events(lattice: str) -> str:
    """CloudEvents of the lattice (SPEC §4)."""
    return f"{PREFIX}.evt.{lattice}"


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


def control_state_bucket(lattice: str) -> str:
    """The JetStream KV bucket of the control plane's desired state and leader lease."""
    return f"LATTICE_CP_{lattice}"
