"""The live view's cost per update does not grow with the number of tasks: counted in
operations (table rows built), never timed. Events are fed as the scheduler sends them,
the same record object mutated in place; frames are drawn as rich's refresh thread
would, into a terminal-sized console."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from gleitzeit_core.cli.live_view import LiveView
from gleitzeit_core.scheduler.events import TaskOutput, TaskUpdated
from gleitzeit_core.store.records import TaskRecord, TaskStatus
from gleitzeit_core.workflow.model import TaskSpec

HEIGHT = 40


def specs(n: int) -> list[TaskSpec]:
    return [TaskSpec(key=f"t{i}", name=f"t{i}", protocol="noop/v1", method="noop/pass", params={}) for i in range(n)]


def feed_run(view: LiveView, n: int, *, frame_every: int) -> list[int]:
    """Every task queued, running, then completed (every 10th fails); a frame every
    ``frame_every`` events. Returns the rows built per frame."""
    rows_per_frame, events = [], 0
    for spec in view.specs:
        rec = TaskRecord(id=spec.key, run_id="r", key=spec.key, name=spec.name, protocol=spec.protocol,
                         method=spec.method)
        for status in (TaskStatus.QUEUED, TaskStatus.RUNNING,
                       TaskStatus.FAILED if spec.key.endswith("0") else TaskStatus.COMPLETED):
            rec.status = status  # in place, like the scheduler
            rec.attempts += status is TaskStatus.RUNNING
            view(TaskUpdated(rec))
            if status is TaskStatus.RUNNING:
                view(TaskOutput(rec, "stdout", f"{spec.name} says hi\n"))
            events += 1
            if events % frame_every == 0:
                rows_per_frame.append(count_rows(view))
    return rows_per_frame


def count_rows(view: LiveView) -> int:
    before = Table.add_row.calls
    view.console.print(view.render())
    return Table.add_row.calls - before


@pytest.fixture(autouse=True)
def counted_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Table.add_row

    def add_row(self, *cells, **kw):
        add_row.calls += 1
        return real(self, *cells, **kw)

    add_row.calls = 0
    monkeypatch.setattr(Table, "add_row", add_row)


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, color_system=None, width=120, height=HEIGHT)


@pytest.mark.parametrize("watch", [False, True])
def test_rows_per_frame_stay_bounded_as_tasks_grow_tenfold(watch: bool):
    worst = {}
    for n in (300, 3000):
        view = LiveView(terminal(), "big", specs(n), watch)
        frames = feed_run(view, n, frame_every=n // 10 + 1)  # frames all through the run
        worst[n] = max(frames)
        assert worst[n] <= HEIGHT  # what fits the screen, not a row per task
        assert view.counts[TaskStatus.COMPLETED] == n - n // 10 and view.counts[TaskStatus.FAILED] == n // 10
        assert sum(view.counts.values()) == n and view.counts[TaskStatus.PENDING] == 0
    assert worst[3000] == worst[300]


def test_events_build_no_rows_and_the_last_frame_shows_counts_and_failures():
    view = LiveView(terminal(), "big", specs(1000), watch=False)
    feed_run(view, 1000, frame_every=10**9)  # no frame while events arrive
    assert Table.add_row.calls == 0
    view.console.print(view.render())
    screen = view.console.file.getvalue()
    assert "1000/1000 done" in screen and "completed 900" in screen and "failed 100" in screen
    assert "t990 " in screen and "failed" in screen  # the latest failure is on screen


def test_a_workflow_that_fits_is_shown_whole_in_file_order():
    view = LiveView(terminal(), "small", specs(5), watch=False)
    assert count_rows(view) == 5
    screen = view.console.file.getvalue()
    assert [ln.split("│")[1].strip() for ln in screen.splitlines() if ln.startswith("│ t")] == [f"t{i}" for i in range(5)]
    assert "0/5 done  ·  pending 5" in screen


def test_a_10000_item_map_is_one_row_with_its_counts():
    """A for_each task's items are counted under the map's row: rows per frame do not
    grow with the items, and the counts are right after every item's events."""
    spec = TaskSpec(key="map", name="Process", protocol="noop/v1", method="noop/pass", params={})
    view = LiveView(terminal(), "wide", [spec], watch=False)
    parent = TaskRecord(id="p", run_id="r", key="map", name="Process", protocol="noop/v1", method="noop/pass",
                        status=TaskStatus.RUNNING)
    view(TaskUpdated(parent))
    items = [TaskRecord(id=f"i{i}", run_id="r", key=f"map[{i}]", name=f"Process[{i}]", protocol="noop/v1",
                        method="noop/pass", status=TaskStatus.QUEUED, parent="map", item_index=i)
             for i in range(10_000)]
    for rec in items:
        view(TaskUpdated(rec))
    for i, rec in enumerate(items[:9_000]):
        rec.status = TaskStatus.RUNNING
        view(TaskUpdated(rec))
        if i >= 5:  # five stay running
            rec.status = TaskStatus.FAILED if i % 1000 == 0 else TaskStatus.COMPLETED
            view(TaskUpdated(rec))
    assert count_rows(view) == 1
    screen = view.console.file.getvalue()
    assert view.item_counts["map"].text() == "8987/10000 done · 5 running · 1000 queued · 8 failed"
    assert "8987/10000 done" in screen and "Process[" not in screen
    assert "0/1 done" in screen and "running 1" in screen  # the workflow's own count: one task
