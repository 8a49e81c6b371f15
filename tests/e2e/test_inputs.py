"""Run-time inputs through the real executable: `--param` converted by the declared type,
bad values as one positioned line (exit 2, nothing stored), params files, resume with the
stored inputs, `validate` checking declarations and values."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from tests.helpers.cli import gz

WORKFLOW = textwrap.dedent("""\
    name: typed inputs
    inputs:
      region: {type: string, enum: [eu, us], default: eu}
      limit:  {type: integer, minimum: 1, default: 10}
      ratio:  {type: number, maximum: 1, default: 0.5}
      dry:    {type: boolean, default: false}
      tags:   {type: array, items: {type: string}, default: []}
      extra:  {type: object, required: false}
      doc:    {type: string}
    tasks:
      - name: Echo
        method: python/execute
        parameters:
          context: {region: "${inputs.region}", limit: "${inputs.limit}", ratio: "${inputs.ratio}",
                    dry: "${inputs.dry}", tags: "${inputs.tags}", extra: "${inputs.extra}",
                    label: "${inputs.region}-${inputs.limit}"}
          code: |
            result = dict(context, types={k: type(v).__name__ for k, v in context.items()},
                          in_code=${inputs.limit} * 2, doc=${inputs.doc})
""")


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    return path


def run_json(home: Path, wf: Path, *args: str):
    r = gz(home, "run", str(wf), "--json", *args, cwd=wf.parent)
    assert r.code == 0, r.err
    return r.json()["tasks"]["Echo"]["result"]["result"]


def test_params_are_converted_by_the_declared_type(tmp_path, wf):
    got = run_json(tmp_path / "home", wf, "--param", "region=us", "--param", "limit=5", "-p", "ratio=0.25",
                   "-p", "dry=false", "-p", 'tags=["a","b"]', "-p", 'extra={"k": 1}', "-p", "doc=it's 'quoted'")
    assert got["types"] == {"region": "str", "limit": "int", "ratio": "float", "dry": "bool", "tags": "list",
                            "extra": "dict", "label": "str"}
    assert (got["region"], got["limit"], got["ratio"], got["dry"], got["tags"], got["extra"]) == (
        "us", 5, 0.25, False, ["a", "b"], {"k": 1})
    assert got["label"] == "us-5"  # inside a longer string: interpolated as text
    assert got["in_code"] == 10 and got["doc"] == "it's 'quoted'"  # into code: a literal, never code


def test_defaults_fill_what_is_not_given_and_optional_inputs_are_null(tmp_path, wf):
    got = run_json(tmp_path / "home", wf, "-p", "doc=x")
    assert (got["region"], got["limit"], got["dry"], got["tags"], got["extra"]) == ("eu", 10, False, [], None)


BAD = [
    (["-p", "doc=x", "-p", "limit=abc"], "wf.yaml:4:11: input 'limit': --param limit=abc: 'abc' is not a whole number"),
    (["-p", "doc=x", "-p", "limit=0"], "wf.yaml:4:11: input 'limit': --param limit=0: 0 is less than the minimum of 1"),
    (["-p", "doc=x", "-p", "region=asia"], "wf.yaml:3:11: input 'region': --param region=asia: 'asia' is not one of ['eu', 'us']"),
    (["-p", "doc=x", "-p", "dry=maybe"], "wf.yaml:6:11: input 'dry': --param dry=maybe: 'maybe' is not true or false"),
    (["-p", "doc=x", "-p", "tags=[a"], "wf.yaml:7:11: input 'tags': --param tags=[a: not JSON (Expecting value at "
                                       "character 1); write the array as JSON, such as [\"a\", \"b\"]"),
    (["-p", "doc=x", "-p", "tags=[1]"], "wf.yaml:7:11: input 'tags': --param tags=[1]: [0] 1 is not of type 'string'"),
    ([], "wf.yaml:9:11: input 'doc' is required and has no value: pass it with --param doc=… (or a --params-file; "
         "in Python params={'doc': …})"),
    (["-p", "doc=x", "-p", "regoin=us"], "wf.yaml: --param regoin=us: the workflow has no input 'regoin'; did you mean 'region'?"),
    (["-p", "doc"], "--param: --param doc: write NAME=VALUE, such as --param region=eu"),
]


@pytest.mark.parametrize("args,line", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_a_bad_value_is_one_positioned_line_exit_2_and_nothing_is_stored(tmp_path, wf, args, line):
    home = tmp_path / "home"
    r = gz(home, "run", "wf.yaml", *args, cwd=wf.parent)
    assert r.code == 2
    assert r.err.strip() == f"error: {line}"
    listed = gz(home, "workflow", "list", "--json", cwd=wf.parent)
    assert listed.code == 0 and listed.json() == [], listed.out


def test_params_file_values_are_checked_at_their_own_position_and_param_overrides_them(tmp_path, wf):
    home = tmp_path / "home"
    (tmp_path / "p.yaml").write_text("doc: from file\nlimit: 7\nregion: us\n")
    got = run_json(home, wf, "--params-file", str(tmp_path / "p.yaml"), "-p", "limit=8")
    assert (got["doc"], got["limit"], got["region"]) == ("from file", 8, "us")
    (tmp_path / "p.json").write_text(json.dumps({"doc": "d", "limit": "7"}))
    (tmp_path / "q.yaml").write_text("doc: d\n\nlimit: seven\n")
    r = gz(home, "run", "wf.yaml", "--params-file", "q.yaml", cwd=tmp_path)
    assert r.code == 2
    assert r.err.strip() == ("error: q.yaml:3:8: input 'limit': q.yaml: limit: 'seven' is not of type 'integer' "
                             "(declared at wf.yaml:4:11)")
    r = gz(home, "run", "wf.yaml", "--params-file", "p.json", cwd=tmp_path)  # a file's values are typed: no conversion
    assert r.code == 2 and "'7' is not of type 'integer'" in r.err


def test_resume_reuses_the_stored_inputs_and_refuses_new_ones(tmp_path):
    wf = tmp_path / "wf.yaml"
    wf.write_text(textwrap.dedent("""\
        name: resumable
        inputs:
          region: {type: string, default: eu}
        tasks:
          - name: First
            method: python/execute
            parameters: {code: "result = ${inputs.region}"}
          - name: Second
            method: python/execute
            dependencies: [First]
            parameters:
              context: {region: "${inputs.region}", first: "${First.result.result}"}
              code: |
                import os
                if not os.path.exists('ok'):
                    raise SystemExit('not yet')
                result = context
    """))
    home = tmp_path / "home"
    first = gz(home, "run", "wf.yaml", "-p", "region=us", "--json", cwd=tmp_path)
    assert first.code == 1 and first.json()["tasks"]["Second"]["status"] == "failed"
    refused = gz(home, "run", "wf.yaml", "--resume", "-p", "region=eu", cwd=tmp_path)
    assert refused.code == 2 and "a resumed run keeps the inputs it started with" in refused.err
    (home / "workspaces" / first.json()["run_id"] / "ok").write_text("")  # the task's cwd
    again = gz(home, "run", "wf.yaml", "--resume", "--json", cwd=tmp_path)
    assert again.code == 0, again.err
    assert again.json()["tasks"]["Second"]["result"]["result"] == {"region": "us", "first": "us"}


def test_validate_checks_declarations_references_and_given_values(tmp_path):
    (tmp_path / "bad.yaml").write_text(textwrap.dedent("""\
        name: bad
        inputs:
          region: {type: strin}
          limit: {type: integer, minimum: 1, default: 0}
          n: {type: integer, minimun: 1}
          key: {type: string, format: secret}
        tasks:
          - name: A
            method: python/execute
            parameters:
              context: {r: "${inputs.regoin}", h: "${env.HOME}"}
              code: "result = 1"
    """))
    r = gz(tmp_path / "home", "validate", "bad.yaml", cwd=tmp_path)
    assert r.code == 2
    lines = [line for line in r.out.splitlines() if re.match(r"bad.yaml:\d", line)]
    assert lines[0] == "bad.yaml:3:18: input 'region': 'type' must be one of string, integer, number, boolean, array, object, got 'strin'"
    assert lines[1] == "bad.yaml:4:47: input 'limit': the default 0 is less than the minimum of 1"
    assert lines[2] == "bad.yaml:5:22: input 'n': unknown key 'minimun'; did you mean 'minimum'?"
    assert lines[3].startswith("bad.yaml:6:31: input 'key': secrets are not inputs")
    assert lines[4] == ("bad.yaml:11:20: task 'A': ${inputs.regoin} reads input 'regoin', which the workflow does "
                        "not declare; did you mean 'region'?")
    assert lines[5].startswith("bad.yaml:11:43: task 'A': invalid reference ${env.HOME}: the environment is not "
                               "read by workflows") and "write ${secrets.NAME}" in lines[5] and "--param" in lines[5]
    assert len(lines) == 6
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    r = gz(tmp_path / "home", "validate", "wf.yaml", "-p", "limit=x", cwd=tmp_path)
    assert r.code == 2 and "wf.yaml:4:11: input 'limit': --param limit=x: 'x' is not a whole number" in r.out


def test_a_task_cannot_take_a_reserved_name(tmp_path):
    (tmp_path / "wf.yaml").write_text("name: r\ntasks:\n  - name: inputs\n    method: python/execute\n"
                                      "    parameters: {code: 'result = 1'}\n")
    r = gz(tmp_path / "home", "validate", "wf.yaml", cwd=tmp_path)
    assert r.code == 2
    assert "wf.yaml:3:11: task #1: task name 'inputs': ${inputs.…} is reserved for the run's inputs; rename the task" in r.out


def test_hostile_values_are_bounded_where_they_enter(tmp_path, wf):
    deep = "[" * 300 + "]" * 300
    r = gz(tmp_path / "home", "run", "wf.yaml", "-p", "doc=x", "-p", f"tags={deep}", cwd=wf.parent)
    assert r.code == 2 and len(r.err.splitlines()) == 1 and len(r.err) < 300
    assert r.err.startswith("error: wf.yaml:7:11: input 'tags': --param tags=[[[") and \
        r.err.rstrip().endswith("cannot be stored: nesting deeper than 128 levels")
    (tmp_path / "p.json").write_text('{"doc": "x", "limit": 1' + "0" * 80 + "}")
    r = gz(tmp_path / "home", "run", "wf.yaml", "--params-file", "p.json", cwd=wf.parent)
    assert r.code == 2 and "Traceback" not in r.err and len(r.err.splitlines()) == 1


def test_workflow_submit_takes_the_same_params(tmp_path, wf):
    r = gz(tmp_path / "home", "workflow", "submit", "wf.yaml", "-p", "doc=d", "-p", "limit=4", "--json", cwd=wf.parent)
    assert r.code == 0, r.err
    assert r.json()["tasks"]["Echo"]["result"]["result"]["limit"] == 4
