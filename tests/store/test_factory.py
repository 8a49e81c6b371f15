"""make_store: a backend name to an (unopened) store."""

from __future__ import annotations

from pathlib import Path

import pytest

import gleitzeit_core.store as store_pkg
from gleitzeit_core.errors import ConfigError
from gleitzeit_core.store import (
    InMemoryBackend,
    RedisBackend,
    SQLiteBackend,
    make_store,
)


def test_each_kind_builds_its_backend(tmp_path: Path) -> None:
    sqlite = make_store("sqlite", sqlite_path=str(tmp_path / "w.db"))
    assert isinstance(sqlite, SQLiteBackend) and sqlite.address == str(tmp_path / "w.db")
    redis = make_store("redis", redis_url="rediss://:pw@cache.example:6380/3")
    assert isinstance(redis, RedisBackend) and redis.url == "rediss://:pw@cache.example:6380/3"
    assert redis.address == "rediss://:***@cache.example:6380/3"
    assert isinstance(make_store(" Memory "), InMemoryBackend)


def test_the_location_comes_from_the_configuration_not_a_second_default() -> None:
    for kind, arg in (("sqlite", "sqlite_path"), ("redis", "redis_url")):
        with pytest.raises(ConfigError, match=f"needs {arg}="):
            make_store(kind)


def test_unknown_kind_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        make_store("postgres")
    assert str(err.value) == (
        "unknown persistence backend 'postgres': choose one of sqlite, redis, memory"
    )
    assert err.value.exit_code == 2


def test_public_surface() -> None:
    assert isinstance(store_pkg.__all__, tuple)
    assert all(hasattr(store_pkg, name) for name in store_pkg.__all__)
