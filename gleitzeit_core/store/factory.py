"""Build a Store from a backend name; resolving *which* name (flag > env > config)
is the configuration layer's job, this only maps the result to a class."""

from __future__ import annotations

from gleitzeit_core.errors import ConfigError
from gleitzeit_core.store.base import Store

DEFAULT_SQLITE_PATH = "~/.gleitzeit/workflows.db"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
BACKENDS = ("sqlite", "redis", "memory")


def make_store(kind: str, *, sqlite_path: str | None = None, redis_url: str | None = None) -> Store:
    """The store for ``kind``, not yet opened (``async with store:`` opens it).

    Backends are imported on demand: redis-py alone adds ~0.1 s to every CLI call.
    """
    name = kind.strip().lower()
    if name == "sqlite":
        from gleitzeit_core.store.sqlite import SQLiteBackend

        return SQLiteBackend(sqlite_path or DEFAULT_SQLITE_PATH)
    if name == "redis":
        from gleitzeit_core.store.redis import RedisBackend

        return RedisBackend(redis_url or DEFAULT_REDIS_URL)
    if name == "memory":
        from gleitzeit_core.store.memory import InMemoryBackend

        return InMemoryBackend()
    raise ConfigError(
        f"unknown persistence backend {kind!r}: choose one of {', '.join(BACKENDS)}"
    )
