"""The Redis layout shared by the orchestrator and the workers.

Keys (all under ``gleitzeit:``)::

    gleitzeit:q:<protocol>:<priority>   stream  attempts to run; consumer group ``workers``
    gleitzeit:r:<run_id>                stream  what workers report back for one run
    gleitzeit:w:<name>                  hash    one live worker (TTL: it vanishes when heartbeats stop)
    gleitzeit:workers                   set     names of registered workers (stale ones pruned on read)
    gleitzeit:x:<task_id>:<attempt>     string  "cancelled": a worker checks it before starting an attempt
                                                (in the claim script, distributed/claim.py)
    gleitzeit:cancel                    pubsub  cancel messages for attempts already running

Everything on the wire is a flat hash of strings; structured values are JSON.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gleitzeit_core.errors import ProviderError
from gleitzeit_core.redis_keys import PREFIX
from gleitzeit_core.redis_keys import text as _s
from gleitzeit_core.workflow.model import Priority
from gleitzeit_sdk.codes import FailureKind

GROUP = "workers"
WORKERS_KEY = f"{PREFIX}workers"
CANCEL_CHANNEL = f"{PREFIX}cancel"
#: A worker refreshes its entry this often and is presumed dead once it is this old.
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TTL = 5.0
#: How long report streams and cancel marks outlive their last write (orchestrator gone for good).
KEEP_S = 86_400
#: Queue priorities, highest first (workers read the streams in this order).
PRIORITIES = tuple(sorted((int(p) for p in Priority), reverse=True))
#: A report's fields: the report (JSON: kind, task id, attempt, data) and the worker naming
#: itself (the claim script adds it to an entry's announcement).
REPORT_FIELD = "report"
WORKER_FIELD = "worker"
#: The queue entry's fields: the attempt (JSON) and its announcement (see ``Job.announcement``).
JOB_FIELD = "job"
ANNOUNCE_FIELD = "announce"


def queue_key(protocol: str, priority: int) -> str:
    return f"{PREFIX}q:{protocol}:{int(priority)}"


def queue_protocol(stream: str) -> str:
    """The protocol of a ``queue_key`` stream (its inverse, less the priority)."""
    return stream[len(f"{PREFIX}q:"):].rsplit(":", 1)[0]


def results_key(run_id: str) -> str:
    return f"{PREFIX}r:{run_id}"


def worker_key(name: str) -> str:
    return f"{PREFIX}w:{name}"


def cancel_key(task_id: str, attempt: int) -> str:
    return f"{PREFIX}x:{task_id}:{attempt}"


@dataclass
class Job:
    """One attempt, as queued for a worker."""

    run_id: str
    task_id: str
    attempt: int
    protocol: str
    method: str
    params: dict[str, Any]
    meta: dict[str, Any]
    timeout: float | None

    def fields(self) -> dict[str, str]:
        """The queue entry: the attempt as one JSON field (one element for the client to pack
        and the worker to parse, not nine) and its announcement for the claim script."""
        return {JOB_FIELD: json.dumps({"run_id": self.run_id, "task_id": self.task_id, "attempt": self.attempt,
                                       "protocol": self.protocol, "method": self.method, "params": self.params,
                                       "meta": self.meta, "timeout": self.timeout}),
                ANNOUNCE_FIELD: self.announcement()}

    def announcement(self) -> str:
        """What the claim script needs to announce this attempt without knowing the report
        format: JSON ``[report stream, cancel mark, field, value, ...]``, the fields being
        its ``claimed`` report's less ``WORKER_FIELD`` (the script adds the claiming worker)."""
        record = Report.claimed(self, "").fields()
        del record[WORKER_FIELD]
        return json.dumps([results_key(self.run_id), cancel_key(self.task_id, self.attempt),
                           *(x for item in record.items() for x in item)])

    @classmethod
    def from_fields(cls, raw: dict[Any, Any]) -> "Job":
        """Raises KeyError, ValueError or TypeError for an entry that is no attempt."""
        f = {_s(k): _s(v) for k, v in raw.items()}
        d = json.loads(f[JOB_FIELD])
        timeout = d["timeout"]
        return cls(str(d["run_id"]), str(d["task_id"]), int(d["attempt"]), str(d["protocol"]), str(d["method"]),
                   dict(d["params"]), dict(d["meta"]), None if timeout is None else float(timeout))


class ReportKind(StrEnum):
    CLAIMED = "claimed"  # a worker started the attempt
    OUTPUT = "output"  # data: {stream, data}
    DONE = "done"  # data: the result
    FAILED = "failed"  # data: {message, kind, retryable, details}


