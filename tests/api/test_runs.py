"""The stored-run functions (gz.list_runs, run_details, cancel_run, delete_runs, collect_garbage,
list_tasks, task_details, logs) and what the CLI reads through them; big results come back as values."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import anyio
import pytest

import gleitzeit_core as gz
from tests.api.conftest import slow_run
from tests.e2e.test_interrupted import start_gated
from tests.helpers.cli import LIVE_WORKSPACE, gz as gz_cli

pytestmark = pytest.mark.anyio

#: just over the 1 MiB a record keeps inline (gleitzeit_core/results.py)
BIG = 1024 * 1024 + 100
BIG_WF = gz.Workflow(name="big", tasks=[
    gz.Task(name="big", method="python/execute", parameters={"code": f"result = 'x' * {BIG}"}),
    gz.Task(name="size", method="python/execute", dependencies=["big"],
            parameters={"code": "result = len(${big.result.result})"}),
])


@pytest.fixture(params=["sqlite", "redis"])
def store_of(request, tmp_path: Path):
    """A function giving a fresh (unopened) store object of the parametrized backend, and its env."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return (lambda: gz.RedisBackend(url)), {"GLEITZEIT_PERSISTENCE_BACKEND": "redis", "GLEITZEIT_REDIS_URL": url}
    db = str(tmp_path / "home" / "workflows.db")
    return (lambda: gz.SQLiteBackend(db)), {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"}


def test_a_result_over_one_mib_comes_back_as_its_value(store_of):
    make, _ = store_of
    result = gz.run(BIG_WF, backend=make())
    big = result.tasks["big"]
    assert big.result_blob and big.result_blob.startswith("sha256:")   # it was kept in blob storage
    assert big.result["result"] == "x" * BIG
    assert result.tasks["size"].result["result"] == BIG
    assert result.to_dict()["tasks"]["big"]["result"]["result"] == "x" * BIG

    async def read() -> None:
        async with make() as store:
            again = await gz.RunResult.from_store(store, result.run_id)
            assert again.tasks["big"].result["result"] == "x" * BIG
            details = await gz.task_details(store, big.id)
            assert json.loads(details.result_json)["result"] == "x" * BIG
            assert details.result["result"] == "x" * BIG

    anyio.run(read)


def killed_run(home: Path, tmp_path: Path, env: dict[str, str]) -> str:
    """A `gleitzeit run` whose task is running, killed with SIGKILL: its run id."""
    proc, run_id, _ = start_gated(home, tmp_path / "gated.yaml", {**env, **LIVE_WORKSPACE})
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return run_id


def attempts_of(details: gz.RunDetails) -> list[gz.AttemptRecord]:
    return [a for attempts in details.attempts.values() for a in attempts]


def test_a_run_whose_engine_was_killed_reads_interrupted_through_the_api(home: Path, tmp_path: Path, store_of):
    make, env = store_of
    run_id = killed_run(home, tmp_path, env)

    async def read() -> None:
        async with make() as store:   # a plain store: nothing marks runs when it opens
            assert (await store.get_run(run_id)).status is gz.RunStatus.RUNNING  # as the dead engine left it
            run = await gz.get_run(store, run_id)
            assert run.status is gz.RunStatus.INTERRUPTED
            assert "is no longer running" in run.error and f"--resume {run_id}" in run.error
            assert [r.run_id for r in await gz.list_runs(store, status="interrupted")] == [run_id]
            assert await gz.list_runs(store, status=gz.RunStatus.RUNNING) == []
            before = await gz.run_details(store, run_id)
            [left] = [a for a in attempts_of(before) if a.status is gz.TaskStatus.RUNNING]
            asked_at = time.time()
            done = await gz.cancel_run(store, run_id)   # no engine left: cancelled at once
            assert done.outcome is gz.CancelOutcome.CANCELLED
            after = await gz.run_details(store, run_id)
            assert after.run.status is gz.RunStatus.CANCELLED
            # the attempt the dead engine left running is closed where the engine died, not left open
            [closed] = [a for a in attempts_of(after) if (a.task_id, a.number) == (left.task_id, left.number)]
            assert closed.status is gz.TaskStatus.CANCELLED and "engine stopped" in closed.error
            assert left.started_at <= closed.finished_at < asked_at
            assert [t.status for t in after.tasks if t.id == left.task_id] == [gz.TaskStatus.CANCELLED]

    anyio.run(read)


def test_from_store_marks_a_dead_engines_run_too(home: Path, tmp_path: Path, store_of):
    make, env = store_of
    run_id = killed_run(home, tmp_path, env)

    async def read() -> gz.RunResult:
        async with make() as store:
            return await gz.RunResult.from_store(store, run_id)

    result = anyio.run(read)
    assert result.status is gz.RunStatus.INTERRUPTED
    assert result.tasks["waits"].status is not gz.TaskStatus.COMPLETED


def scripted(call: gz.ScriptedCall):
    call.print(f"{call.task.name} attempt {call.meta['attempt']}\n")
    if call.task.name == "flaky" and call.meta["attempt"] == 1:
        raise gz.ProviderError("first try fails", kind=gz.FailureKind.TASK_FAILED, retryable=True)
    if call.task.name == "broken":
        raise gz.ProviderError("always fails", kind=gz.FailureKind.TASK_FAILED, retryable=False)
    return {"ok": call.task.name}


def workflow(name: str, *tasks: str) -> gz.Workflow:
    return gz.Workflow(name=name, tasks=[
        gz.Task(name=t, method="fake/do", retry={"max_attempts": 2, "base_delay": 0}) for t in tasks])


async def run_some(db: str) -> dict[str, gz.RunResult]:
    async with gz.ExecutionEngine(backend=gz.SQLiteBackend(db), dispatcher=gz.ScriptedDispatcher(scripted)) as engine:
        return {"a": await engine.run(workflow("alpha", "flaky", "plain")),
                "b": await engine.run(workflow("beta", "broken")),
                "c": await engine.run(workflow("alpha", "plain"))}


async def test_list_inspect_and_read_logs_of_stored_runs(tmp_path: Path):
    db = str(tmp_path / "runs.db")
    runs = await run_some(db)
    async with gz.SQLiteBackend(db) as store:
        assert [r.run_id for r in await gz.list_runs(store)] == [runs[k].run_id for k in "cba"]
        assert [r.run_id for r in await gz.list_runs(store, workflow="alpha")] == [runs["c"].run_id,
                                                                                   runs["a"].run_id]
        assert [r.run_id for r in await gz.list_runs(store, status="FAILED")] == [runs["b"].run_id]
        assert len(await gz.list_runs(store, limit=2)) == 2
        with pytest.raises(gz.ConfigError, match="unknown run status 'sideways'"):
            await gz.list_runs(store, status="sideways")

        details = await gz.run_details(store, runs["a"].run_id)
        assert [t.name for t in details.tasks] == ["flaky", "plain"]
        flaky = details.tasks[0]
        assert [a.status.value for a in details.attempts[flaky.id]] == ["failed", "completed"]

        failed = await gz.list_tasks(store, status=gz.TaskStatus.FAILED)
        assert [(t.name, t.run_id) for t in failed] == [("broken", runs["b"].run_id)]
        assert [t.name for t in await gz.list_tasks(store, workflow=runs["a"].run_id)] == ["flaky", "plain"]
        assert {t.run_id for t in await gz.list_tasks(store, workflow="alpha")} == {runs["a"].run_id,
                                                                                  runs["c"].run_id}
        task = await gz.task_details(store, flaky.id)
        assert task.result == {"ok": "flaky"} and task.result_json is None and len(task.attempts) == 2

        printed = await gz.logs(store, runs["a"].run_id, "flaky")
        assert [(line.attempt, line.stream, line.text) for line in printed] == [
            (1, gz.LogStream.STDOUT, "flaky attempt 1"), (2, gz.LogStream.STDOUT, "flaky attempt 2")]
        assert [line.text for line in await gz.logs(store, runs["a"].run_id, attempt=2)] == ["flaky attempt 2"]
        assert sorted(line.text for line in await gz.logs(store, runs["a"].run_id)) == [
            "flaky attempt 1", "flaky attempt 2", "plain attempt 1"]
        with pytest.raises(gz.TaskNotFound, match="has no task 'nosuch'; its tasks: 'flaky', 'plain'"):
            await gz.logs(store, runs["a"].run_id, "nosuch")
        with pytest.raises(gz.TaskNotFound, match="no task with id 'task-nope'"):
            await gz.task_details(store, "task-nope")
        with pytest.raises(gz.RunNotFound, match="no run with id 'run-nope'"):
            await gz.run_details(store, "run-nope")


async def test_delete_and_collect_remove_runs_with_their_workspaces(tmp_path: Path, home: Path):
    db = str(tmp_path / "runs.db")
    runs = await run_some(db)
    config = gz.load_config()
    folders = {k: home / "workspaces" / r.run_id for k, r in runs.items()}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "left.txt").write_text("x")
    async with gz.SQLiteBackend(db) as store:
        removed = await gz.delete_runs(store, [runs["a"].run_id, "run-nope"], config=config)
        assert [(r.run_id, r.outcome) for r in removed] == [(runs["a"].run_id, gz.RemovalOutcome.DELETED),
                                                            ("run-nope", gz.RemovalOutcome.NOT_FOUND)]
        assert removed[0].workspace == str(folders["a"]) and not folders["a"].exists()
        assert await store.get_run(runs["a"].run_id) is None

        assert await gz.collect_garbage(store, "1d", config=config) == []   # nothing that old
        would = await gz.collect_garbage(store, 0, dry_run=True, config=config)
        assert {r.run_id for r in would} == {runs["b"].run_id, runs["c"].run_id}
        assert folders["b"].exists() and await store.get_run(runs["b"].run_id) is not None
        gone = await gz.collect_garbage(store, 0, config=config)
        assert {r.run_id for r in gone} == {runs["b"].run_id, runs["c"].run_id}
        assert await gz.list_runs(store) == [] and not folders["b"].exists() and not folders["c"].exists()
        with pytest.raises(gz.ConfigError, match="--older-than 'soon'"):
            await gz.collect_garbage(store, "soon")


