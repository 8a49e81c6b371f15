"""What only SQLite has: a file, a schema version, locks, several processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.store import RunStatus, SQLiteBackend, TaskStatus
from gleitzeit_core.store.sqlite import MIGRATIONS

from store_builders import make_run, make_tasks

pytestmark = pytest.mark.anyio


async def test_open_creates_parent_dirs_and_a_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "workflows.db"
    async with SQLiteBackend(path) as store:
        assert await store.schema_version() == len(MIGRATIONS)
        await store.create_run(make_run(), [])
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


async def test_unwritable_path_is_one_clear_line(tmp_path: Path) -> None:
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a directory")
    path = a_file / "x.db"  # fails even for root: the parent is a regular file
    with pytest.raises(StoreUnavailable) as err:
        await SQLiteBackend(path).open()
    message = str(err.value)
    assert message.startswith(f"sqlite backend cannot open {path}: ")
    assert "\n" not in message and err.value.exit_code == 2


async def test_a_file_that_is_not_a_database_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, long enough to fill a page header " * 20)
    with pytest.raises(StoreUnavailable) as err:
        await SQLiteBackend(path).open()
    assert str(err.value) == f"sqlite backend cannot open {path}: file is not a database"


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreUnavailable, match="schema version .* is newer"):
        await SQLiteBackend(path).open()


class _NextVersion(SQLiteBackend):
    """This code base one release later: one more migration."""

    migrations = MIGRATIONS + (
        ("ALTER TABLE runs ADD COLUMN owner TEXT", "CREATE TABLE notes (run_id TEXT)"),
    )


async def test_opening_migrates_an_older_file_forward_once(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    run = make_run(status=RunStatus.COMPLETED)
    async with SQLiteBackend(path) as old:
        await old.create_run(run, make_tasks(run, 2))
    async with _NextVersion(path) as new:
        assert await new.schema_version() == len(MIGRATIONS) + 1
        assert await new.get_run(run.run_id) == run
        assert len(await new.list_tasks(run_id=run.run_id)) == 2
    async with _NextVersion(path) as again:  # re-running the migration would fail: column exists
        assert await again.schema_version() == len(MIGRATIONS) + 1
    with sqlite3.connect(path) as db:
        assert "owner" in [c[1] for c in db.execute("PRAGMA table_info(runs)")]


async def test_a_locked_file_waits_then_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    run = make_run()
    (task,) = make_tasks(run, 1)
    async with SQLiteBackend(path, busy_timeout_ms=200) as store:
        await store.create_run(run, [task])
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreUnavailable) as err:
                await store.save_task(task)
            assert str(err.value).startswith(f"sqlite backend {path}: database is locked")
            assert "200 ms busy timeout" in str(err.value)
            # opening needs no write lock (reads still work); the first write fails
            async with SQLiteBackend(path, busy_timeout_ms=200) as other:
                assert await other.get_task(task.id) == task
                with pytest.raises(StoreUnavailable, match="database is locked"):
                    await other.create_run(make_run(), [])
        finally:
            holder.rollback()
            holder.close()
        task.status = TaskStatus.RUNNING  # the failed transaction left the store usable
        await store.save_task(task)
        stored = await store.get_task(task.id)
        assert stored is not None and stored.status == TaskStatus.RUNNING


async def test_a_writer_waits_for_a_short_lock_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    run = make_run()
    async with SQLiteBackend(path) as store:  # default busy timeout: seconds
        await store.create_run(run, [])
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        run.status = RunStatus.RUNNING
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.save_run, run)
            await anyio.sleep(0.3)
            holder.commit()
        holder.close()
        stored = await store.get_run(run.run_id)
        assert stored is not None and stored.status == RunStatus.RUNNING


async def test_switching_a_busy_file_to_wal_waits_instead_of_failing(tmp_path: Path) -> None:
    # SQLite fails the switch to WAL at once, without calling the busy handler, while
    # another connection writes to a file still in rollback-journal mode -- the case
    # of two processes creating one new file at the same moment.
    path = tmp_path / "w.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    store = SQLiteBackend(path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.open)
        await anyio.sleep(0.3)
        holder.commit()
    holder.close()
    try:
        assert await store.schema_version() == len(MIGRATIONS)
    finally:
        await store.close()


WRITER = textwrap.dedent(
    """
    import sys, anyio
    sys.path.insert(0, sys.argv[3])
    from store_builders import make_run, make_tasks
    from gleitzeit_core.store import AttemptRecord, RunStatus, SQLiteBackend, TaskStatus

    async def main(path, name):
        async with SQLiteBackend(path) as store:
            for i in range(150):
                run = make_run(name)
                tasks = make_tasks(run, 4)
                await store.create_run(run, tasks)
                for t in tasks:
                    t.status, t.attempts, t.result = TaskStatus.COMPLETED, 1, {"n": i}
                    a = AttemptRecord(t.id, run.run_id, 1, status=TaskStatus.COMPLETED)
                    await store.save_task(t, a)
                run.status = RunStatus.COMPLETED
                await store.save_run(run)

    anyio.run(main, sys.argv[1], sys.argv[2])
    """
)


async def test_two_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    here = str(Path(__file__).parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, here],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    for p in procs:
        _, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
    async with SQLiteBackend(path) as store:
        stats = await store.stats()
        assert stats["runs"]["completed"] == 300 and stats["runs_total"] == 300
        assert stats["tasks"]["completed"] == 1200 and stats["tasks_total"] == 1200
        for name in ("one", "two"):
            assert len(await store.list_runs(workflow_name=name)) == 150
