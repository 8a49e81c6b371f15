"""Map tasks (``for_each``) as viewers show them: one row with its items' counts.

A map's items are task records with ``parent`` set to the map's key; views
group them under the map instead of listing thousands of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from gleitzeit_core.store.records import TaskRecord, TaskStatus


@dataclass
class MapCounts:
    """How many of a map's items are in each state."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, status: TaskStatus) -> None:
        self.total += 1
        self.by_status[status.value] = self.by_status.get(status.value, 0) + 1

    def move(self, old: TaskStatus, new: TaskStatus) -> None:
        """One item changed state (O(1): the live view calls this per event)."""
        self.by_status[old.value] -= 1
        self.by_status[new.value] = self.by_status.get(new.value, 0) + 1

    def text(self) -> str:
        """``17/20 done · 2 running · 1 failed``: the states that have items, done first."""
        parts = [f"{self.by_status.get('completed', 0)}/{self.total} done"]
        for status in ("running", "retrying", "queued", "failed", "skipped", "cancelled", "pending"):
            if n := self.by_status.get(status):
                parts.append(f"{n} {status}")
        return " · ".join(parts)

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, **{s.value: self.by_status.get(s.value, 0) for s in TaskStatus}}


def split(tasks: Iterable[TaskRecord]) -> tuple[list[TaskRecord], dict[str, list[TaskRecord]]]:
    """(the workflow's own tasks in order, each map's items by the map's key in item order)."""
    top: list[TaskRecord] = []
    items: dict[str, list[TaskRecord]] = {}
    for t in tasks:
        if t.parent is None:
            top.append(t)
        else:
            items.setdefault(t.parent, []).append(t)
    for children in items.values():
        children.sort(key=lambda t: t.item_index or 0)
    return top, items


def counts(items: Iterable[TaskRecord]) -> MapCounts:
    out = MapCounts()
    for t in items:
        out.add(t.status)
    return out
