"""Attempts on provider processes of this machine (`gleitzeit run`, and each worker).

``make_host`` is the one place a provider host is put together from the
configuration: installed and registered manifests, the ``enabled`` switches, what
each installed provider is given in ``initialize`` (what its declaration asks for),
and a workflow's own ``providers:``.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

from gleitzeit_core.config import Config, home_dir
from gleitzeit_core.dispatch.base import Methods, OutputHandler
from gleitzeit_core.dispatch.preflight import require_methods, require_protocols
from gleitzeit_core.errors import ConfigError, Problem, ProviderUnavailable, WorkflowInvalid
from gleitzeit_core.providers.declared import declarations
from gleitzeit_core.providers.host import ProviderHost, discover_manifests
from gleitzeit_core.providers.manifest import ManifestError, ProviderManifest, load_manifest
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_sdk.declaration import EngineValue


class LocalDispatcher:
    """``async with LocalDispatcher(host)``: attempts go to the host's provider actors,
    which start each provider on first use and stop them all on exit.

    The timeout clock is the actor's: it starts once the provider runs and one of
    its in-flight slots is free (``ProviderActor.request``)."""

    secrets_on_workers = False

    def __init__(self, host: ProviderHost):
        self.host = host

    async def __aenter__(self) -> LocalDispatcher:
        await self.host.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self.host.__aexit__(*exc)

    async def preflight(self, workflow: Workflow) -> Methods:
        """Start the providers the workflow needs and check every method exists."""
        protocols = {t.protocol for t in workflow.tasks}
        return require_methods(workflow, await self.serve(protocols, workflow))

    async def serve(self, protocols: Iterable[str], workflow: Workflow | None = None) -> dict[str, dict[str, Any]]:
        """Start the providers of ``protocols``; their method descriptors.

        Raises WorkflowInvalid when one has no provider (located in ``workflow``
        when given), ProviderUnavailable when a provider cannot start."""
        protocols = set(protocols)
        if any(not self.host.providers_for(p) for p in protocols):
            await self.host.learn_protocols()  # manifests without `protocols:`: ask the providers themselves
        unavailable: dict[str, str] = {}
        for proto in sorted(protocols):
            try:
                self.host.actor_for_protocol(proto)
            except ProviderUnavailable as exc:
                unavailable[proto] = exc.message
        if workflow is not None:
            require_protocols(workflow, unavailable)
        elif unavailable:
            raise WorkflowInvalid([Problem(p, m) for p, m in unavailable.items()])
        return await self.host.methods_for(protocols)

    def protocols(self) -> list[str]:
        """Every protocol the host's manifests declare."""
        return sorted({p for m in self.host.manifests.values() for p in m.protocols})

    def capacity(self, protocol: str) -> int:
        return self.host.actor_for_protocol(protocol).capacity

    def providers(self, workflow: Workflow) -> dict[str, Any]:
        return self.providers_of({t.protocol for t in workflow.tasks})

    def providers_of(self, protocols: Iterable[str]) -> dict[str, Any]:
        """protocol → {name, version} from the handshake of the provider serving it."""
        return {p: self.host.actor_for_protocol(p).info.get("provider") for p in protocols}

    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: OutputHandler) -> Any:
        return await self.call(task.protocol, task.method, params, meta=meta, timeout=timeout, on_output=on_output)

    async def call(self, protocol: str, method: str, params: dict[str, Any], *, meta: dict[str, Any],
                   timeout: float | None, on_output: OutputHandler) -> Any:
        """One attempt by protocol and method (a worker has a queued job, not a TaskSpec)."""
        actor = self.host.actor_for_protocol(protocol)
        return await actor.request(method, params, meta=meta, timeout=timeout, on_output=on_output)


def provider_config(config: Config) -> dict[str, dict[str, Any]]:
    """What each installed provider receives in `initialize` params.config: what its
    declaration's ``initialize`` names (gleitzeit_sdk/declaration.py), by provider name."""
    out: dict[str, dict[str, Any]] = {}
    for decl in declarations():
        tree: dict[str, Any] = {}
        for path, source in decl.initialize.items():
            *parents, leaf = path.split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = _initialize_value(config, decl.name, source)
        out[decl.name] = tree
    return out


def _initialize_value(config: Config, name: str, source: str | EngineValue) -> Any:
    if source is EngineValue.PRIVATE_PATHS:
        return list(config.private_paths())
    if source is EngineValue.STATE_DIR:
        return str(home_dir() / f"{name}-provider")
    return config.values.get(source)


def enabled(config: Config, manifest: ProviderManifest) -> bool:
    """``providers.<name>.enabled`` (default true)."""
    return bool(config.values.get(f"providers.{manifest.name}.enabled", True))


def make_host(config: Config, workflow: Workflow | None = None, *, extra: Sequence[str] = (),
              only: Sequence[str] | None = None) -> ProviderHost:
    """Built-in and registered providers (plus ``extra`` manifest files), the enabled
    ones or just those named in ``only``, plus the ones the workflow brings (if the
    loader let it). Raises ConfigError for a name in ``only`` that no manifest has."""
    manifests, problems = discover_manifests(config["providers.directory"], extra)
    for line in problems:
        logging.getLogger("gleitzeit.provider").warning("%s", line)
    if only is not None:
        unknown = sorted(set(only) - {m.name for m in manifests})
        if unknown:
            raise ConfigError(f"--providers: unknown provider(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(m.name for m in manifests))})")
        chosen = [m for m in manifests if m.name in only]
    else:
        chosen = [m for m in manifests if enabled(config, m)]
    if workflow is not None and workflow.providers:
        chosen += workflow_manifests(workflow, manifests)
    return ProviderHost(chosen, config=provider_config(config), log_level=provider_log_level(config))


def provider_log_level(config: Config) -> str:
    """Initialize's ``logLevel``: at least ``info`` -- a provider's `$/log` records are kept with
    the attempt's log lines -- while the console still shows only ``logging.level`` and above."""
    return "debug" if str(config["logging.level"]).lower() == "debug" else "info"


def workflow_manifests(workflow: Workflow, registered: list[ProviderManifest]) -> list[ProviderManifest]:
    """The manifests a workflow's ``providers:`` names; raises WorkflowInvalid for any that is
    unreadable or would take the name or a protocol of a built-in or registered provider.

    The loader has already refused paths outside the workflow folder and files of runners
    who did not opt in (``--allow-providers``), so only those files are read here.
    """
    names = {m.name: m for m in registered}
    protocols = {p: m for m in registered for p in m.protocols}
    found: list[ProviderManifest] = []
    problems: list[Problem] = []
    for path in workflow.providers:
        try:
            m = load_manifest(path)
        except ManifestError as exc:
            problems.append(Problem(workflow.source_path or path, str(exc)))
            continue
        taken = next((p for p in m.protocols if p in protocols), None)
        if m.name in names or taken is not None:
            what, owner = (f"name {m.name!r}", names[m.name]) if m.name in names else (
                f"protocol {taken!r}", protocols[taken])
            problems.append(Problem(path, f"provider {m.name!r} from the workflow would take the {what} of "
                                          f"provider {owner.name!r} ({owner.source}); a workflow cannot replace "
                                          f"a built-in or registered provider: rename it"))
            continue
        names[m.name] = m
        protocols.update({p: m for p in m.protocols})
        found.append(m)
    if problems:
        raise WorkflowInvalid(problems)
    return found
