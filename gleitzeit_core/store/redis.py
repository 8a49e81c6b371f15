"""Redis store: records as hashes, indexes as sorted sets, all under ``gleitzeit:``.

Key layout (every hash field holds the JSON encoding of one record field)::

    gleitzeit:run:<run_id>              hash  the RunRecord
    gleitzeit:run:<run_id>:tasks        zset  task ids; score = position (creation order)
    gleitzeit:runs                      zset  run ids; score = created_at
    gleitzeit:runs:status:<status>      zset  run ids; score = created_at
    gleitzeit:runs:workflow:<name>      zset  run ids; score = created_at
    gleitzeit:task:<task_id>            hash  the TaskRecord
    gleitzeit:task:<task_id>:attempts   zset  AttemptRecord JSON; score = attempt number
    gleitzeit:tasks                     zset  task ids; score = created_at
    gleitzeit:tasks:status:<status>     zset  task ids; score = created_at
    gleitzeit:tasks:workflow:<name>     zset  task ids; score = created_at
    gleitzeit:run:<run_id>:blobs        set   digests of the run's blobs
    gleitzeit:blob:<run_id>:<hex>       string  one blob (a value too big for a record)
    gleitzeit:logs:<run_id>             stream  the run's log lines (store/log_redis.py)

Every write is one round trip and atomic: create_run is one MULTI/EXEC
pipeline, and so is each group-commit batch (store/batch.py: the save_run /
save_task / save_tasks calls of one event-loop turn), whose task state changes are one Lua
script call for the whole batch (Redis runs a script as a unit);
request_cancel, heartbeat and mark_interrupted are one script call each. No write reads first: a status change removes the
id from every *other* status set instead of looking up the old status. Every
command is an idempotent upsert, so redis-py re-sending a write after a lost
reply is harmless. delete_run alone reads first (what to unindex), then deletes
in one transaction guarded by WATCH.
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterable, Sequence

import anyio
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import AuthenticationError
from redis.exceptions import RedisError, WatchError

from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.redis_keys import PREFIX, TRANSIENT, connect, redact
from gleitzeit_core.store.base import KEPT_ON_SAVE, TASK_IDENTITY, Store
from gleitzeit_core.store.batch import Writes
from gleitzeit_core.store.blobs import check_name
from gleitzeit_core.store.log_redis import logs_key
from gleitzeit_core.store.records import (
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
    new_id,
    now,
)

#: members / keys per command when a command would otherwise carry a whole run
_CHUNK = 10_000
#: a blob is sent in pieces of this size (APPEND to a temporary key, then RENAME),
#: so neither redis-py nor the server builds one command the size of the value
_BLOB_PIECE = 8 * 1024 * 1024
#: ZINTER (used by filtered listings) arrived in Redis 6.2
_MIN_SERVER = (6, 2)

# request_cancel must not create a run hash for an unknown id: check and set server-side
_CANCEL_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'cancel_requested', ARGV[1])
  return 1
end
return 0
"""


# heartbeat: renew the lease of a run that exists, answer its cancel flag (nil: gone)
_HEARTBEAT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return nil
end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[1])
local flag = redis.call('HGET', KEYS[1], 'cancel_requested')
if flag == 'true' then return 1 end
return 0
"""

# mark_interrupted: compare (status live, heartbeat unchanged) and set, server-side.
# KEYS: run hash, pending set, running set, interrupted set
# ARGV: run id, expected heartbeat JSON, status JSON, error JSON, updated_at JSON
_INTERRUPT_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= '"pending"' and status ~= '"running"' then return 0 end
local beat = redis.call('HGET', KEYS[1], 'heartbeat_at') or 'null'
if beat ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'error', ARGV[4], 'updated_at', ARGV[5])
local score = cjson.decode(redis.call('HGET', KEYS[1], 'created_at'))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], score, ARGV[1])
return 1
"""


