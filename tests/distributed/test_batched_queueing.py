"""The attempts the scheduler starts in one loop turn reach a blocked worker in one read:
the dispatcher queues them in one transaction (Redis serves a blocked reader after it
as a whole) and the worker's read asks for as many as its free slots hold."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio as aioredis

from gleitzeit_core.dispatch.queue import Job, queue_key
from gleitzeit_core.dispatch.redis import RedisDispatcher
from gleitzeit_core.distributed.worker import read_count
from tests.dispatch.conftest import PROTOCOL
from tests.dispatch.test_contract import HANG_GUARD, execute, task

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py is asyncio-only


async def test_one_turn_s_attempts_reach_a_blocked_reader_together(redis_url: str) -> None:
    first, then = ([task(f"{batch}{i}", "ct/echo") for i in range(5)] for batch in ("a", "b"))
    stream = queue_key(PROTOCOL, first[0].priority)
    r = aioredis.Redis.from_url(redis_url)
    got: list = []
    async with RedisDispatcher(redis_url) as d, anyio.create_task_group() as tg:
        await r.config_resetstat()
        for spec in first:  # started in one loop turn, as the scheduler starts a turn's attempts
            tg.start_soon(execute, d, spec)
        with anyio.fail_after(HANG_GUARD):
            while await r.xlen(stream) < len(first):
                await anyio.sleep(0.01)
        assert (await r.info("commandstats"))["cmdstat_xgroup|create"]["calls"] == 1  # once, not per attempt

        await r.xgroup_create(stream, "reader", id="$")  # a reader of what comes next
        await r.config_resetstat()

        async def blocked_read() -> None:
            got.extend(await r.xreadgroup("reader", "me", {stream: ">"}, count=10, block=int(HANG_GUARD * 1000)))

        tg.start_soon(blocked_read)
        with anyio.fail_after(HANG_GUARD):
            while not any(c.get("cmd", "").startswith("xreadgroup") for c in await r.client_list()):
                await anyio.sleep(0.01)  # until the read is blocked in Redis
        for spec in then:
            tg.start_soon(execute, d, spec)
        with anyio.fail_after(HANG_GUARD):
            while not got:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()  # (the attempts are withdrawn: nobody runs them)
    stats = await r.info("commandstats")
    await r.aclose()
    (_, entries), = got
    assert [Job.from_fields(fields).task_id for _, fields in entries] == [f"task-b{i}" for i in range(5)]
    assert stats["cmdstat_multi"]["calls"] == 1 and "cmdstat_xgroup|create" not in stats


@pytest.mark.parametrize("free, stream_free, count", [
    (24, [24] * 4, 6),  # one protocol, four priority streams: 4 x 6 entries fit in 24 slots
    (24, [24] * 4 + [2] * 4, 1),  # a protocol with 2 free slots over its 4 streams
    (8, [8] * 4 + [4] * 4, 1),
    (3, [3] * 4, 1),  # fewer free slots than streams: 1 each (the bounded overshoot)
    (1, [1], 1),
])
def test_a_blocking_read_asks_for_what_the_free_slots_hold(free: int, stream_free: list[int], count: int) -> None:
    assert read_count(free, stream_free) == count
    if free >= len(stream_free):
        assert count * len(stream_free) <= free
