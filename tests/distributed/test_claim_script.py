"""The claim script on a real redis-server: what it claims is announced in the same call,
with the record the queue codec defines, and a withdrawn attempt is never announced."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gleitzeit_core.dispatch.queue import (ANNOUNCE_FIELD, GROUP, Job, Report, cancel_key, ensure_group, queue_key,
                                           results_key)
from gleitzeit_core.distributed.claim import Announced, Claimer

pytestmark = pytest.mark.anyio

PY, TEXT = queue_key("python/v1", 2), queue_key("text/v1", 2)


def job(n: int, run: str = "run-c", protocol: str = "python/v1") -> Job:
    return Job(run, f"task-{n}", 1, protocol, "python/execute", {"n": n}, {"attempt": 1}, 2.5)


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    for stream in (PY, TEXT):
        await ensure_group(client, stream)
    yield client
    await client.aclose()


async def reports(r: aioredis.Redis, run: str = "run-c") -> list[Report]:
    return [Report.from_fields(f) for _, f in await r.xrange(results_key(run))]


async def test_what_it_claims_is_announced_with_the_codec_s_claimed_record(r: aioredis.Redis):
    for n in range(3):
        await r.xadd(PY, job(n).fields())

    held, taken = await Claimer(r, "w1").claim([PY], 2, {"python/v1": 2}, [])

    assert held == [] and [t.verdict for t in taken] == [Announced.START] * 2
    assert [Job.from_fields(t.fields) for t in taken] == [job(0), job(1)]  # the free slots, oldest first
    assert await reports(r) == [Report.claimed(job(0), "w1"), Report.claimed(job(1), "w1")]
    assert 0 < await r.ttl(results_key("run-c")) <= 86_400
    assert (await r.xpending(PY, GROUP))["consumers"] == [{"name": b"w1", "pending": 2}]


async def test_a_withdrawn_attempt_is_not_announced(r: aioredis.Redis):
    await r.xadd(PY, job(0).fields())
    await r.xadd(PY, job(1).fields())
    await r.set(cancel_key("task-0", 1), "cancelled")

    _, taken = await Claimer(r, "w1").claim([PY], 5, {"python/v1": 5}, [])

    assert [(Job.from_fields(t.fields).task_id, t.verdict) for t in taken] == [
        ("task-0", Announced.WITHDRAWN), ("task-1", Announced.START)]
    assert await reports(r) == [Report.claimed(job(1), "w1")]


async def test_held_attempts_are_announced_or_found_withdrawn(r: aioredis.Redis):
    await r.set(cancel_key("task-1", 1), "cancelled")

    held, taken = await Claimer(r, "w2").claim([], 0, {}, [job(0).announcement(), job(1).announcement()])

    assert held == [Announced.START, Announced.WITHDRAWN] and taken == []
    assert await reports(r) == [Report.claimed(job(0), "w2")]


async def test_each_protocol_gets_no_more_than_its_free_slots(r: aioredis.Redis):
    for n in range(3):
        await r.xadd(PY, job(n).fields())
        await r.xadd(TEXT, job(10 + n, protocol="text/v1").fields())

    _, taken = await Claimer(r, "w1").claim([PY, TEXT], 4, {"python/v1": 1, "text/v1": 5}, [])

    assert [t.stream for t in taken] == [PY, TEXT, TEXT, TEXT]


async def test_an_entry_without_its_announcement_is_malformed_and_not_announced(r: aioredis.Redis):
    fields = job(0).fields()
    del fields[ANNOUNCE_FIELD]
    await r.xadd(PY, fields)

    _, taken = await Claimer(r, "w1").claim([PY], 1, {"python/v1": 1}, [])

    assert [t.verdict for t in taken] == [Announced.MALFORMED]
    assert await reports(r) == []
