"""What attempts printed, kept as timestamped lines beside the run (``Store.logs``).

Each backend keeps a run's lines in write order with a *cursor* per line (SQLite: a
row id, Redis: a stream entry id, memory: a position), so a reader in another
process can ask for "everything after the last line I saw" and wait for more
(``wait``: SQLite watches ``PRAGMA data_version``, Redis blocks in ``XREAD``).
A line too long to keep inline keeps its first ``INLINE_LINE_CHARS`` and names a
blob (``Store.put_blob``) holding all of it. Bounding an attempt's output is the
writer's job (scheduler/log_writer.py); the store keeps what it is given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Sequence

from gleitzeit_core.store.records import copied_by_fields

if TYPE_CHECKING:
    from gleitzeit_core.store.base import Store

#: characters of a line kept in its record; the rest of a longer line is in a blob
INLINE_LINE_CHARS = 8 * 1024


class LogStream(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    LOG = "log"  # a provider's `$/log` record for the attempt (``level`` says which)
    NOTE = "gleitzeit"  # written by Gleitzeit itself (the truncation marker)


@copied_by_fields
@dataclass(slots=True)  # slotted: a store in the engine's process keeps every line of a run
class LogLine:
    run_id: str
    task_id: str
    attempt: int
    seq: int  # position within the attempt, from 0
    at: float  # when the engine received it (epoch seconds)
    stream: LogStream
    text: str  # without its newline; at most INLINE_LINE_CHARS (see ``blob``)
    level: str | None = None  # `$/log` level (RFC 5424 names)
    blob: str | None = None  # digest of the whole line when it was longer than ``text``
    cursor: str = ""  # set by reads: where to continue after this line

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stream"] = self.stream.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogLine:
        d = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        d["stream"] = LogStream(d["stream"])
        return cls(**d)


class LogBook(ABC):
    """One store's log lines. Reads return lines in write order (per attempt: by ``seq``)."""

    def __init__(self, store: Store):
        self.store = store

    @abstractmethod
    async def append(self, lines: Sequence[LogLine]) -> None:
        """Write ``lines`` in one transaction (their blobs, if any, are already stored)."""

    @abstractmethod
    async def read(self, run_id: str, *, task_id: str | None = None, attempt: int | None = None,
                   after: str | None = None) -> list[LogLine]:
        """The run's lines after cursor ``after`` (None: from the start), optionally of one task / attempt."""

    @abstractmethod
    async def wait(self, run_id: str, after: str | None, timeout: float) -> list[LogLine]:
        """Lines after ``after``; when there are none yet, waits up to ``timeout`` seconds
        for another writer (this or another process) to add some. [] when none came."""

    @abstractmethod
    async def delete_run(self, run_id: str) -> None:
        """Forget the run's lines (the store's ``delete_run`` calls this)."""


def book_for(store: Store) -> LogBook:
    """The ``LogBook`` of ``store``'s backend."""
    if store.kind == "sqlite":
        from gleitzeit_core.store.log_sqlite import SQLiteLogBook

        return SQLiteLogBook(store)
    if store.kind == "redis":
        from gleitzeit_core.store.log_redis import RedisLogBook

        return RedisLogBook(store)
    from gleitzeit_core.store.log_memory import MemoryLogBook

    return MemoryLogBook(store)
