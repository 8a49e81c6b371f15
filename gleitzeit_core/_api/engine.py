"""``ExecutionEngine``: one store and one set of warm provider processes for many runs.

A web service or a notebook opens it once; every ``run`` on it reuses the
provider processes the earlier runs started (they start on first use and stop
when the engine closes). A workflow that names its own ``providers:`` gets a
provider host of its own for that run, so it cannot replace a provider other
runs share. The CLI drives its runs through ``execute`` here as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Union

from gleitzeit_core._api.events import DEFAULT_BUFFER, EventStream
from gleitzeit_core._api.result import RunResult
from gleitzeit_core._api.workflow import Workflow, as_spec
from gleitzeit_core.config import Config, load_config
from gleitzeit_core.dispatch.base import Dispatcher
from gleitzeit_core._api.boundary import boundary
from gleitzeit_core.errors import AsyncioRequired, ConfigError, GleitzeitError
from gleitzeit_core.scheduler.events import Event, Observer
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, TaskRecord
from gleitzeit_core.workflow import model
from gleitzeit_core.workflow.inputs import Given, bind

if TYPE_CHECKING:
    from gleitzeit_core.engine import RunOutcome

#: A workflow as the API accepts it: built in code, loaded, or a file path.
WorkflowLike = Union[Workflow, model.Workflow, str, "os.PathLike[str]"]
#: ``backend=``: a backend name ("sqlite", "memory", "redis") or a Store object.
BackendLike = Union[str, Store, None]
Existing = tuple[RunRecord, dict[str, TaskRecord]]


def resolve_config(config: Config | Mapping[str, Any] | None, *, backend: BackendLike = None,
                   max_concurrent: int | None = None) -> Config:
    """defaults < config file < GLEITZEIT_* env < ``config`` (a Config, or a mapping of keys) < arguments."""
    base = config if isinstance(config, Config) else load_config().with_overrides(config or {})
    return base.with_overrides({"persistence.backend": backend if isinstance(backend, str) else None,
                                "execution.max_concurrent_tasks": max_concurrent})


class ExecutionEngine:
    """Long-lived runner: ``async with ExecutionEngine() as engine: await engine.run(wf)``.

    ``config``: a ``Config`` or a mapping of configuration keys
    (``{"execution.max_concurrent_tasks": 8}``) over the config file and
    ``GLEITZEIT_*`` environment. ``backend``: "sqlite" (default), "memory",
    "redis" or a Store object, which the engine opens and closes.
    ``distributed``: run attempts on `gleitzeit worker` processes (Redis).
    ``dispatcher``: where attempts go instead (a ``ScriptedDispatcher`` in tests);
    the engine enters and exits it.

    asyncio only (the stores are): under trio use ``run_async``.
    """

    def __init__(self, config: Config | Mapping[str, Any] | None = None, *, backend: BackendLike = None,
                 max_concurrent: int | None = None, distributed: bool = False,
                 dispatcher: Dispatcher | None = None, event_buffer: int = DEFAULT_BUFFER):
        self.config = resolve_config(config, backend=backend, max_concurrent=max_concurrent)
        cfg = self.config
        self.store: Store = backend if isinstance(backend, Store) else cfg.make_store()
        if distributed and self.store.kind != "redis":
            raise ConfigError("distributed runs need the redis backend (backend='redis')")
        if distributed and dispatcher is not None:
            raise ConfigError("give distributed=True or a dispatcher, not both")
        self.distributed = distributed
        self._given = dispatcher
        self._event_buffer = event_buffer
        self._subscribers: set[EventStream] = set()
        self._stack: AsyncExitStack | None = None
        self._dispatcher: Any = None  # the Dispatcher every run on this engine shares

    async def __aenter__(self) -> ExecutionEngine:
        require_asyncio("ExecutionEngine")
        from gleitzeit_core.dispatch.factory import make_dispatcher

        with boundary():
            stack = AsyncExitStack()
            await stack.__aenter__()
            try:
                await stack.enter_async_context(self.store)
                self._dispatcher = await stack.enter_async_context(
                    self._given or make_dispatcher(self.config, distributed=self.distributed))
            except BaseException as exc:
                await stack.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            self._stack = stack
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for sub in list(self._subscribers):
            sub.close()
        stack, self._stack = self._stack, None
        if stack is not None:
            with boundary():
                await stack.__aexit__(*exc)

    def events(self) -> EventStream:
        """Live events of every run on this engine from now on:
        ``async with engine.events() as events: async for event in events: …``"""
        return EventStream(self._subscribers, self._event_buffer)

    async def run(self, workflow: WorkflowLike, *, params: Mapping[str, Any] | None = None,
                  secrets: Mapping[str, str] | None = None,
                  on_event: Callable[[Event], Any] | None = None) -> RunResult:
        """Run a workflow to its end. A failed task does not raise: see ``RunResult.status``
        (or ``raise_for_status()``); bad input raises ``WorkflowInvalid`` before anything is stored.
        ``params`` are the values of the workflow's ``inputs:`` (typed: no text conversion);
        ``secrets`` the values of its ``secrets:`` over the environment (never stored)."""
        with boundary():
            spec = as_spec(workflow, self.config.allowance())
            given = {k: Given(v, label=f"params[{k!r}]") for k, v in (params or {}).items()}
            spec = bind(spec, given)
            outcome = await self.execute(spec, observer=on_event, secrets=secrets)
            return await RunResult.from_outcome(outcome).load_results(self.store)

    async def resume(self, run_id: str | None = None, *, workflow: WorkflowLike | None = None,
                     force: bool = False, secrets: Mapping[str, str] | None = None,
                     on_event: Callable[[Event], Any] | None = None) -> RunResult:
        """Pick up an interrupted or failed run: completed tasks keep their results, the rest run.
        ``workflow`` is needed for a run whose workflow was built in code (no file on record)."""
        from gleitzeit_core.resume import load_for_resume

        with boundary():
            given = None if workflow is None or isinstance(workflow, (str, os.PathLike)) else as_spec(workflow)
            path = os.fspath(workflow) if isinstance(workflow, (str, os.PathLike)) else None
            state = await load_for_resume(self.store, run_id=run_id, workflow_path=path, force=force, workflow=given)
            outcome = await self.execute(state.workflow, existing=(state.run, state.tasks), observer=on_event,
                                         secrets=secrets)
            return await RunResult.from_outcome(outcome).load_results(self.store)

    async def cancel(self, run_id: str) -> bool:
        """Ask for a run to stop, on this engine or in another process using the same store
        (``gz.cancel_run``, as `gleitzeit workflow cancel`): it ends ``cancelled`` within about
        a second, at once when its engine had died. False when the run has already finished.
        Runs on the memory store are cancelled by cancelling the task that awaits ``run()``
        (nothing else can reach that store)."""
        from gleitzeit_core._api.runs import CancelOutcome, cancel_run

        with boundary():
            if self.store.kind == "memory":
                raise ConfigError("cancel() needs a shared store (sqlite or redis); on the memory store "
                                  "cancel the task that awaits engine.run()")
            return (await cancel_run(self.store, run_id)).outcome is not CancelOutcome.FINISHED

    async def result(self, run_id: str) -> RunResult:
        """A run as stored now (it may still be running elsewhere)."""
        from gleitzeit_core.workspace import workspace_path

        folder = workspace_path(self.config, run_id)
        with boundary():
            return await RunResult.from_store(self.store, run_id, workspace=str(folder) if folder.is_dir() else None)

    async def execute(self, workflow: model.Workflow, *, existing: Existing | None = None,
                      observer: Observer | Callable[[Event], Any] | None = None,
                      on_created: Callable[[RunRecord], None] | None = None,
                      secrets: Mapping[str, str] | None = None) -> RunOutcome:
        """The one way a run is driven (the CLI's too): errors are not translated here."""
        from gleitzeit_core.dispatch.factory import make_dispatcher
        from gleitzeit_core.engine import run_workflow

        if self._stack is None:
            raise GleitzeitError("use the engine as 'async with ExecutionEngine(...) as engine'")

        def observe(event: Event) -> None:
            if observer is not None:
                observer(event)
            for sub in list(self._subscribers):
                sub.publish(event)

        common = dict(config=self.config, store=self.store, observer=observe, on_created=on_created,
                      existing=existing, secrets=secrets)
        if workflow.providers and not self.distributed and self._given is None:  # a dispatcher of its own
            async with make_dispatcher(self.config, workflow=workflow) as own:
                return await run_workflow(workflow, dispatcher=own, **common)
        return await run_workflow(workflow, dispatcher=self._dispatcher, **common)


def require_asyncio(what: str) -> None:
    if running_trio():
        raise AsyncioRequired(f"{what} runs on asyncio only (redis.asyncio and the provider host are asyncio-only); "
                              "under trio use 'await gleitzeit_core.run_async(...)', which runs the engine "
                              "on an asyncio loop in a worker thread")


def running_trio() -> bool:
    import sys

    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
