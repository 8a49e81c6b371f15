"""Which run `run --resume` picks, and what it says when it cannot pick one: `find_run` and the
checks `load_for_resume` makes before touching any record, over the memory store (part of the
mutation-testing selection for gleitzeit_core/resume.py, docs/testing.md)."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import RunNotFound, RunStillRunning, WorkflowChanged
from gleitzeit_core.liveness import this_process
from gleitzeit_core.resume import find_run, load_for_resume
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunRecord, RunStatus, now
from gleitzeit_core.workflow.loader import load_workflow_text

pytestmark = pytest.mark.anyio

TEXT = "name: r\ntasks:\n  - {name: a, method: t/run}\n"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def store():
    s = InMemoryBackend()
    await s.open()
    return s


def started(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


async def add(store, path, status: RunStatus, age: float, *, owner: bool = False, text: str = TEXT) -> RunRecord:
    """A run of the file at ``path`` created ``age`` seconds ago; ``owner``: its engine (this
    process) is alive, else a live run's engine stopped a minute ago."""
    wf = load_workflow_text(text, filename=os.path.basename(path), source_path=str(path))
    run, recs = new_run(wf)
    run.status, run.created_at = status, now() - age
    if owner:
        this_process().stamp(run)
    else:
        run.heartbeat_at = run.updated_at = now() - 60
    await store.create_run(run, list(recs.values()))
    return run