# The hot path: the task state changes of one group-commit batch, in one script call
# (Redis runs a script as a unit). Per task: upsert its hash (identity fields only if
# absent), move it to the set of its current status (out of all others), index it,
# upsert one attempt. The batch travels as one JSON argument: redis-py packs every
# argument separately, and ~50 per task were most of the client's cost.
# KEYS: all tasks, then one set per TaskStatus.
# ARGV[1]: JSON list, per task [task hash, run order, workflow index, attempts, id,
#          created_at, position of its status among the sets (1-based), attempt number
#          or "", attempt JSON or "", number of identity fields, field, value, ...]
#          (identity fields first); every score a string, formatted by Python as
#          redis-py formats a float (the server never re-formats a number).
# ARGV[2]: JSON list of further attempts, [attempts key, number, attempt JSON].
_SAVE_TASKS_LUA = """
for _, t in ipairs(cjson.decode(ARGV[1])) do
  local key, id, score, current, number, fixed = t[1], t[5], t[6], t[7], t[8], t[10]
  for i = 11, 10 + 2 * fixed, 2 do
    redis.call('HSETNX', key, t[i], t[i + 1])
  end
  redis.call('HSET', key, unpack(t, 11 + 2 * fixed))
  redis.call('ZADD', t[2], 'NX', score, id)
  redis.call('ZADD', KEYS[1], score, id)
  redis.call('ZADD', t[3], score, id)
  if number ~= '' then
    redis.call('ZREMRANGEBYSCORE', t[4], number, number)
    redis.call('ZADD', t[4], number, t[9])
  end
  for i = 2, #KEYS do
    if i - 1 == current then
      redis.call('ZADD', KEYS[i], score, id)
    else
      redis.call('ZREM', KEYS[i], id)
    end
  end
end
for _, a in ipairs(cjson.decode(ARGV[2])) do
  redis.call('ZREMRANGEBYSCORE', a[1], a[2], a[2])
  redis.call('ZADD', a[1], a[2], a[3])
end
return 1
"""


