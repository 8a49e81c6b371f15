"""Build a Store from a backend name; resolving *which* name (flag > env > config)
is the configuration layer's job, this only maps the result to a class."""

from __future__ import annotations

from gleitzeit_core.errors import ConfigError
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.redis import RedisBackend
from gleitzeit_core.store.sqlite import SQLiteBackend

DEFAULT_SQLITE_PATH = "~/.gleitzeit/workflows.db"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
BACKENDS = ("sqlite", "redis", "memory")


def make_store(kind: str, *, sqlite_path: str | None = None, redis_url: str | None = None) -> Store:
    """The store for ``kind``, not yet opened (``async with store:`` opens it)."""
    name = kind.strip().lower()
    if name == "sqlite":
        return SQLiteBackend(sqlite_path or DEFAULT_SQLITE_PATH)
    if name == "redis":
        return RedisBackend(redis_url or DEFAULT_REDIS_URL)
    if name == "memory":
        return InMemoryBackend()
    raise ConfigError(
        f"unknown persistence backend {kind!r}: choose one of {', '.join(BACKENDS)}"
    )
