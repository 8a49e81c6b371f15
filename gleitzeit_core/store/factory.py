"""Build a Store from a backend name. Resolving *which* name, file and address
(flag > env > config file > defaults) is the configuration layer's job: its
defaults (``Config.make_store``, gleitzeit_core/config.py) are the only ones."""

from __future__ import annotations

from gleitzeit_core.errors import ConfigError
from gleitzeit_core.store.base import Store

BACKENDS = ("sqlite", "redis", "memory")
#: SQLite ``synchronous`` settings offered (docs/persistence.md): NORMAL loses no committed
#: transaction on a process crash, FULL none on a power loss either
SQLITE_SYNCHRONOUS = ("normal", "full")


def make_store(kind: str, *, sqlite_path: str | None = None, redis_url: str | None = None,
               sqlite_synchronous: str = "normal") -> Store:
    """The store for ``kind``, not yet opened (``async with store:`` opens it).
    SQLite needs ``sqlite_path`` and Redis ``redis_url``.

    Backends are imported on demand: redis-py alone adds ~0.1 s to every CLI call.
    """
    name = kind.strip().lower()
    if name == "sqlite":
        from gleitzeit_core.store.sqlite import SQLiteBackend

        return SQLiteBackend(_needed(sqlite_path, "sqlite_path", name), synchronous=sqlite_synchronous)
    if name == "redis":
        from gleitzeit_core.store.redis import RedisBackend

        return RedisBackend(_needed(redis_url, "redis_url", name))
    if name == "memory":
        from gleitzeit_core.store.memory import InMemoryBackend

        return InMemoryBackend()
    raise ConfigError(
        f"unknown persistence backend {kind!r}: choose one of {', '.join(BACKENDS)}"
    )


def _needed(value: str | None, arg: str, kind: str) -> str:
    if not value:
        raise ConfigError(f"make_store({kind!r}) needs {arg}= (the configured one: "
                          "gleitzeit_core.config.load_config().make_store())")
    return value