async def test_cancel_and_delete_of_a_live_run(starts: Path, tmp_path: Path):
    db = str(tmp_path / "live.db")
    async with gz.ExecutionEngine(backend=gz.SQLiteBackend(db)) as engine:
        async with slow_run(engine) as (run_id, results):
            async with gz.SQLiteBackend(db) as other:   # as another process would
                [kept] = await gz.delete_runs(other, [run_id])
                assert kept.outcome is gz.RemovalOutcome.LIVE and kept.status == "running"
                asked = await gz.cancel_run(other, run_id)
                assert (asked.outcome, asked.status) == (gz.CancelOutcome.REQUESTED, gz.RunStatus.RUNNING)
        async with gz.SQLiteBackend(db) as other:
            again = await gz.cancel_run(other, run_id)
            assert (again.outcome, again.status) == (gz.CancelOutcome.FINISHED, gz.RunStatus.CANCELLED)
    assert results[0].status is gz.RunStatus.CANCELLED


def test_the_cli_lists_runs_of_one_workflow(home: Path, tmp_path: Path):
    db = str(home / "workflows.db")
    runs = anyio.run(run_some, db)
    listed = gz_cli(home, "workflow", "list", "--workflow", "alpha", "--json")
    assert listed.code == 0, listed.err
    assert [r["run_id"] for r in json.loads(listed.out)] == [runs["c"].run_id, runs["a"].run_id]
