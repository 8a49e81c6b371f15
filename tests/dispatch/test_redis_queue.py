"""The worker pool's queues: priority order across the streams, and at-least-once when the
worker running an attempt is lost (a real redis-server, real `gleitzeit worker` processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import anyio
import pytest

from gleitzeit_core.dispatch.redis import RedisDispatcher
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.workflow.model import Priority
from gleitzeit_sdk.codes import FailureKind
from tests.dispatch.conftest import MANIFEST, PROTOCOL
from tests.dispatch.test_contract import HANG_GUARD, execute, task
from tests.distributed.conftest import Pool

pytestmark = pytest.mark.anyio


def events(log: Path) -> list[tuple[str, str, int]]:
    if not log.exists():
        return []
    return [(e, n, int(pid)) for e, n, pid in (line.split() for line in log.read_text().splitlines())]


async def until(predicate: Callable[[], Any], what: str) -> Any:
    with anyio.fail_after(HANG_GUARD):
        while not (value := predicate()):
            await anyio.sleep(0.05)
    return value


async def test_a_worker_takes_queued_attempts_highest_priority_first(tmp_path: Path, redis_url: str,
                                                                     pool_factory: Callable[[str], Pool]):
    """Attempts queued while no worker runs, in the order low, normal, urgent, high, low:
    one worker with one slot starts them urgent, high, normal, low, low."""
    log = tmp_path / "provider.log"
    queued = [("low1", Priority.LOW), ("normal1", Priority.NORMAL), ("urgent1", Priority.URGENT),
              ("high1", Priority.HIGH), ("low2", Priority.LOW)]
    pool = pool_factory(redis_url)
    async with RedisDispatcher(redis_url) as d:
        async with anyio.create_task_group() as tg:
            for count, (name, priority) in enumerate(queued, 1):
                tg.start_soon(execute, d, task(name, priority=priority, log=str(log), name=name))
                await until(lambda: _queued(redis_url) == count, f"{name} in its stream")  # arrival order
            pool.start("w1", "contract", concurrency=1, manifest=MANIFEST)
    assert [n for e, n, _ in events(log) if e == "start"] == ["urgent1", "high1", "normal1", "low1", "low2"]


def _queued(url: str) -> int:
    import redis

    with redis.Redis.from_url(url) as r:
        return sum(r.xlen(k) for k in r.scan_iter(match=f"gleitzeit:q:{PROTOCOL}:*"))


async def test_an_attempt_on_a_lost_worker_fails_retryable_and_runs_again_elsewhere(
        tmp_path: Path, redis_url: str, pool_factory: Callable[[str], Pool]):
    log = tmp_path / "provider.log"
    pool = pool_factory(redis_url)
    pool.start("doomed", "contract", concurrency=1, manifest=MANIFEST)
    pool.wait_live("doomed")
    failures: list[ProviderError] = []

    async def attempt_one() -> None:
        try:
            await execute(d, task("work", log=str(log), name="work", seconds=60))
        except ProviderError as exc:
            failures.append(exc)

    async with RedisDispatcher(redis_url) as d:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(attempt_one)
                await until(lambda: [n for e, n, _ in events(log) if e == "start"], "the attempt to start")
                pool.kill9("doomed")  # the worker and its provider vanish mid-attempt
    [error] = failures
    assert error.kind is FailureKind.WORKER_LOST and error.retryable

    # The retry (attempt 2) runs on another worker: delivery is at-least-once.
    pool.start("spare", "contract", concurrency=1, manifest=MANIFEST)
    pool.wait_live("spare")
    async with RedisDispatcher(redis_url) as d:
        spec = task("work", log=str(log), name="work", seconds=0)
        with anyio.fail_after(HANG_GUARD):
            result = await d.execute(spec, dict(spec.params), meta={"runId": "run-contract", "taskId": "task-work",
                                                                    "attempt": 2, "taskName": "work"},
                                     timeout=None, on_output=lambda s, t: None)
    assert result["meta"]["attempt"] == 2
    starts = [pid for e, n, pid in events(log) if e == "start" and n == "work"]
    assert len(starts) == 2 and starts[0] != starts[1]  # ran twice, on two provider processes

