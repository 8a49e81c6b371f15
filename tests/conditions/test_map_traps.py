"""The classic traps where maps meet conditions and trigger rules, through the real
`gleitzeit` executable: a skip must cascade exactly as far as the rules say, and an empty
map is a completed task with an empty result, never a skip."""

from __future__ import annotations

from tests.conditions.test_when import run, statuses
from tests.helpers.cli import gz


def test_an_empty_map_completes_with_an_empty_list_and_downstream_runs(tmp_path):
    code, out, err = run(tmp_path, """
        name: empty
        tasks:
          - name: List
            method: python/execute
            parameters: {code: "result = []"}
          - name: Each
            dependencies: [List]
            for_each: "${List.result.result}"
            method: python/execute
            parameters: {code: "result = 1"}
          - name: After
            dependencies: [Each]
            method: python/execute
            parameters: {code: "result = len(${Each.result})"}
          - name: If Empty
            dependencies: [Each]
            when: 'size(tasks["Each"].result) == 0'
            method: python/execute
            parameters: {code: "result = 'nothing to do'"}
          - name: If Any
            dependencies: [Each]
            when: 'size(tasks["Each"].result) > 0'
            method: python/execute
            parameters: {code: "result = 'x'"}
          - name: Join
            dependencies: [If Empty, If Any]
            trigger: none_failed
            method: python/execute
            parameters: {code: "result = 'joined'"}
    """)
    assert code == 0, err
    s = statuses(out)
    assert s["Each"] == ("completed", None) and out["tasks"]["Each"]["result"] == []
    assert out["tasks"]["After"]["result"]["result"] == 0
    assert s["If Empty"] == ("completed", None)
    assert s["If Any"][0] == "skipped" and "condition false" in s["If Any"][1]
    assert s["Join"] == ("completed", None)
    assert out["status"] == "completed"


def test_a_skip_upstream_of_a_map_skips_the_map_and_what_reads_it(tmp_path):
    code, out, err = run(tmp_path, """
        name: cascade
        tasks:
          - name: Start
            method: python/execute
            parameters: {code: "result = [1, 2, 3]"}
          - name: Gate
            dependencies: [Start]
            when: 'size(tasks.Start.result.result) > 10'
            method: python/execute
            parameters: {code: "result = 'open'"}
          - name: Each
            dependencies: [Gate, Start]
            for_each: "${Start.result.result}"
            method: python/execute
            parameters: {code: "result = ${item} * 10"}
          - name: Sum
            dependencies: [Each]
            method: python/execute
            parameters: {code: "result = sum(${Each.result[*].result})"}
          - name: Cleanup
            dependencies: [Sum]
            trigger: all_done
            method: python/execute
            parameters: {code: "result = 'clean'"}
          - name: Alert
            dependencies: [Sum]
            trigger: one_failed
            method: python/execute
            parameters: {code: "result = 'alert'"}
    """)
    assert code == 0, err
    s = statuses(out)
    assert s["Gate"][0] == "skipped" and "condition false" in s["Gate"][1]
    assert s["Each"][0] == "skipped" and "Gate" in s["Each"][1]
    assert s["Sum"][0] == "skipped" and "Gate" in s["Sum"][1]
    assert s["Cleanup"] == ("completed", None)  # all_done runs after a skip
    assert s["Alert"][0] == "skipped"  # a condition skip is no failure
    assert not any(t.get("parent") for t in out["tasks"].values())  # a skipped map never expanded
    assert out["status"] == "completed"


def test_a_none_failed_map_after_a_skipped_branch_runs_over_the_branch_that_ran(tmp_path):
    code, out, err = run(tmp_path, """
        name: join-map
        tasks:
          - name: Start
            method: python/execute
            parameters: {code: "result = 3"}
          - name: Big
            dependencies: [Start]
            when: 'tasks.Start.result.result > 10'
            method: python/execute
            parameters: {code: "result = list(range(100))"}
          - name: Small
            dependencies: [Start]
            when: 'tasks.Start.result.result <= 10'
            method: python/execute
            parameters: {code: "result = [1, 2, 3]"}
          - name: Each
            dependencies: [Big, Small]
            trigger: none_failed
            for_each: "${Small.result.result}"
            when: 'item != 2'
            method: python/execute
            parameters: {code: "result = ${item} * 10"}
          - name: Total
            dependencies: [Each]
            method: python/execute
            parameters: {code: "result = ${Each.result[*].result}"}
          - name: Strict
            dependencies: [Big, Small]
            for_each: "${Small.result.result}"
            method: python/execute
            parameters: {code: "result = ${item}"}
    """)
    assert code == 0, err
    s = statuses(out)
    assert s["Big"][0] == "skipped" and s["Small"] == ("completed", None)
    assert s["Each"] == ("completed", None)
    # the item condition skips item 2 alone; its place in the result is null
    assert out["tasks"]["Total"]["result"]["result"] == [10, None, 30]
    assert s["Strict"][0] == "skipped" and "Big" in s["Strict"][1]  # all_success: the trap is still there
    assert out["status"] == "completed"


def test_an_item_condition_skips_items_not_the_map_and_its_errors_are_item_failures(tmp_path):
    code, out, err = run(tmp_path, """
        name: item-conditions
        tasks:
          - name: Start
            method: python/execute
            parameters: {code: "result = [1, 'two', 3]"}
          - name: None Pass
            dependencies: [Start]
            for_each: "${Start.result.result}"
            when: 'item == 100 && tasks.Start.status == "completed"'
            method: python/execute
            parameters: {code: "result = 1"}
          - name: After
            dependencies: [None Pass]
            method: python/execute
            parameters: {code: "result = ${None Pass.result}"}
          - name: Bad
            dependencies: [Start]
            for_each: "${Start.result.result}"
            on_item_failure: continue
            when: 'item > 1'
            method: python/execute
            parameters: {code: "result = ${item_index}"}
    """, "--backend", "sqlite")  # the items are kept: `workflow status` reads them
    assert code == 0, err
    s = statuses(out)
    # every item's condition is false: each item is skipped, the map completes, downstream runs
    assert s["None Pass"] == ("completed", None) and out["tasks"]["After"]["result"]["result"] == [None] * 3
    counts = {k: v for k, v in out["tasks"]["Bad"]["items"].items() if v}  # `run --json` counts per map
    assert counts == {"total": 3, "completed": 1, "failed": 1, "skipped": 1}
    assert "items" not in out["tasks"]["After"]
    # 'two' > 1 cannot be evaluated: that item fails with the condition's place; 1 > 1 is false
    assert [r and r["result"] for r in out["tasks"]["Bad"]["result"]] == [None, None, 2]
    status = gz(tmp_path / "home", "workflow", "status", out["run_id"], "--expand", "--json").json()
    items = {t["name"]: [(c["status"], c["error"]) for c in t["item_tasks"]] for t in status["tasks"] if t.get("item_tasks")}
    assert items["None Pass"] == [("skipped", "condition false")] * 3
    assert items["Bad"][0] == ("skipped", "condition false") and items["Bad"][2] == ("completed", None)
    assert items["Bad"][1][0] == "failed" and items["Bad"][1][1].endswith(
        "wf.yaml:21:11: when: UNKNOWN: No matching overloads found : _>_(string, int64)")
