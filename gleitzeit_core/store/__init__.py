"""Persistence: the Store interface, its records, and the three backends."""

from gleitzeit_core.store.base import Store
from gleitzeit_core.store.factory import (
    BACKENDS,
    DEFAULT_REDIS_URL,
    DEFAULT_SQLITE_PATH,
    make_store,
)
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import (
    FINISHED_TASK_STATES,
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
    new_id,
)
from gleitzeit_core.store.redis import RedisBackend
from gleitzeit_core.store.sqlite import SQLiteBackend

__all__ = (
    "BACKENDS",
    "DEFAULT_REDIS_URL",
    "DEFAULT_SQLITE_PATH",
    "FINISHED_TASK_STATES",
    "AttemptRecord",
    "InMemoryBackend",
    "RedisBackend",
    "RunRecord",
    "RunStatus",
    "SQLiteBackend",
    "Store",
    "TaskRecord",
    "TaskStatus",
    "make_store",
    "new_id",
)
