"""The Redis client every part of Gleitzeit uses (``redis_keys.connect``): each write is
bounded by the socket timeout without a Task per command, for every kind of URL."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import anyio
import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import TimeoutError as RedisTimeoutError

from gleitzeit_core.redis_keys import TRANSIENT, connect

pytestmark = pytest.mark.anyio

#: Bounds a test that would otherwise hang, never a pass/fail condition.
HANG_GUARD = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py is asyncio-only


@pytest.mark.parametrize("url, kind", [("redis://127.0.0.1:1/0", Connection),
                                       ("rediss://127.0.0.1:1/0", SSLConnection),
                                       ("unix:///nonexistent/redis.sock", UnixDomainSocketConnection)])
async def test_the_url_keeps_its_kind_of_connection(url: str, kind: type) -> None:
    client = connect(url)
    try:
        assert issubclass(client.connection_pool.connection_class, kind)
    finally:
        await client.aclose()


async def test_no_write_runs_as_a_task_of_its_own(redis_url: str) -> None:
    """redis-py's own write path runs each write as a Task (asyncio.wait_for on Python 3.11).
    (Its pipelines still shield their connection's release in one; that is not a write.)"""
    client = connect(redis_url)
    loop = asyncio.get_running_loop()
    created: list[Any] = []
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    try:
        await client.set("gleitzeit:test:k", "v")  # connected: what follows is the steady state
        loop.set_task_factory(counting)
        try:
            for _ in range(20):
                assert await client.get("gleitzeit:test:k") == b"v"
            async with client.pipeline(transaction=True) as pipe:
                pipe.set("gleitzeit:test:k", "w")
                pipe.get("gleitzeit:test:k")
                assert await pipe.execute() == [True, b"w"]
        finally:
            loop.set_task_factory(factory)
        assert "AbstractConnection._send_packed_command" not in created
        assert created.count("BlockingConnectionPool.release") == 1  # the counting saw the pipeline's
    finally:
        await client.aclose()


async def test_a_write_to_a_server_that_stops_reading_times_out() -> None:
    """A server that never reads: the write fills the socket's buffers, then waits; it fails
    as redis-py's write timeout does (a TRANSIENT error the pool rides out). The "server" is a
    listening socket nobody accepts from: the kernel takes the connection and buffers a little,
    and nothing ever reads it (an event-loop server would read into memory behind our back)."""
    with socket.socket() as listening:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        port = listening.getsockname()[1]
        client = connect(f"redis://127.0.0.1:{port}/0", socket_timeout=0.5)
        conn = client.connection_pool.make_connection()
        try:
            # connected without redis-py's handshake (which the silent server would not answer)
            await conn._connect()
            assert conn.is_connected
            with anyio.fail_after(HANG_GUARD), pytest.raises(RedisTimeoutError, match="writing"):
                await conn.send_command("SET", "k", b"x" * (64 << 20), check_health=False)
            assert issubclass(RedisTimeoutError, TRANSIENT)
            assert not conn.is_connected  # dropped, as redis-py drops a connection its timeout hit
            assert conn.socket_timeout == 0.5  # the bound is back for the next write and every read
        finally:
            await conn.disconnect()
            await client.aclose()
