"""The public surface is curated: one flat namespace, pinned here (as httpx and anyio do)."""

from __future__ import annotations

import subprocess
import sys

import gleitzeit_core

PUBLIC = (
    "AsyncioRequired", "AttemptRecord", "CacheEntry", "CacheExplanation", "CancelOutcome", "Cancellation", "Config", "ConfigError",
    "Dispatcher", "Event", "EventStream", "EventsLost", "ExecutionEngine", "FailureKind", "GleitzeitError",
    "InMemoryBackend", "InternalError", "LogLine", "LogStream", "Plan", "Problem", "ProviderError", "ProviderListing", "ProviderNotFound", "ProviderProbe", "ProviderUnavailable", "ProviderUse", "RedisBackend", "Removal",
    "RemovalOutcome", "RunDetails", "RunFailed", "RunNotFound", "RunRecord", "RunResult", "RunStatus",
    "RunStillRunning", "RunUpdated", "SQLiteBackend", "ScriptedCall", "ScriptedDispatcher", "Store",
    "StoreUnavailable", "SubstitutionError", "Task", "TaskDetails", "TaskNotFound", "TaskOutput", "TaskRecord",
    "TaskResult", "TaskStatus", "TaskUpdated", "TraceExportFailed", "Workflow", "WorkflowChanged", "WorkflowInvalid", "__version__",
    "cache_entries", "cancel_run", "clear_cache", "collect_garbage", "delete_runs", "explain_cache", "export_trace", "get_run", "list_runs", "list_tasks", "load_config", "logs", "provider_health", "providers",
    "resume", "resume_async", "run", "run_async", "run_details", "task_details",
    "validate", "validate_async",
)


def test_all_is_a_pinned_tuple_of_resolvable_names():
    assert isinstance(gleitzeit_core.__all__, tuple)
    assert sorted(gleitzeit_core.__all__) == sorted(PUBLIC)
    for name in gleitzeit_core.__all__:
        assert getattr(gleitzeit_core, name) is not None


def test_store_classes_are_the_stores_under_the_seed_names():
    from gleitzeit_core.store.memory import InMemoryBackend
    from gleitzeit_core.store.redis import RedisBackend
    from gleitzeit_core.store.sqlite import SQLiteBackend

    assert gleitzeit_core.SQLiteBackend is SQLiteBackend
    assert gleitzeit_core.RedisBackend is RedisBackend
    assert gleitzeit_core.InMemoryBackend is InMemoryBackend
    for cls in (SQLiteBackend, RedisBackend, InMemoryBackend):
        assert issubclass(cls, gleitzeit_core.Store)


def test_the_scripted_dispatcher_is_the_one_in_the_dispatch_package_and_keeps_the_port():
    from gleitzeit_core.dispatch.scripted import ScriptedDispatcher
    from gleitzeit_sdk.codes import FailureKind

    assert gleitzeit_core.ScriptedDispatcher is ScriptedDispatcher
    assert gleitzeit_core.FailureKind is FailureKind
    d = ScriptedDispatcher(lambda call: None)
    for name in ("__aenter__", "__aexit__", "preflight", "capacity", "execute"):
        assert callable(getattr(d, name)), name


def test_every_error_is_in_the_one_tree():
    errors = [getattr(gleitzeit_core, n) for n in PUBLIC
              if isinstance(getattr(gleitzeit_core, n), type) and issubclass(getattr(gleitzeit_core, n), Exception)]
    assert len(errors) == 17
    assert all(issubclass(e, gleitzeit_core.GleitzeitError) for e in errors)


def test_importing_the_api_does_not_load_the_store_drivers_or_the_provider_stack():
    # gleitzeit_sdk.jsonlimits (the protocol's value limits, which the loader applies) is a few
    # constants; the provider stack is the SDK's framing and registry and the host's connection.
    code = ("import sys, gleitzeit_core\n"
            "print(sorted(m for m in ('gleitzeit_core.store.sqlite', 'redis', 'gleitzeit_sdk.framing', 'gleitzeit_sdk.provider', "
            "'gleitzeit_core.providers.connection', 'gleitzeit_core.engine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_resume_stays_the_function_when_the_internal_module_loads():
    import importlib

    importlib.import_module("gleitzeit_core.resume")
    assert callable(gleitzeit_core.resume) and gleitzeit_core.resume.__module__ == "gleitzeit_core._api.entry"
