"""ExecutionEngine: one set of warm provider processes for many runs; events as an async iterator."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml

import gleitzeit_core as gz
from tests.api.conftest import COUNTING, pid_workflow, slow_run, started

pytestmark = pytest.mark.anyio
RUNS = 100


async def test_one_provider_process_serves_a_hundred_runs(starts: Path):
    async with gz.ExecutionEngine(backend="memory") as engine:
        results = [await engine.run(pid_workflow()) for _ in range(RUNS)]
    assert all(r.ok for r in results)
    served_by = {r.tasks["pid"].result["pid"] for r in results}
    assert started(starts) == list(served_by)  # started once, and that process served all 100 runs
    assert len(served_by) == 1


async def test_without_a_shared_engine_every_run_starts_its_provider(starts: Path):
    """The counter above is real: two separate run_async calls start two processes."""
    for _ in range(2):
        assert (await gz.run_async(pid_workflow(), backend="memory")).ok
    assert len(set(started(starts))) == 2


async def test_concurrent_runs_share_the_engine(starts: Path):
    results: list[gz.RunResult] = []
    async with gz.ExecutionEngine(backend="memory") as engine:
        async def one() -> None:
            results.append(await engine.run(pid_workflow()))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
    assert len(results) == 20 and all(r.ok for r in results)
    assert len(started(starts)) == 1


async def test_events_iterate_every_run_and_end_with_the_engine(starts: Path):
    seen: list[gz.Event] = []
    async with gz.ExecutionEngine(backend="memory") as engine:
        async with engine.events() as events, anyio.create_task_group() as tg:
            async def collect() -> None:
                async for event in events:
                    seen.append(event)

            tg.start_soon(collect)
            first = await engine.run(pid_workflow("first"))
            second = await engine.run(pid_workflow("second"))
            events.close()
    finished = [e.run.run_id for e in seen if isinstance(e, gz.RunUpdated) and e.run.status.finished]
    assert finished == [first.run_id, second.run_id]
    completed = [e.task.run_id for e in seen if isinstance(e, gz.TaskUpdated)
                 and e.task.status is gz.TaskStatus.COMPLETED]
    assert completed == [first.run_id, second.run_id]


async def test_a_subscriber_that_falls_behind_is_told(starts: Path):
    async with gz.ExecutionEngine(backend="memory", event_buffer=2) as engine:
        async with engine.events() as events:
            await engine.run(pid_workflow())  # more than 2 events, none read
            received = []
            with pytest.raises(gz.EventsLost):
                async for event in events:
                    received.append(event)
    assert len(received) == 2


async def test_on_event_sees_the_run_live(starts: Path):
    statuses: list[str] = []

    def on_event(event: gz.Event) -> None:
        if isinstance(event, gz.TaskUpdated):
            statuses.append(event.task.status.value)

    result = await gz.run_async(pid_workflow(), backend="memory", on_event=on_event)
    assert result.ok
    assert statuses[-1] == "completed" and "running" in statuses


async def test_engine_reads_results_back(starts: Path, tmp_path: Path):
    store = gz.SQLiteBackend(str(tmp_path / "runs.db"))
    async with gz.ExecutionEngine(backend=store) as engine:
        ran = await engine.run(pid_workflow())
        assert await engine.result(ran.run_id) == ran
        with pytest.raises(gz.RunNotFound):
            await engine.result("run-nope")


async def test_blocking_run_inside_a_running_loop_like_a_notebook(starts: Path):
    """Jupyter runs cells on a live asyncio loop: run() must not try to start a second one here."""
    result = gz.run(pid_workflow(), backend="memory")
    assert result.ok and result.tasks["pid"].result["pid"] == started(starts)[0]


async def test_a_workflow_naming_its_own_provider_gets_a_host_of_its_own(tmp_path: Path):
    log = tmp_path / "own-starts.txt"
    log.touch()
    (tmp_path / "counting.yaml").write_text(yaml.safe_dump(
        {"name": "counting", "command": "{python}", "args": [str(COUNTING), str(log)], "protocols": ["count/v1"]}))
    own = tmp_path / "own.yaml"
    own.write_text("name: own\nproviders: [./counting.yaml]\ntasks:\n  - name: pid\n    method: count/pid\n")
    async with gz.ExecutionEngine({"providers.allow_workflow": True}, backend="memory") as engine:  # the runner opts in
        assert (await engine.run(str(own))).ok
        assert (await engine.run(str(own))).ok
        with pytest.raises(gz.WorkflowInvalid, match="count"):  # the shared host never got it
            await engine.run(pid_workflow())
    assert len(started(log)) == 2  # one host per run, stopped with the run


async def test_cancel_stops_a_running_run_and_records_why(starts: Path, tmp_path: Path):
    async with gz.ExecutionEngine(backend=gz.SQLiteBackend(str(tmp_path / "c.db"))) as engine:
        async with slow_run(engine) as (run_id, results):
            assert await engine.cancel(run_id) is True
        assert await engine.cancel(run_id) is False  # finished now
        with pytest.raises(gz.RunNotFound):
            await engine.cancel("run-nope")
    [result] = results
    assert result.status is gz.RunStatus.CANCELLED and result.error == "run cancelled on request"
    assert result.tasks["slow"].status is gz.TaskStatus.CANCELLED


async def test_cancel_on_the_memory_store_says_how_instead():
    async with gz.ExecutionEngine(backend="memory") as engine:
        with pytest.raises(gz.ConfigError, match="cancel the task"):
            await engine.cancel("run-x")