async def test_by_file_the_newest_run_of_that_file_is_picked(store, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # named as the user typed it: relative
    wf = tmp_path / "m.yaml"
    oldest = await add(store, wf, RunStatus.COMPLETED, 30)
    older = await add(store, wf, RunStatus.CANCELLED, 20)
    newest = await add(store, wf, RunStatus.FAILED, 10)
    for other in ("a.yaml", "z.yaml", "m.yaml.bak"):  # newer, resumable runs of other files either side
        await add(store, tmp_path / other, RunStatus.INTERRUPTED, 1)
    assert (await find_run(store, None, "m.yaml")).run_id == newest.run_id
    assert (await find_run(store, None, str(wf))).run_id == newest.run_id
    # the newest decides, whatever the older ones are
    newest.status = RunStatus.COMPLETED
    await store.save_run(newest)
    older.status = RunStatus.INTERRUPTED
    await store.save_run(older)
    with pytest.raises(RunNotFound) as err:
        await find_run(store, None, "m.yaml")
    assert str(err.value) == (
        "the latest run of m.yaml is completed, so there is nothing to resume by default; its runs: "
        f"{newest.run_id} completed (started {started(newest.created_at)}); "
        f"{older.run_id} interrupted (started {started(older.created_at)}); "
        f"{oldest.run_id} completed (started {started(oldest.created_at)}); "
        "pick one with: gleitzeit run m.yaml --resume RUN_ID")


@pytest.mark.parametrize("status", [RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.CANCELLED])
async def test_by_file_a_stopped_newest_run_is_picked(store, tmp_path, status) -> None:
    await add(store, tmp_path / "m.yaml", RunStatus.INTERRUPTED, 30)
    await add(store, tmp_path / "m.yaml", RunStatus.COMPLETED, 20)
    newest = await add(store, tmp_path / "m.yaml", status, 10)
    assert (await find_run(store, None, str(tmp_path / "m.yaml"))).run_id == newest.run_id


async def test_by_file_a_live_run_is_picked_only_when_its_engine_is_gone(store, tmp_path) -> None:
    path = str(tmp_path / "m.yaml")
    await add(store, path, RunStatus.FAILED, 30)
    await add(store, path, RunStatus.COMPLETED, 20)
    orphan = await add(store, path, RunStatus.RUNNING, 10)  # not marked interrupted yet
    assert (await find_run(store, None, path)).run_id == orphan.run_id
    alive = await add(store, path, RunStatus.RUNNING, 5, owner=True)
    for retry_failed in (False, True):
        with pytest.raises(RunNotFound, match=f"the latest run of {path} is running, .*{alive.run_id} running"):
            await find_run(store, None, path, retry_failed)


async def test_by_file_a_completed_newest_run_is_picked_only_to_retry_failed_items(store, tmp_path) -> None:
    path = str(tmp_path / "m.yaml")
    await add(store, path, RunStatus.FAILED, 30)
    await add(store, path, RunStatus.FAILED, 20)
    newest = await add(store, path, RunStatus.COMPLETED, 10)
    assert (await find_run(store, None, path, retry_failed=True)).run_id == newest.run_id
    with pytest.raises(RunNotFound, match="is completed, so there is nothing to resume"):
        await find_run(store, None, path)


@pytest.mark.parametrize("count, more", [(5, ""), (6, " and 1 more"), (8, " and 3 more"), (12, " and 7 more")])
async def test_the_message_lists_at_most_five_runs(store, tmp_path, count, more) -> None:
    path = str(tmp_path / "m.yaml")
    runs = [await add(store, path, RunStatus.COMPLETED, 100 - i) for i in range(count)][::-1]
    with pytest.raises(RunNotFound) as err:
        await find_run(store, None, path)
    listed = "; ".join(f"{r.run_id} completed (started {started(r.created_at)})" for r in runs[:5])
    assert f"its runs: {listed}{more}; pick one with" in str(err.value)


async def test_nothing_to_find_says_where_it_looked(store, tmp_path) -> None:
    await add(store, tmp_path / "other.yaml", RunStatus.FAILED, 10)
    with pytest.raises(RunNotFound) as err:
        await find_run(store, None, "m.yaml")
    assert str(err.value) == (f"no run of m.yaml in the memory store at {store.address} "
                              "(`gleitzeit workflow list` shows the runs there)")
    for path in (None, ""):
        with pytest.raises(RunNotFound, match="^name a run id or a workflow file to resume$"):
            await find_run(store, None, path)


async def test_by_id_a_completed_run_only_to_retry_failed_items(store, tmp_path) -> None:
    done = await add(store, tmp_path / "m.yaml", RunStatus.COMPLETED, 10)
    with pytest.raises(RunNotFound, match=f"^run {done.run_id} already completed; nothing to resume$"):
        await find_run(store, done.run_id, None)
    assert (await find_run(store, done.run_id, None, retry_failed=True)).run_id == done.run_id
    for status in (RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.INTERRUPTED):
        run = await add(store, tmp_path / "m.yaml", status, 5)
        for retry_failed in (False, True):
            assert (await find_run(store, run.run_id, "elsewhere.yaml", retry_failed)).run_id == run.run_id


async def test_by_id_a_run_another_engine_still_drives_is_refused(store, tmp_path) -> None:
    me = this_process()
    alive = await add(store, tmp_path / "m.yaml", RunStatus.RUNNING, 10, owner=True)
    for retry_failed in (False, True):
        with pytest.raises(RunStillRunning) as err:
            await find_run(store, alive.run_id, None, retry_failed)
        assert str(err.value) == (
            f"run {alive.run_id} is still running in another engine (pid {me.pid} on {me.host}); "
            f"wait for it, or cancel it first: gleitzeit workflow cancel {alive.run_id}")
    unowned = await add(store, tmp_path / "m.yaml", RunStatus.PENDING, 10)
    unowned.heartbeat_at = now()  # written by an older version: no owner, a fresh heartbeat
    await store.save_run(unowned)
    with pytest.raises(RunStillRunning, match=f"^run {unowned.run_id} is still pending in another engine; wait"):
        await find_run(store, unowned.run_id, None)
    orphan = await add(store, tmp_path / "m.yaml", RunStatus.RUNNING, 10)
    assert (await find_run(store, orphan.run_id, None)).run_id == orphan.run_id


async def test_the_workflow_comes_from_the_file_on_record_or_the_one_named(store, tmp_path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text(TEXT)
    run = await add(store, first, RunStatus.FAILED, 10)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None)
    assert state.workflow.source_path == str(first) and [t.key for t in state.workflow.tasks] == ["a"]
    moved = tmp_path / "moved.yaml"  # the file moved since; the user names its new place
    first.rename(moved)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=str(moved))
    assert state.workflow.source_path == str(moved)
    with pytest.raises(WorkflowChanged) as err:  # the message names the file that changed
        moved.write_text(TEXT + "  - {name: b, method: t/run}\n")
        await load_for_resume(store, run_id=run.run_id, workflow_path=str(moved))
    assert str(err.value) == (f"{moved} changed since run {run.run_id} started (content hash differs); "
                              "resume with --force to run the changed workflow")


async def test_a_run_without_a_workflow_file_needs_the_definition(store, tmp_path) -> None:
    wf = load_workflow_text(TEXT, filename="<code>")  # built in code: no file on record
    run, recs = new_run(wf)
    run.status = RunStatus.FAILED
    await store.create_run(run, list(recs.values()))
    assert run.workflow_path is None
    with pytest.raises(RunNotFound, match=f"^run {run.run_id} has no workflow file on record; pass the file"):
        await load_for_resume(store, run_id=run.run_id, workflow_path=None)
    assert (await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)).run.run_id == run.run_id
    changed = load_workflow_text(TEXT + "  - {name: b, method: t/run}\n", filename="<code>")
    with pytest.raises(WorkflowChanged, match=f"^the workflow changed since run {run.run_id} started"):
        await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=changed)


async def test_the_run_and_the_file_are_named_by_keyword(store, tmp_path) -> None:
    run = await add(store, tmp_path / "m.yaml", RunStatus.FAILED, 10)
    with pytest.raises(TypeError):  # both are `str | None`: a positional call could swap them unnoticed
        await load_for_resume(store, run.run_id, None)  # type: ignore[misc]