@dataclass
class Report:
    """What a worker says about an attempt; built and read only through the methods here."""

    kind: ReportKind
    task_id: str
    attempt: int
    worker: str
    data: Any = None

    @classmethod
    def claimed(cls, job: Job, worker: str) -> Report:
        return cls(ReportKind.CLAIMED, job.task_id, job.attempt, worker)

    @classmethod
    def output(cls, job: Job, worker: str, stream: str, data: str) -> Report:
        return cls(ReportKind.OUTPUT, job.task_id, job.attempt, worker, {"stream": stream, "data": data})

    @classmethod
    def done(cls, job: Job, worker: str, result: Any) -> Report:
        return cls(ReportKind.DONE, job.task_id, job.attempt, worker, result)

    @classmethod
    def failed(cls, job: Job, worker: str, error: ProviderError) -> Report:
        return cls(ReportKind.FAILED, job.task_id, job.attempt, worker,
                   {"message": error.message, "kind": str(error.kind), "retryable": error.retryable,
                    "details": error.details})

    @property
    def outcome(self) -> str:
        """``completed``, or a ``failed`` report's failure kind (a metrics label)."""
        return "completed" if self.kind is ReportKind.DONE else str(self.error().kind)

    def printed(self) -> tuple[str, str]:
        """An ``output`` report's (stream, text)."""
        d = self.data if isinstance(self.data, dict) else {}
        return str(d.get("stream", "stdout")), str(d.get("data", ""))

    def error(self) -> ProviderError:
        """A ``failed`` report's error (a kind this version does not know reads as provider_error)."""
        d = self.data if isinstance(self.data, dict) else {}
        try:
            kind = FailureKind(str(d.get("kind")))
        except ValueError:
            kind = FailureKind.PROVIDER_ERROR
        return ProviderError(str(d.get("message")), kind=kind, retryable=bool(d.get("retryable", True)),
                             details=d.get("details"))

    def fields(self) -> dict[str, str]:
        """The report as one JSON field beside the worker's name (which the claim script adds to
        an announcement): two fields, not five, each field being two elements that the worker
        packs and the orchestrator's reader parses one by one, two reports per attempt."""
        return {REPORT_FIELD: json.dumps([str(self.kind), self.task_id, self.attempt, self.data]),
                WORKER_FIELD: self.worker}

    @classmethod
    def from_fields(cls, raw: dict[Any, Any]) -> Report:
        f = {_s(k): _s(v) for k, v in raw.items()}
        kind, task_id, attempt, data = json.loads(f[REPORT_FIELD])
        return cls(ReportKind(kind), str(task_id), int(attempt), f[WORKER_FIELD], data)


@dataclass
class WorkerInfo:
    """A worker's registry entry: who it is, what it serves, how busy it is."""

    name: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = 0
    concurrency: int = 1
    capacity: dict[str, int] = field(default_factory=dict)  # protocol → attempts at once
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)  # method descriptors (for preflight)
    providers: dict[str, Any] = field(default_factory=dict)  # protocol → {name, version} (cache keys)
    running: int = 0
    done: int = 0
    started_at: float = field(default_factory=time.time)
    heartbeat: float = field(default_factory=time.time)

    def fields(self) -> dict[str, str]:
        return {k: json.dumps(v) for k, v in self.__dict__.items()}

    def to_json(self) -> dict[str, Any]:
        """The `worker list --json` shape (the dashboard's too)."""
        return {"name": self.name, "host": self.host, "pid": self.pid, "protocols": sorted(self.capacity),
                "capacity": self.capacity, "concurrency": self.concurrency, "running": self.running,
                "done": self.done, "last_heartbeat": self.heartbeat, "started_at": self.started_at}

    @classmethod
    def from_fields(cls, raw: dict[Any, Any]) -> "WorkerInfo":
        return cls(**{_s(k): json.loads(_s(v)) for k, v in raw.items() if _s(k) in cls.__dataclass_fields__})


async def publish_worker(r: aioredis.Redis, info: WorkerInfo) -> None:
    info.heartbeat = time.time()
    async with r.pipeline(transaction=True) as pipe:
        pipe.hset(worker_key(info.name), mapping=info.fields())
        pipe.pexpire(worker_key(info.name), int(HEARTBEAT_TTL * 1000))
        pipe.sadd(WORKERS_KEY, info.name)
        await pipe.execute()


async def remove_worker(r: aioredis.Redis, name: str) -> None:
    async with r.pipeline(transaction=True) as pipe:
        pipe.delete(worker_key(name))
        pipe.srem(WORKERS_KEY, name)
        await pipe.execute()


async def live_workers(r: aioredis.Redis) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired; names of expired ones are pruned."""
    names = sorted(_s(n) for n in await r.smembers(WORKERS_KEY))
    if not names:
        return []
    async with r.pipeline(transaction=False) as pipe:
        for n in names:
            pipe.hgetall(worker_key(n))
        raws = await pipe.execute()
    live, dead = [], []
    for name, raw in zip(names, raws):
        (live.append(WorkerInfo.from_fields(raw)) if raw else dead.append(name))
    if dead:
        await r.srem(WORKERS_KEY, *dead)
    return live


async def ensure_group(r: aioredis.Redis, stream: str) -> None:
    try:
        await r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def queue_depths(r: aioredis.Redis, protocols: list[str]) -> dict[str, tuple[int, int]]:
    """protocol → (attempts waiting for a worker, attempts claimed and not yet reported).
    A worker deletes an entry when it reports, so what a stream holds is the sum of both."""
    streams = [(p, queue_key(p, pr)) for p in protocols for pr in PRIORITIES]
    async with r.pipeline(transaction=False) as pipe:
        for _, stream in streams:
            pipe.xlen(stream)
            pipe.xpending(stream, GROUP)
        replies = await pipe.execute(raise_on_error=False)
    out = {p: (0, 0) for p in protocols}
    for i, (protocol, _) in enumerate(streams):
        length, pending = replies[2 * i], replies[2 * i + 1]
        held = int(length) if isinstance(length, int) else 0
        taken = int(pending["pending"]) if isinstance(pending, dict) else 0  # NOGROUP: nothing claimed
        waiting, claimed = out[protocol]
        out[protocol] = (waiting + max(0, held - taken), claimed + taken)
    return out
