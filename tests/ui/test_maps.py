"""A for_each task on the dashboard: one graph node with its items' counts, its items
expandable under its row, its counts in the API and the event stream."""

from __future__ import annotations

import re
from pathlib import Path

from tests.ui.conftest import Cli, write
from tests.ui.test_api import sse

MAP = """
    name: mapped
    tasks:
      - name: Items
        method: python/execute
        for_each: [1, 2, 0, 4]
        on_item_failure: continue
        params: {code: "result = 4 // context['x']", context: {x: "${item}"}}
      - name: After
        method: python/execute
        dependencies: [Items]
        params: {code: "result = ${Items.result[*].result}"}
"""


def test_a_map_is_one_node_with_counts_and_its_items_expand_under_its_row(cli: Cli, work: Path,
                                                                           dashboard_factory) -> None:
    wf = write(work, "map.yaml", MAP)
    assert cli("run", str(wf), "--json").code == 0
    ui = dashboard_factory(cli.env)
    run_id = ui.get_json("/api/runs")[0]["run_id"]

    doc = ui.get_json(f"/api/runs/{run_id}")
    assert [t["key"] for t in doc["tasks"]] == ["Items", "After"]  # items are not tasks of the graph
    assert doc["edges"] == [["Items", "After"]] and doc["counts"] == {"completed": 2}
    items = doc["tasks"][0]
    assert items["items"]["total"] == 4 and items["items"]["completed"] == 3 and items["items"]["failed"] == 1
    assert [(c["item_index"], c["status"]) for c in items["item_tasks"]] == [
        (0, "completed"), (1, "completed"), (2, "failed"), (3, "completed")]
    child = ui.get_json(f"/api/runs/{run_id}/tasks/Items[2]")
    assert child["item"] == 0 and "ZeroDivisionError" in child["error"] and child["parent"] == "Items"

    page = ui.request(f"/runs/{run_id}").text
    nodes = re.findall(r'<g class="node st-(\w+)" data-key="([^"]+)"', page)
    assert nodes == [("completed", "Items"), ("completed", "After")]
    assert '<tspan class="counts">3/4</tspan>' in page
    assert "<summary>3/4 done · 1 failed</summary>" in page
    assert page.count('<tr data-task="Items[') == 4  # the rows the summary expands to

    events = sse(ui.request(f"/api/runs/{run_id}/events").text)
    states = {t["key"]: t for t in events[0][1]}
    assert states["Items"]["items_text"] == "3/4 done · 1 failed" and states["Items[2]"]["status"] == "failed"
