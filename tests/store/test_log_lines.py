"""The log-line contract (``Store.logs``, store/log_lines.py) on memory, SQLite and Redis:
lines come back in write order with timestamps, filtered by task and attempt, after a
cursor, from another connection; a waiting reader is woken by another writer; deleting
the run deletes its lines."""

from __future__ import annotations

import anyio
import pytest

from gleitzeit_core.store import Store
from gleitzeit_core.store.log_lines import LogBook, LogLine, LogStream
from store_builders import make_run, make_tasks

pytestmark = pytest.mark.anyio


def lines(run_id: str, task_id: str, attempt: int, texts: list[str], stream=LogStream.STDOUT) -> list[LogLine]:
    return [LogLine(run_id, task_id, attempt, i, 1_700_000_000.0 + i / 10, stream, t) for i, t in enumerate(texts)]


async def new_run(store: Store, tasks: int = 2):
    run = make_run()
    recs = make_tasks(run, tasks)
    await store.create_run(run, recs)
    return run, recs


async def test_lines_round_trip_in_order_with_filters_and_cursors(store: Store, new_store) -> None:
    run, (a, b) = await new_run(store)
    await store.logs.append(lines(run.run_id, a.id, 1, ["one", "two"]))
    await store.logs.append([*lines(run.run_id, b.id, 1, ["warn"], LogStream.STDERR),
                             LogLine(run.run_id, a.id, 2, 0, 1_700_000_001.0, LogStream.LOG, "hello", level="warning")])
    async with new_store() as other:  # another connection (process) sees the same
        every = await other.logs.read(run.run_id)
        assert [(x.task_id, x.attempt, x.seq, x.stream, x.text) for x in every] == [
            (a.id, 1, 0, LogStream.STDOUT, "one"), (a.id, 1, 1, LogStream.STDOUT, "two"),
            (b.id, 1, 0, LogStream.STDERR, "warn"), (a.id, 2, 0, LogStream.LOG, "hello")]
        assert every[1].at == 1_700_000_000.1 and every[3].level == "warning" and every[0].level is None
        assert [x.text for x in await other.logs.read(run.run_id, task_id=a.id)] == ["one", "two", "hello"]
        assert [x.text for x in await other.logs.read(run.run_id, task_id=a.id, attempt=2)] == ["hello"]
        assert [x.text for x in await other.logs.read(run.run_id, after=every[1].cursor)] == ["warn", "hello"]
        assert await other.logs.read(run.run_id, after=every[3].cursor) == []
        assert await other.logs.read("run-000000000000") == []


async def test_a_waiting_reader_is_woken_by_another_writer(store: Store, new_store) -> None:
    run, (a, _) = await new_run(store)
    async with new_store() as writer:
        await writer.logs.append(lines(run.run_id, a.id, 1, ["before"]))
        first = await store.logs.wait(run.run_id, None, 5)
        assert [x.text for x in first] == ["before"]  # already there: no waiting

        async def write_later() -> None:
            await anyio.sleep(0.3)
            await writer.logs.append(lines(run.run_id, a.id, 1, ["later", "and more"]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_later)
            with anyio.fail_after(30):  # a hang guard only
                got = await store.logs.wait(run.run_id, first[-1].cursor, 20)
        assert [x.text for x in got] == ["later", "and more"]
        assert await store.logs.wait(run.run_id, got[-1].cursor, 0.2) == []  # nothing more: [] after the timeout


async def test_waiting_does_not_re_read_the_lines_while_nothing_is_written(store: Store, monkeypatch) -> None:
    """No busy polling: a reader waiting a second with nothing written reads the lines once."""
    run, (a, _) = await new_run(store)
    reads = 0
    real = type(store.logs).read

    async def counted(self: LogBook, *args, **kw):
        nonlocal reads
        reads += 1
        return await real(self, *args, **kw)

    monkeypatch.setattr(type(store.logs), "read", counted)
    assert await store.logs.wait(run.run_id, None, 1.0) == []
    assert reads == 1


async def test_deleting_the_run_deletes_its_lines(store: Store) -> None:
    run, (a, _) = await new_run(store)
    keep, (c, _) = await new_run(store)
    await store.logs.append(lines(run.run_id, a.id, 1, ["gone"]))
    await store.logs.append(lines(keep.run_id, c.id, 1, ["kept"]))
    assert await store.delete_run(run.run_id)
    assert await store.logs.read(run.run_id) == []
    assert [x.text for x in await store.logs.read(keep.run_id)] == ["kept"]
