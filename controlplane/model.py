"""The control plane's plain data: applications, observed hosts, desired components and commands.

Everything here is a frozen dataclass without behaviour beyond small conveniences, so that the parser
(``manifest``) and the planner (``scheduler``) stay pure functions over values and the reconciler can log,
compare and serialise what they return. This module imports nothing from NATS, FastAPI or the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from lattice.capability import BUILTIN_CONTRACTS as _BUILTIN_CONTRACTS
from lattice.commands import Command as Command
from lattice.commands import ScaleActor as ScaleActor
from lattice.commands import StartProvider as StartProvider
from lattice.commands import StopProvider as StopProvider

#: Annotation naming the application that owns an actor instance or provider (wadm's key).
APPSPEC_ANNOTATION = "wasmcloud.dev/appspec"
#: Annotation naming the component (the scaler) inside that application.
SCALER_ANNOTATION = "wasmcloud.dev/scaler"

#: The bundled providers a manifest may name as ``builtin:<name>``, with the contract each serves.
BUILTIN_CONTRACTS: Mapping[str, str] = _BUILTIN_CONTRACTS

DEFAULT_LINK_NAME = "default"

MAX_APP_NAME: Final = 100
_APP_NAME = re.compile(r"[-\w]+", re.ASCII)  # wadm's ^[-\w]+$ (ASCII: it becomes a NATS KV key)


def app_name_problem(name: str) -> str | None:
    r"""Why ``name`` cannot name an application, or ``None``: the one rule for manifests and every API route
    that takes a name (wadm's ``^[-\w]+$``, ASCII, 1 to ``MAX_APP_NAME`` characters)."""
    if len(name) > MAX_APP_NAME:
        return f"application name is too long: {len(name)} characters, at most {MAX_APP_NAME}"
    if not _APP_NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:57] + "..."
        return (
            f"application name {shown!r} may hold only ASCII letters, digits, '-' and '_'"
            f" (wadm's ^[-\\w]+$, 1 to {MAX_APP_NAME} characters)"
        )
    return None


ScalerKind: TypeAlias = Literal["spreadscaler", "daemonscaler"]
#: ``(application name, component name)``: how the scheduler names a component.
ComponentKey: TypeAlias = tuple[str, str]


def owner_annotations(app: str, component: str) -> dict[str, str]:
    """The annotations that mark an instance as placed by ``app``'s ``component``."""
    return {APPSPEC_ANNOTATION: app, SCALER_ANNOTATION: component}


def owner_of(annotations: Mapping[str, str]) -> ComponentKey | None:
    """The component that owns an instance with these annotations, or None when nobody manages it."""
    app = annotations.get(APPSPEC_ANNOTATION)
    if app is None:
        return None
    return (app, annotations.get(SCALER_ANNOTATION, ""))


# --- the application, as a manifest describes it ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spread:
    """A share of a spreadscaler's replicas, placed on hosts whose labels hold all ``requirements``."""

    name: str
    requirements: dict[str, str] = field(default_factory=dict)
    weight: int = 100


@dataclass(frozen=True, slots=True)
class Elastic:
    """A spreadscaler that follows load (SPEC §5): between ``min_replicas`` (0: scale to zero) and
    ``max_replicas``, aiming at ``target_in_flight`` calls per instance; idle ``idle_timeout_s`` → ``min``."""

    min_replicas: int
    max_replicas: int
    target_in_flight: int = 4
    idle_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Scaler:
    """How many instances and where. For a daemonscaler ``replicas`` is per eligible host. An ``elastic``
    spreadscaler's ``replicas`` is its starting point; the autoscaler moves it (``controlplane.autoscale``)."""

    kind: ScalerKind
    replicas: int
    spread: tuple[Spread, ...] = ()
    elastic: Elastic | None = None


#: What a component gets when its manifest names no scaler trait.
DEFAULT_SCALER = Scaler(kind="spreadscaler", replicas=1)


@dataclass(frozen=True, slots=True)
class LinkTrait:
    """A link from an actor to the capability component ``target`` (its name in the manifest).

    ``link_name`` None means the target's own link name.
    """

    target: str
    values: dict[str, str] = field(default_factory=dict)
    link_name: str | None = None


