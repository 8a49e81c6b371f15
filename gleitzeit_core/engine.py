"""One run: preflight on the dispatcher, create the run record, schedule, report.

The glue between the loaded workflow, the dispatcher, the store and the
scheduler; the CLI and the Python API both come through here, and a local run
takes the same path as one on the worker pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from gleitzeit_core.cache.entries import CacheBound
from gleitzeit_core.cache.lookup import CacheMode, ResultCache
from gleitzeit_core.config import Config
from gleitzeit_core.dispatch.base import Dispatcher
from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.liveness import HEARTBEAT_S, this_process
from gleitzeit_core.scheduler.events import Observer, no_observer
from gleitzeit_core.secret_fill import SecretsDispatcher, values_for
from gleitzeit_core.secret_sources import AllowList
from gleitzeit_core.subworkflow_dispatch import GroupDispatcher
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store import maps
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, TaskRecord, new_id, now
from gleitzeit_core.tracing.context import tracing_enabled
from gleitzeit_core.workflow.inputs import bind
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow.outline import outline
from gleitzeit_core.workspace import workspace_for


@dataclass
class RunOutcome:
    run: RunRecord
    tasks: list[TaskRecord]  # in workflow order
    workspace: str | None = None  # where python tasks' relative writes landed
    items: dict[str, list[TaskRecord]] = field(default_factory=dict)  # for_each tasks' items, by map key


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


async def run_workflow(
    workflow: Workflow,
    *,
    config: Config,
    store: Store,
    dispatcher: Dispatcher,
    observer: Observer = no_observer,
    on_created: Callable[[RunRecord], None] | None = None,
    existing: tuple[RunRecord, dict[str, TaskRecord]] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Run (or, with ``existing``, resume) a workflow to its end on ``dispatcher``
    (entered by the caller). Raises WorkflowInvalid before anything is written when
    the dispatcher's preflight refuses it, or a secret is missing."""
    if workflow.input_values is None:  # no values given: the defaults, or exit 2 for a required input
        workflow = bind(workflow, {})
    # Worker pools fill secrets from the workers' environment; here a missing one is exit 2 now.
    secret_values = None if dispatcher.secrets_on_workers else values_for(
        workflow, secrets, AllowList.of(config["secrets.allow"]))
    dispatch = GroupDispatcher(SecretsDispatcher(dispatcher, secret_values))  # `dispatcher` is entered already
    methods = await dispatch.preflight(workflow)
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
        max_map_items=int(config["execution.max_map_items"]),
    )
    if any(t.cache for t in workflow.tasks) or workflow.cache:
        providers = dispatch.providers(workflow)
        options = replace(options, cache=ResultCache(store, workflow, methods, providers,
                                                     mode=CacheMode(config["cache.mode"]),
                                                     private=config.private_paths(),
                                                     bound=CacheBound.of(config)))
    scheduler = Scheduler(workflow, run, tasks, store, dispatch, options, observer)
    final = await scheduler.execute()
    if tracing_enabled(config):  # the SDK is imported only now, and only then
        await _export_trace(store, run_id)
    return RunOutcome(final, [scheduler.tasks[t.key] for t in workflow.tasks], workspace,
                      maps.split(scheduler.tasks.values())[1])
