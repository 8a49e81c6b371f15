"""Gleitzeit: local-first, polyglot workflow orchestrator.

The public Python API (docs/api.md); everything else in the package is internal::

    import gleitzeit_core as gz

    wf = gz.Workflow(name="hello", tasks=[
        gz.Task(name="square", method="python/execute", parameters={"code": "result = 7 * 7"}),
    ])
    result = gz.run(wf, backend="memory")
    print(result.status.value, result.tasks["square"].result)

The store classes (``SQLiteBackend``, ``RedisBackend``, ``InMemoryBackend``),
``ScriptedDispatcher`` / ``ScriptedCall`` (a dispatcher for tests) and
``FailureKind`` load on first use: not every command needs what they import.
"""

# The internal module gleitzeit_core.resume is loaded first: importing it later would
# rebind the package attribute ``resume`` (the function below) to the module.
import gleitzeit_core.resume  # noqa: F401  isort: skip
from gleitzeit_core._api.cache import CacheExplanation as CacheExplanation
from gleitzeit_core._api.cache import cache_entries as cache_entries
from gleitzeit_core._api.cache import clear_cache as clear_cache
from gleitzeit_core._api.cache import explain_cache as explain_cache
from gleitzeit_core._api.engine import ExecutionEngine as ExecutionEngine
from gleitzeit_core._api.entry import resume as resume
from gleitzeit_core._api.entry import resume_async as resume_async
from gleitzeit_core._api.entry import run as run
from gleitzeit_core._api.entry import run_async as run_async
from gleitzeit_core._api.events import EventStream as EventStream
from gleitzeit_core._api.providers import ProviderListing as ProviderListing
from gleitzeit_core._api.providers import provider_health as provider_health
from gleitzeit_core._api.providers import providers as providers
from gleitzeit_core._api.result import RunResult as RunResult
from gleitzeit_core._api.traces import export_trace as export_trace
from gleitzeit_core._api.runs import CancelOutcome as CancelOutcome
from gleitzeit_core._api.runs import Cancellation as Cancellation
from gleitzeit_core._api.runs import RunDetails as RunDetails
from gleitzeit_core._api.runs import TaskDetails as TaskDetails
from gleitzeit_core._api.runs import cancel_run as cancel_run
from gleitzeit_core._api.runs import collect_garbage as collect_garbage
from gleitzeit_core._api.runs import delete_runs as delete_runs
from gleitzeit_core._api.runs import get_run as get_run
from gleitzeit_core._api.runs import list_runs as list_runs
from gleitzeit_core._api.runs import list_tasks as list_tasks
from gleitzeit_core._api.runs import logs as logs
from gleitzeit_core._api.runs import run_details as run_details
from gleitzeit_core._api.runs import task_details as task_details
from gleitzeit_core._api.result import TaskResult as TaskResult
from gleitzeit_core._api.workflow import Task as Task
from gleitzeit_core._api.validate import Plan as Plan
from gleitzeit_core._api.validate import ProviderUse as ProviderUse
from gleitzeit_core._api.validate import validate as validate
from gleitzeit_core._api.validate import validate_async as validate_async
from gleitzeit_core._api.workflow import Workflow as Workflow
from gleitzeit_core.cache.entries import CacheEntry as CacheEntry
from gleitzeit_core.config import Config as Config
from gleitzeit_core.dispatch.probe import Probe as ProviderProbe
from gleitzeit_core.config import load_config as load_config
from gleitzeit_core.dispatch.base import Dispatcher as Dispatcher
from gleitzeit_core.retention import Removal as Removal
from gleitzeit_core.retention import RemovalOutcome as RemovalOutcome
from gleitzeit_core.errors import AsyncioRequired as AsyncioRequired
from gleitzeit_core.errors import ConfigError as ConfigError
from gleitzeit_core.errors import EventsLost as EventsLost
from gleitzeit_core.errors import GleitzeitError as GleitzeitError
from gleitzeit_core.errors import InternalError as InternalError
from gleitzeit_core.errors import Problem as Problem
from gleitzeit_core.errors import ProviderError as ProviderError
from gleitzeit_core.errors import ProviderNotFound as ProviderNotFound
from gleitzeit_core.errors import ProviderUnavailable as ProviderUnavailable
from gleitzeit_core.errors import RunFailed as RunFailed
from gleitzeit_core.errors import RunNotFound as RunNotFound
from gleitzeit_core.errors import RunStillRunning as RunStillRunning
from gleitzeit_core.errors import StoreUnavailable as StoreUnavailable
from gleitzeit_core.errors import SubstitutionError as SubstitutionError
from gleitzeit_core.errors import TaskNotFound as TaskNotFound
from gleitzeit_core.errors import TraceExportFailed as TraceExportFailed
from gleitzeit_core.errors import WorkflowChanged as WorkflowChanged
from gleitzeit_core.errors import WorkflowInvalid as WorkflowInvalid
from gleitzeit_core.scheduler.events import Event as Event
from gleitzeit_core.scheduler.events import RunUpdated as RunUpdated
from gleitzeit_core.scheduler.events import TaskOutput as TaskOutput
from gleitzeit_core.scheduler.events import TaskUpdated as TaskUpdated
from gleitzeit_core.store.base import Store as Store
from gleitzeit_core.store.log_lines import LogLine as LogLine
from gleitzeit_core.store.log_lines import LogStream as LogStream
from gleitzeit_core.store.records import AttemptRecord as AttemptRecord
from gleitzeit_core.store.records import RunRecord as RunRecord
from gleitzeit_core.store.records import RunStatus as RunStatus
from gleitzeit_core.store.records import TaskRecord as TaskRecord
from gleitzeit_core.store.records import TaskStatus as TaskStatus
from gleitzeit_core._version import __version__ as __version__


