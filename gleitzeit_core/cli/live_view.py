"""The live view of a run in a terminal, at a cost that does not grow with the run.

An event only updates counters and a few bounded collections (O(1)); rich's refresh
thread redraws at most ``REFRESH_PER_SECOND`` times a second, and a frame holds only
what fits the screen: the counts per status, the running tasks, then the latest
failures and other finished tasks. A workflow that fits the screen is shown whole,
a row per task in file order. (Redrawing a row per task on every event made a
1,000-task run in a terminal take minutes.)
"""

from __future__ import annotations

import collections
import itertools
import threading
from typing import Any, Iterable

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from gleitzeit_core.cli.render import STATUS_STYLE, task_table
from gleitzeit_core.scheduler.events import Event, TaskOutput, TaskUpdated
from gleitzeit_core.store.maps import MapCounts
from gleitzeit_core.store.records import TaskRecord, TaskStatus
from gleitzeit_core.workflow.model import TaskSpec

ACTIVE = (TaskStatus.RUNNING, TaskStatus.RETRYING)


class LiveView:
    """With ``watch``, a pane below the table streams the output of the selected task:
    ``follow`` (a task name) or else the task that printed last."""

    TAIL = 12  # output lines shown
    REFRESH_PER_SECOND = 4
    RECENT = 64  # finished tasks remembered for display, per kind (failed / other)
    CHROME = 7  # screen lines that are not task rows: title, table borders and header, counts

    def __init__(self, console: Console, title: str, specs: list[TaskSpec], watch: bool, follow: str | None = None):
        self.console = console
        self.title = title
        self.specs = specs
        self.watch = watch
        self.follow = follow
        self.selected: str | None = follow
        self.records: dict[str, TaskRecord] = {}
        self.status: dict[str, TaskStatus] = {}  # as last shown: the engine mutates its records in place
        self.counts = collections.Counter({TaskStatus.PENDING: len(specs)})
        self.active: dict[str, None] = {}  # running / retrying task keys, oldest first
        self.failed: collections.deque[str] = collections.deque(maxlen=self.RECENT)
        self.finished: collections.deque[str] = collections.deque(maxlen=self.RECENT)
        self.output: dict[str, collections.deque[str]] = {}
        # a for_each task's items are counted under its row, never rows of their own
        self.item_status: dict[str, TaskStatus] = {}
        self.item_counts: dict[str, MapCounts] = {}
        self._lock = threading.Lock()  # events arrive on the event loop, frames are drawn by rich's thread
        self.live = Live(console=console, get_renderable=self.render, refresh_per_second=self.REFRESH_PER_SECOND,
                         transient=False)

    def __enter__(self) -> "LiveView":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)  # draws the last frame

    def __call__(self, event: Event) -> None:
        if not isinstance(event, (TaskUpdated, TaskOutput)):
            return
        with self._lock:
            self._note(event.task)
            if isinstance(event, TaskOutput) and self.watch:
                buf = self.output.setdefault(event.task.name, collections.deque(maxlen=self.TAIL * 4))
                buf.extend(event.data.splitlines() or [event.data])
                if self.follow is None:
                    self.selected = event.task.name

    def _note(self, rec: TaskRecord) -> None:
        if rec.parent is not None:
            self._note_item(rec)
            return
        self.records[rec.key] = rec
        old, new = self.status.get(rec.key, TaskStatus.PENDING), rec.status
        if old is new:
            return
        self.status[rec.key] = new
        self.counts[old] -= 1
        self.counts[new] += 1
        if new in ACTIVE:
            self.active[rec.key] = None
        else:
            self.active.pop(rec.key, None)
        if new is TaskStatus.FAILED:
            self.failed.append(rec.key)
        elif new.finished:
            self.finished.append(rec.key)

    def _note_item(self, rec: TaskRecord) -> None:
        counts = self.item_counts.setdefault(rec.parent or "", MapCounts())
        old = self.item_status.get(rec.key)
        if old is None:
            counts.add(rec.status)
        elif old is not rec.status:
            counts.move(old, rec.status)
        self.item_status[rec.key] = rec.status

    # -- drawing (rich's refresh thread) ------------------------------------------------

    def render(self) -> Group:
        with self._lock:
            pane = self._pane()
            room = max(3, self.console.size.height - self.CHROME - sum(len(t.plain.splitlines()) for t in pane))
            return Group(task_table(self._rows(room), title=self.title, summaries=self.item_counts),
                         self._counts_line(), *pane)

    def _rows(self, room: int) -> list[TaskRecord]:
        """At most ``room`` rows: every task if they fit, else running, failed, then finished ones."""
        if len(self.specs) <= room:
            return [self.records.get(s.key) or TaskRecord(id="", run_id="", key=s.key, name=s.name,
                                                          protocol=s.protocol, method=s.method) for s in self.specs]
        keys: Iterable[str] = itertools.chain(self.active, reversed(self.failed), reversed(self.finished))
        shown: dict[str, None] = {}
        for key in keys:
            if len(shown) == room:
                break
            shown.setdefault(key, None)
        return [self.records[k] for k in shown]

    def _counts_line(self) -> Text:
        done = sum(n for s, n in self.counts.items() if s.finished)
        line = Text(f"{done}/{len(self.specs)} done")
        for status in TaskStatus:
            if self.counts[status]:
                line.append("  ·  ")
                line.append(f"{status.value} {self.counts[status]}", style=STATUS_STYLE.get(status.value, ""))
        return line

    def _pane(self) -> list[Text]:
        if not (self.watch and self.selected is not None):
            return []
        lines = list(self.output.get(self.selected, ()))[-self.TAIL:]
        return [Text(f"── output · {self.selected} ──", style="bold"),
                Text("\n".join(lines) if lines else "(no output yet)", style="dim")]

