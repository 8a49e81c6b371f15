"""What scripts and pipes get: one JSON object for every error under --json, table rows
one per line in a pipe, and a skipped task's error that names the task that failed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli, write

INVALID = """
    name: broken
    tasks:
      - name: a
        method: python/execute
        params: {code: "result = 1"}
        dependencies: [ghost]
      - name: b
        method: python/execute
        params: {code: "result = 2"}
        priorty: high
"""


def one_json(out: str) -> dict:
    """stdout holds exactly one JSON object (json.loads rejects anything after it)."""
    obj = json.loads(out)
    assert isinstance(obj, dict)
    return obj


def test_invalid_workflow_under_json_is_one_object_with_every_problem(mem: Cli, work: Path):
    wf = write(work, "broken.yaml", INVALID)
    r = mem("run", str(wf), "--json")
    assert r.code == 2
    err = one_json(r.out)
    assert (err["status"], err["kind"], err["exit_code"]) == ("invalid", "invalid_workflow", 2)
    lines = wf.read_text().splitlines()
    found = {}
    for problem in err["problems"]:  # where = file:line:col of the offending text
        file, line, col = problem["where"].rsplit(":", 2)
        assert file == str(wf) and int(col) >= 1
        found[lines[int(line) - 1].strip()] = problem["message"]
    assert "ghost" in found["dependencies: [ghost]"] and "did you mean 'priority'" in found["priorty: high"]
    assert len(err["problems"]) == 2
    assert r.err.count("\nerror: ") + r.err.startswith("error: ") == 2  # the lines a person reads stay
    assert mem("run", str(wf)).out == ""  # without --json nothing on stdout


def test_every_kind_of_error_under_json_is_one_object_and_keeps_its_exit_code(mem: Cli, work: Path):
    usage = mem("workflow", "status", "--json")  # missing RUN_ID: click's usage error
    assert usage.code == 2 and one_json(usage.out)["kind"] == "usage"
    unknown_opt = mem("--json", "task", "list", "--bogus")
    assert unknown_opt.code == 2 and "--bogus" in one_json(unknown_opt.out)["error"]
    missing = mem("workflow", "status", "run-nope", "--json")
    assert missing.code == 1
    assert {k: one_json(missing.out)[k] for k in ("status", "kind")} == {"status": "error", "kind": "not_found"}
    assert mem("provider", "health", "nope", "--json").code == 1
    bad_flag = mem("task", "list", "--status", "sleeping", "--json")
    assert bad_flag.code == 2 and one_json(bad_flag.out)["status"] == "invalid"
    cfg = write(work, "cfg.yaml", "execution:\n  max_concurrent_tasks: many\n")
    config = mem("--config", str(cfg), "workflow", "list", "--json")
    assert config.code == 2 and one_json(config.out)["kind"] == "invalid_config"
    unreachable = mem("workflow", "list", "--json", GLEITZEIT_PERSISTENCE_BACKEND="redis",
                      GLEITZEIT_REDIS_URL="redis://127.0.0.1:9/0")
    assert unreachable.code == 2 and one_json(unreachable.out)["kind"] == "store_unavailable"
    for r in (usage, missing, config, unreachable):
        assert r.err.strip(), "the readable line still goes to stderr"


CHAIN = """
    name: chain
    tasks:
      - name: Load CSV
        method: python/execute
        params: {code: "raise ValueError('no such column: price')"}
      - name: Clean
        method: python/execute
        dependencies: [Load CSV]
        params: {code: "result = 1"}
      - name: Report
        method: python/execute
        dependencies: [Clean]
        params: {code: "result = 2"}
"""


def test_skipped_tasks_name_the_task_that_failed(mem: Cli, work: Path):
    wf = write(work, "chain.yaml", CHAIN)
    run = mem("run", str(wf), "--json")
    assert run.code == 1
    tasks = run.json()["tasks"]
    assert tasks["Clean"]["error"] == "dependency 'Load CSV' failed"
    assert tasks["Report"]["error"] == "upstream task 'Load CSV' failed (via 'Clean')"
    plain = mem("run", str(wf))
    assert "Report: skipped: upstream task 'Load CSV' failed (via 'Clean')\n" in plain.err
    assert plain.err.count("skipped") == 2 and "an upstream task" not in plain.out + plain.err


def test_piped_tables_print_one_row_per_line(mem: Cli, work: Path):
    """`gleitzeit config | grep KEY` finds the key with its value; nothing wraps at 80 columns."""
    rows = mem.ok("config").out.splitlines()
    assert "execution.max_concurrent_tasks\t5\tdefault" in rows
    assert "key\tvalue\tsource" in rows
    long_name = "a task whose name is long enough to be wrapped at eighty columns by rich " * 2
    wf = write(work, "long.yaml", f"""
        name: {"a workflow name that goes on and on " * 3}
        tasks:
          - name: {long_name.strip()}
            method: python/execute
            params: {{code: "raise RuntimeError('{'x' * 150}')"}}
    """)
    run = mem("run", str(wf))
    assert run.code == 1
    row = next(line for line in run.out.splitlines() if line.startswith(long_name.strip()))
    fields = row.split("\t")
    assert fields[1:3] == ["failed", "1"] and fields[4] == f"RuntimeError: {'x' * 150}"
    assert all(len(line) <= 400 for line in run.out.splitlines())  # the table is not padded to a width
    listed = mem.ok("provider", "list").out.splitlines()
    assert listed[0] == "provider\tprotocols\tstate\tmethods / problem"
    assert any(line.startswith("python ") and "\tpython/v1\tok\tpython/execute" in line for line in listed)
