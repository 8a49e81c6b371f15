"""Persistence: the Store interface, its records, and the three backends."""

from gleitzeit_core.store.base import Store
from gleitzeit_core.store.factory import BACKENDS, make_store
from gleitzeit_core.store.records import (
    FINISHED_TASK_STATES,
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
    new_id,
)


def __getattr__(name: str) -> object:
    """Backend classes load on first use (see factory.make_store)."""
    modules = {"InMemoryBackend": "memory", "SQLiteBackend": "sqlite", "RedisBackend": "redis"}
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f"gleitzeit_core.store.{modules[name]}"), name)
    raise AttributeError(name)

__all__ = (
    "BACKENDS",
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
