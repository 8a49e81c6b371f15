"""`gleitzeit worker`: claims attempts from the Redis streams of the protocols its
providers serve, runs them on its local provider processes, reports back.

Claiming is one Lua script (claim.py) that also announces what it claims:
streams are read highest priority first and never more entries than there are
free slots (overall and per protocol), so an idle worker elsewhere gets the
rest. When nothing is waiting the worker blocks in XREADGROUP: Redis hands what
arrives to one blocked worker, so new entries do not wake the whole pool, and
the orchestrator queues the attempts of one loop turn in one transaction, which
that read takes together (COUNT is per stream: the free slots shared over the
streams read); the next script call announces them while claiming whatever came
with them. (With fewer free slots than streams COUNT is 1, and entries landing in
several streams in the same instant can give a worker one more entry per stream
than it has free slots; it runs them anyway — a bounded overshoot.)

A claimed entry stays in the worker's pending list until its report is written;
the heartbeat re-claims running entries (resetting their idle time), so only
entries of a dead worker grow idle, and XAUTOCLAIM hands those to a live worker
after the visibility timeout. Delivery is at-least-once.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import anyio
import anyio.from_thread
import anyio.lowlevel
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from gleitzeit_core.dispatch.queue import (
    CANCEL_CHANNEL,
    GROUP,
    HEARTBEAT_INTERVAL,
    KEEP_S,
    PRIORITIES,
    Job,
    Report,
    WorkerInfo,
    ensure_group,
    publish_worker,
    queue_depths,
    queue_key,
    queue_protocol,
    remove_worker,
    results_key,
)
from gleitzeit_core.dispatch.local import LocalDispatcher
from gleitzeit_core.distributed.claim import Announced, Claimer
from gleitzeit_core.errors import ConfigError, ProviderError
from gleitzeit_core.metrics import WorkerMetrics
from gleitzeit_core.redis_keys import TRANSIENT
from gleitzeit_core.redis_keys import text as _s
from gleitzeit_core.store.batch import GroupCommit
from gleitzeit_core.secret_fill import request_filled, sites_from_meta, worker_values
from gleitzeit_core.secret_sources import NONE_ALLOWED, AllowList
from gleitzeit_core.workspace import private_dir
from gleitzeit_sdk.codes import FailureKind

log = logging.getLogger("gleitzeit.worker")

#: On a graceful stop, how long the reports of cancelled attempts may take.
STOP_GRACE = 5.0

#: Cancel messages for attempts not running here that are remembered: one may come in
#: before the claim script's reply that hands this worker the attempt.
RECENT_CANCELS = 4096
#: Run workspaces known to exist on this machine (checked once each, not per attempt).
RECENT_WORKSPACES = 256


def read_count(free: int, stream_free: list[int]) -> int:
    """COUNT of a blocking read of several streams (it applies to each of them): the free
    slots shared over the streams, within the free slots of each stream's protocol; at least
    1 (more streams than free slots: the bounded overshoot)."""
    return max(1, min(free, *stream_free) // len(stream_free))


@dataclass
class WorkerOptions:
    name: str
    concurrency: int = 4
    visibility_timeout: float = 30.0  # a dead worker's claimed entries go to another after this
    env: Mapping[str, str] = field(default_factory=dict)  # --env-file values, over the environment
    allow: AllowList = NONE_ALLOWED  # the environment names attempts' secrets may read (--allow-secret)


@dataclass
class _Running:
    job: Job
    stream: str
    entry_id: str
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    output: list[tuple[str, str]] = field(default_factory=list)  # (stream, text) not yet reported
    has_output: anyio.Event = field(default_factory=anyio.Event)
    forwarding: bool = False  # its _forward_output task runs


class Worker:
    """One worker process's loop. ``run`` returns when cancelled (after deregistering)."""

    def __init__(self, redis: aioredis.Redis, local: LocalDispatcher, options: WorkerOptions):
        self.r = redis
        self.local = local  # this machine's providers, entered by the caller
        self.opts = options
        self.info = WorkerInfo(name=options.name, pid=os.getpid(), concurrency=options.concurrency)
        self._running: dict[tuple[str, int], _Running] = {}
        self._per_proto: dict[str, int] = {}
        self._changed = anyio.Event()  # a slot came free
        self._claimer = Claimer(self.r, options.name)
        self._recent_cancels: dict[tuple[str, int], None] = {}  # oldest first, at most RECENT_CANCELS
        self._workspaces: dict[str, None] = {}  # the runs' folders known to exist here, at most RECENT_WORKSPACES
        self._reports: GroupCommit[list[tuple[_Running, Report]]] = GroupCommit(self._write_reports, new=list)
        self.metrics = WorkerMetrics(queue=self._queue_now, restarts=local.host.restarts)
        self._loop: anyio.lowlevel.EventLoopToken | None = None  # for the metrics server's thread

    @property
    def protocols(self) -> list[str]:
        return sorted(self.info.capacity)

    def streams(self) -> list[str]:
        return [queue_key(p, pr) for pr in PRIORITIES for p in self.protocols]

    async def start(self) -> None:
        """Start every provider (their handshakes give the methods and limits), then register."""
        protocols = self.local.protocols()
        if not protocols:
            raise ConfigError("this worker has no providers (check --providers)")
        self.info.methods = await self.local.serve(protocols)
        self.info.providers = self.local.providers_of(protocols)
        self.info.capacity = {p: min(self.opts.concurrency, self.local.capacity(p)) for p in protocols}
        await self._ensure_groups()
        await publish_worker(self.r, self.info)

    async def _ensure_groups(self) -> None:
        for stream in self.streams():
            await ensure_group(self.r, stream)

    async def run(self) -> None:
        self._loop = anyio.lowlevel.current_token()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeat)
                tg.start_soon(self._cancel_listener)
                tg.start_soon(self._reclaimer, tg)
                await self._claim_loop(tg)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_GRACE):
                try:
                    await remove_worker(self.r, self.info.name)
                except (RedisError, OSError):
                    pass

    # -- claiming -----------------------------------------------------------------
    def _free(self) -> tuple[int, dict[str, int]]:
        """Free slots overall and per protocol."""
        return (self.opts.concurrency - len(self._running),
                {p: cap - self._per_proto.get(p, 0) for p, cap in self.info.capacity.items()})

    def _room(self, proto_free: dict[str, int]) -> bool:
        return len(self._running) < self.opts.concurrency and any(v > 0 for v in proto_free.values())

    async def _claim_loop(self, tg: anyio.abc.TaskGroup) -> None:
        held: list[_Running] = []  # taken by the blocking read: registered, not yet announced
        while True:
            free, proto_free = self._free()
            if not held and not self._room(proto_free):
                self._changed = anyio.Event()
                await self._changed.wait()
                continue
            try:
                await self._announce_and_start(tg, held, self.streams(), free, proto_free)
                held = []
                free, proto_free = self._free()
                if self._room(proto_free):  # what the script left is drained: wait for the next entries
                    held = [run for entry in await self._wait_for_entry(free, proto_free)
                            if (run := self._register(tg, *entry)) is not None]
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_groups()  # Redis lost its data (restart without persistence)
            except TRANSIENT as exc:
                log.warning("worker %s: Redis unavailable (%s); retrying", self.info.name, exc)
                await anyio.sleep(0.5)

    async def _wait_for_entry(self, free: int, proto_free: dict[str, int]) -> list[tuple[str, str, Any]]:
        """Block for at most a second for the next entries (``read_count`` of each stream)."""
        eligible = [st for st in self.streams() if proto_free[queue_protocol(st)] > 0]
        count = read_count(free, [proto_free[queue_protocol(st)] for st in eligible])
        res = await self.r.xreadgroup(GROUP, self.info.name, {st: ">" for st in eligible}, count=count, block=1000)
        return [(_s(stream), _s(entry_id), fields) for stream, entries in res or [] for entry_id, fields in entries]

    def _register(self, tg: anyio.abc.TaskGroup, stream: str, entry_id: str, fields: Any) -> _Running | None:
        """Count an entry's attempt as running here; None when it is malformed (dropped) or
        already runs here (a reclaimed entry of our own)."""
        try:
            job = Job.from_fields(fields)
        except (KeyError, ValueError, TypeError) as exc:
            log.error("worker %s: dropping malformed queue entry %s in %s: %s", self.info.name, entry_id, stream, exc)
            tg.start_soon(self._ack, stream, entry_id)
            return None
        key = (job.task_id, job.attempt)
        if key in self._running:
            return None
        run = self._running[key] = _Running(job, stream, entry_id)
        self._per_proto[job.protocol] = self._per_proto.get(job.protocol, 0) + 1
        self.info.running = len(self._running)
        return run

    async def _announce_and_start(self, tg: anyio.abc.TaskGroup, held: list[_Running], streams: list[str],
                                  free: int, proto_free: dict[str, int]) -> None:
        """One script call announces the ``held`` attempts and claims (announced too) up to
        ``free`` more from ``streams``; each then starts."""
        with anyio.CancelScope(shield=True):  # announced: each must start (a stopping worker reports it lost)
            verdicts, taken = await self._claimer.claim(streams, free, proto_free,
                                                        [run.job.announcement() for run in held])
        started = list(zip(held, verdicts))
        for t in taken:
            if t.verdict is Announced.MALFORMED:
                log.error("worker %s: dropping queue entry %s in %s: no announcement", self.info.name,
                          t.entry_id, t.stream)
                tg.start_soon(self._ack, t.stream, t.entry_id)
            elif (run := self._register(tg, t.stream, t.entry_id, t.fields)) is not None:
                started.append((run, t.verdict))
        for run, verdict in started:
            key = (run.job.task_id, run.job.attempt)
            cancelled_meanwhile = key in self._recent_cancels
            self._recent_cancels.pop(key, None)
            tg.start_soon(self._execute, run, verdict is not Announced.START or cancelled_meanwhile)

    # -- one attempt ----------------------------------------------------------------
    async def _execute(self, run: _Running, cancelled: bool) -> None:
        job = run.job
        report: Report | None = None
        self.metrics.started(job.protocol)
        began = time.monotonic()
        try:
            report = await self._attempt(run, cancelled)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_GRACE):
                if report is None:  # this worker is stopping: another may run the attempt again
                    report = Report.failed(job, self.info.name, ProviderError(
                        f"worker {self.info.name!r} stopped during the attempt", kind=FailureKind.WORKER_LOST))
                await self._finish(run, report)
            self.metrics.finished(job.protocol, report.outcome, time.monotonic() - began)
            del self._running[(job.task_id, job.attempt)]
            self._per_proto[job.protocol] -= 1
            self.info.running = len(self._running)
            self.info.done += 1
            self._changed.set()

    async def _attempt(self, run: _Running, cancelled: bool) -> Report:
        job = run.job
        me = self.info.name
        if cancelled:
            return Report.failed(job, me, ProviderError("cancelled before it started", kind=FailureKind.CANCELLED,
                                                        retryable=False))
        workspace = job.meta.get("workspace")
        if workspace and workspace not in self._workspaces:  # (one stat per run, not per attempt)
            if not Path(workspace).exists():  # the orchestrator's folder, on another machine
                private_dir(Path(workspace))  # the provider gives it to the sandbox
            self._workspaces[workspace] = None
            if len(self._workspaces) > RECENT_WORKSPACES:
                del self._workspaces[next(iter(self._workspaces))]

        report: Report | None = None
        with run.scope:  # cancelled by a message from the orchestrator
            async with anyio.create_task_group() as tg:
                def on_output(stream: str, data: str) -> None:
                    run.output.append((stream, data))
                    run.has_output.set()
                    if not run.forwarding:  # the first output starts the forwarder (most attempts print nothing)
                        run.forwarding = True
                        tg.start_soon(self._forward_output, run)

                try:
                    meta, sites = sites_from_meta(job.meta)  # secrets come from this worker's environment
                    request = functools.partial(self.local.call, job.protocol, job.method, meta=meta,
                                                timeout=job.timeout)
                    if sites:
                        values = worker_values(sites, self.opts.env, self.opts.allow, os.environ, me)
                        result = await request_filled(request, job.params, sites, values, on_output)
                    else:  # nothing to fill, nothing to mask (request_filled would be the identity)
                        result = await request(job.params, on_output=on_output)
                    report = Report.done(job, me, result)
                except ProviderError as exc:
                    report = Report.failed(job, me, exc)
                tg.cancel_scope.cancel()
        return report or Report.failed(job, me, ProviderError("cancelled", kind=FailureKind.CANCELLED, retryable=False))

    async def _forward_output(self, run: _Running) -> None:
        """Provider output goes to the report stream as it comes (-v / --watch on the orchestrator).

        A batch leaves ``run.output`` only once written, so whatever a cancel interrupts
        is still there for the final report's transaction, which keeps the order."""
        job = run.job
        while True:
            await run.has_output.wait()
            run.has_output = anyio.Event()
            batch = list(run.output)
            try:
                with anyio.CancelScope(shield=True):  # bounded by the socket timeout
                    async with self.r.pipeline(transaction=False) as pipe:
                        for item in batch:
                            pipe.xadd(results_key(job.run_id), Report.output(job, self.info.name, *item).fields())
                        await pipe.execute()
                    del run.output[:len(batch)]
            except TRANSIENT:
                await anyio.sleep(0.5)

    async def _finish(self, run: _Running, report: Report) -> None:
        """Report (after any output not yet sent), then ack and delete the entry; retried through
        a Redis restart. The attempts finishing in one loop turn share one transaction."""
        deadline = time.monotonic() + 30
        while True:
            try:
                await self._reports.write(lambda batch: batch.append((run, report)))
                return
            except TRANSIENT as exc:
                if time.monotonic() > deadline:
                    log.error("worker %s: could not report %s attempt %d: %s", self.info.name,
                              run.job.task_id, run.job.attempt, exc)
                    return
                await anyio.sleep(0.5)

    async def _write_reports(self, batch: list[tuple[_Running, Report]]) -> None:
        """One MULTI/EXEC: each attempt's output and report in order, then the entries acked and deleted."""
        entries: dict[str, list[str]] = {}
        async with self.r.pipeline(transaction=True) as pipe:
            for run, report in batch:
                key = results_key(run.job.run_id)
                for item in run.output:
                    pipe.xadd(key, Report.output(run.job, self.info.name, *item).fields())
                pipe.xadd(key, report.fields())
                entries.setdefault(run.stream, []).append(run.entry_id)
            for key in {results_key(run.job.run_id) for run, _ in batch}:
                pipe.expire(key, KEEP_S)
            for stream, ids in entries.items():
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()

    async def _ack(self, stream: str, entry_id: str) -> None:
        try:
            await self.r.xack(stream, GROUP, entry_id)
        except TRANSIENT:
            pass  # stays pending; XAUTOCLAIM drops it again later

    def _queue_now(self) -> dict[str, tuple[int, int]]:
        """The queue's depth per protocol, asked on the worker's loop (called from the metrics thread)."""
        async def ask() -> dict[str, tuple[int, int]]:
            with anyio.fail_after(2):
                return await queue_depths(self.r, self.protocols)
        try:
            return anyio.from_thread.run(ask, token=self._loop) if self._loop else {}
        except (RuntimeError, TimeoutError, RedisError, OSError) as exc:  # loop gone, Redis down: no figure
            log.warning("worker %s: queue depth for metrics: %s", self.info.name, exc)
            return {}

    # -- background -----------------------------------------------------------------
    async def _heartbeat(self) -> None:
        """Refresh the registry entry and keep running entries from looking abandoned."""
        while True:
            try:
                await publish_worker(self.r, self.info)
                by_stream: dict[str, list[str]] = {}
                for run in self._running.values():
                    by_stream.setdefault(run.stream, []).append(run.entry_id)
                for stream, ids in by_stream.items():
                    await self.r.xclaim(stream, GROUP, self.info.name, 0, ids, justid=True)
            except TRANSIENT as exc:
                log.warning("worker %s: heartbeat failed (%s)", self.info.name, exc)
            await anyio.sleep(HEARTBEAT_INTERVAL)

    async def _reclaimer(self, tg: anyio.abc.TaskGroup) -> None:
        """Take over entries a dead worker claimed but never reported on."""
        idle_ms = int(self.opts.visibility_timeout * 1000)
        while True:
            await anyio.sleep(max(1.0, self.opts.visibility_timeout / 4))
            try:
                for stream in self.streams():
                    free = self.opts.concurrency - len(self._running)
                    if free <= 0:
                        break
                    _, entries, *_ = await self.r.xautoclaim(stream, GROUP, self.info.name, idle_ms,
                                                             start_id="0-0", count=free)
                    held = []
                    for entry_id, fields in entries:
                        if fields and (run := self._register(tg, stream, _s(entry_id), fields)) is not None:
                            log.info("worker %s: reclaimed %s from %s", self.info.name, run.entry_id, stream)
                            held.append(run)  # (None fields: deleted meanwhile)
                    if held:
                        await self._announce_and_start(tg, held, [], 0, {})
            except ResponseError as exc:
                log.warning("worker %s: reclaim failed (%s)", self.info.name, exc)
            except TRANSIENT as exc:
                log.warning("worker %s: reclaim failed (%s)", self.info.name, exc)

    async def _cancel_listener(self) -> None:
        """Cancel messages for attempts running here (the orchestrator timed out or was cancelled)."""
        while True:
            try:
                async with self.r.pubsub() as ps:
                    await ps.subscribe(CANCEL_CHANNEL)
                    while True:
                        msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if msg is None:
                            continue
                        data = json.loads(msg["data"])
                        key = (data["task_id"], int(data["attempt"]))
                        run = self._running.get(key)
                        if run is not None:
                            log.info("worker %s: cancelling %s attempt %s", self.info.name, data["task_id"], data["attempt"])
                            run.scope.cancel()
                        else:  # not here, or claimed here with the script's reply still on its way
                            self._recent_cancels[key] = None
                            if len(self._recent_cancels) > RECENT_CANCELS:
                                del self._recent_cancels[next(iter(self._recent_cancels))]
            except TRANSIENT as exc:
                log.warning("worker %s: cancel channel lost (%s); resubscribing", self.info.name, exc)
                await anyio.sleep(0.5)
