"""Runs one workflow run: the DAG ready set, priorities, concurrency limits,
retries and timeouts. Event-driven: a task becomes ready when its last
dependency finishes; retries are timers owned by the run's task group.

Every state change is written to the store before the scheduler acts on it.
The scheduler starts from whatever task records it is given, so a resumed run
and a fresh one take the same path.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

import anyio
from anyio.abc import TaskGroup

from gleitzeit_core.cache.files import NotCacheable
from gleitzeit_core.cache.entries import CacheEntry
from gleitzeit_core.cache.lookup import CacheMode, Decision, ResultCache
from gleitzeit_core.dispatch.base import Dispatcher
from gleitzeit_core.errors import ProviderError, SubstitutionError
from gleitzeit_core.output_streams import LOG_PREFIX
from gleitzeit_core.scheduler.capture import AttemptOutput
from gleitzeit_core.scheduler.fanout import Fanout
from gleitzeit_core.scheduler.log_writer import LogWriter
from gleitzeit_core.scheduler.events import Observer, RunUpdated, TaskOutput, TaskUpdated, no_observer
from gleitzeit_core.workflow.triggers import Outcome, decide
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.batch import Staged
from gleitzeit_core.store.records import AttemptRecord, RunRecord, RunStatus, TaskRecord, TaskStatus, now
from gleitzeit_core.tracing.context import traceparent
from gleitzeit_core.workflow import conditions
from gleitzeit_core.workflow.graph import topological_order
from gleitzeit_core.workflow.foreach import DEFAULT_MAX_ITEMS
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.results import StoredResult, held, keep, load
from gleitzeit_core.workflow.refs import ReferenceSyntaxError, find_references, run_values, substitute
from gleitzeit_sdk import jsonlimits
from gleitzeit_sdk.codes import FailureKind

log = logging.getLogger("gleitzeit.cache")


@dataclass(frozen=True)
class RunOptions:
    max_concurrent: int = 5
    workspace: str | None = None  # per-run folder shared by the run's tasks
    code_params: Mapping[str, Mapping[str, str]] | None = None  # method → {param: language}
    idempotent: frozenset[str] = frozenset()  # methods whose descriptor says idempotent: true
    # Renews the run's lease in the store and answers whether another process asked
    # to cancel it (raises StoreUnavailable when the run is gone from the store).
    heartbeat: Callable[[], Awaitable[bool]] | None = None
    heartbeat_interval: float = 1.0
    cache: ResultCache | None = None  # the result cache for this run (docs/cache.md); None: off
    max_map_items: int = DEFAULT_MAX_ITEMS  # items per for_each map (execution.max_map_items)
    # The clock port of the retry timers and the heartbeat: the wall time a retry's due time is
    # stored in (wall, not monotonic: it must mean the same after a restart) and how a timer or
    # the heartbeat waits. Tests pass a controllable pair (tests/core/scheduler/test_retry_timing.py).
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep


class RunCancelled(Exception):
    pass


@dataclass(frozen=True)
class _Begun:
    """An attempt whose RUNNING record is staged: it sends nothing before that committed."""

    key: str
    attempt: AttemptRecord
    written: Staged


class Scheduler:
    def __init__(
        self,
        workflow: Workflow,
        run: RunRecord,
        tasks: Mapping[str, TaskRecord],
        store: Store,
        dispatcher: Dispatcher,
        options: RunOptions = RunOptions(),
        observer: Observer = no_observer,
        rng: random.Random | None = None,
    ):
        self.wf = workflow
        self.run = run
        self.tasks = dict(tasks)  # key → record (mutated in place, saved after each change)
        self.store = store
        self.dispatcher = dispatcher
        self.options = options
        self.emit = observer
        self.rng = rng or random.Random()
        self.specs = workflow.by_key()
        self.names: dict[str, str] = {}
        for spec in workflow.tasks:
            self.names[spec.name] = spec.key
            self.names[spec.key] = spec.key
        self.dependents: dict[str, list[str]] = {k: [] for k in self.specs}
        self.waiting_on: dict[str, int] = {}
        for spec in workflow.tasks:
            for dep in spec.dependencies:
                self.dependents[dep].append(spec.key)
        self._ready: dict[str, list[tuple[int, int, str]]] = {}  # protocol → heap
        self._running: dict[str, int] = {}  # protocol → attempts in flight
        self._running_total = 0
        self._unsettled = 0  # attempts started and not yet recorded as finished
        self._all_settled: anyio.Event | None = None  # set when _unsettled drops to 0 (during a cancel)
        self._seq = itertools.count()
        self._unfinished = 0
        self._all_done = anyio.Event()
        self._tg: TaskGroup | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}
        # Kept up to date as tasks finish, so an attempt's substitution is O(its params).
        self._results: dict[str, Any] = run_values(workflow)
        self._unavailable: dict[str, str] = {}
        self._cache_keys: dict[str, Decision] = {}  # task key → its cache decision (for the result)
        self._flights: dict[str, anyio.Event] = {}  # cache key → set when the task computing it ends
        self._flying: dict[str, str] = {}  # task key → the cache key it computes
        # Skipped tasks whose skip carries a failure upstream (the rules treat them as failed),
        # and for each task skipped by a rule the task that started the skip (for its message).
        self._failed_upstream: set[str] = set()
        self._cause: dict[str, str] = {}
        self.maps = Fanout(self, options.max_map_items)  # for_each tasks and their items
        self.logs = LogWriter(store, run.run_id)  # what attempts print, as lines in the store

    # -- entry point --------------------------------------------------------------
    async def execute(self) -> RunRecord:
        run = self.run
        run.status = RunStatus.RUNNING
        run.started_at = run.started_at or now()
        run.updated_at = now()
        run.error = None
        await self.store.save_run(run)
        self.emit(RunUpdated(run))
        final, error = RunStatus.COMPLETED, None
        try:
            with anyio.move_on_after(self.wf.timeout if self.wf.timeout else float("inf")) as wf_deadline:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(self.logs.run)
                    await self._start()
                    if self.options.heartbeat is not None:
                        tg.start_soon(self._heartbeat, tg.cancel_scope)
                    await self._all_done.wait()
                    tg.cancel_scope.cancel()  # stop the cancel watcher
            if wf_deadline.cancel_called and not self._all_done.is_set():
                error = f"workflow timed out after {self.wf.timeout:g} s"
                await self._finish_unfinished(TaskStatus.CANCELLED, error)
                final = RunStatus.FAILED
            elif self.run.cancel_requested:
                await self._finish_unfinished(TaskStatus.CANCELLED, "run cancelled")
                final, error = RunStatus.CANCELLED, "run cancelled on request"
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._finish_unfinished(TaskStatus.CANCELLED, "interrupted")
                run.status, run.error = RunStatus.CANCELLED, "interrupted"
                run.finished_at = run.updated_at = now()
                await self.store.save_run(run)
                self.emit(RunUpdated(run))
            raise
        if final is RunStatus.COMPLETED and any((t.status in _FAILURES or not t.status.finished) and not self.maps.tolerated(t)
                                                for t in self.tasks.values()):
            final = RunStatus.FAILED
            failed = [t.name for t in self.tasks.values() if t.status is TaskStatus.FAILED]
            error = f"{len(failed)} task(s) failed: {', '.join(failed[:5])}" if failed else "not every task completed"
        run.status, run.error = final, error
        run.finished_at = run.updated_at = now()
        await self.store.save_run(run)
        self.emit(RunUpdated(run))
        return run

    async def _start(self) -> None:
        """Classify the given records: finished ones stay, the rest wait or are decided."""
        due: list[str] = []
        for key, spec in self.specs.items():
            rec = self.tasks[key]
            if rec.status.finished:
                self._note_outcome(rec)
                continue
            self._unfinished += 1
            self.waiting_on[key] = sum(1 for d in spec.dependencies if not self.tasks[d].status.finished)
        if any(r.status is TaskStatus.SKIPPED for r in self.tasks.values()):
            for k in topological_order({k: s.dependencies for k, s in self.specs.items()}):
                if self.tasks[k].status is TaskStatus.SKIPPED and self._skip_carries_failure(k):
                    self._failed_upstream.add(k)
        for key in self.specs:
            rec = self.tasks[key]
            if rec.status.finished or self.waiting_on.get(key):
                continue
            if rec.status is TaskStatus.RETRYING and rec.next_attempt_at:
                self._schedule_retry(key, max(0.0, rec.next_attempt_at - self.options.clock()))
            else:
                due.append(key)  # a resumed run may hold failures whose dependents never ran
        if self._unfinished == 0:
            self._all_done.set()
            return
        await self._decide(due)

    # -- ready set ----------------------------------------------------------------
    async def _make_ready(self, records: list[TaskRecord]) -> None:
        if not records:
            return
        records = await self.maps.admit(records)
        changed, _ = self._enqueue(records)
        if changed:
            await self.store.save_tasks(changed)
            for rec in changed:
                self.emit(TaskUpdated(rec))

    def _enqueue(self, records: list[TaskRecord], hand_over: bool = False) -> tuple[list[TaskRecord], str | None]:
        """Admitted records into the ready set, then start what fits (``_pump``). Returns the
        ones left waiting for a slot, now QUEUED, for the caller to write: a started one goes
        straight to RUNNING, which its attempt writes in the same group commit (resume treats
        PENDING and QUEUED alike); and the key handed over to the caller, if any."""
        for rec in records:
            spec = self.specs[rec.key]
            heapq.heappush(self._ready.setdefault(spec.protocol, []), (-int(spec.priority), next(self._seq), rec.key))
        started, kept = self._pump(hand_over)
        changed = [r for r in records if r.key not in started and r.status is not TaskStatus.QUEUED]
        for rec in changed:
            rec.status, rec.updated_at = TaskStatus.QUEUED, now()
        return changed, kept

    def _pump(self, hand_over: bool = False) -> tuple[set[str], str | None]:
        """Start ready tasks while slots are free: highest priority first, FIFO within one.
        Returns the keys it started; with ``hand_over`` the first of them is not started in a
        task of its own but returned second, for the calling attempt's task to run next."""
        started: set[str] = set()
        kept: str | None = None
        while self._running_total < self.options.max_concurrent and not self.run.cancel_requested:
            best: tuple[int, int, str] | None = None
            best_proto = ""
            for proto, heap in self._ready.items():
                if heap and self._running.get(proto, 0) < self.dispatcher.capacity(proto):
                    if best is None or heap[0] < best:
                        best, best_proto = heap[0], proto
            if best is None:
                break
            heapq.heappop(self._ready[best_proto])
            if self.tasks[best[2]].status.finished:  # a map item skipped while it waited
                continue
            self._running[best_proto] = self._running.get(best_proto, 0) + 1
            self._running_total += 1
            started.add(best[2])
            if hand_over and kept is None:
                kept = best[2]
                continue
            assert self._tg is not None
            self._tg.start_soon(self._settled_attempt, best[2])
        return started, kept

    # -- one attempt ----------------------------------------------------------------
    async def _settled_attempt(self, key: str) -> None:
        """``_attempt``, counted until it is recorded (a cancel waits for that); then, in this
        same task, each attempt the one before handed on (``_completed``)."""
        begun: _Begun | None = None
        while True:
            self._unsettled += 1
            try:
                begun = await self._attempt(key, begun)
            finally:
                self._land(key)
                self._unsettled -= 1
                if self._unsettled == 0 and self._all_settled is not None:
                    self._all_settled.set()
            if begun is None:
                return
            key = begun.key

    def _begin(self, key: str) -> _Begun:
        """The attempt's RUNNING record (with its attempt record), staged."""
        rec = self.tasks[key]
        number = rec.attempts + 1
        attempt = AttemptRecord(task_id=rec.id, run_id=rec.run_id, number=number)
        rec.status, rec.attempts, rec.next_attempt_at = TaskStatus.RUNNING, number, None
        rec.started_at = rec.started_at or attempt.started_at
        rec.updated_at = attempt.started_at
        return _Begun(key, attempt, self.store.stage_task(rec, attempt))

    async def _attempt(self, key: str, begun: _Begun | None = None) -> _Begun | None:
        """One attempt of ``key`` (``begun``: its RUNNING write already staged, no cache
        lookup); returns the next attempt it handed itself, if any."""
        spec, rec = self.specs[key], self.tasks[key]
        if begun is None:
            if self.options.cache is not None and await self._from_cache(key):
                return None
            begun = self._begin(key)
        attempt, number = begun.attempt, begun.attempt.number
        await begun.written.committed()  # written before anything is sent
        self.emit(TaskUpdated(rec, attempt))
        outcome: Any = None
        error: ProviderError | None = None
        printed = AttemptOutput()
        lines = self.logs.attempt(rec.id, number)

        def on_output(stream: str, data: str) -> None:
            lines.add(stream, data)
            if not stream.startswith(LOG_PREFIX):  # `$/log` records are logged by the provider host
                printed.add(stream, data)
                self.emit(TaskOutput(rec, stream, data))

        try:
            with anyio.CancelScope() as scope:
                self._scopes[key] = scope
                try:
                    params = await self._params(spec)
                except SubstitutionError as exc:
                    error = ProviderError(str(exc), kind=FailureKind.SUBSTITUTION, retryable=False)
                else:
                    try:
                        outcome = await self.dispatcher.execute(
                            spec, params, meta=self._meta(spec, rec), timeout=spec.timeout,
                            on_output=on_output)
                    except ProviderError as exc:
                        error = exc
            if scope.cancelled_caught:
                error = ProviderError("cancelled", kind=FailureKind.CANCELLED, retryable=False)
        finally:
            self._scopes.pop(key, None)
            self._running[spec.protocol] -= 1
            self._running_total -= 1
        output = printed.final(outcome if error is None else error.details)
        attempt.stdout, attempt.stderr = output["stdout"], output["stderr"]
        lines.close(output)
        await self.logs.flush()
        nxt = await self._settle(key, attempt, outcome, error)
        self._pump()
        return nxt

    async def _params(self, spec: TaskSpec) -> dict[str, Any]:
        params = await self._resolve(spec, spec.params)
        # The sandbox is policy from the workflow's checked `sandbox:` blocks, never from parameters.
        params = {k: v for k, v in params.items() if k != "sandbox"}
        sandbox = {**(self.wf.sandbox or {}), **(spec.sandbox or {})}
        if sandbox:
            params["sandbox"] = sandbox
        return params

    async def _resolve(self, spec: TaskSpec, value: Any) -> Any:
        """``value`` (the params, or the cache's ``key_extra``) with ``spec``'s references substituted."""
        code_params = (self.options.code_params or {}).get(spec.method, {})
        return substitute(value, results=await self._inputs(value, self.maps.variable_names(spec.key)),
                          task_names=self.names, code_params=code_params, unavailable=self._unavailable,
                          variables=self.maps.variables(spec.key))

    async def _from_cache(self, key: str) -> bool:
        """Before a task's first attempt: its cache key, and on a hit the cached result recorded
        as the task's (one write, no attempt). False: run it (a miss, or not cached)."""
        spec, rec, cache = self.specs[key], self.tasks[key], self.options.cache
        assert cache is not None
        if key in self._cache_keys or cache.wanted(spec) == (None, None):
            return False
        try:
            params = await self._params(spec)
            extra = await self._resolve(spec, spec.cache.key_extra if spec.cache else None)
        except SubstitutionError:
            return False  # the attempt reports it
        decision = self._cache_keys[key] = cache.decide(spec, params, extra, self.maps.item_files(key))
        if decision.key is None:
            if decision.reason:
                log.info("task %r not cached: %s", spec.name, decision.reason)
            return False
        if rec.attempts or (entry := await self._hit_or_wait(key, decision)) is None:
            return False
        try:
            value = await cache.value(entry)
        except NotCacheable as exc:
            log.info("task %r not cached: %s", spec.name, exc)
            return False
        rec.started_at = rec.finished_at = rec.updated_at = now()
        await keep(self.store, rec, value)
        rec.status, rec.error, rec.cached_from = TaskStatus.COMPLETED, None, entry.cached_from
        await self.store.save_task(rec)
        self.emit(TaskUpdated(rec))
        del self._cache_keys[key]
        self._running[spec.protocol] -= 1
        self._running_total -= 1
        await self._finished(key)
        self._pump()
        return True

    async def _hit_or_wait(self, key: str, decision: Decision) -> CacheEntry | None:
        """The live entry for ``decision``'s key. Single-flight: while another task of this run
        computes the same key, wait for it (holding this slot) and take its result; on a miss
        with nobody computing it, this task does (a failed owner leaves the next to run)."""
        assert self.options.cache is not None and decision.key is not None
        while (entry := await self.options.cache.lookup(decision)) is None and \
                self.options.cache.mode is CacheMode.USE and decision.key in self._flights:
            await self._flights[decision.key].wait()
        if entry is None:
            self._flights[decision.key] = anyio.Event()
            self._flying[key] = decision.key
        return entry

    def _land(self, key: str) -> None:
        """An attempt that computed a cache key ended: wake the tasks waiting for that key."""
        if (cache_key := self._flying.pop(key, None)) is not None and (flight := self._flights.pop(cache_key, None)):
            flight.set()

    async def _inputs(self, value: Any, variables: tuple[str, ...] = ()) -> Mapping[str, Any]:
        """The results ``value`` references, big ones loaded from blob storage for
        this attempt only (the scheduler itself holds just their digests)."""
        try:
            keys = {ref.task for ref in find_references(value, self.names, variables)}
        except ReferenceSyntaxError:
            return self._results  # substitute() reports it with the task's context
        inputs = {k: self._results[k] for k in keys if k in self._results}
        for k, result in inputs.items():
            if isinstance(result, StoredResult):
                inputs[k] = await load(self.store, result)
        return inputs

    def _meta(self, spec: TaskSpec, rec: TaskRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {"taskId": rec.id, "runId": rec.run_id, "attempt": rec.attempts,
                                "taskName": spec.name, "traceparent": traceparent(rec.run_id, rec.id, rec.attempts)}
        if self.wf.base_dir:
            meta["workflowDir"] = self.wf.base_dir
        if self.options.workspace:
            meta["workspace"] = self.options.workspace
        return meta

    async def _settle(self, key: str, attempt: AttemptRecord, outcome: Any, error: ProviderError | None) -> _Begun | None:
        spec, rec = self.specs[key], self.tasks[key]
        attempt.finished_at = rec.updated_at = now()
        if error is None:
            error = _unstorable(outcome)
        if error is None:
            attempt.status = TaskStatus.COMPLETED
            await keep(self.store, rec, outcome)  # inline, or a blob written before the record
            rec.status, rec.error, rec.finished_at = TaskStatus.COMPLETED, None, attempt.finished_at
            return await self._completed(key, attempt, outcome)
        attempt.error, attempt.retryable = _describe(error), error.retryable
        if error.kind is FailureKind.CANCELLED:
            attempt.status = rec.status = TaskStatus.CANCELLED
        else:
            attempt.status = TaskStatus.FAILED
        if self._lost_unsafe(spec, error, attempt.number):
            attempt.error += (f" (not re-run: {spec.method} is not idempotent and its side effects may have "
                              "happened; set retry.on_crash: true to re-run it)")
        rec.error = attempt.error
        if self._may_retry(spec, error, attempt.number):
            delay = spec.retry.delay(attempt.number, self.rng)
            rec.status, rec.next_attempt_at = TaskStatus.RETRYING, self.options.clock() + delay
            await self.store.save_task(rec, attempt)
            self.emit(TaskUpdated(rec, attempt, retry_in=delay))
            self._schedule_retry(key, delay)
            return None
        if rec.status is not TaskStatus.CANCELLED:
            rec.status = TaskStatus.FAILED
        rec.finished_at = attempt.finished_at
        await self.store.save_task(rec, attempt)
        self.emit(TaskUpdated(rec, attempt))
        await self._finished(key)
        return None

    def _lost_unsafe(self, spec: TaskSpec, error: ProviderError, number: int) -> bool:
        """A crash lost a non-idempotent attempt that the retry policy would re-run, but
        the user did not allow re-running after a crash (``retry.on_crash``)."""
        return (error.kind is FailureKind.CRASHED and error.retryable and spec.retry.should_retry(number)
                and spec.method not in self.options.idempotent and not spec.retry.on_crash)

    def _may_retry(self, spec: TaskSpec, error: ProviderError, number: int) -> bool:
        if error.kind is FailureKind.CANCELLED or not error.retryable or self._lost_unsafe(spec, error, number):
            return False
        return spec.retry.should_retry(number)

    def _schedule_retry(self, key: str, delay: float) -> None:
        assert self._tg is not None
        self._tg.start_soon(self._retry_timer, key, delay)

    async def _retry_timer(self, key: str, delay: float) -> None:
        await self.options.sleep(delay)
        await self._make_ready([self.tasks[key]])

    # -- completion -----------------------------------------------------------------
    def _note_outcome(self, rec: TaskRecord) -> None:
        if rec.status is TaskStatus.COMPLETED:
            self._results[rec.key] = held(rec)
        elif rec.status.finished:
            self._unavailable[rec.key] = rec.status.value

    async def _completed(self, key: str, attempt: AttemptRecord, outcome: Any) -> _Begun | None:
        """A task's attempt completed: its record is written, and its dependents decided.
        Returns the dependent's attempt this task runs next, if it took one.

        In a chain the second transaction per task was the dependent's RUNNING write, made
        only after the completion committed. Here the dependents that simply run (no map, no
        condition, their trigger satisfied: ``_runs_as_is``) are started *before* the
        completion commits: the completion is staged into this turn's transaction, the
        started attempts' RUNNING writes and the QUEUED writes of those left waiting join
        that transaction (or a later one: transactions commit in order), and an attempt sends
        its request only once its own write returned -- so nothing acts on the completion
        before it is durable, and a crash leaves either both records or neither (resume then
        re-runs the task, as for any attempt in flight). The ready set picks by priority as
        before; the first attempt it starts runs on in this task (no task spawned for it,
        its RUNNING write staged here), unless a result cache must be asked first. Any other
        dependent is decided after the commit, as ``_finished`` does."""
        spec, rec = self.specs[key], self.tasks[key]
        staged = self.store.stage_task(rec, attempt)
        self._note_outcome(rec)
        due = self._released(key)
        early = rec.parent is None and all(self._runs_as_is(k) for k in due)
        queued, kept = self._enqueue([self.tasks[k] for k in due], self.options.cache is None) if early else ([], None)
        begun = self._begin(kept) if kept is not None else None
        queued_staged = self.store.stage_tasks(queued) if queued else None
        await staged.committed()
        if queued_staged is not None:
            await queued_staged.committed()
        self._unfinished -= 1  # only now: `_all_done` must not be set while this commit is pending
        self.emit(TaskUpdated(rec, attempt))
        for queued_rec in queued:
            self.emit(TaskUpdated(queued_rec))
        if self.options.cache is not None and key in self._cache_keys:
            await self.options.cache.remember(self._cache_keys.pop(key), spec, rec, outcome)
        if not early:
            await self._decide(due)
            if rec.parent is not None:
                await self.maps.item_finished(key)
        if self._unfinished <= 0:
            self._all_done.set()
        return begun

    def _runs_as_is(self, key: str) -> bool:
        """A released task that ``_decide`` would put in the ready set unchanged, and
        ``maps.admit`` pass through: no map or map item, no condition to evaluate, and its
        trigger satisfied (or it was already queued or running before a resume)."""
        spec, rec = self.specs[key], self.tasks[key]
        if spec.for_each is not None or rec.parent is not None:
            return False
        if rec.status is not TaskStatus.PENDING:
            return True
        return spec.when is None and decide(spec.trigger, [self._outcome(d) for d in spec.dependencies]).run

    async def _finished(self, key: str) -> None:
        self._unfinished -= 1
        self._note_outcome(self.tasks[key])
        await self._decide(self._released(key))
        if self.tasks[key].parent is not None:
            await self.maps.item_finished(key)
        if self._unfinished <= 0:
            self._all_done.set()

    def _released(self, key: str) -> list[str]:
        """Dependents of a task that just became final whose last dependency it was."""
        due = []
        for dep in self.dependents[key]:
            if self.tasks[dep].status.finished:  # e.g. a one_failed task that ran before a resume
                continue
            self.waiting_on[dep] -= 1
            if self.waiting_on[dep] == 0:
                due.append(dep)
        return due

    async def _decide(self, due: list[str]) -> None:
        """Tasks whose dependencies are all final: ready, or skipped (by their trigger or a false
        condition) or failed (a condition that cannot be evaluated). A decided task releases
        its own dependents in the same pass; everything decided is saved in one write."""
        ready: list[TaskRecord] = []
        decided: list[TaskRecord] = []
        stack = list(reversed(due))
        while stack:
            key = stack.pop()
            rec = self.tasks[key]
            verdict = await self._verdict(key) if rec.status is TaskStatus.PENDING else None
            if verdict is None:  # queued/running before a resume had passed its condition already
                ready.append(rec)
                continue
            rec.status, rec.error = verdict
            rec.finished_at = rec.updated_at = now()
            decided.append(rec)
            self._note_outcome(rec)
            stack.extend(reversed(self._released(key)))
        if decided:
            await self.store.save_tasks(decided)
            for rec in decided:
                self.emit(TaskUpdated(rec))
            self._unfinished -= len(decided)
        await self._make_ready(ready)

    async def _verdict(self, key: str) -> tuple[TaskStatus, str] | None:
        """None if the task should run; else its final status and the reason."""
        spec = self.specs[key]
        decision = decide(spec.trigger, [self._outcome(d) for d in spec.dependencies])
        if not decision.run:
            if decision.failed_upstream:
                self._failed_upstream.add(key)
            if decision.blocker is None:
                return TaskStatus.SKIPPED, str(decision.reason)
            via = spec.dependencies[decision.blocker]
            cause = self._cause.get(via)
            self._cause[key] = cause or via
            dep = self.tasks[via]
            if cause is None:
                return TaskStatus.SKIPPED, f"dependency {dep.name!r} {dep.status.value}"
            root = self.tasks[cause]
            return TaskStatus.SKIPPED, f"upstream task {root.name!r} {root.status.value} (via {dep.name!r})"
        if spec.when is None or (spec.for_each is not None and conditions.reads_item(spec.when.text)):
            return None  # an item condition is decided per item when the map expands (fanout.py)
        return self.judge(spec, await self._condition_variables(spec))

    def judge(self, spec: TaskSpec, variables: Mapping[str, Any]) -> tuple[TaskStatus, str] | None:
        """``spec``'s condition over ``variables``: None if it holds, else skipped or failed and why."""
        assert spec.when is not None
        try:
            holds = conditions.evaluate(spec.when.text, variables)
        except conditions.ConditionError as exc:
            return TaskStatus.FAILED, f"{spec.when.pos or spec.pos}: when: {exc.message}"
        return None if holds else (TaskStatus.SKIPPED, CONDITION_FALSE)

    def _outcome(self, key: str) -> Outcome:
        status = self.tasks[key].status
        if status is TaskStatus.COMPLETED:
            return Outcome.COMPLETED
        if status in _FAILURES or key in self._failed_upstream:
            return Outcome.FAILED
        return Outcome.SKIPPED

    def _skip_carries_failure(self, key: str) -> bool:
        """For a skip found in the records (dependencies first): did the rule skip it over a failure?"""
        spec = self.specs[key]
        decision = decide(spec.trigger, [self._outcome(d) for d in spec.dependencies])
        return not decision.run and decision.failed_upstream

    async def _condition_variables(self, spec: TaskSpec) -> dict[str, Any]:
        """What a condition reads: its dependencies (by name and id) and the run's inputs.
        Values are bound as CEL variables, never pasted into the expression."""
        tasks: dict[str, Any] = {}
        key_prefix, name_prefix = spec.scope
        for dep in spec.dependencies:
            rec, dep_spec = self.tasks[dep], self.specs[dep]
            result = await self._loaded(dep)
            view = {"status": rec.status.value, "result": result, "error": rec.error, "attempts": rec.attempts}
            tasks[dep_spec.name] = tasks[dep] = view
            if key_prefix and dep_spec.scope == spec.scope:  # a sub-workflow's task: by its own name too
                tasks[dep_spec.name.removeprefix(name_prefix)] = tasks[dep.removeprefix(key_prefix)] = view
        inputs = await self._loaded(key_prefix + "inputs") if key_prefix else self.wf.input_values
        return {"tasks": tasks, "inputs": dict(inputs or {})}

    async def _loaded(self, key: str) -> Any:
        result = self._results.get(key)
        return await load(self.store, result) if isinstance(result, StoredResult) else result

    async def _finish_unfinished(self, status: TaskStatus, reason: str) -> None:
        left = [r for r in self.tasks.values() if not r.status.finished]
        for rec in left:
            rec.status, rec.error = status, reason
            rec.finished_at = rec.updated_at = now()
        if left:
            await self.store.save_tasks(left)
            for rec in left:
                self.emit(TaskUpdated(rec))

    async def _heartbeat(self, scope: anyio.CancelScope) -> None:
        """Keep the run's lease and honour `workflow cancel` from another process
        (a flag in the store), in one store call a second."""
        assert self.options.heartbeat is not None
        while True:
            await self.options.sleep(self.options.heartbeat_interval)
            if await self.options.heartbeat():
                self.run.cancel_requested = True  # stops _pump from starting more
                for s in list(self._scopes.values()):
                    s.cancel()
                # Let cancelled attempts record themselves (bounded), then stop the rest.
                if self._unsettled:
                    self._all_settled = anyio.Event()
                    with anyio.move_on_after(5):
                        await self._all_settled.wait()
                scope.cancel()
                return


#: the reason a task skipped by its ``when:`` shows
CONDITION_FALSE = "condition false"
_FAILURES = (TaskStatus.FAILED, TaskStatus.CANCELLED)


def _unstorable(result: Any) -> ProviderError | None:
    """The store's gate: a result outside the JSON limits (whatever path it came by) is a task error."""
    try:
        jsonlimits.check(result)
    except jsonlimits.ValueRejected as exc:
        return ProviderError(f"the result cannot be stored: {exc}", kind=FailureKind.INVALID_RESPONSE, retryable=False)
    return None


def _describe(error: ProviderError) -> str:
    """The error line, then the user-code traceback when the provider sent one."""
    tb = error.details.get("traceback") if isinstance(error.details, dict) else None
    if isinstance(tb, list):
        tb = "\n".join(str(line) for line in tb)
    if isinstance(tb, str) and tb.strip():
        return f"{error.message}\n{tb.rstrip()}"
    return error.message
