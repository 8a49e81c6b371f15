"""An attempt's output as timestamped lines in the store, written while it runs.

``AttemptLog`` cuts what an attempt prints (stdout/stderr chunks, `$/log` records,
already masked by the dispatcher) into lines, stamps each with the time it arrived,
and bounds the attempt: the first ``HEAD_LINES`` lines (or ``HEAD_CHARS``
characters) are written as they come; after that only the last ``TAIL_LINES``
are kept, and at the attempt's end a marker line saying how much was left out is
written before them -- the start (setup) and the end (the error) both survive a
runaway loop. A line over ``INLINE_LINE_CHARS`` goes to the blob store whole (up to
``MAX_LINE_CHARS``); its record keeps the start.

``LogWriter`` batches the lines of every attempt of a run: one store transaction
per ``FLUSH_S`` (or per ``FLUSH_LINES``), and one when an attempt ends, before its
final state is saved -- so a follower that sees the task finished has its lines.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

import anyio

from gleitzeit_core.output_streams import LOG_PREFIX
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.blobs import digest
from gleitzeit_core.store.log_lines import INLINE_LINE_CHARS, LogLine, LogStream
from gleitzeit_core.store.records import now

#: lines (and characters) of an attempt written as they come, then the tail
HEAD_LINES, HEAD_CHARS = 5_000, 4 * 1024 * 1024
TAIL_LINES, TAIL_CHARS = 5_000, 4 * 1024 * 1024
#: the longest line kept (its start inline, all of it in a blob); longer ones are cut
MAX_LINE_CHARS = 1024 * 1024
#: a partial line (no newline yet) is written as a line once it is this long
MAX_PARTIAL_CHARS = 64 * 1024
FLUSH_S = 0.1
FLUSH_LINES = 500

class AttemptLog:
    """One attempt's lines, bounded; fed by the dispatcher's ``on_output``."""

    def __init__(self, writer: LogWriter, run_id: str, task_id: str, attempt: int):
        self.writer, self.run_id, self.task_id, self.attempt = writer, run_id, task_id, attempt
        self._partial: dict[str, str] = {}
        self._seq = 0
        self._head_chars = 0
        self._tail: deque[tuple[LogLine, int]] = deque()  # (line, its characters)
        self._tail_chars = 0
        self._dropped_lines = self._dropped_chars = 0
        self.streamed: set[str] = set()  # streams that printed something

    def add(self, stream: str, data: str) -> None:
        """A chunk as the provider sent it: complete lines are kept, a partial one waits."""
        if not data:
            return
        self.streamed.add(stream)
        text = self._partial.pop(stream, "") + data
        *complete, rest = text.split("\n")
        for line in complete:
            self._line(stream, line)
        if len(rest) >= MAX_PARTIAL_CHARS:
            self._line(stream, rest)
        elif rest:
            self._partial[stream] = rest

    def close(self, final: dict[str, str | None]) -> None:
        """At the attempt's end: partial lines, what a provider returned but never streamed
        (``final``: stdout/stderr from its result), and the marker with the kept tail."""
        for stream, rest in self._partial.items():
            self._line(stream, rest)
        self._partial.clear()
        for stream, text in final.items():
            if text and stream not in self.streamed:
                for line in text.rstrip("\n").split("\n"):
                    self._line(stream, line)
        if self._dropped_lines:
            marker = self._new(LogStream.NOTE, f"[… {self._dropped_lines:,} lines ({self._dropped_chars:,} "
                                               f"characters) of output left out …]", None)
            marker.at = self._tail[0][0].at  # where the gap is, not when the attempt ended
            self._emit(marker)
        while self._tail:
            self._emit(self._tail.popleft()[0])

    def _line(self, stream: str, text: str) -> None:
        if stream.startswith(LOG_PREFIX):
            # interned: every `$/log` line of a level then names one string, not a slice each
            line = self._new(LogStream.LOG, text, sys.intern(stream[len(LOG_PREFIX):]))
        elif stream in (LogStream.STDOUT, LogStream.STDERR):
            line = self._new(LogStream(stream), text, None)
        else:
            return  # "delta" (an LLM's tokens) is the result, not output
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f" [… {len(text) - MAX_LINE_CHARS:,} characters left out]"
        if len(text) > INLINE_LINE_CHARS:
            data = text.encode()
            line.text, line.blob = text[:INLINE_LINE_CHARS], digest(data)
            self.writer.blobs[line.blob] = data
        else:
            line.text = text
        size = len(text)
        if self._seq < HEAD_LINES and self._head_chars + size <= HEAD_CHARS and not self._tail:
            self._head_chars += size
            self._emit(line)
            return
        self._tail.append((line, size))
        self._tail_chars += size
        while len(self._tail) > TAIL_LINES or self._tail_chars > TAIL_CHARS:
            gone, gone_size = self._tail.popleft()
            self._dropped_lines += 1
            self._dropped_chars += gone_size
            self._tail_chars -= gone_size
            if gone.blob and all(kept.blob != gone.blob for kept, _ in self._tail):
                self.writer.blobs.pop(gone.blob, None)

    def _new(self, stream: LogStream, text: str, level: str | None) -> LogLine:
        return LogLine(self.run_id, self.task_id, self.attempt, 0, now(), stream, text, level)

    def _emit(self, line: LogLine) -> None:
        line.seq = self._seq
        self._seq += 1
        self.writer.add(line)


class LogWriter:
    """Batches a run's lines into few store transactions; ``run`` is its flush loop
    (owned by the scheduler's task group, cancelled with it)."""

    def __init__(self, store: Store, run_id: str):
        self.store, self.run_id = store, run_id
        self.pending: list[LogLine] = []
        self.blobs: dict[str, bytes] = {}  # digest → data of long lines not yet stored
        self._wake = anyio.Event()
        self._lock = anyio.Lock()

    def attempt(self, task_id: str, number: int) -> AttemptLog:
        return AttemptLog(self, self.run_id, task_id, number)

    def add(self, line: LogLine) -> None:
        self.pending.append(line)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            if len(self.pending) < FLUSH_LINES:
                await anyio.sleep(FLUSH_S)
            await self.flush()

    async def flush(self) -> None:
        """Write every pending line (blobs first: no line names a missing blob); returns once
        every line added before the call is committed."""
        if not self.pending and not self._lock.locked():
            return  # the usual end of an attempt that printed nothing: no checkpoint, no transaction
        async with self._lock:  # batches land in order
            lines, self.pending = self.pending, []
            if not lines:
                return
            wanted = {line.blob for line in lines if line.blob}
            for name in wanted:
                data: Any = self.blobs.pop(name, None)
                if data is not None:
                    await self.store.put_blob(self.run_id, name, data)
            await self.store.logs.append(lines)