@dataclass(frozen=True, slots=True)
class ActorComponent:
    """A ``type: actor`` component. ``properties`` holds ``wasi`` grants and ``limits`` as validated.

    ``image``: ``sha256:<hex>``, ``file://<path>`` or an OCI reference (``oci://…`` or bare, as wadm writes).
    ``custom_traits``: trait types lattice does not know (kept, ignored by the scheduler, shown in the status).
    """

    name: str
    image: str
    scaler: Scaler = DEFAULT_SCALER
    links: tuple[LinkTrait, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    custom_traits: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderComponent:
    """A ``type: capability`` component: a provider serving ``contract`` under ``link_name``.

    ``image`` is what runs (``builtin:<name>``); ``requested_image`` what the manifest named, which differs
    when a registry provider is served by the bundled provider of its contract (wadm manifests), and
    ``unsupported`` says why nothing can serve it (a contract lattice does not bundle).
    """

    name: str
    image: str
    contract: str
    link_name: str = DEFAULT_LINK_NAME
    config: dict[str, Any] = field(default_factory=dict)
    scaler: Scaler = DEFAULT_SCALER
    requested_image: str = ""
    unsupported: str | None = None
    custom_traits: tuple[str, ...] = ()

    @property
    def substituted(self) -> bool:
        """True when a registry provider is served by a bundled one."""
        return bool(self.requested_image) and self.requested_image != self.image and self.unsupported is None


Component: TypeAlias = ActorComponent | ProviderComponent


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    """``spec.policy.rollout`` (SPEC §5): how a new version replaces a deployed one. After the new version's
    components run, its actors' invocations are watched for ``window_s``; an error rate above
    ``max_error_rate`` rolls back to the previous version."""

    strategy: str = "rolling"
    step_percent: int = 100
    window_s: float = 10.0
    max_error_rate: float = 0.05
    max_p99_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Application:
    """A parsed manifest."""

    name: str
    version: str
    description: str
    components: tuple[Component, ...]
    rollout: RolloutPolicy = RolloutPolicy()

    def component(self, name: str) -> Component | None:
        """The component called ``name``, if any."""
        return next((c for c in self.components if c.name == name), None)


# --- the lattice, as heartbeats and inventories describe it -------------------------------------------


@dataclass(frozen=True, slots=True)
class ActorInstances:
    """``count`` instances of one actor on one host, all carrying the same ``annotations``."""

    actor_id: str
    count: int
    annotations: dict[str, str] = field(default_factory=dict)
    properties_key: str = ""  # the property set the host enforces on them (lattice.properties)


@dataclass(frozen=True, slots=True)
class ProviderRunning:
    """One provider process on one host."""

    provider_id: str
    link_name: str
    contract_id: str
    annotations: dict[str, str] = field(default_factory=dict)
    #: actors whose links it has accepted; None when the host cannot tell (a provider process)
    links: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HostView:
    """What the control plane knows of one host. A ``draining`` host takes no new work."""

    id: str
    labels: dict[str, str] = field(default_factory=dict)
    actors: tuple[ActorInstances, ...] = ()
    providers: tuple[ProviderRunning, ...] = ()
    in_flight: int = 0
    draining: bool = False


# --- what should run, with images already resolved to ids ---------------------------------------------


@dataclass(frozen=True, slots=True)
class DesiredActor:
    """An actor component to keep running; ``image_ref`` is what a host fetches, ``actor_id`` its id."""

    app: str
    component: str
    actor_id: str
    image_ref: str
    scaler: Scaler
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> ComponentKey:
        return (self.app, self.component)


@dataclass(frozen=True, slots=True)
class DesiredProvider:
    """A provider component to keep running."""

    app: str
    component: str
    provider_id: str
    image_ref: str
    contract: str
    link_name: str
    config: dict[str, Any]
    scaler: Scaler

    @property
    def key(self) -> ComponentKey:
        return (self.app, self.component)


# --- what the scheduler asks hosts to do --------------------------------------------------------------


# ScaleActor, StartProvider, StopProvider (and Command, their union) are the contract's: lattice.commands.
