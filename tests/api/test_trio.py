"""Under trio: run_async / resume_async run the engine on an asyncio loop in a worker
thread; ExecutionEngine itself is asyncio-only and says so."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

import gleitzeit_core as gz
from tests.api.conftest import Running, SLOW, pid_workflow, started
from tests.helpers.procs import alive

pytestmark = pytest.mark.anyio
CANCEL_GUARD_S = 60  # a hang guard only: the cancel arrives as soon as the task runs


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


async def test_run_async_under_trio_with_events_in_the_trio_thread(starts: Path):
    here = threading.get_ident()
    threads: set[int] = set()
    statuses: list[str] = []

    def on_event(event: gz.Event) -> None:
        threads.add(threading.get_ident())
        if isinstance(event, gz.TaskUpdated):
            statuses.append(event.task.status.value)

    result = await gz.run_async(pid_workflow(), backend="memory", on_event=on_event)
    assert result.ok and result.tasks["pid"].result["pid"] == started(starts)[0]
    assert threads == {here}
    assert statuses[-1] == "completed"


async def test_execution_engine_under_trio_is_a_clear_error():
    with pytest.raises(gz.AsyncioRequired, match="run_async"):
        async with gz.ExecutionEngine(backend="memory"):
            pass


async def test_cancelling_the_trio_caller_cancels_the_run_and_stops_its_provider(starts: Path, tmp_path: Path):
    db = str(tmp_path / "runs.db")
    on_event = Running()

    with anyio.fail_after(CANCEL_GUARD_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: gz.run_async(SLOW, backend=gz.SQLiteBackend(db), on_event=on_event))
            await on_event.started.wait()
            tg.cancel_scope.cancel()
    [pid] = started(starts)
    assert not alive(pid)  # the engine thread stopped the provider before run_async returned

    async def read() -> gz.RunResult:  # the stores are asyncio-only: read on an asyncio loop
        async with gz.SQLiteBackend(db) as store:
            return await gz.RunResult.from_store(store, on_event.run_ids[0])

    stored = await anyio.to_thread.run_sync(anyio.run, read)
    assert stored.status is gz.RunStatus.CANCELLED
    assert stored.tasks["slow"].status is gz.TaskStatus.CANCELLED


async def test_resume_async_under_trio(tmp_path: Path):
    db = str(tmp_path / "runs.db")
    wf = gz.Workflow(name="r", tasks=[gz.Task(name="t", method="python/execute", parameters={"code": (
        "import pathlib\np = pathlib.Path('once')\nif not p.exists():\n    p.write_text('x')\n"
        "    raise ValueError('first')\nresult = 5")})])
    first = await gz.run_async(wf, backend=gz.SQLiteBackend(db))
    assert first.status is gz.RunStatus.FAILED
    second = await gz.resume_async(first.run_id, workflow=wf, backend=gz.SQLiteBackend(db))
    assert second.ok and second.tasks["t"].attempts == 2


async def test_stored_runs_are_read_cancelled_and_deleted_under_trio(starts: Path, tmp_path: Path):
    db = str(tmp_path / "trio.db")
    done = await gz.run_async(pid_workflow("done"), backend=gz.SQLiteBackend(db))
    async with gz.SQLiteBackend(db) as store:
        assert [r.run_id for r in await gz.list_runs(store, status="completed")] == [done.run_id]
        details = await gz.run_details(store, done.run_id)
        assert [a.status.value for a in details.attempts[details.tasks[0].id]] == ["completed"]
        assert (await gz.task_details(store, details.tasks[0].id)).result == done.tasks["pid"].result
        assert (await gz.cancel_run(store, done.run_id)).outcome is gz.CancelOutcome.FINISHED
        [removal] = await gz.delete_runs(store, [done.run_id])
        assert removal.outcome is gz.RemovalOutcome.DELETED
        assert await gz.list_runs(store) == []
