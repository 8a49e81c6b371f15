"""One `gleitzeit run`: preflight, create the run record, schedule, report.

The glue between the loaded workflow, the provider host, the store and the
scheduler; the CLI and the Python API both come through here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from gleitzeit_core.cache.lookup import CacheMode, ResultCache
from gleitzeit_core.config import Config, home_dir
from gleitzeit_core.errors import Problem, ProviderUnavailable, StoreUnavailable, WorkflowInvalid
from gleitzeit_core.liveness import HEARTBEAT_S, this_process
from gleitzeit_core.providers.host import ProviderHost, discover_manifests
from gleitzeit_core.providers.manifest import ManifestError, ProviderManifest, load_manifest
from gleitzeit_core.scheduler.events import Observer, no_observer
from gleitzeit_core.secret_fill import SecretsDispatcher, values_for
from gleitzeit_core.subworkflow_dispatch import GroupDispatcher, provider_tasks
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, TaskRecord, new_id, now
from gleitzeit_core.tracing.context import tracing_enabled
from gleitzeit_core.workflow.inputs import bind
from gleitzeit_core.workflow.legacy import is_stub, stub_problem
from gleitzeit_core.workflow.loader import check_methods
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.outline import outline
from gleitzeit_core.workflow.params_check import check_params

if TYPE_CHECKING:
    from gleitzeit_core.distributed.dispatcher import RedisDispatcher


@dataclass
class RunOutcome:
    run: RunRecord
    tasks: list[TaskRecord]  # in workflow order
    workspace: str | None = None  # where python tasks' relative writes landed


class LocalDispatcher:
    """Attempts go to provider processes on this machine."""

    def __init__(self, host: ProviderHost):
        self.host = host

    def capacity(self, protocol: str) -> int:
        return self.host.actor_for_protocol(protocol).capacity

    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: Callable[[str, str], None]) -> Any:
        actor = self.host.actor_for_protocol(task.protocol)
        return await actor.request(task.method, params, meta=meta, timeout=timeout, on_output=on_output)


def provider_config(config: Config) -> dict[str, dict[str, Any]]:
    """What each built-in provider receives in `initialize` params.config."""
    ollama = config.section("providers.ollama")
    ollama["default_models"] = config.section("default_models")
    ollama["hidden"] = list(config.private_paths())  # task files are never read from here
    return {
        "python": {"sandbox": {"require": config["sandbox.require"], "python": config["sandbox.python"],
                               "state_dir": str(home_dir() / "python-provider"), "hidden": list(config.private_paths()),
                               "max_disk_mb": config["sandbox.max_disk_mb"]}},
        "ollama": ollama,
    }


def make_host(config: Config, workflow: Workflow | None = None) -> ProviderHost:
    """Built-in and registered providers, plus the ones the workflow brings (if the loader let it)."""
    manifests, problems = discover_manifests(config["providers.directory"])
    for line in problems:
        logging.getLogger("gleitzeit.provider").warning("%s", line)
    enabled = [m for m in manifests if config.values.get(f"providers.{m.name}.enabled", True)]
    if workflow is not None and workflow.providers:
        enabled += workflow_manifests(workflow, manifests)
    return ProviderHost(enabled, config=provider_config(config), log_level=str(config["logging.level"]))


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


async def preflight(workflow: Workflow, host: ProviderHost) -> dict[str, dict[str, Any]]:
    """Start the providers the workflow needs and check every method exists.

    Raises WorkflowInvalid (nothing is written) when a method is not offered.
    """
    protocols = {t.protocol for t in workflow.tasks}
    if any(not host.providers_for(p) for p in protocols):
        await host.learn_protocols()  # manifests without `protocols:`: ask the providers themselves
    unavailable: dict[str, str] = {}
    for proto in sorted(protocols):
        try:
            host.actor_for_protocol(proto)
        except ProviderUnavailable as exc:
            unavailable[proto] = exc.message
    stubs = stub_problem((t for t in workflow.tasks if t.protocol in unavailable), workflow.source_path or workflow.name)
    explained = {p for p in unavailable if stubs and all(is_stub(t) for t in workflow.tasks if t.protocol == p)}
    problems = [stubs] if stubs else []
    for proto, message in unavailable.items():
        if proto not in explained:
            where = next(str(t.pos or workflow.source_path or workflow.name) for t in workflow.tasks if t.protocol == proto)
            problems.append(Problem(where, message))
    if problems:
        raise WorkflowInvalid(problems)
    methods = await host.methods_for(protocols)
    problems = check_methods(workflow, methods) + check_params(workflow, methods)
    if problems:
        raise WorkflowInvalid(problems)
    return methods


def host_providers(host: ProviderHost, workflow: Workflow) -> dict[str, dict[str, Any] | None]:
    """protocol → the provider's name and version from its handshake (the cache key's provider part)."""
    return {p: host.actor_for_protocol(p).info.get("provider") for p in {t.protocol for t in workflow.tasks}}


def new_run(workflow: Workflow) -> tuple[RunRecord, dict[str, TaskRecord]]:
    run = RunRecord(run_id=new_id("run"), workflow_id=workflow.id, workflow_name=workflow.name,
                    workflow_path=workflow.source_path, workflow_hash=workflow.source_hash,
                    definition=outline(workflow))
    tasks = {
        t.key: TaskRecord(id=new_id("task"), run_id=run.run_id, key=t.key, name=t.name, protocol=t.protocol,
                          method=t.method, workflow_name=workflow.name, priority=int(t.priority))
        for t in workflow.tasks
    }
    return run, tasks


async def _export_trace(store: Store, run_id: str) -> None:
    try:
        from gleitzeit_core.tracing.export import export_quietly
    except ImportError as exc:
        logging.getLogger("gleitzeit.tracing").warning(
            "tracing is on but OpenTelemetry is not installed (%s): pip install 'gleitzeit[otel]'", exc.name)
        return
    await export_quietly(store, run_id)


def workspace_path(config: Config, run_id: str) -> Path:
    """Where a run's workspace lives: computed from the run id, never stored."""
    return Path(config["workspace.directory"]).expanduser() / run_id


