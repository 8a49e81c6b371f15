"""The result cache on a worker pool: entries live in the pool's Redis, so a second
orchestrator (another machine's `gleitzeit run --distributed`) reuses what the first one's
workers computed, and the workers run nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import yaml

from tests.cache.conftest import marker_code
from tests.distributed.conftest import Pool, wait_for


def test_two_orchestrators_share_the_cache_of_one_pool(tmp_path: Path, pool_factory: Callable[[str], Pool],
                                                       redis_url: str):
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    tasks = [{"name": f"t{i}", "method": "python/execute", "cache": True, "sandbox": {"write": [str(out)]},
              "parameters": {"code": marker_code(out, f"t{i}", str(i * i))}} for i in range(4)]
    wf = tmp_path / "work" / "wf.yaml"
    wf.write_text(yaml.safe_dump({"name": "pooled", "tasks": tasks}))
    first_host, second_host = pool_factory(redis_url), pool_factory(redis_url)
    first_host.start("w1", "python", concurrency=1)
    first_host.start("w2", "python", concurrency=1)
    first_host.wait_live("w1", "w2")

    def run(pool: Pool) -> dict:
        r = pool.gz("run", str(wf), "--distributed", "--json", "--allow-write", str(out))
        assert r.code == 0, r.err
        return json.loads(r.out)

    first = run(first_host)
    assert sorted((out / "marks.txt").read_text().split()) == ["t0", "t1", "t2", "t3"]
    done = wait_for(lambda: (lambda live: live if sum(w["done"] for w in live.values()) == 4 else None)(
        first_host.live()), 10, "worker counters")
    assert done["w1"]["done"] > 0 and done["w2"]["done"] > 0  # both workers computed entries

    second = run(second_host)  # another home: nothing shared but the pool's Redis
    assert sorted((out / "marks.txt").read_text().split()) == ["t0", "t1", "t2", "t3"]
    for i in range(4):
        task = second["tasks"][f"t{i}"]
        assert task["cached"] and task["attempts"] == 0 and task["result"]["result"] == i * i
        assert task["cached_from"] == f"{first['run_id']}/{first['tasks'][f't{i}']['id']}"
    assert sum(w["done"] for w in first_host.live().values()) == 4  # the workers ran nothing more
    listed = second_host.gz("cache", "list", "--json")
    assert listed.code == 0, listed.err
    assert len(listed.json()["entries"]) == 4
