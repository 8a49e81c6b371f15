"""The providers from a script: list them and ask one how it is (docs/api.md).

These are what `gleitzeit provider list|health` do; those commands call them. Each
provider is started briefly (handshake, ping, methods; ``health`` for one), every probe
under its own deadline: one that hangs or crashes is a ``ProviderProbe`` saying so::

    listing = await gz.providers()
    print([(p.name, p.state) for p in listing.probes])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gleitzeit_core._api.boundary import guarded
from gleitzeit_core._api.engine import resolve_config
from gleitzeit_core.config import Config
from gleitzeit_core.dispatch.probe import Probe, manifests, probe_all
from gleitzeit_core.errors import ProviderNotFound


@dataclass(frozen=True)
class ProviderListing:
    """The built-in and registered providers, probed, and one line per manifest that could
    not be read (listed, not fatal)."""

    probes: list[Probe]
    invalid: list[str]


@guarded
async def providers(*, config: Config | Mapping[str, Any] | None = None) -> ProviderListing:
    """Every built-in and registered provider, each started briefly to list its methods
    (`gleitzeit provider list`); a disabled one is listed and not started.

    >>> [(p.name, p.state, p.methods) for p in (await gz.providers()).probes][0]
    ('python', 'ok', ['python/execute'])
    """
    cfg = resolve_config(config)
    found, problems = manifests(cfg)
    return ProviderListing(await probe_all(cfg, found, health=False), problems)


@guarded
async def provider_health(name: str, *, config: Config | Mapping[str, Any] | None = None) -> Probe:
    """Start provider ``name`` and ask it how it is: handshake, ping latency, methods and its
    ``health`` answer (`gleitzeit provider health`); ``state`` is "ok" only when it is usable.
    ``ProviderNotFound`` for a name no manifest has.

    >>> probe = await gz.provider_health("python")
    >>> probe.state, probe.health["status"]
    ('ok', 'ok')
    """
    cfg = resolve_config(config)
    found, _ = manifests(cfg)
    chosen = [m for m in found if m.name == name]
    if not chosen:
        raise ProviderNotFound(f"no provider named {name!r} (known: {', '.join(sorted(m.name for m in found)) or 'none'})")
    return (await probe_all(cfg, chosen, health=True))[0]
