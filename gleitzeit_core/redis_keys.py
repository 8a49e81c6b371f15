"""What the Redis store and the worker pool share on one server: the client
settings, the URL as messages show it, the errors worth riding out, and the key
namespace.

Every key starts with ``PREFIX``; the families below are disjoint, each built
by its owner's functions only::

    run:, runs, runs:*, task:, tasks, tasks:*, blob:, logs:   store/redis.py (the Store)
    q:, r:, w:, workers, x:, cancel                   dispatch/queue.py (the pool)
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Iterable
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

PREFIX = "gleitzeit:"
#: connecting to a live server takes milliseconds; a dead address should not hang a run
CONNECT_TIMEOUT_S = 5.0
#: long enough for a 50,000-task create_run or a 10 MB result, short enough to notice a hung server
SOCKET_TIMEOUT_S = 30.0
#: Errors of a server restarting or a network blip: the pool rides them out by retrying.
TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


def connect(url: str, *, socket_timeout: float = SOCKET_TIMEOUT_S) -> aioredis.Redis:
    """A client that notices a dead server within seconds instead of hanging, and
    whose callers wait for a free connection: redis-py's default pool raises
    "Too many connections" past 100 concurrent commands (a wide fan-out)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=socket_timeout, health_check_interval=10)
    pool.connection_class = _inline_write_timeout(pool.connection_class)  # the URL's kind: TCP, TLS, unix socket
    return aioredis.Redis(connection_pool=pool)


class _InlineWriteTimeout:
    """Mixed into the pool's connection class: each write bounded by ``socket_timeout`` as
    redis-py bounds it, without a Task per command. redis-py wraps every write in
    ``asyncio.wait_for``, which on Python 3.11 runs the write as a Task of its own and
    takes two more event-loop turns (measured here: a GET's client CPU ~195 → ~165 µs, a
    MULTI/EXEC pipeline's ~420 → ~385 µs); ``asyncio.timeout`` bounds it inline."""

    socket_timeout: float | None
    is_connected: bool

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        timeout = self.socket_timeout
        if not timeout or not self.is_connected:  # (connecting, once per connection: redis-py's own way)
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        self.socket_timeout = None  # redis-py then writes inline; the scope below bounds it
        try:
            async with asyncio.timeout(timeout):
                await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except TimeoutError:  # (redis-py disconnected on the way out, as on its own timeout)
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout


@functools.cache
def _inline_write_timeout(base: type[Any]) -> type[Any]:
    return type(base.__name__, (_InlineWriteTimeout, base), {})


def redact(url: str) -> str:
    """The URL for messages: the password replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def text(value: bytes | str) -> str:
    """A reply element as str (the clients here do not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value
