"""The scheduler's log writer (scheduler/log_writer.py): chunks become timestamped lines,
an attempt is bounded head + marker + tail, a long line goes to the blob store whole,
and a run's lines are written in few transactions."""

from __future__ import annotations

import pytest

from gleitzeit_core.scheduler import log_writer
from gleitzeit_core.scheduler.log_writer import LogWriter
from gleitzeit_core.store.log_lines import INLINE_LINE_CHARS, LogStream
from gleitzeit_core.store.memory import InMemoryBackend

pytestmark = pytest.mark.anyio


async def written(writer: LogWriter, store: InMemoryBackend):
    await writer.flush()
    return await store.logs.read("run-1")


async def test_chunks_become_lines_per_stream_and_partial_lines_wait_for_their_end() -> None:
    store = InMemoryBackend()
    writer = LogWriter(store, "run-1")
    log = writer.attempt("task-1", 1)
    log.add("stdout", "hel")
    log.add("stderr", "err 1\nerr")
    log.add("stdout", "lo\nwor")
    log.add("log:warning", "disk almost full\n")
    log.add("delta", "tokens are the result, not output")
    assert [(x.stream, x.text) for x in await written(writer, store)] == [
        (LogStream.STDERR, "err 1"), (LogStream.STDOUT, "hello"), (LogStream.LOG, "disk almost full")]
    log.close({"stdout": "ignored: it was streamed", "stderr": None})
    got = await written(writer, store)
    assert [(x.stream, x.text, x.seq) for x in got[3:]] == [(LogStream.STDERR, "err", 3), (LogStream.STDOUT, "wor", 4)]
    assert got[2].level == "warning" and all(x.at > 1e9 for x in got)


async def test_output_only_returned_in_the_result_is_kept_as_lines_at_the_end() -> None:
    store = InMemoryBackend()
    writer = LogWriter(store, "run-1")
    log = writer.attempt("task-1", 1)
    log.close({"stdout": "a\nb\n", "stderr": None})
    assert [x.text for x in await written(writer, store)] == ["a", "b"]


async def test_an_attempt_keeps_its_head_a_marker_and_its_tail(monkeypatch) -> None:
    monkeypatch.setattr(log_writer, "HEAD_LINES", 3)
    monkeypatch.setattr(log_writer, "TAIL_LINES", 2)
    store = InMemoryBackend()
    writer = LogWriter(store, "run-1")
    log = writer.attempt("task-1", 1)
    log.add("stdout", "".join(f"line {i}\n" for i in range(1000)))
    assert [x.text for x in await written(writer, store)] == ["line 0", "line 1", "line 2"]  # the head, live
    log.close({})
    got = await written(writer, store)
    assert [x.text for x in got] == ["line 0", "line 1", "line 2",
                                     "[… 995 lines (7,856 characters) of output left out …]", "line 998", "line 999"]
    assert got[3].stream is LogStream.NOTE and [x.seq for x in got] == list(range(6))
    assert got[3].at == got[4].at  # the marker stands where the gap is


async def test_a_long_line_keeps_its_start_inline_and_all_of_it_in_a_blob() -> None:
    store = InMemoryBackend()
    writer = LogWriter(store, "run-1")
    log = writer.attempt("task-1", 1)
    long = "x" * (INLINE_LINE_CHARS * 3) + "END"
    log.add("stdout", long + "\nshort\n")
    got = await written(writer, store)
    assert got[0].text == long[:INLINE_LINE_CHARS] and got[0].blob
    assert (await store.get_blob("run-1", got[0].blob)).decode() == long
    assert got[1].text == "short" and got[1].blob is None


async def test_lines_of_many_attempts_are_written_in_one_transaction() -> None:
    store = InMemoryBackend()
    writer = LogWriter(store, "run-1")
    appends = 0
    real = store.logs.append

    async def counted(lines):
        nonlocal appends
        appends += 1
        await real(lines)

    store.logs.append = counted  # type: ignore[method-assign]
    for n in range(20):
        writer.attempt(f"task-{n}", 1).add("stdout", "a\nb\nc\n")
    assert len(await written(writer, store)) == 60 and appends == 1