_LAZY = {"InMemoryBackend": "gleitzeit_core.store.memory", "SQLiteBackend": "gleitzeit_core.store.sqlite",
         "RedisBackend": "gleitzeit_core.store.redis", "ScriptedDispatcher": "gleitzeit_core.dispatch.scripted",
         "ScriptedCall": "gleitzeit_core.dispatch.scripted", "FailureKind": "gleitzeit_sdk.codes"}


def __getattr__(name: str) -> object:
    """The store classes load on first use (redis-py alone costs ~0.1 s of start-up), the
    scripted dispatcher and FailureKind too (they load the provider SDK's codes)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gleitzeit_core' has no attribute {name!r}")


__all__ = (
    "AsyncioRequired",
    "AttemptRecord",
    "CacheEntry",
    "CacheExplanation",
    "CancelOutcome",
    "Cancellation",
    "Config",
    "ConfigError",
    "Dispatcher",
    "Event",
    "EventStream",
    "EventsLost",
    "ExecutionEngine",
    "FailureKind",
    "GleitzeitError",
    "InMemoryBackend",
    "InternalError",
    "LogLine",
    "LogStream",
    "Plan",
    "Problem",
    "ProviderError",
    "ProviderListing",
    "ProviderNotFound",
    "ProviderProbe",
    "ProviderUnavailable",
    "ProviderUse",
    "RedisBackend",
    "Removal",
    "RemovalOutcome",
    "RunDetails",
    "RunFailed",
    "RunNotFound",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "RunStillRunning",
    "RunUpdated",
    "SQLiteBackend",
    "ScriptedCall",
    "ScriptedDispatcher",
    "Store",
    "StoreUnavailable",
    "SubstitutionError",
    "Task",
    "TaskDetails",
    "TaskNotFound",
    "TaskOutput",
    "TaskRecord",
    "TaskResult",
    "TaskStatus",
    "TaskUpdated",
    "TraceExportFailed",
    "Workflow",
    "WorkflowChanged",
    "WorkflowInvalid",
    "__version__",
    "cache_entries",
    "cancel_run",
    "clear_cache",
    "collect_garbage",
    "delete_runs",
    "explain_cache",
    "export_trace",
    "get_run",
    "list_runs",
    "list_tasks",
    "load_config",
    "logs",
    "provider_health",
    "providers",
    "resume",
    "resume_async",
    "run",
    "run_async",
    "run_details",
    "task_details",
    "validate",
    "validate_async",
)
