"""The dashboard shows a task served from the result cache: its JSON, the run page's
task table and the task panel, over the store a real `gleitzeit run` wrote."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import Cli, write

CACHED = """
    name: cached
    tasks:
      - name: Square
        method: python/execute
        cache: true
        params: {code: "result = 7 * 7"}
"""


def test_a_cache_hit_is_marked_in_the_api_and_the_pages(cli: Cli, work: Path, dashboard_factory) -> None:
    wf = write(work, "cached.yaml", CACHED)
    first, second = (cli("run", str(wf), "--json").json() for _ in range(2))
    ui = dashboard_factory(cli.env)
    source = f"{first['run_id']}/{first['tasks']['Square']['id']}"

    [task] = ui.get_json(f"/api/runs/{second['run_id']}")["tasks"]
    assert task["cached"] is True and task["cached_from"] == source and task["attempts"] == 0
    [fresh] = ui.get_json(f"/api/runs/{first['run_id']}")["tasks"]
    assert fresh["cached"] is False

    page = ui.request(f"/runs/{second['run_id']}").text
    assert f'title="cached from {source}"> cached</span>' in page
    assert 'title="cached from' not in ui.request(f"/runs/{first['run_id']}").text
    panel = ui.request(f"/runs/{second['run_id']}/tasks/Square").text
    assert f"cached: the result of {source} (nothing ran)" in panel
