"""Reading a run's log lines: all of them, or following a live run until it ends.

Used by `gleitzeit logs` and the dashboard's log stream. Following waits in the
store (``LogBook.wait``: SQLite's data_version, Redis XREAD BLOCK), not in a
re-query loop, and stops once the run is no longer live -- after one last read,
since the engine writes an attempt's lines before the state that ends it -- or
when the engine owning it is gone (killed), so a follower never hangs on a dead run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator

from gleitzeit_core.liveness import owner_gone
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.log_lines import LogLine, LogStream
from gleitzeit_core.store.records import AttemptRecord

#: how long one wait in the store lasts before the run's state is looked at again
WAIT_S = 1.0


@dataclass(frozen=True)
class LogFilter:
    task_id: str | None = None
    attempt: int | None = None

    def wants(self, line: LogLine) -> bool:
        return (self.task_id is None or line.task_id == self.task_id) and \
            (self.attempt is None or line.attempt == self.attempt)


def line_document(line: LogLine, task_name: str) -> dict[str, Any]:
    """The JSON shape of one line (`gleitzeit logs --json`, the dashboard's log API; docs/cli.md)."""
    return {"task": task_name, "task_id": line.task_id, "attempt": line.attempt, "seq": line.seq, "at": line.at,
            "stream": line.stream.value, "level": line.level, "text": line.text}


def from_attempts(attempts: dict[str, list[AttemptRecord]], run_id: str, only: LogFilter) -> list[LogLine]:
    """Lines rebuilt from the attempt records' stdout/stderr, for runs stored before
    lines were (one timestamp per attempt: its end)."""
    out = []
    for task_id, kept in attempts.items():
        for a in kept:
            seq = 0
            for stream in (LogStream.STDOUT, LogStream.STDERR):
                printed = getattr(a, stream.value)
                for text in printed.rstrip("\n").split("\n") if printed else ():
                    line = LogLine(run_id, task_id, a.number, seq, a.finished_at or a.started_at, stream, text)
                    if only.wants(line):
                        out.append(line)
                    seq += 1
    return out


async def stored_lines(store: Store, run_id: str, only: LogFilter = LogFilter()) -> tuple[list[LogLine], str | None]:
    """The lines stored so far that ``only`` wants, and the cursor after the run's last line."""
    every = await store.logs.read(run_id)
    if not every:
        return from_attempts(await store.list_run_attempts(run_id), run_id, only), None
    return [line for line in every if only.wants(line)], every[-1].cursor


async def whole(store: Store, lines: list[LogLine]) -> list[LogLine]:
    """``lines`` with each long line's text read back whole from its blob."""
    for line in lines:
        if line.blob and (data := await store.get_blob(line.run_id, line.blob)) is not None:
            line.text = data.decode()
    return lines


async def follow(store: Store, run_id: str, only: LogFilter = LogFilter(),
                 after: str | None = None) -> AsyncIterator[list[LogLine]]:
    """Batches of the run's lines after cursor ``after``, as they are written, until the run
    ends (with ``only.task_id``: until that task is finished, which writes its last lines first)."""
    ended = False
    while True:
        lines = await store.logs.wait(run_id, after, 0 if ended else WAIT_S)
        if lines:
            after = lines[-1].cursor
            if wanted := [line for line in lines if only.wants(line)]:
                yield wanted
            continue
        if ended:
            return
        ended = await _over(store, run_id, only.task_id)


async def _over(store: Store, run_id: str, task_id: str | None) -> bool:
    run = await store.get_run(run_id)
    if run is None or not run.status.live or owner_gone(run) is not None:
        return True
    task = await store.get_task(task_id) if task_id is not None else None
    return task is not None and task.status.finished
