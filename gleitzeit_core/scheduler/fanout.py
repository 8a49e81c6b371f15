"""Map tasks (``for_each``) inside one run: expansion, the per-map parallelism
gate, the failure policy and the map's result.

When a map task becomes ready its item list is computed once (a reference, a
literal list or a glob) and written with one child record per item in one
store transaction (``Store.add_tasks``); from then on the children are
ordinary tasks of the scheduler (attempts, retries, timeouts under the map's
policy) without dependencies of their own. A child takes one of the map's
``max_parallel`` slots when it is admitted to the ready set and keeps it until
it is final (through retries), so the bound holds across retries and resume.
The map completes when every child is final, with the list of the children's
results in item order (``None`` for an item that did not complete).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gleitzeit_core.errors import SubstitutionError
from gleitzeit_core.results import StoredResult, held, keep, load
from gleitzeit_core.scheduler.events import TaskUpdated
from gleitzeit_core.store.records import TaskRecord, TaskStatus, new_id, now
from gleitzeit_core.workflow import conditions
from gleitzeit_core.workflow.foreach import ITEM, ITEM_INDEX, VARIABLES, GlobTooWide, resolve_glob
from gleitzeit_core.workflow.model import TaskSpec
from gleitzeit_core.workflow.refs import ReferenceSyntaxError, find_references, substitute
from gleitzeit_core.workflow.triggers import Trigger

if TYPE_CHECKING:
    from gleitzeit_core.scheduler.scheduler import Scheduler


def item_key(map_key: str, index: int) -> str:
    """A child's key: the map's key and the item's index (its identity for caches and resume)."""
    return f"{map_key}[{index}]"


@dataclass
class _Map:
    key: str
    children: list[str]  # child keys by item index
    slots: set[str] = field(default_factory=set)  # admitted children that are not final yet
    waiting: deque[str] = field(default_factory=deque)  # children not admitted yet, in item order
    final: int = 0
    failed: int = 0
    first_failure: str | None = None


