"""Attempts on a pool of `gleitzeit worker` processes: they go to Redis streams,
workers report back (the worker itself is ``gleitzeit_core.distributed.worker``).

One reader per run follows the run's report stream (XREAD BLOCK: event-driven)
and routes each report to the attempt waiting for it by (task id, attempt
number); a report for any other attempt number — a late answer from a worker
presumed dead — is ignored. A pool watcher refreshes the live workers every
second: ``capacity`` is answered from it (the scheduler asks synchronously), and
an attempt whose worker's heartbeat expired fails as retryable ``worker_lost``,
so the task's retry policy decides. Delivery is at-least-once.

The timeout clock starts where it does locally: the worker's provider actor
runs it from the moment the attempt reaches a provider; time in the queue is
not counted. Here the orchestrator only waits for the worker's report, from
its claim on, for the timeout plus ``TIMEOUT_GRACE`` (a worker that never
reports fails the attempt as ``timeout``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from redis.exceptions import RedisError

from gleitzeit_core.dispatch.queue import (
    CANCEL_CHANNEL,
    GROUP,
    HEARTBEAT_INTERVAL,
    KEEP_S,
    Job,
    Report,
    ReportKind,
    WorkerInfo,
    cancel_key,
    ensure_group,
    live_workers,
    queue_key,
    results_key,
)
from gleitzeit_core.dispatch.base import Methods, OutputHandler
from gleitzeit_core.dispatch.preflight import require_methods, require_protocols
from gleitzeit_core.errors import ProviderError, StoreUnavailable
from gleitzeit_core.redis_keys import TRANSIENT, connect, redact
from gleitzeit_core.store.batch import GroupCommit
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_sdk.codes import FailureKind

log = logging.getLogger("gleitzeit.distributed")

#: After a task's own timeout, how long the worker's timeout report may take before we give up on it.
TIMEOUT_GRACE = 5.0
#: How long the dispatcher rides out a Redis outage before failing what it waits for.
OUTAGE_S = 10.0


@dataclass
class _Waiter:
    """One attempt in flight, as seen by the orchestrator."""

    on_output: OutputHandler
    entry: tuple[str, str] | None = None  # (stream, entry id) once queued
    worker: str | None = None
    claimed: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: ProviderError | None = None

    def finish(self, result: Any = None, error: ProviderError | None = None) -> None:
        if not self.done.is_set():
            self.result, self.error = result, error
            self.claimed.set()
            self.done.set()


class RedisDispatcher:
    """``async with RedisDispatcher(url) as d``: a Dispatcher whose attempts run on workers."""

    secrets_on_workers = True

    def __init__(self, url: str):
        self.url = url
        self.r = connect(url)  # connects on first use (in __aenter__)
        self._workers: list[WorkerInfo] = []
        self._waiting: dict[tuple[str, int], _Waiter] = {}
        self._readers: set[str] = set()  # run ids followed
        self._groups: set[str] = set()  # streams whose consumer group exists
        self._tg: TaskGroup | None = None
        self._queued: GroupCommit[list[tuple[_Waiter, str, dict[str, str]]]] = GroupCommit(
            self._queue_batch, new=list)

    async def __aenter__(self) -> "RedisDispatcher":
        try:
            await self._refresh_pool()
        except TRANSIENT as exc:
            await self.r.aclose()
            raise StoreUnavailable(f"redis unreachable at {redact(self.url)}: {exc}") from None
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._watch_pool)
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(*exc)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    if self._readers:
                        await self.r.delete(*[results_key(run) for run in self._readers])
                except (RedisError, OSError):
                    pass
                await self.r.aclose()

    # -- the pool -----------------------------------------------------------------
    @property
    def workers(self) -> list[WorkerInfo]:
        return list(self._workers)

    def capacity(self, protocol: str) -> int:
        """Total slots of the live workers serving it (at least 1, so work queues until one comes)."""
        return max(1, sum(w.capacity.get(protocol, 0) for w in self._workers))

    async def preflight(self, workflow: Workflow) -> Methods:
        """Method descriptors as the live workers published them; every protocol needs a worker."""
        served = {p for w in self._workers for p in w.capacity}
        live = ", ".join(w.name for w in self._workers) or "none"
        require_protocols(workflow, {proto: f"no live worker serves protocol {proto!r} (start one: gleitzeit "
                                            f"worker --backend redis; live: {live})"
                                     for proto in sorted({t.protocol for t in workflow.tasks} - served)})
        methods: dict[str, dict[str, Any]] = {}
        for w in self._workers:
            methods.update(w.methods)
        return require_methods(workflow, methods)

    def providers(self, workflow: Workflow) -> dict[str, dict[str, Any] | None]:
        """protocol → provider name and version, when every live worker serving it agrees
        (None otherwise: the cache then leaves that protocol's tasks uncached)."""
        wanted = {t.protocol for t in workflow.tasks}
        seen: dict[str, list[Any]] = {}
        for w in self._workers:
            for proto in w.capacity:
                if proto in wanted:
                    seen.setdefault(proto, []).append(w.providers.get(proto))
        return {p: v[0] if all(x == v[0] for x in v) else None for p, v in seen.items()}

    async def _refresh_pool(self) -> None:
        self._workers = await live_workers(self.r)

    async def _watch_pool(self) -> None:
        down_since: float | None = None
        while True:
            await anyio.sleep(HEARTBEAT_INTERVAL)
            try:
                await self._refresh_pool()
                if down_since is not None:
                    down_since = None
                    await self._check_queued()
            except TRANSIENT as exc:
                down_since = down_since or time.monotonic()
                log.warning("redis unreachable at %s (%s)", redact(self.url), exc)
                if time.monotonic() - down_since > OUTAGE_S:
                    self._fail_all(f"lost the connection to Redis at {redact(self.url)} for over {OUTAGE_S:g} s")
                continue
            live = {w.name for w in self._workers}
            for (task_id, attempt), w in list(self._waiting.items()):
                if w.worker is not None and w.worker not in live and not w.done.is_set():
                    w.finish(error=ProviderError(
                        f"worker {w.worker!r} stopped sending heartbeats while running this attempt",
                        kind=FailureKind.WORKER_LOST, retryable=True))
                    self._tg.start_soon(self._withdraw, task_id, attempt, w)  # type: ignore[union-attr]

    async def _check_queued(self) -> None:
        """After an outage: an unclaimed attempt whose entry the server lost (restart) is failed, retryable."""
        for w in list(self._waiting.values()):
            if w.entry is not None and not w.claimed.is_set():
                stream, entry_id = w.entry
                if not await self.r.xrange(stream, entry_id, entry_id):
                    w.finish(error=ProviderError(f"the queued attempt was lost when Redis at {redact(self.url)} restarted",
                                                 kind=FailureKind.REDIS_UNAVAILABLE, retryable=True))

    def _fail_all(self, message: str) -> None:
        for w in self._waiting.values():
            w.finish(error=ProviderError(message, kind=FailureKind.REDIS_UNAVAILABLE, retryable=True))

    # -- attempts -----------------------------------------------------------------
    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: OutputHandler) -> Any:
        run_id, task_id, attempt = str(meta["runId"]), str(meta["taskId"]), int(meta["attempt"])
        if run_id not in self._readers:
            self._readers.add(run_id)
            assert self._tg is not None, "use the dispatcher as 'async with'"
            self._tg.start_soon(self._read_reports, run_id)
        key = (task_id, attempt)
        waiter = self._waiting[key] = _Waiter(on_output)
        job = Job(run_id, task_id, attempt, task.protocol, task.method, params, meta, timeout)
        stream = queue_key(task.protocol, task.priority)
        try:
            try:
                if stream not in self._groups:  # marked before the await: the turn's other attempts go on
                    self._groups.add(stream)  # (an entry queued before the group exists is still read: it starts at 0)
                    try:
                        await ensure_group(self.r, stream)
                    except BaseException:
                        self._groups.discard(stream)
                        raise
                await self._queued.write(lambda batch: batch.append((waiter, stream, job.fields())))
            except TRANSIENT as exc:
                raise ProviderError(f"could not queue the attempt in Redis at {redact(self.url)}: {exc}",
                                    kind=FailureKind.REDIS_UNAVAILABLE, retryable=True) from None
            await waiter.claimed.wait()  # the task's timeout counts from when a worker starts it
            with anyio.move_on_after(timeout + TIMEOUT_GRACE if timeout else float("inf")):
                await waiter.done.wait()
            if not waiter.done.is_set():
                raise ProviderError(f"timed out after {timeout:g} s (worker {waiter.worker!r} did not report)",
                                    kind=FailureKind.TIMEOUT, retryable=True)
            if waiter.error is not None:
                raise waiter.error
            return waiter.result
        finally:
            del self._waiting[key]
            if not waiter.done.is_set():  # cancelled or timed out: tell the worker, drop the entry
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await self._withdraw(task_id, attempt, waiter, notify=True)

    async def _queue_batch(self, batch: list[tuple[_Waiter, str, dict[str, str]]]) -> None:
        """The attempts started in one loop turn go to their streams in one transaction: Redis
        serves a worker blocked on a stream after the whole transaction, not after its first
        entry, so one worker's blocking read can take them together."""
        async with self.r.pipeline(transaction=True) as pipe:
            for _, stream, fields in batch:
                pipe.xadd(stream, fields)
            ids = await pipe.execute()
        for (waiter, stream, _), entry_id in zip(batch, ids):
            waiter.entry = (stream, entry_id.decode())

    async def _withdraw(self, task_id: str, attempt: int, waiter: _Waiter, *, notify: bool = False) -> None:
        """Take an attempt back: nobody may start it (mark + delete), a worker running it stops."""
        try:
            async with self.r.pipeline(transaction=False) as pipe:
                pipe.set(cancel_key(task_id, attempt), "cancelled", ex=KEEP_S)
                if waiter.entry is not None:
                    stream, entry_id = waiter.entry
                    pipe.xack(stream, GROUP, entry_id)
                    pipe.xdel(stream, entry_id)
                if notify:
                    pipe.publish(CANCEL_CHANNEL, json.dumps({"task_id": task_id, "attempt": attempt}))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not withdraw %s attempt %d: %s", task_id, attempt, exc)

    async def _read_reports(self, run_id: str) -> None:
        stream, last = results_key(run_id), "0-0"
        while True:
            try:
                resp = await self.r.xread({stream: last}, count=1000, block=1000)
            except TRANSIENT as exc:
                # Reports written before the outage are still in the stream (appendonly); an
                # outage longer than OUTAGE_S fails what waits (the pool watcher does that).
                log.warning("reading reports of %s: %s", run_id, exc)
                await anyio.sleep(0.5)
                continue
            for _, entries in resp or []:
                for entry_id, fields in entries:
                    last = entry_id
                    self._route(Report.from_fields(fields))

    def _route(self, rep: Report) -> None:
        w = self._waiting.get((rep.task_id, rep.attempt))
        if w is None:
            return  # a late report for an attempt nobody waits for any more
        if rep.kind is ReportKind.CLAIMED:
            w.worker = rep.worker
            w.claimed.set()
        elif rep.kind is ReportKind.OUTPUT:
            w.on_output(*rep.printed())
        elif rep.kind is ReportKind.DONE:
            w.worker = rep.worker
            w.finish(result=rep.data)
        elif rep.kind is ReportKind.FAILED:
            w.worker = rep.worker
            w.finish(error=rep.error())
