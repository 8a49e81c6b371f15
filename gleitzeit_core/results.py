"""Where a task's result lives: inline in its record, or -- above
``INLINE_RESULT_BYTES`` of JSON -- in the store's blob storage, written once
under its content hash and referenced by digest from the record.

The scheduler keeps a small ``StoredResult`` in place of a big value and loads
it only while building the parameters of a task that references it, so a big
result at rest costs the engine no memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.blobs import digest
from gleitzeit_core.store.records import TaskRecord

#: results whose compact JSON is longer than this go to blob storage
INLINE_RESULT_BYTES = 1024 * 1024
_COMPACT = (",", ":")


@dataclass(frozen=True)
class StoredResult:
    """Stands in for a result that is in blob storage."""

    run_id: str
    digest: str


def encode(value: Any) -> bytes:
    """Compact, ASCII-only JSON (lone surrogates survive it)."""
    return _COMPACT_ENCODER.encode(value).encode()


_COMPACT_ENCODER = json.JSONEncoder(separators=_COMPACT)  # built once (json.dumps with arguments builds one per call)


async def keep(store: Store, task: TaskRecord, value: Any) -> Any:
    """Set ``task``'s result (inline, or a blob written first); returns what the
    scheduler should hold for later references: the value, or a StoredResult."""
    data = encode(value)
    if len(data) <= INLINE_RESULT_BYTES:
        task.result, task.result_blob = value, None
        return value
    key = digest(data)
    await store.put_blob(task.run_id, key, data)  # before the record that names it
    task.result, task.result_blob = None, key
    return StoredResult(task.run_id, key)


def held(task: TaskRecord) -> Any:
    """What the scheduler holds for a stored, completed task."""
    return task.result if task.result_blob is None else StoredResult(task.run_id, task.result_blob)


async def result_bytes(store: Store, task: TaskRecord) -> bytes:
    """The JSON text of ``task``'s result, wherever it lives."""
    if task.result_blob is None:
        return encode(task.result)
    data = await store.get_blob(task.run_id, task.result_blob)
    if data is None:
        raise StoreUnavailable(
            f"{store.kind} backend {store.address}: the result of task {task.id} "
            f"({task.result_blob}) is missing from blob storage")
    return data


async def load(store: Store, ref: StoredResult) -> Any:
    data = await store.get_blob(ref.run_id, ref.digest)
    if data is None:
        raise StoreUnavailable(
            f"{store.kind} backend {store.address}: result blob {ref.digest} of run {ref.run_id} is missing")
    return json.loads(data)