def _reason(e: BaseException) -> str:
    """'Connection refused' rather than redis-py's wrapped 'Error 111 connecting to ...'."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return str(e) or type(e).__name__


def _encode(record: Any, skip_none: bool = False) -> dict[str, str]:
    return {k: json.dumps(v) for k, v in record.to_dict().items() if not (skip_none and v is None)}


def _decode(cls: Any, raw: dict[bytes, bytes]) -> Any:
    return cls.from_dict({k.decode(): json.loads(v) for k, v in raw.items()})


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _run_key(run_id: str) -> str:
    return f"{PREFIX}run:{run_id}"


def _order_key(run_id: str) -> str:
    return f"{PREFIX}run:{run_id}:tasks"


def _task_key(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}"


def _blobs_key(run_id: str) -> str:
    return f"{PREFIX}run:{run_id}:blobs"


def _blob_key(run_id: str, digest: str) -> str:
    check_name(run_id, digest)
    return f"{PREFIX}blob:{run_id}:{digest.split(':', 1)[1]}"


def _attempts_key(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}:attempts"


_RUNS = f"{PREFIX}runs"
_TASKS = f"{PREFIX}tasks"


def _runs_status(status: str) -> str:
    return f"{PREFIX}runs:status:{status}"


def _runs_workflow(name: str) -> str:
    return f"{PREFIX}runs:workflow:{name}"


def _tasks_status(status: str) -> str:
    return f"{PREFIX}tasks:status:{status}"


def _tasks_workflow(name: str) -> str:
    return f"{PREFIX}tasks:workflow:{name}"


_TASK_STATUS_KEYS = tuple(_tasks_status(s.value) for s in TaskStatus)
_TASK_STATUS_POSITION = {s.value: i for i, s in enumerate(TaskStatus, start=1)}


def _save_task_entry(task: TaskRecord) -> list[Any]:
    """A task's entry in _SAVE_TASKS_LUA's batch, attempt number and JSON left empty. A
    task new to its run goes last: it is scored by created_at, far above any position
    create_run gives."""
    fields = _encode(task)
    entry: list[Any] = [_task_key(task.id), _order_key(task.run_id), _tasks_workflow(task.workflow_name),
                        _attempts_key(task.id), task.id, repr(float(task.created_at)),
                        _TASK_STATUS_POSITION[TaskStatus(task.status).value], "", "", len(TASK_IDENTITY)]
    for field in (*TASK_IDENTITY, *(f for f in fields if f not in TASK_IDENTITY)):
        entry += (field, fields[field])
    return entry


def _save_tasks_args(entries: Sequence[list[Any]], more: Sequence[tuple[str, int, str]] = ()) -> list[Any]:
    """KEYS count, KEYS and ARGV of one _SAVE_TASKS_LUA call."""
    keys = [_TASKS, *_TASK_STATUS_KEYS]
    return [len(keys), *keys, json.dumps(entries, ensure_ascii=False),
            json.dumps([[k, str(n), d] for k, n, d in more], ensure_ascii=False)]


class RedisBackend(Store):
    kind = "redis"

    def __init__(self, url: str):
        self.url = url
        self._client: aioredis.Redis | None = None
        # Lua scripts, registered on open
        self._cancel: Any = None
        self._save_tasks: Any = None
        self._heartbeat: Any = None
        self._interrupt: Any = None

    @property
    def address(self) -> str:
        return redact(self.url)

    async def open(self) -> None:
        try:
            self._client = connect(self.url)
        except ValueError as e:  # malformed URL
            raise StoreUnavailable(f"redis backend: invalid URL {self.address}: {e}") from e
        try:
            async with self._translate():
                info = await self._redis.info("server")
            version = tuple(int(p) for p in str(info["redis_version"]).split(".")[:2])
            if version < _MIN_SERVER:
                raise StoreUnavailable(
                    f"redis backend at {self.address}: server {info['redis_version']} is too old "
                    f"(need {'.'.join(map(str, _MIN_SERVER))} or newer)"
                )
            self._cancel = self._redis.register_script(_CANCEL_LUA)
            self._save_tasks = self._redis.register_script(_SAVE_TASKS_LUA)
            self._heartbeat = self._redis.register_script(_HEARTBEAT_LUA)
            self._interrupt = self._redis.register_script(_INTERRUPT_LUA)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.aclose()

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisBackend used before open()")
        return self._client

    @asynccontextmanager
    async def _translate(self) -> AsyncIterator[None]:
        """redis-py's errors become StoreUnavailable naming the server."""
        try:
            yield
        except AuthenticationError as e:
            raise StoreUnavailable(
                f"redis backend at {self.address} rejected the credentials: {e}"
            ) from e
        except TRANSIENT as e:
            raise StoreUnavailable(
                f"redis backend unreachable at {self.address}: {_reason(e)}"
            ) from e
        except RedisError as e:
            raise StoreUnavailable(f"redis backend at {self.address} failed: {e}") from e

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Pipeline]:
        async with self._translate():
            async with self._redis.pipeline(transaction=True) as pipe:
                yield pipe
                await pipe.execute()

    # -- writes ---------------------------------------------------------------
    @staticmethod
    def _encode_run(run: RunRecord) -> tuple[str, str, float, str, dict[str, str]]:
        return run.run_id, RunStatus(run.status).value, run.created_at, run.workflow_name, _encode(run)

    @staticmethod
    def _queue_run(pipe: Pipeline, encoded: tuple[str, str, float, str, dict[str, str]]) -> None:
        run_id, status, created_at, workflow_name, fields = encoded
        key = _run_key(run_id)
        pipe.hset(key, mapping={k: v for k, v in fields.items() if k not in KEPT_ON_SAVE})
        for name in KEPT_ON_SAVE:  # written when the run is new, never over a stored value
            pipe.hsetnx(key, name, fields[name])
        for other in RunStatus:
            if other.value != status:
                pipe.zrem(_runs_status(other.value), run_id)
        score = {run_id: created_at}
        pipe.zadd(_runs_status(status), score)
        pipe.zadd(_RUNS, score)
        pipe.zadd(_runs_workflow(workflow_name), score)

    @staticmethod
    def _queue_new_tasks(pipe: Pipeline, tasks: Sequence[TaskRecord], first: float = 0) -> None:
        """Bulk insert for create_run: tasks are new, so there is no old status to
        unindex and no stale field to overwrite (None fields are left out; reading
        fills in the default). Indexes are written a chunk of members per ZADD.
        ``first``: the run-order position of the first task."""
        by_status: dict[str, dict[str, float]] = {}
        by_workflow: dict[str, dict[str, float]] = {}
        by_run: dict[str, dict[str, float]] = {}
        for position, task in enumerate(tasks, start=int(first)):
            pipe.hset(_task_key(task.id), mapping=_encode(task, skip_none=True))
            by_status.setdefault(TaskStatus(task.status).value, {})[task.id] = task.created_at
            by_workflow.setdefault(task.workflow_name, {})[task.id] = task.created_at
            by_run.setdefault(task.run_id, {})[task.id] = position
        indexes = [(_tasks_status(s), m) for s, m in by_status.items()]
        indexes += [(_tasks_workflow(w), m) for w, m in by_workflow.items()]
        indexes += [(_order_key(r), m) for r, m in by_run.items()]
        indexes.append((_TASKS, {t.id: t.created_at for t in tasks}))
        for key, members in indexes:
            for chunk in _chunks(list(members.items())):
                pipe.zadd(key, dict(chunk))

    async def create_run(self, run: RunRecord, tasks: Sequence[TaskRecord]) -> None:
        async with self._transaction() as pipe:
            self._queue_run(pipe, self._encode_run(run))
            self._queue_new_tasks(pipe, tasks)

    # group commit (store/batch.py): one script call for the tasks of a batch, in a
    # MULTI/EXEC with the runs when there are any
    _encode_task = staticmethod(_save_task_entry)

    @staticmethod
    def _encode_attempt(attempt: AttemptRecord) -> tuple[str, int, str]:
        return attempt.task_id, attempt.number, json.dumps(attempt.to_dict())

    async def _commit(self, writes: Writes) -> None:
        attempts: dict[str, list[tuple[int, str]]] = {}
        for task_id, number, data in writes.attempts.values():
            attempts.setdefault(task_id, []).append((number, data))
        entries = []
        for task_id, entry in writes.tasks.items():
            mine = attempts.get(task_id)
            if mine:
                number, data = mine.pop()
                entry = [*entry[:7], str(number), data, *entry[9:]]
            entries.append(entry)
        more = [(_attempts_key(t), n, d) for t, left in attempts.items() for n, d in left]
        args = _save_tasks_args(entries, more)
        if not writes.runs:  # the usual batch: one round trip (EVALSHA; the script is loaded if missing)
            async with self._translate():
                await self._save_tasks(keys=args[1:1 + args[0]], args=args[1 + args[0]:])
            return
        async with self._transaction() as pipe:
            for run in writes.runs.values():
                self._queue_run(pipe, run)
            # EVAL, not EVALSHA: a script missing from the server's cache would fail
            # inside EXEC without undoing the rest (and redis-py would ask first)
            if entries or more:
                pipe.eval(_SAVE_TASKS_LUA, *args)

    async def add_tasks(self, run_id: str, new: Sequence[TaskRecord], changed: Sequence[TaskRecord] = ()) -> None:
        """WATCH the run's order, place ``new`` after its last task, MULTI/EXEC; again if
        another writer moved the order meanwhile."""
        order = _order_key(run_id)
        async with self._translate():
            while True:
                async with self._redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(order)
                        last = await pipe.zrange(order, -1, -1, withscores=True)
                        pipe.multi()
                        if changed:
                            pipe.eval(_SAVE_TASKS_LUA, *_save_tasks_args([_save_task_entry(t) for t in changed]))
                        self._queue_new_tasks(pipe, new, first=(last[0][1] + 1) if last else 0)
                        await pipe.execute()
                        return
                    except WatchError:
                        continue

    async def request_cancel(self, run_id: str, cancel: bool = True) -> bool:
        async with self._translate():
            return bool(await self._cancel(keys=[_run_key(run_id)], args=["true" if cancel else "false"]))

    async def heartbeat(self, run_id: str, at: float) -> bool | None:
        async with self._translate():
            flag = await self._heartbeat(keys=[_run_key(run_id)], args=[json.dumps(at)])
        return None if flag is None else bool(flag)

    async def mark_interrupted(self, run_id: str, heartbeat_at: float | None, error: str) -> bool:
        keys = [_run_key(run_id), _runs_status(RunStatus.PENDING.value), _runs_status(RunStatus.RUNNING.value),
                _runs_status(RunStatus.INTERRUPTED.value)]
        args = [run_id, json.dumps(heartbeat_at), json.dumps(RunStatus.INTERRUPTED.value), json.dumps(error),
                json.dumps(now())]
        async with self._translate():
            return bool(await self._interrupt(keys=keys, args=args))

    async def put_blob(self, run_id: str, digest: str, data: bytes) -> None:
        key = _blob_key(run_id, digest)
        view = memoryview(data)
        async with self._translate():
            if await self._redis.exists(key):
                return  # content-addressed: already there means already right
            tmp = f"{key}:{new_id('part')}"
            for start in range(0, max(len(view), 1), _BLOB_PIECE):
                await self._redis.append(tmp, bytes(view[start:start + _BLOB_PIECE]))
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rename(tmp, key)
                pipe.sadd(_blobs_key(run_id), digest)
                await pipe.execute()

    async def get_blob(self, run_id: str, digest: str) -> bytes | None:
        key = _blob_key(run_id, digest)
        async with self._translate():
            size = await self._redis.strlen(key)
            if not size:
                return None if not await self._redis.exists(key) else b""
            parts = [await self._redis.getrange(key, start, start + _BLOB_PIECE - 1)
                     for start in range(0, size, _BLOB_PIECE)]
        return b"".join(parts)

    async def delete_run(self, run_id: str) -> bool:
        """Reads what to unindex, then deletes in one transaction; retried if the
        run or its task list changed in between (WATCH)."""
        run_key, order_key = _run_key(run_id), _order_key(run_id)
        async with self._translate():
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(run_key, order_key, _blobs_key(run_id))
                        workflow = await pipe.hget(run_key, "workflow_name")
                        if workflow is None:
                            return False
                        task_ids = [t.decode() for t in await pipe.zrange(order_key, 0, -1)]
                        names = await self._task_workflows(task_ids)
                        blobs = [b.decode() for b in await pipe.smembers(_blobs_key(run_id))]
                        pipe.multi()
                        self._queue_delete(pipe, run_id, json.loads(workflow), task_ids, names)
                        pipe.delete(_blobs_key(run_id), *(_blob_key(run_id, b) for b in blobs), logs_key(run_id))
                        await pipe.execute()
                        return True
                    except WatchError:
                        continue

    async def _task_workflows(self, task_ids: Sequence[str]) -> set[str]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hget(_task_key(task_id), "workflow_name")
            return {json.loads(n) for n in await pipe.execute() if n is not None}

    @staticmethod
    def _queue_delete(
        pipe: Pipeline, run_id: str, workflow: str, task_ids: Sequence[str], names: set[str]
    ) -> None:
        pipe.delete(_run_key(run_id), _order_key(run_id))
        for key in [_RUNS, _runs_workflow(workflow), *(_runs_status(s.value) for s in RunStatus)]:
            pipe.zrem(key, run_id)
        task_indexes = [_TASKS, *(_tasks_status(s.value) for s in TaskStatus)]
        task_indexes += [_tasks_workflow(n) for n in names]
        for chunk in _chunks(task_ids):
            pipe.delete(*(_task_key(t) for t in chunk), *(_attempts_key(t) for t in chunk))
            for key in task_indexes:
                pipe.zrem(key, *chunk)

    # -- reads ----------------------------------------------------------------
    async def _ids(
        self, primary: str, filters: Sequence[str], limit: int | None, newest_first: bool
    ) -> list[str]:
        """Ids from ``primary`` in its score order, restricted to members of every
        filter set (ZINTER with weight 0 keeps the primary's scores)."""
        if limit is not None and limit <= 0:
            return []
        if not filters:
            stop = -1 if limit is None else limit - 1
            fetch = self._redis.zrevrange if newest_first else self._redis.zrange
            raw = await fetch(primary, 0, stop)
        else:
            weights = {primary: 1, **{f: 0 for f in filters}}
            raw = await self._redis.zinter(weights, aggregate="SUM")
            if newest_first:
                raw.reverse()
            raw = raw[:limit]
        return [r.decode() for r in raw]

    async def _load(self, cls: Any, keys: Sequence[str]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            # an id whose hash is gone was deleted between the index read and now
            return [_decode(cls, raw) for raw in await pipe.execute() if raw]

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._translate():
            raw = await self._redis.hgetall(_run_key(run_id))
        return _decode(RunRecord, raw) if raw else None

    async def list_runs(
        self,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        filters = []
        if status is not None:
            filters.append(_runs_status(RunStatus(status).value))
        if workflow_name is not None:
            filters.append(_runs_workflow(workflow_name))
        # every run index is scored by created_at: the first filter can lead
        primary, *filters = filters or [_RUNS]
        async with self._translate():
            ids = await self._ids(primary, filters, limit, newest_first=True)
            return await self._load(RunRecord, [_run_key(i) for i in ids])

    async def get_task(self, task_id: str) -> TaskRecord | None:
        async with self._translate():
            raw = await self._redis.hgetall(_task_key(task_id))
        return _decode(TaskRecord, raw) if raw else None

    async def list_tasks(
        self,
        run_id: str | None = None,
        status: TaskStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRecord]:
        filters = []
        if status is not None:
            filters.append(_tasks_status(TaskStatus(status).value))
        if workflow_name is not None:
            filters.append(_tasks_workflow(workflow_name))
        if run_id is not None:
            primary = _order_key(run_id)
        else:  # every other task index is scored by created_at: the first filter can lead
            primary, *filters = filters or [_TASKS]
        async with self._translate():
            ids = await self._ids(primary, filters, limit, newest_first=run_id is None)
            return await self._load(TaskRecord, [_task_key(i) for i in ids])

    async def get_attempts(self, task_id: str) -> list[AttemptRecord]:
        async with self._translate():
            raw = await self._redis.zrange(_attempts_key(task_id), 0, -1)
        return [AttemptRecord.from_dict(json.loads(a)) for a in raw]

    async def list_run_attempts(self, run_id: str) -> dict[str, list[AttemptRecord]]:
        async with self._translate():
            ids = await self._ids(_order_key(run_id), (), None, newest_first=False)
            async with self._redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.zrange(_attempts_key(task_id), 0, -1)
                answers = await pipe.execute()
        return {task_id: [AttemptRecord.from_dict(json.loads(a)) for a in raw]
                for task_id, raw in zip(ids, answers) if raw}

    async def stats(self) -> dict[str, Any]:
        async with self._translate():
            async with self._redis.pipeline(transaction=True) as pipe:
                for s in RunStatus:
                    pipe.zcard(_runs_status(s.value))
                for t in TaskStatus:
                    pipe.zcard(_tasks_status(t.value))
                counts = await pipe.execute()
        runs = {s.value: n for s, n in zip(RunStatus, counts)}
        tasks = {t.value: n for t, n in zip(TaskStatus, counts[len(RunStatus) :])}
        return {
            "runs": runs,
            "tasks": tasks,
            "runs_total": sum(runs.values()),
            "tasks_total": sum(tasks.values()),
        }
