"""Commands whose behaviour does not depend on the backend, run against the memory
backend (or none): exec, validate, init, config, task submit, usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.conftest import Cli, write


def test_version_and_usage_errors(mem: Cli):
    assert mem.ok("--version").out.startswith("gleitzeit ")
    assert mem.ok("--json", "workflow", "list").json() == []  # --json as a global option
    assert mem("--backend", "bogus", "workflow", "list").code == 2
    bad_status = mem("workflow", "list", "--status", "weird")
    assert bad_status.code == 2 and "unknown run status 'weird'" in bad_status.err
    assert mem("task", "list", "--no-such-option").code == 2
    assert mem("workflow").code == 2  # a group without a command shows help, as a usage error
    for args in (("workflow", "status", "run-nope"), ("task", "result", "task-nope"), ("workflow", "cancel", "run-nope")):
        r = mem(*args)
        assert r.code == 1 and "'" + args[-1] + "'" in r.err and r.out == "", args


def test_exec_prints_stdout_then_result_and_fails_on_raise(mem: Cli, work: Path):
    r = mem.ok("exec", "print('Hello Gleitzeit!')\nresult = {'answer': 42}")
    assert r.out.startswith("Hello Gleitzeit!\n") and json.loads(r.out.split("\n", 1)[1]) == {"answer": 42}
    piped = mem("exec", "-", "--json", input="import math\nresult = math.sqrt(16)\n")
    assert piped.code == 0
    assert piped.json() == {"status": "completed", "stdout": "", "stderr": "", "result": 4.0, "error": None}
    script = write(work, "s.py", "result = 'from a file'\n")
    assert mem.ok("exec", "--file", str(script)).out == "from a file\n"
    boom = mem("exec", "raise ValueError('nope')")
    assert boom.code == 1 and "ValueError: nope" in boom.err
    slow = mem("exec", "import time; time.sleep(30)", "--timeout", "0.5", "--json")
    assert slow.code == 1 and "timed out" in slow.json()["error"]
    assert mem("exec").code == 2  # neither code nor --file


def test_validate_reports_plan_and_problems(mem: Cli, work: Path):
    repo = Path(__file__).resolve().parents[2]
    plan = mem.ok("validate", str(repo / "examples" / "diamond.yaml"), "--json").json()
    assert plan["valid"] is True and plan["problems"] == []
    assert plan["plan"]["levels"] == [["Split"], ["Sum of squares", "Evens"], ["Join"]]
    assert plan["plan"]["providers"]["python"]["methods"] == ["python/execute"]
    assert {"task": "Join", "reference": "${Evens.result.result[0]}", "reads": "Evens"} in plan["plan"]["references"]
    human = mem.ok("validate", str(repo / "examples" / "diamond.yaml"))
    assert "valid" in human.out and "Sum of squares" in human.out

    typo = write(work, "typo.yaml", """
        name: typo
        tasks:
          - name: a
            method: python/exec
            params: {code: "result = 1"}
    """)
    r = mem("validate", str(typo), "--json")  # only the provider knows its methods: needs preflight
    assert r.code == 2 and r.json()["valid"] is False
    assert "did you mean 'python/execute'" in r.json()["problems"][0]
    broken = write(work, "broken.yaml", """
        name: broken
        tasks:
          - name: a
            method: python/execute
            params: {code: "x = ${nobody.result}"}
    """)
    r = mem("validate", str(broken))
    assert r.code == 2 and "broken.yaml:6" in r.out and "no task named 'nobody'" in r.out
    assert mem("validate", str(work / "missing.yaml")).code == 2


def test_init_templates_validate_and_python_runs(mem: Cli, work: Path):
    for kind in ("python", "llm", "mixed"):
        made = mem.ok("init", f"flow_{kind}", "--type", kind, "--json").json()
        assert made == {"files": [f"flow_{kind}.yaml"], "type": kind}
        assert yaml.safe_load((work / f"flow_{kind}.yaml").read_text())["name"] == f"flow_{kind}"
        mem.ok("validate", f"flow_{kind}.yaml")  # llm ones too: the LLM provider starts without a server
    ran = mem.ok("run", "flow_python.yaml", "--json").json()
    assert ran["status"] == "completed" and ran["tasks"]["Process Results"]["result"]["result"]["total"] > 0
    again = mem("init", "flow_python")
    assert again.code == 1 and "--force" in again.err
    mem.ok("init", "flow_python", "--type", "llm", "--force")
    assert "llm/chat" in (work / "flow_python.yaml").read_text()


def test_config_layers_sources_and_errors(mem: Cli, home: Path):
    cfg = home / "config.yaml"
    assert mem.ok("config", "init").out.strip() == f"wrote {cfg}"
    assert mem("config", "init").code == 1
    assert yaml.safe_load(cfg.read_text())["execution"]["max_concurrent_tasks"] == 5
    mem.ok("config", "set", "execution.max_concurrent_tasks", "3")
    mem.ok("config", "set", "persistence.redis.password", "hunter2")
    shown = mem.ok("config", "--json", GLEITZEIT_OLLAMA_URL="http://example.invalid:1").json()["settings"]
    assert shown["execution.max_concurrent_tasks"] == {"value": 3, "source": f"file {cfg}"}
    assert shown["providers.ollama.endpoint"] == {"value": "http://example.invalid:1", "source": "env GLEITZEIT_OLLAMA_URL"}
    assert shown["persistence.backend"] == {"value": "memory", "source": "env GLEITZEIT_PERSISTENCE_BACKEND"}
    assert shown["persistence.redis.password"]["value"] == "***"
    flagged = mem.ok("--backend", "sqlite", "config", "get", "persistence.backend", "--json").json()
    assert flagged == {"key": "persistence.backend", "value": "sqlite", "source": "flag"}
    assert mem.ok("config", "get", "execution.max_concurrent_tasks").out == "3\n"
    unknown = mem("config", "get", "execution.max_concurent_tasks")
    assert unknown.code == 2 and "did you mean 'execution.max_concurrent_tasks'" in unknown.err
    assert mem("config", "set", "execution.max_concurrent_tasks", "0").code == 2

    cfg.write_text("execution:\n  max_concurrent_tasks: many\n")
    r = mem("workflow", "list")
    assert r.code == 2 and r.out == ""
    assert r.err.strip().count("\n") == 0 and str(cfg) in r.err and "execution.max_concurrent_tasks" in r.err
    other = write(home, "other.yaml", "persistence: {backend: memory}\nbogus_key: 1\n")
    r = mem("--config", str(other), "config")
    assert r.code == 2 and "bogus_key" in r.err and str(other) in r.err


def test_every_command_has_help_with_an_example():
    """Static text of the real app's command tree (in-process: it is one click tree, no run)."""
    import typer.main

    from gleitzeit_core.cli.main import app

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    commands = list(walk(typer.main.get_command(app), ()))
    assert len(commands) >= 25
    missing = [" ".join(p) for p, c in commands if "Example: gleitzeit" not in (c.help or "")]
    assert missing == []


def test_help_and_completion_as_a_user_sees_them(mem: Cli):
    r = mem.ok("task", "submit", "--help")
    assert "Example: gleitzeit task submit" in r.out and "--retry" in r.out
    script = mem.ok("--show-completion", "bash", SHELL="/bin/bash").out
    assert "_gleitzeit_completion" in script
    words = mem.ok(_GLEITZEIT_COMPLETE="complete_bash", COMP_WORDS="gleitzeit workflow ca", COMP_CWORD="2").out
    assert words.split() == ["cancel"]


def test_unreachable_backend_is_one_line_and_status_says_so(mem: Cli):
    down = {"GLEITZEIT_REDIS_URL": "redis://127.0.0.1:9/0"}
    r = mem("--backend", "redis", "workflow", "list", **down)
    assert r.code == 2 and r.out == "" and r.err.count("\n") == 1 and "127.0.0.1:9" in r.err
    status = mem("status", "--backend", "redis", "--json", **down)
    assert status.code == 1
    assert status.json()["backend"] == {"kind": "redis", "address": "redis://127.0.0.1:9/0", "reachable": False,
                                        "error": status.json()["backend"]["error"]}
    assert "unreachable" in status.json()["backend"]["error"] and status.json()["stats"] is None
