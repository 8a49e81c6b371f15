"""gz.cache_entries / explain_cache / clear_cache over a real SQLite store holding entries that real
runs of the python provider made, and `gleitzeit cache …` reading the same through them."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

import gleitzeit_core as gz
from tests.helpers.cli import gz as gz_cli


def calc(code: str) -> gz.Workflow:
    return gz.Workflow(name="calc", tasks=[
        gz.Task(name="calc", method="python/execute", parameters={"code": code}, cache=True),
        gz.Task(name="plain", method="python/execute", parameters={"code": "result = 0"}),
    ])


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, list[gz.RunResult]]:
    """Three runs in one SQLite file: a miss, a hit of it, and a miss after the code changed."""
    db = tmp_path / "home" / "workflows.db"
    made = [gz.run(calc(code), backend=gz.SQLiteBackend(str(db)))
            for code in ("result = 6 * 7", "result = 6 * 7", "result = 7 * 6")]
    assert [r.tasks["calc"].cached_from is not None for r in made] == [False, True, False]
    return db, made


def test_entries_explanations_and_clearing(runs: tuple[Path, list[gz.RunResult]]):
    db, (first, second, third) = runs

    async def go() -> None:
        async with gz.SQLiteBackend(str(db)) as store:
            newer, older = await gz.cache_entries(store)
            assert (older.cached_from, older.hits) == (f"{first.run_id}/{first.tasks['calc'].id}", 1)
            assert (newer.cached_from, newer.hits) == (f"{third.run_id}/{third.tasks['calc'].id}", 0)
            assert [e.task_name for e in (newer, older)] == ["calc", "calc"] and older.key != newer.key

            latest = await gz.explain_cache(store, "calc")   # the newest run's task of that name
            assert latest.task.id == third.tasks["calc"].id and not latest.hit
            assert latest.entry == newer and latest.previous == older
            assert latest.differences == ["params.code"]

            hit = await gz.explain_cache(store, "calc", run_id=second.run_id)
            assert hit.hit and hit.entry == older and hit.previous is None and hit.differences is None
            by_id = await gz.explain_cache(store, first.tasks["calc"].id)
            assert by_id.task.run_id == first.run_id and by_id.entry == older

            uncached = await gz.explain_cache(store, "plain")
            assert uncached.entry is None and uncached.task.id == third.tasks["plain"].id
            with pytest.raises(gz.TaskNotFound, match="no task 'nope'"):
                await gz.explain_cache(store, "nope")

            assert await gz.clear_cache(store, "30d") == 0   # both are seconds old
            assert await gz.clear_cache(store, 0) == 2
            assert await gz.cache_entries(store) == []
            with pytest.raises(gz.ConfigError):
                await gz.clear_cache(store, "soon")

    anyio.run(go)


def test_the_cli_reads_and_clears_what_the_api_sees(runs: tuple[Path, list[gz.RunResult]], home: Path):
    db, (_, second, third) = runs

    async def entries() -> list[gz.CacheEntry]:
        async with gz.SQLiteBackend(str(db)) as store:
            return await gz.cache_entries(store)

    listed = gz_cli(home, "cache", "list", "--json")
    assert listed.code == 0, listed.err
    assert [e["key"] for e in json.loads(listed.out)["entries"]] == [e.key for e in anyio.run(entries)]

    explained = gz_cli(home, "cache", "explain", "calc", "--run", second.run_id, "--json")
    assert explained.code == 0, explained.err
    doc = json.loads(explained.out)
    assert doc["hit"] is True and doc["task_id"] == second.tasks["calc"].id
    latest = json.loads(gz_cli(home, "cache", "explain", "calc", "--json").out)
    assert latest["task_id"] == third.tasks["calc"].id and latest["previous"]["differences"] == ["params.code"]

    missing = gz_cli(home, "cache", "explain", "nope")
    assert missing.code == 1 and "no task 'nope'" in missing.err and "Traceback" not in missing.err

    cleared = gz_cli(home, "cache", "clear", "--json")
    assert cleared.code == 0 and json.loads(cleared.out) == {"deleted": 2}
    assert anyio.run(entries) == []
