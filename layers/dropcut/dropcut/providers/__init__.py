"""Provider adapters behind one interface; `make_provider` picks one by its stack name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dropcut.providers.aimlapi import AimlapiProvider
from dropcut.providers.base import (
    EditRequest,
    Element,
    Provider,
    ProviderSettings,
    ProviderTask,
    TaskState,
)
from dropcut.providers.evolink import EvolinkProvider

if TYPE_CHECKING:
    import httpx

PROVIDERS: dict[str, type[Provider]] = {
    AimlapiProvider.name: AimlapiProvider,
    EvolinkProvider.name: EvolinkProvider,
}


#: `provider_for(name)`: the adapter of that name, keyed and ready (built by dropcut.wiring).
ProviderFor = Callable[[str], Provider]


def make_provider(name: str, settings: ProviderSettings, client: httpx.Client) -> Provider:
    """The adapter called `name` ('aimlapi' or 'evolink')."""
    try:
        adapter = PROVIDERS[name]
    except KeyError:
        raise ValueError(
            f"unknown provider {name!r}; expected one of {sorted(PROVIDERS)}"
        ) from None
    return adapter(settings, client)


__all__ = [
    "PROVIDERS",
    "AimlapiProvider",
    "EditRequest",
    "Element",
    "EvolinkProvider",
    "Provider",
    "ProviderFor",
    "ProviderSettings",
    "ProviderTask",
    "TaskState",
    "make_provider",
]
