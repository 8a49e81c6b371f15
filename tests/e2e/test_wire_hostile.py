"""`gleitzeit run` against a registered provider that misbehaves on the wire (tests/core/providers/fake_provider.py).

Judged as a user meets it: the run ends, with one clear error per affected task, the other
tasks complete, `--json` stays valid JSON, and timeouts and crash re-runs follow the documented rules.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.helpers.cli import Result, gz

FAKE = Path(__file__).resolve().parents[1] / "core" / "providers" / "fake_provider.py"
MEM = {"GLEITZEIT_PERSISTENCE_BACKEND": "memory"}


def _strict(text: str):
    def refuse(name: str):
        raise ValueError(f"{name} in --json output")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    (h / "providers").mkdir(parents=True)
    (h / "providers" / "fake.yaml").write_text(
        f"name: fake\ncommand: '{{python}}'\nargs: [{FAKE}, ok, e2e]\nprotocols: [test/v1]\n")
    return h


def run(home: Path, tmp_path: Path, workflow: str) -> tuple[Result, dict]:
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(workflow))
    r = gz(home, "run", str(path), "--json", timeout=90, **MEM)
    return r, _strict(r.out)


@pytest.mark.parametrize("answer, message", [
    ("deep", "nests deeper than 128 levels"),
    ("deep200", "nesting deeper than 128 levels"),
    ("bigint", "an integer of 5000 digits"),
    ("nan", "NaN is not a JSON number"),
    ("inf", "out of range"),
    ("null_id", "id null"),
])
def test_hostile_answers_fail_one_task_and_the_run_goes_on(home: Path, tmp_path: Path, answer: str, message: str):
    r, out = run(home, tmp_path, f"""
        name: hostile
        tasks:
          - name: bad
            method: test/hostile
            params: {{answer: {answer}}}
          - name: later
            method: test/echo
            params: {{a: 1}}
            retry: {{max_attempts: 3, on_crash: true, base_delay: 0}}
        """)
    assert r.code == 1 and out["status"] == "failed", r.err
    assert out["tasks"]["bad"]["status"] == "failed" and message in out["tasks"]["bad"]["error"]
    assert out["tasks"]["later"]["status"] == "completed" and out["tasks"]["later"]["result"] == {"a": 1}
    assert "Traceback" not in r.err


def test_a_parameter_over_the_providers_limit_fails_at_once(home: Path, tmp_path: Path):
    r, out = run(home, tmp_path, f"""
        name: big
        tasks:
          - name: big
            method: test/echo
            params: {{blob: "{'x' * 6000}"}}
        """)
    err = out["tasks"]["big"]["error"]
    assert r.code == 1 and "over provider 'fake''s limit of 4096 bytes" in err and "by reference" in err


def test_task_timeout_is_the_deadline_and_the_provider_default_applies_only_without_one(home: Path, tmp_path: Path):
    # test/quick advertises defaultTimeoutSec 1: the old hidden-cap bug at a small scale.
    r, out = run(home, tmp_path, """
        name: timeouts
        tasks:
          - name: own_timeout
            method: test/quick
            params: {seconds: 2}
            timeout: 100
          - name: provider_default
            method: test/quick
            params: {seconds: 2}
        """)
    assert out["tasks"]["own_timeout"]["status"] == "completed", out["tasks"]["own_timeout"]
    assert out["tasks"]["own_timeout"]["result"] == {"slept": 2}
    assert out["tasks"]["provider_default"]["status"] == "failed"
    assert "timed out after 1 s (test/quick's defaultTimeoutSec" in out["tasks"]["provider_default"]["error"]


@pytest.mark.parametrize("on_crash, runs", [(False, 1), (True, 3)])
def test_a_non_idempotent_task_lost_in_a_crash_is_rerun_only_when_allowed(home: Path, tmp_path: Path,
                                                                         on_crash: bool, runs: int):
    log = tmp_path / "side-effects.log"
    r, out = run(home, tmp_path, f"""
        name: crash
        tasks:
          - name: charge
            method: test/crash
            params: {{log: "{log}"}}
            retry: {{max_attempts: 3, base_delay: 0, on_crash: {str(on_crash).lower()}}}
        """)
    task = out["tasks"]["charge"]
    assert task["status"] == "failed" and task["attempts"] == runs
    assert log.read_text().count("ran") == runs  # the side effect happened exactly that often
    assert ("set retry.on_crash: true" in task["error"]) is (not on_crash)


def test_a_provider_ignoring_a_cancel_does_not_kill_the_run(tmp_path: Path):
    home = tmp_path / "home"
    (home / "providers").mkdir(parents=True)
    (home / "providers" / "fake.yaml").write_text(
        f"name: fake\ncommand: '{{python}}'\nargs: [{FAKE}, ignore_cancel, e2e]\nprotocols: [test/v1]\n")
    r, out = run(home, tmp_path, """
        name: ignore-cancel
        tasks:
          - name: sibling
            method: test/sleep
            params: {seconds: 20}
          - name: short
            method: test/sleep
            params: {seconds: 20}
            timeout: 0.5
        """)
    assert r.code == 1, r.err
    assert "timed out after 0.5 s" in out["tasks"]["short"]["error"]
    sibling = out["tasks"]["sibling"]["error"]
    assert "did not answer a cancelled request within 5 s" in sibling and "timed out" not in sibling


def test_a_lone_surrogate_in_submitted_params_is_a_clean_task_error(home: Path):
    r = gz(home, "task", "submit", "test/echo", "--params", '{"text": "a\\ud800b"}', "--json", timeout=60, **MEM)
    out = _strict(r.out)
    assert r.code == 1 and out["status"] == "failed" and "lone surrogate" in out["error"], (r.out, r.err)
    assert "Traceback" not in r.err


@pytest.mark.parametrize("forged, message", [
    ('{"ok": true, "result": ' + "[" * 100_000 + "]" * 100_000 + "}", "nesting deeper than 128 levels"),
    ('{"ok": true, "result": ' + "9" * 5000 + "}", "an integer of 5000 digits"),
    ('{"ok": true, "result": NaN}', "NaN is not a JSON number"),
], ids=["deep", "huge-int", "nan"])  # short ids: pytest puts the id in PYTEST_CURRENT_TEST, and a 200 KB one is E2BIG at exec
def test_user_code_forging_its_result_record_is_a_task_error(tmp_path: Path, forged: str, message: str):
    """The sandboxed child's result channel (fd 3) is input like any other: bounded where it is decoded."""
    wf = tmp_path / "forge.yaml"
    code = f"import os, sys\nos.write(3, {forged!r}.encode() + b'\\n')\nsys.stdout.flush()\nos._exit(0)\n"
    wf.write_text(json.dumps({"name": "forge", "tasks": [
        {"name": "forge", "method": "python/execute", "parameters": {"code": code}},
        {"name": "fine", "method": "python/execute", "parameters": {"code": "result = 1"}}]}))
    wf = wf.rename(tmp_path / "forge.json")
    r = gz(tmp_path / "h", "run", str(wf), "--json", timeout=120, **MEM)
    out = _strict(r.out)
    assert out["tasks"]["forge"]["status"] == "failed" and message in out["tasks"]["forge"]["error"], out["tasks"]["forge"]
    assert out["tasks"]["fine"]["result"]["result"] == 1
    assert "Traceback" not in r.err
