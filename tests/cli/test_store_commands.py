"""Commands that read and write the store, on SQLite and on Redis: shapes of --json and exit codes."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli, write

RUN_KEYS = {"run_id", "workflow_id", "name", "status", "error", "workflow_path", "created_at", "started_at",
            "finished_at", "cancel_requested", "duration_s", "owner"}
TASK_KEYS = {"id", "run_id", "key", "name", "workflow_name", "protocol", "method", "status", "priority", "attempts",
             "result", "error", "created_at", "started_at", "finished_at", "duration_s", "result_blob",
             "cached", "cached_from"}

PAIR = """
    name: pair
    tasks:
      - name: make
        method: python/execute
        params: {code: "result = {'n': 20}"}
      - name: double
        method: python/execute
        dependencies: [make]
        params: {code: "print('doubling'); result = ${make.result.result.n} * 2"}
"""


def test_submit_then_inspect_with_every_read_command(cli: Cli, work: Path):
    wf = write(work, "pair.yaml", PAIR)
    sub = cli.ok("workflow", "submit", str(wf))
    run_id = sub.out.splitlines()[0]
    assert run_id.startswith("run-")  # the seed spelling prints the id first

    runs = cli.ok("workflow", "list", "--json").json()
    assert [r["run_id"] for r in runs] == [run_id]
    assert set(runs[0]) == RUN_KEYS and runs[0]["status"] == "completed" and runs[0]["name"] == "pair"

    status = cli.ok("workflow", "status", run_id, "--json").json()
    assert set(status) == RUN_KEYS | {"tasks"}
    assert [t["name"] for t in status["tasks"]] == ["make", "double"]
    double = status["tasks"][1]
    assert set(double) == TASK_KEYS | {"attempt_history"}
    assert double["result"]["result"] == 40 and double["attempt_history"][0]["status"] == "completed"

    tasks = cli.ok("task", "list", "--workflow", run_id, "--json").json()
    assert {t["name"] for t in tasks} == {"make", "double"} and all(set(t) == TASK_KEYS for t in tasks)

    result = cli.ok("task", "result", double["id"], "--json").json()
    assert result["result"]["stdout"] == "doubling\n" and result["status"] == "completed"

    stats = cli.ok("backend", "get-stats", "--json").json()
    assert stats["backend"] == cli.env["GLEITZEIT_PERSISTENCE_BACKEND"]
    assert stats["runs"]["completed"] == 1 and stats["tasks"]["completed"] == 2 and stats["tasks_total"] == 2

    listed = cli.ok("backend", "list-tasks", "--workflow-name", "pair", "--limit", "1", "--json").json()
    assert len(listed) == 1 and listed[0]["workflow_name"] == "pair"
    by_id = cli.ok("backend", "list-tasks", "--workflow-id", run_id, "--json").json()
    assert len(by_id) == 2
    results = cli.ok("backend", "get-results-by-workflow", "pair", "--json").json()
    assert {t["name"]: t["result"]["result"] for t in results} == {"make": {"n": 20}, "double": 40}

    system = cli.ok("system", "status", "--json").json()
    assert system["backend"]["reachable"] is True and system["stats"]["runs_total"] == 1
    assert {p["name"] for p in system["providers"]} >= {"python", "ollama"}


def test_task_submit_success_and_failure(cli: Cli):
    ok = cli.ok("task", "submit", "python/execute", "--code", "result = sum([1,2,3,4,5])", "--json").json()
    assert set(ok) == TASK_KEYS and ok["result"]["result"] == 15
    bad = cli("task", "submit", "python/execute", "--code", "1/0", "--retry", "1", "--json")
    assert bad.code == 1
    failed = bad.json()
    assert failed["status"] == "failed" and failed["attempts"] == 2 and "ZeroDivisionError" in failed["error"]
    again = cli("task", "result", failed["id"])
    assert again.code == 1 and "ZeroDivisionError" in again.out
    assert [t["id"] for t in cli.ok("task", "list", "--status", "failed", "--json").json()] == [failed["id"]]
