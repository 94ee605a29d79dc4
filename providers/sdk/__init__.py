"""The provider SDK, installed as ``lattice.providers.sdk``: what a provider is written against and what runs one.

    base         ``Provider`` base class, ``@operation``, argument checks, ``load_provider_class`` /
                 ``provider_class`` (the one lookup: bundled providers from the ``lattice.providers`` entry points)
    server       ``ProviderServer``: a provider's NATS subjects (invocations, links, health, shutdown)
    runner       a provider as its own process on the lattice (``run_standalone``)

The protocols a provider and its runner share (``ProviderContext``, ``CapabilityProvider``) and the bundled
contract ids are the contract's (``lattice.capability``). The host imports this package, never a particular
provider; providers import it and the contract, never the host.
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
