"""The provider host: which manifest serves which protocol, and the actors'
owner. Providers start on first use and stop when the host closes.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import anyio
from anyio.abc import TaskGroup

from gleitzeit_core.errors import ProviderUnavailable
from gleitzeit_core.providers.actor import ProviderActor, served_protocols
from gleitzeit_core.providers.declared import declarations, missing_hint
from gleitzeit_core.providers.manifest import ManifestError, ProviderManifest, load_manifest


def discover_manifests(
    user_dir: str | os.PathLike[str] | None = None, extra: Iterable[str | os.PathLike[str]] = ()
) -> tuple[list[ProviderManifest], list[str]]:
    """Installed providers' manifests (their ``gleitzeit.providers`` declarations), then
    the user's registered ones, then extra paths.

    Returns the manifests and one readable line per bad manifest: one broken
    file never hides the others. A later manifest with the same name replaces
    an earlier one (a user may override a built-in provider).
    """
    installed = declarations()
    paths: list[Path] = [d.manifest for d in installed]
    if user_dir and Path(user_dir).is_dir():
        paths += sorted(Path(user_dir).glob("*.yaml")) + sorted(Path(user_dir).glob("*.yml"))
    paths += [Path(p) for p in extra]
    found: dict[str, ProviderManifest] = {}
    problems: list[str] = [] if installed else [missing_hint()]
    for path in paths:
        try:
            m = load_manifest(path)
        except ManifestError as exc:
            problems.append(str(exc))
            continue
        found[m.name] = m
    return list(found.values()), problems


class ProviderHost:
    """Owns one actor per manifest inside its task group (``async with``)."""

    def __init__(self, manifests: Iterable[ProviderManifest], *, config: Mapping[str, dict[str, Any]] | None = None,
                 log_level: str = "info"):
        self.manifests = {m.name: m for m in manifests}
        self._config = dict(config or {})
        self._log_level = log_level
        self._actors: dict[str, ProviderActor] = {}
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> "ProviderHost":
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        assert self._tg is not None
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as stopper:
                for actor in self._actors.values():
                    stopper.start_soon(actor.stop)
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(*exc)

    def actor(self, name: str) -> ProviderActor:
        if name not in self.manifests:
            raise ProviderUnavailable(f"no provider named {name!r} (registered: {', '.join(sorted(self.manifests)) or 'none'})",
                                      retryable=False)
        if name not in self._actors:
            assert self._tg is not None, "use the host as 'async with'"
            self._actors[name] = ProviderActor(self.manifests[name], self._tg,
                                               config=self._config.get(name), log_level=self._log_level)
        return self._actors[name]

    async def learn_protocols(self) -> list[str]:
        """Start each provider whose manifest names no protocols and record what its
        ``initialize`` says it serves (the provider's own declaration routes it).

        Returns one readable line per provider that could not be started.
        """
        unknown = [m for m in self.manifests.values() if not m.protocols]
        problems: list[str] = []

        async def learn(m: ProviderManifest) -> None:
            try:
                await self.actor(m.name).ensure_started()
            except ProviderUnavailable as exc:
                problems.append(exc.message)
                return
            self.manifests[m.name] = replace(m, protocols=tuple(served_protocols(self._actors[m.name].info)))
            self._actors[m.name].manifest = self.manifests[m.name]

        async with anyio.create_task_group() as tg:
            for m in unknown:
                tg.start_soon(learn, m)
        return problems

    def restarts(self) -> dict[str, int]:
        """Provider name → times its process was started again (safe to call from another thread)."""
        return {name: actor.restarts for name, actor in dict(self._actors).items()}

    def providers_for(self, protocol: str) -> list[ProviderManifest]:
        return [m for m in self.manifests.values() if protocol in m.protocols]

    def actor_for_protocol(self, protocol: str) -> ProviderActor:
        candidates = self.providers_for(protocol)
        if not candidates:
            known = sorted({p for m in self.manifests.values() for p in m.protocols})
            hint = "" if declarations() else f"; {missing_hint()}"
            raise ProviderUnavailable(
                f"no registered provider serves protocol {protocol!r} (available: {', '.join(known) or 'none'}){hint}",
                retryable=False)
        if len(candidates) > 1:
            names = " and ".join(f"{m.name!r} ({m.source})" for m in candidates)
            raise ProviderUnavailable(f"protocol {protocol!r} is offered by both {names}; remove one", retryable=False)
        return self.actor(candidates[0].name)

    async def methods_for(self, protocols: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Start the providers of these protocols (in parallel) and collect their method descriptors."""
        actors = {self.actor_for_protocol(p).name: self.actor_for_protocol(p) for p in set(protocols)}
        errors: list[BaseException] = []

        async def start(a: ProviderActor) -> None:
            try:
                await a.ensure_started()
            except ProviderUnavailable as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for a in actors.values():
                tg.start_soon(start, a)
        if errors:
            raise errors[0]
        out: dict[str, dict[str, Any]] = {}
        for a in actors.values():
            out.update(a.methods)
        return out
