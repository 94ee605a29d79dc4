"""What runs in one host, by key: its actors (``ActorRegistry``) and its providers (``ProviderRegistry``).

Each registry is the one place that adds and removes its entries (``add``/``remove``, called by ``Host`` and
``ProviderHosting``); everyone else reads it as a read-only ``Mapping`` and through questions it answers
(``by_image``, ``by_alias``, ``in_process``, ``managed``), so the router and the control interface hold a
registry, never a live dict of someone else's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from lattice.host.actors import RunningActor, annotations_key
from lattice.host.providers import LocalProvider
from lattice.observability.metrics import ActorSample, ProviderSample, provider_sample

if TYPE_CHECKING:
    from lattice.capability import CapabilityProvider

ProviderKey = tuple[str, str]  # (provider id, link name)
K = TypeVar("K")
V = TypeVar("V")


def _managed(annotations_key_json: str) -> bool:
    """Owned by an application the control plane manages (its annotations name an ``appspec``)."""
    return "appspec" in annotations_key_json


class _Registry(Mapping[K, V]):
    """A read-only mapping over entries only its owner changes (``_entries``)."""

    def __init__(self) -> None:
        self._entries: dict[K, V] = {}

    def __getitem__(self, key: K) -> V:
        return self._entries[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class ActorRegistry(_Registry[str, RunningActor]):
    """The actors running in this host, by actor id."""

    def add(self, running: RunningActor) -> None:
        self._entries[running.actor_id] = running

    def remove(self, actor_id: str) -> RunningActor | None:
        return self._entries.pop(actor_id, None)

    def by_image(self, image_ref: str) -> RunningActor | None:
        """The actor started from ``image_ref``, if one runs."""
        return next((a for a in self._entries.values() if a.image_ref == image_ref), None)

    def count_of(self, image_ref: str, annotations: dict[str, str]) -> int:
        """How many instances of the actor at ``image_ref`` the owner ``annotations`` has here."""
        running = self.by_image(image_ref)
        return running.counts.get(annotations_key(annotations), 0) if running else 0

    def by_alias(self, call_alias: str) -> str | None:
        """The id of the local actor whose claims give it ``call_alias``."""
        for actor_id, running in self._entries.items():
            claims = running.compiled.claims
            if claims is not None and claims.call_alias == call_alias:
                return actor_id
        return None

    def managed(self) -> int:
        """Instances here that applications own (what a drain waits for)."""
        return sum(c for a in self._entries.values() for k, c in a.counts.items() if _managed(k))

    def samples(self) -> list[ActorSample]:
        """One metrics sample per actor (read from the scraping thread: iterates a copy)."""
        samples = []
        for running in list(self._entries.values()):
            stats, claims = running.pool.stats(), running.compiled.claims
            samples.append(
                ActorSample(
                    running.actor_id,
                    (claims.name if claims else None) or "",
                    running.image_ref,
                    stats["instances"],
                    stats["in_flight"],
                    stats["waiting"],
                    running.pool.limits.max_instances,
                )
            )
        return samples


class ProviderRegistry(_Registry[ProviderKey, LocalProvider]):
    """The providers running in this host (in process or as child processes), by (provider id, link name)."""

    def add(self, local: LocalProvider) -> None:
        self._entries[(local.provider_id, local.link_name)] = local

    def remove(self, provider_id: str, link_name: str) -> LocalProvider | None:
        return self._entries.pop((provider_id, link_name), None)

    def in_process(self, provider_id: str, link_name: str) -> CapabilityProvider | None:
        """The provider object when it runs in this process (a host call reaches it directly), else None."""
        local = self._entries.get((provider_id, link_name))
        return local.provider if local is not None else None

    def managed(self) -> int:
        """Shares of providers here that applications own (what a drain waits for)."""
        return sum(len(p.owners) for p in self._entries.values())

    def samples(self, loop: asyncio.AbstractEventLoop) -> list[ProviderSample]:
        """One metrics sample per in-process provider (a provider process reports its own)."""
        local = list(self._entries.values())  # read from the scraping thread: iterate a copy
        return [provider_sample(p.provider, p.provider_id, p.link_name, loop) for p in local if p.provider is not None]