class Fanout:
    """The map tasks of one scheduler; the scheduler calls ``admit`` for records it
    makes ready and ``item_finished`` when a child is final."""

    def __init__(self, scheduler: "Scheduler", max_items: int):
        self.s = scheduler
        self.max_items = max_items
        self.maps: dict[str, _Map] = {}
        self._restore()

    # -- setup ---------------------------------------------------------------------
    def _restore(self) -> None:
        """Children already in the store (a resumed run) become tasks again."""
        s = self.s
        children: dict[str, list[TaskRecord]] = {}
        for rec in s.tasks.values():
            if rec.parent is not None and rec.parent in s.specs:
                children.setdefault(rec.parent, []).append(rec)
        for key, recs in children.items():
            recs.sort(key=lambda r: r.item_index or 0)
            self._register(s.specs[key], recs)
            m = self.maps[key]
            for rec in recs:
                if rec.status.finished:
                    self._count(m, rec)
                elif rec.status is TaskStatus.RETRYING and len(m.slots) < self._width(key):
                    m.slots.add(rec.key)  # it held a slot when the engine stopped

    def _register(self, spec: TaskSpec, recs: list[TaskRecord]) -> None:
        s = self.s
        for rec in recs:
            # The map passed its trigger and condition; an item condition was decided at expansion.
            # An item a resume hands over pending is decided again: it must not be judged again.
            s.specs[rec.key] = replace(spec, key=rec.key, name=rec.name, dependencies=(), for_each=None,
                                       when=None, trigger=Trigger.ALL_SUCCESS)
            s.dependents[rec.key] = []
            s.tasks[rec.key] = rec
        self.maps[spec.key] = _Map(spec.key, [r.key for r in recs])

    def _width(self, key: str) -> int:
        fe = self.s.specs[key].for_each
        assert fe is not None
        return fe.max_parallel or len(self.maps[key].children) or 1

    # -- what the scheduler asks ---------------------------------------------------
    def variables(self, key: str) -> dict[str, Any]:
        rec = self.s.tasks[key]
        if rec.parent is None:
            return {}
        return {ITEM: rec.item, ITEM_INDEX: rec.item_index}

    def variable_names(self, key: str) -> tuple[str, ...]:
        return VARIABLES if self.s.tasks[key].parent is not None else ()

    def item_files(self, key: str) -> list[str]:
        """The file a child of a glob map is: its path relative to the workflow folder, a file
        the task reads whatever its parameters do with it (so its contents key the cache)."""
        rec = self.s.tasks[key]
        fe = self.s.specs[rec.parent].for_each if rec.parent is not None else None
        return [rec.item] if fe is not None and fe.glob is not None and isinstance(rec.item, str) else []

    def tolerated(self, rec: TaskRecord) -> bool:
        """A child that did not complete, of a map that completed anyway (on_item_failure)."""
        return rec.parent is not None and self.s.tasks[rec.parent].status is TaskStatus.COMPLETED

    async def admit(self, records: list[TaskRecord]) -> list[TaskRecord]:
        """Of ``records`` about to become ready: what may enter the ready set now.
        A map task expands instead; a child waits for a free slot of its map."""
        out = []
        for rec in records:
            spec = self.s.specs[rec.key]
            if spec.for_each is not None:
                out += await self._start_map(spec, rec)
            elif rec.parent is not None:
                m = self.maps[rec.parent]
                if rec.key in m.slots or len(m.slots) < self._width(m.key):
                    m.slots.add(rec.key)
                    out.append(rec)
                elif rec.key not in m.waiting:
                    m.waiting.append(rec.key)
            else:
                out.append(rec)
        return out

    async def item_finished(self, key: str) -> None:
        rec = self.s.tasks[key]
        m = self.maps[rec.parent or ""]
        m.slots.discard(key)
        self._count(m, rec)
        policy = self.s.specs[m.key].for_each.on_failure  # type: ignore[union-attr]
        if not policy.tolerates(m.failed, len(m.children)):
            await self._stop(m)
        nxt = []
        while m.waiting and len(m.slots) < self._width(m.key):
            child = self.s.tasks[m.waiting.popleft()]
            if not child.status.finished:
                m.slots.add(child.key)
                nxt.append(child)
        if nxt:
            await self.s._make_ready(nxt)
        if m.final == len(m.children):
            await self._settle(m)

    # -- inside --------------------------------------------------------------------
    def _count(self, m: _Map, rec: TaskRecord) -> None:
        m.final += 1
        if rec.status is TaskStatus.FAILED:
            m.failed += 1
            if m.first_failure is None:
                m.first_failure = f"item {rec.item_index}: {(rec.error or 'failed').splitlines()[0]}"

    async def _start_map(self, spec: TaskSpec, rec: TaskRecord) -> list[TaskRecord]:
        s = self.s
        if spec.key in self.maps:  # expanded before (a resumed run)
            m = self.maps[spec.key]
            if rec.status is not TaskStatus.RUNNING:
                rec.status, rec.updated_at = TaskStatus.RUNNING, now()
                await s.store.save_task(rec)
                s.emit(TaskUpdated(rec))
            if m.final == len(m.children):
                await self._settle(m)
            return []  # its unfinished items are among the records the scheduler starts from
        try:
            items = await self._items(spec)
        except SubstitutionError as exc:
            await self._fail(rec, str(exc))
            return []
        rec.status = TaskStatus.RUNNING
        rec.started_at = rec.updated_at = now()
        if not items:
            await self._complete(rec, [])
            return []
        verdicts = await self._item_verdicts(spec, items)
        runnable = [i for i, v in enumerate(verdicts) if v is None]
        width = spec.for_each.max_parallel or len(items)  # type: ignore[union-attr]
        first = set(runnable[:width])
        children = [
            TaskRecord(id=new_id("task"), run_id=rec.run_id, key=item_key(spec.key, i),
                       name=item_key(spec.name, i), protocol=spec.protocol, method=spec.method,
                       workflow_name=rec.workflow_name, priority=rec.priority,
                       status=TaskStatus.QUEUED if i in first else TaskStatus.PENDING,
                       parent=spec.key, item_index=i, item=item)
            for i, item in enumerate(items)]
        decided = []
        for child, verdict in zip(children, verdicts):
            if verdict is not None:
                child.status, child.error = verdict
                child.finished_at = child.updated_at = rec.started_at
                decided.append(child)
        await s.store.add_tasks(rec.run_id, children, [rec])  # write, then act
        self._register(spec, children)
        m = self.maps[spec.key]
        s._unfinished += len(children) - len(decided)
        s.emit(TaskUpdated(rec))
        for child in children:
            s.emit(TaskUpdated(child))
        for child in decided:
            self._count(m, child)
            s._note_outcome(child)
        m.slots.update(children[i].key for i in runnable[:width])
        m.waiting.extend(children[i].key for i in runnable[width:])
        if not spec.for_each.on_failure.tolerates(m.failed, len(children)):  # type: ignore[union-attr]
            await self._stop(m)
        if m.final == len(children):
            await self._settle(m)
            return []
        return [children[i] for i in runnable[:width]]

    async def _item_verdicts(self, spec: TaskSpec, items: list[Any]) -> list[tuple[TaskStatus, str] | None]:
        """A map's item condition (a ``when:`` that reads ``item``), decided for every item as
        the map expands: the skips are written with the items, so a resume sees the same."""
        if spec.when is None or not conditions.reads_item(spec.when.text):
            return [None] * len(items)
        tasks_and_inputs = await self.s._condition_variables(spec)
        return [self.s.judge(spec, {**tasks_and_inputs, ITEM: item, ITEM_INDEX: i}) for i, item in enumerate(items)]

    async def _items(self, spec: TaskSpec) -> list[Any]:
        fe = spec.for_each
        assert fe is not None
        if fe.glob is not None:
            try:
                return list(resolve_glob(fe.glob, self.s.wf.base_dir or ".", self.max_items))
            except GlobTooWide as exc:
                raise SubstitutionError(f"for_each: {exc}; at most {self.max_items} items per map "
                                        "(execution.max_map_items)") from None
        value = fe.source
        if isinstance(value, str):
            try:
                keys = {r.task for r in find_references(value, self.s.names)}
            except ReferenceSyntaxError as exc:
                raise SubstitutionError(f"for_each: {exc}") from None
            results = {k: self.s._results[k] for k in keys if k in self.s._results}
            for k, v in results.items():
                if isinstance(v, StoredResult):
                    results[k] = await load(self.s.store, v)
            value = substitute(value, results=results, task_names=self.s.names, unavailable=self.s._unavailable)
            if not isinstance(value, list):
                raise SubstitutionError(f"for_each: {fe.source} is {_kind(value)}; for_each needs a list")
        if len(value) > self.max_items:
            raise SubstitutionError(f"for_each: {len(value)} items; at most {self.max_items} per map "
                                    "(execution.max_map_items)")
        return list(value)

    async def _stop(self, m: _Map) -> None:
        """The map has failed: items that have not started never will (running ones finish)."""
        m.waiting.clear()
        stopped = []
        for key in m.children:
            rec = self.s.tasks[key]
            if rec.status in (TaskStatus.PENDING, TaskStatus.QUEUED):
                rec.status, rec.finished_at = TaskStatus.SKIPPED, now()
                rec.updated_at = rec.finished_at
                rec.error = f"map {self.s.specs[m.key].name!r} stopped after {m.failed} failed item(s)"
                m.slots.discard(key)
                stopped.append(rec)
        if stopped:
            await self.s.store.save_tasks(stopped)
            for rec in stopped:
                self._count(m, rec)
                self.s._note_outcome(rec)
                self.s.emit(TaskUpdated(rec))
            self.s._unfinished -= len(stopped)

    async def _settle(self, m: _Map) -> None:
        rec = self.s.tasks[m.key]
        if rec.status.finished:
            return
        policy = self.s.specs[m.key].for_each.on_failure  # type: ignore[union-attr]
        total = len(m.children)
        if not policy.tolerates(m.failed, total) or (m.failed == 0 and self._incomplete(m)):
            reason = (f"{m.failed} of {total} items failed (on_item_failure: {policy.describe()}); first: "
                      f"{m.first_failure}" if m.failed else f"not every item completed ({self._incomplete(m)})")
            await self._fail(rec, reason)
            return
        results = []
        for key in m.children:
            child = self.s.tasks[key]
            value = held(child) if child.status is TaskStatus.COMPLETED else None
            results.append(await load(self.s.store, value) if isinstance(value, StoredResult) else value)
        await self._complete(rec, results)

    def _incomplete(self, m: _Map) -> str:
        """Items that neither completed nor failed (cancelled), as text, or ''."""
        other = [self.s.tasks[k] for k in m.children  # a skipped item: its item condition was false
                 if self.s.tasks[k].status not in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED)]
        return f"{len(other)} {other[0].status.value}" if other else ""

    async def _complete(self, rec: TaskRecord, results: list[Any]) -> None:
        await keep(self.s.store, rec, results)
        rec.status, rec.error = TaskStatus.COMPLETED, None
        rec.finished_at = rec.updated_at = now()
        await self.s.store.save_task(rec)
        self.s.emit(TaskUpdated(rec))
        await self.s._finished(rec.key)

    async def _fail(self, rec: TaskRecord, error: str) -> None:
        rec.status, rec.error = TaskStatus.FAILED, error
        rec.finished_at = rec.updated_at = now()
        rec.started_at = rec.started_at or rec.finished_at
        await self.s.store.save_task(rec)
        self.s.emit(TaskUpdated(rec))
        await self.s._finished(rec.key)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(list(map(str, value))[:5])
        return f"an object with keys {keys}" if keys else "an empty object"
    return {type(None): "null", bool: "a bool", int: "a number", float: "a number",
            str: "a string"}.get(type(value), f"a {type(value).__name__}")
