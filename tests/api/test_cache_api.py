"""The result cache from Python: ``cache=`` on Task/Workflow, ``TaskResult.cached_from``,
``cache.mode`` in the engine's config; on the memory store, shared by one engine's runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import gleitzeit_core as gz

pytestmark = pytest.mark.anyio


def cached_pid(**task: object) -> gz.Workflow:
    return gz.Workflow(name="pid", tasks=[gz.Task(name="pid", method="count/pid", **task)])


async def test_a_second_run_on_one_engine_is_served_from_the_cache(starts: Path):
    async with gz.ExecutionEngine(backend="memory") as engine:
        first = await engine.run(cached_pid(cache=True))
        second = await engine.run(cached_pid(cache=True))
        uncached = await engine.run(cached_pid())
    assert first.tasks["pid"].cached_from is None and first.tasks["pid"].attempts == 1
    assert second.tasks["pid"].cached_from == f"{first.run_id}/{first.tasks['pid'].id}"
    assert second.tasks["pid"].attempts == 0 and second.tasks["pid"].result == first.tasks["pid"].result
    assert second.to_dict()["tasks"]["pid"]["cached"] is True
    assert uncached.tasks["pid"].cached_from is None and uncached.tasks["pid"].attempts == 1


async def test_cache_mode_off_in_the_config(starts: Path):
    async with gz.ExecutionEngine({"cache.mode": "off"}, backend="memory") as engine:
        runs = [await engine.run(cached_pid(cache=True)) for _ in range(2)]
    assert [r.tasks["pid"].attempts for r in runs] == [1, 1]


def test_cache_blocks_survive_the_file_format_round_trip():
    wf = gz.Workflow(name="w", cache={"ttl": "1h"}, tasks=[
        gz.Task(name="a", method="python/execute", parameters={"code": "result = 1"},
                cache={"files": ["data/*.csv"], "key_extra": "v2"})])
    again = gz.Workflow.from_yaml(yaml.safe_dump(wf.to_dict()))
    assert again.spec.cache == wf.spec.cache and again.spec.cache.ttl == 3600
    assert again.spec.tasks[0].cache == wf.spec.tasks[0].cache
    assert again.spec.tasks[0].cache.files == ("data/*.csv",)
