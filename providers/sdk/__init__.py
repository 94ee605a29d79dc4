"""The provider SDK, installed as ``lattice.providers.sdk``: what a provider is written against and what runs one.

    base         ``Provider`` base class, ``@operation``, argument checks, ``load_provider_class`` (the registry:
                 bundled providers by name, from the ``lattice.providers`` entry points)
    capability   ``ProviderContext`` / ``CapabilityProvider`` protocols, bundled contract ids, ``provider_class``
    server       ``ProviderServer``: a provider's NATS subjects (invocations, links, health, shutdown)
    runner       a provider as its own process on the lattice (``run_standalone``)

The host imports this package, never a particular provider; providers import it and the contract, never the host.
"""

from lattice.providers.sdk.base import (
    Provider,
    arg_int,
    arg_list,
    arg_map,
    arg_str,
    describe_link,
    load_provider_class,
    operation,
)

__all__ = [
    "Provider",
    "arg_int",
    "arg_list",
    "arg_map",
    "arg_str",
    "describe_link",
    "load_provider_class",
    "operation",
]
