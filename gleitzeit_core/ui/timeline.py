"""A run's attempts as a Gantt chart: one row per task that started, one bar per attempt.

Drawn on the server like the graph. Gaps between a task's bars are its retry
delays; a bar still running reaches "now".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

from gleitzeit_core.store.records import AttemptRecord, TaskRecord

ROW_H, BAR_H = 18, 12
LABEL_W = 170
MIN_BAR_W = 2.0
#: more rows than this are cut (the task table lists every task)
MAX_ROWS = 2000


@dataclass(frozen=True)
class Bar:
    task_key: str
    number: int
    status: str
    x: float
    y: float
    w: float
    title: str


@dataclass(frozen=True)
class Row:
    task_key: str
    name: str
    y: float


@dataclass(frozen=True)
class Timeline:
    rows: list[Row]
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (x, label)
    width: float
    height: float
    rows_left_out: int = 0
    label_w: int = LABEL_W
    bar_h: int = BAR_H


def timeline(tasks: Sequence[TaskRecord], attempts: Mapping[str, list[AttemptRecord]], *,
             width: float = 1000, now: float | None = None) -> Timeline:
    """``attempts`` by task record id, as ``Store.list_run_attempts`` returns them."""
    now = time.time() if now is None else now
    started = [t for t in tasks if attempts.get(t.id)]
    started.sort(key=lambda t: attempts[t.id][0].started_at)
    left_out = max(0, len(started) - MAX_ROWS)
    started = started[:MAX_ROWS]
    if not started:
        return Timeline([], [], [], width, 0)
    t0 = min(attempts[t.id][0].started_at for t in started)
    t1 = max(a.finished_at or now for t in started for a in attempts[t.id])
    span = max(t1 - t0, 1e-3)
    plot_w = width - LABEL_W - 30  # room for the last tick's label
    scale = plot_w / span
    rows, bars = [], []
    for i, task in enumerate(started):
        y = 20 + i * ROW_H
        rows.append(Row(task.key, task.name, y))
        for a in attempts[task.id]:
            end = a.finished_at or now
            title = f"{task.name} · attempt {a.number} · {a.status.value} · {end - a.started_at:.2f}s"
            if a.error:
                title += f"\n{a.error.splitlines()[0]}"
            bars.append(Bar(task.key, a.number, a.status.value, LABEL_W + (a.started_at - t0) * scale,
                            y + (ROW_H - BAR_H) / 2, max(MIN_BAR_W, (end - a.started_at) * scale), title))
    ticks = [(LABEL_W + plot_w * k / 5, f"{span * k / 5:.2f}s") for k in range(6)]
    return Timeline(rows, bars, ticks, width, 20 + len(rows) * ROW_H + 4, left_out)