def workspace_for(config: Config, run_id: str) -> str:
    """The run's working folder, `workspace.directory/<run id>`. Private (0700), as are the
    folder holding all workspaces and GLEITZEIT_HOME with the store: the sandbox reaches its
    workspace through a bind mount, never by other users' permissions."""
    path = workspace_path(config, run_id)
    for folder in (home_dir(), path.parent, path):
        _private_dir(folder)
    return str(path)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


async def run_workflow(
    workflow: Workflow,
    *,
    config: Config,
    store: Store,
    host: ProviderHost | None = None,
    observer: Observer = no_observer,
    on_created: Callable[[RunRecord], None] | None = None,
    existing: tuple[RunRecord, dict[str, TaskRecord]] | None = None,
    dispatcher: RedisDispatcher | None = None,
    secrets: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Run (or, with ``existing``, resume) a workflow to its end: on ``host``'s local
    providers, or with ``dispatcher`` on a worker pool."""
    if workflow.input_values is None:  # no values given: the defaults, or exit 2 for a required input
        workflow = bind(workflow, {})
    # Worker pools fill secrets from the workers' environment; here a missing one is exit 2 now.
    secret_values = None if dispatcher is not None else values_for(workflow, secrets)
    if dispatcher is not None:
        methods = await dispatcher.preflight(provider_tasks(workflow))
    else:
        assert host is not None, "run_workflow needs a host or a dispatcher"
        methods = await preflight(provider_tasks(workflow), host)
    owner = this_process()
    if existing is None:
        run, tasks = new_run(workflow)
        owner.stamp(run)
        await store.create_run(run, list(tasks.values()))
    else:
        run, tasks = existing
        owner.stamp(run)
    if on_created is not None:
        on_created(run)
    run_id = run.run_id

    async def heartbeat() -> bool:
        run.heartbeat_at = now()  # so a later save_run of this record keeps it current
        cancel = await store.heartbeat(run_id, run.heartbeat_at)
        if cancel is None:
            raise StoreUnavailable(f"{store.kind} backend {store.address}: run {run_id} is no longer in the "
                                   "store (deleted, or the store was replaced); stopping")
        return cancel

    workspace = workspace_for(config, run.run_id)
    options = RunOptions(
        max_concurrent=min(int(config["execution.max_concurrent_tasks"]),
                           workflow.max_concurrent_tasks or int(config["execution.max_concurrent_tasks"])),
        workspace=workspace,
        code_params={name: dict(d.get("codeParams") or {}) for name, d in methods.items()},
        idempotent=frozenset(name for name, d in methods.items() if d.get("idempotent") is True),
        heartbeat=heartbeat,
        heartbeat_interval=HEARTBEAT_S,
    )
    if any(t.cache for t in workflow.tasks) or workflow.cache:
        providers = dispatcher.providers() if dispatcher is not None else host_providers(host, provider_tasks(workflow))
        options = replace(options, cache=ResultCache(store, workflow, methods, providers,
                                                     mode=CacheMode(config["cache.mode"]),
                                                     private=config.private_paths()))
    dispatch = GroupDispatcher(SecretsDispatcher(dispatcher or LocalDispatcher(host), secret_values))
    scheduler = Scheduler(workflow, run, tasks, store, dispatch, options, observer)
    final = await scheduler.execute()
    if tracing_enabled(config):  # the SDK is imported only now, and only then
        await _export_trace(store, run_id)
    return RunOutcome(final, [scheduler.tasks[t.key] for t in workflow.tasks], workspace)
