"""The API's ``params=`` / ``secrets=``: typed values checked like `--param` (no text conversion),
stored with the run, reused by ``resume``; workflows built in code declare ``inputs``/``secrets``."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

import gleitzeit_core as gz

WF = """\
name: api inputs
inputs:
  n: {type: integer, minimum: 1}
  word: {type: string, default: hi}
secrets: [API_TOKEN]
tasks:
  - name: Calc
    method: python/execute
    sandbox: {env: {TOKEN: "${secrets.API_TOKEN}"}}
    parameters:
      code: |
        import hashlib, os
        result = {"n": ${inputs.n} * 2, "word": ${inputs.word},
                  "sha": hashlib.sha256(os.environ["TOKEN"].encode()).hexdigest()}
"""
SECRET = "api-secret-0123456789"


def test_params_and_secrets_reach_the_tasks(tmp_path: Path):
    (tmp_path / "wf.yaml").write_text(WF)
    result = gz.run("wf.yaml", params={"n": 21}, secrets={"API_TOKEN": SECRET}, backend="memory")
    assert result.status is gz.RunStatus.COMPLETED
    assert result.tasks["Calc"].result["result"] == {"n": 42, "word": "hi",
                                                    "sha": hashlib.sha256(SECRET.encode()).hexdigest()}


@pytest.mark.parametrize("params,message", [
    ({"n": "21"}, "input 'n': params['n']: '21' is not of type 'integer'"),
    ({"n": 0}, "input 'n': params['n']: 0 is less than the minimum of 1"),
    ({}, "input 'n' is required and has no value: pass it with --param n=…"),
    ({"n": 1, "nn": 2}, "the workflow has no input 'nn'; did you mean 'n'?"),
], ids=["text-for-integer", "below-minimum", "missing", "unknown"])
def test_bad_params_raise_workflow_invalid_before_anything_is_stored(tmp_path: Path, home: Path, params, message):
    (tmp_path / "wf.yaml").write_text(WF)
    with pytest.raises(gz.WorkflowInvalid) as caught:
        gz.run("wf.yaml", params=params, secrets={"API_TOKEN": SECRET})
    assert len(caught.value.problems) == 1 and message in caught.value.problems[0].message
    db = home / "workflows.db"
    assert not db.exists() or sqlite3.connect(db).execute("select count(*) from runs").fetchone() == (0,)


def test_a_missing_secret_raises_before_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("API_TOKEN", raising=False)
    (tmp_path / "wf.yaml").write_text(WF)
    with pytest.raises(gz.WorkflowInvalid, match="secret 'API_TOKEN' is not set"):
        gz.run("wf.yaml", params={"n": 1}, backend="memory", config={"secrets.allow": ["API_TOKEN"]})


def test_the_environment_gives_a_secret_only_for_names_the_caller_allows(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("API_TOKEN", SECRET)
    (tmp_path / "wf.yaml").write_text(WF)
    with pytest.raises(gz.WorkflowInvalid, match="secret 'API_TOKEN' is not given, and the environment is read only "
                                                 "for names the runner allows: run with --allow-secret API_TOKEN "
                                                 r"\(or list it under secrets.allow in the config\)"):
        gz.run("wf.yaml", params={"n": 1}, backend="memory")
    for allow in (["API_TOKEN"], ["API_*"]):
        result = gz.run("wf.yaml", params={"n": 1}, backend="memory", config={"secrets.allow": allow})
        assert result.tasks["Calc"].result["result"]["sha"] == hashlib.sha256(SECRET.encode()).hexdigest()


def test_resume_runs_with_the_stored_params(tmp_path: Path):
    (tmp_path / "wf.yaml").write_text(WF.replace('result = {"n"', 'assert os.path.exists("go")\n        result = {"n"'))
    first = gz.run("wf.yaml", params={"n": 5, "word": "yo"}, secrets={"API_TOKEN": SECRET})
    assert first.status is gz.RunStatus.FAILED
    (Path(first.workspace) / "go").write_text("")
    again = gz.resume(first.run_id, secrets={"API_TOKEN": SECRET})
    assert again.status is gz.RunStatus.COMPLETED
    assert again.tasks["Calc"].result["result"]["n"] == 10 and again.tasks["Calc"].result["result"]["word"] == "yo"


def test_a_workflow_built_in_code_declares_inputs(tmp_path: Path):
    wf = gz.Workflow(name="code", inputs={"n": {"type": "integer"}, "tag": {"type": "string", "required": False}},
                     tasks=[gz.Task(name="a", method="python/execute",
                                    parameters={"code": "result = [${inputs.n} + 1, ${inputs.tag}]"})])
    assert gz.Workflow.from_yaml(__import__("yaml").safe_dump(wf.to_dict())).inputs == wf.inputs
    assert gz.run(wf, params={"n": 41}, backend="memory").tasks["a"].result["result"] == [42, None]
    with pytest.raises(gz.WorkflowInvalid, match="reads input 'm', which the workflow does not declare"):
        gz.Workflow(name="bad", inputs={"n": {"type": "integer"}},
                    tasks=[gz.Task(name="a", method="python/execute", parameters={"code": "result = ${inputs.m}"})])
