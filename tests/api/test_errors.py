"""Every error the API raises is one class of the documented tree."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml

import gleitzeit_core as gz
from gleitzeit_core.store.memory import InMemoryBackend
from tests.api.conftest import SLOW, Running

pytestmark = pytest.mark.anyio

PY = gz.Workflow(name="py", tasks=[gz.Task(name="t", method="python/execute", parameters={"code": "result = 1"})])


async def test_a_method_no_provider_offers_is_invalid_and_nothing_is_stored():
    store = gz.InMemoryBackend()
    wf = gz.Workflow(name="typo", tasks=[gz.Task(name="t", method="python/exekute")])
    with pytest.raises(gz.WorkflowInvalid) as exc:
        await gz.run_async(wf, backend=store)
    assert "did you mean 'python/execute'?" in str(exc.value)
    assert await store.list_runs() == []


def test_unknown_config_key_and_backend_are_config_errors():
    with pytest.raises(gz.ConfigError, match="did you mean 'execution.max_concurrent_tasks'"):
        gz.run(PY, config={"execution.max_concurent_tasks": 2})
    with pytest.raises(gz.ConfigError, match="expected one of sqlite, redis, memory"):
        gz.run(PY, backend="postgres")
    with pytest.raises(gz.ConfigError, match="max_concurrent_tasks"):
        gz.run(PY, max_concurrent=0)


def test_an_unusable_store_is_store_unavailable(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(gz.StoreUnavailable, match="is not a directory"):
        gz.run(PY, backend=gz.SQLiteBackend(str(tmp_path / "file" / "runs.db")))


def test_a_provider_that_cannot_start_is_provider_unavailable(home: Path):
    (home / "providers").mkdir(parents=True)
    (home / "providers" / "ghost.yaml").write_text(yaml.safe_dump(
        {"name": "ghost", "command": "/nonexistent/ghost-provider", "protocols": ["ghost/v1"]}))
    with pytest.raises(gz.ProviderUnavailable):
        gz.run(gz.Workflow(name="g", tasks=[gz.Task(name="g", method="ghost/run")]), backend="memory")


def test_resuming_an_unknown_run_is_run_not_found():
    with pytest.raises(gz.RunNotFound, match="no run with id 'run-nope'"):
        gz.resume("run-nope", backend="memory")


def test_resuming_after_the_file_changed_is_workflow_changed(tmp_path: Path):
    path = tmp_path / "wf.yaml"
    path.write_text("name: wf\ntasks:\n  - name: t\n    method: python/execute\n"
                    "    parameters: {code: 'raise SystemExit(3)'}\n", encoding="utf-8")
    db = str(tmp_path / "runs.db")
    failed = gz.run(str(path), backend=gz.SQLiteBackend(db))
    assert failed.status is gz.RunStatus.FAILED
    path.write_text(path.read_text().replace("raise SystemExit(3)", "result = 3"), encoding="utf-8")
    with pytest.raises(gz.WorkflowChanged, match="changed since run"):
        gz.resume(failed.run_id, backend=gz.SQLiteBackend(db))
    resumed = gz.resume(failed.run_id, force=True, backend=gz.SQLiteBackend(db))
    assert resumed.ok and resumed.tasks["t"].result["result"] == 3


def test_raise_for_status_raises_run_failed_with_the_result():
    result = gz.run(gz.Workflow(name="f", tasks=[
        gz.Task(name="boom", method="python/execute", parameters={"code": "raise KeyError('k')"})]), backend="memory")
    assert result.status is gz.RunStatus.FAILED
    with pytest.raises(gz.RunFailed, match="boom: KeyError") as exc:
        result.raise_for_status()
    assert exc.value.result is result
    ok = gz.run(PY, backend="memory")
    assert ok.raise_for_status() is ok


class BrokenStore(InMemoryBackend):
    """A store with a bug: a plain exception from inside the engine."""

    async def create_run(self, run, tasks) -> None:
        raise ZeroDivisionError("a bug in a store")


def test_an_exception_outside_the_tree_becomes_internal_error():
    with pytest.raises(gz.InternalError, match="ZeroDivisionError: a bug in a store") as exc:
        gz.run(PY, backend=BrokenStore())
    assert isinstance(exc.value.__cause__, ZeroDivisionError)


async def test_engine_used_without_async_with_says_so():
    engine = gz.ExecutionEngine(backend="memory")
    with pytest.raises(gz.GleitzeitError, match="async with"):
        await engine.run(PY)


def failing_provider(call: gz.ScriptedCall):
    if call.task.name == "down":
        raise gz.ProviderError("service down", kind=gz.FailureKind.OVERLOADED, retryable=True)
    if call.task.name == "refused":
        raise gz.ProviderError("bad request", kind=gz.FailureKind.INVALID_PARAMS, retryable=False)
    return {"n": 1}


async def test_a_provider_error_is_the_tasks_failure_and_its_retryable_flag_is_obeyed():
    wf = gz.Workflow(name="pe", tasks=[
        gz.Task(name=n, method="fake/do", retry={"max_attempts": 3, "base_delay": 0}) for n in ("down", "refused")])
    async with gz.ExecutionEngine(backend="memory", dispatcher=gz.ScriptedDispatcher(failing_provider)) as engine:
        result = await engine.run(wf)   # does not raise: a task's failure is its status
    assert result.status is gz.RunStatus.FAILED
    down, refused = result.tasks["down"], result.tasks["refused"]
    assert (down.status, down.attempts) == (gz.TaskStatus.FAILED, 3) and "service down" in down.error
    assert (refused.status, refused.attempts) == (gz.TaskStatus.FAILED, 1) and "bad request" in refused.error


async def test_a_reference_that_cannot_be_filled_is_a_substitution_failure_of_that_task():
    wf = gz.Workflow(name="sub", tasks=[
        gz.Task(name="a", method="fake/do"),
        gz.Task(name="b", method="fake/do", dependencies=["a"], parameters={"v": "${a.result.missing}"}),
    ])
    dispatcher = gz.ScriptedDispatcher(failing_provider)
    async with gz.ExecutionEngine(backend="memory", dispatcher=dispatcher) as engine:
        result = await engine.run(wf)
    assert result.tasks["a"].status is gz.TaskStatus.COMPLETED
    b = result.tasks["b"]
    assert b.status is gz.TaskStatus.FAILED and "${a.result.missing}" in b.error
    assert [c.task.name for c in dispatcher.calls] == ["a"]   # b never reached a provider


async def test_resuming_a_run_a_live_engine_drives_is_run_still_running(starts: Path, tmp_path: Path):
    db = str(tmp_path / "live.db")
    on_event = Running()
    async with gz.ExecutionEngine(backend=gz.SQLiteBackend(db)) as engine:
        with anyio.fail_after(60):  # hang guard
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: engine.run(SLOW, on_event=on_event))
                await on_event.started.wait()
                with pytest.raises(gz.RunStillRunning, match="still"):
                    await gz.resume_async(on_event.run_ids[0], workflow=SLOW, backend=gz.SQLiteBackend(db))
                await engine.cancel(on_event.run_ids[0])


class ListingBug(InMemoryBackend):
    async def list_runs(self, *args, **kwargs):
        raise ZeroDivisionError("a bug while listing")


async def test_the_stored_run_functions_raise_only_the_tree():
    async with ListingBug() as store:
        with pytest.raises(gz.InternalError, match="ZeroDivisionError: a bug while listing"):
            await gz.list_runs(store)
    async with gz.InMemoryBackend() as store:
        with pytest.raises(gz.RunNotFound):
            await gz.cancel_run(store, "run-nope")
