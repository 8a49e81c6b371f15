"""Which environment variables a workflow's ``secrets:`` may read is the runner's decision.

A hostile workflow file declares variables the engine's environment holds (a cloud key,
Gleitzeit's own Redis URL with its password) and tries to carry them out: the task writes
what it got -- reversed and hex-encoded, which masking cannot recognise -- to a folder the
runner lets it write. Judged by that file, through the real executable: without an
allowance the run is refused before it starts and the file never holds the value; with one
(--allow-secret, secrets.allow in the config file, GLEITZEIT_ALLOW_SECRETS) or an explicit
value (--env-file) the task gets exactly that value.
"""

from __future__ import annotations

import secrets as pysecrets
import textwrap
from pathlib import Path

import pytest

from tests.helpers.cli import gz

HOSTILE = """\
name: hostile
secrets: [{name}]
tasks:
  - name: Steal
    method: python/execute
    sandbox:
      env: {{K: "${{secrets.{name}}}"}}
      write: ["{out}"]
      read: ["{gate}"]
    parameters:
      context: {{c: "${{secrets.{name}}}"}}
      code: |
        import os, pathlib
        got = os.environ["K"]
        with open(os.path.join("{out}", "got"), "a") as f:
            f.write(got[::-1] + " " + got.encode().hex() + " " + context["c"][::-1] + "\\n")
        if not os.path.exists(os.path.join("{gate}", "Steal")):
            raise RuntimeError("gate closed")
"""


def value() -> str:
    return "v-" + pysecrets.token_hex(12)


class Setup:
    """A folder with the hostile workflow, its output folder and its gate folder (the task runs as
    the sandbox user, who may enter the workflow's folder: not pytest's 0700 tmp_path itself)."""

    def __init__(self, tmp: Path, name: str = "AWS_SECRET_ACCESS_KEY", gates_open: bool = True):
        self.tmp, self.home, self.name = tmp / "work", tmp / "home", name
        self.out, self.gate = self.tmp / "out", self.tmp / "gate"
        self.out.mkdir(parents=True)
        self.gate.mkdir()
        if gates_open:
            self.open_gate()
        self.wf = self.tmp / "wf.yaml"
        self.wf.write_text(HOSTILE.format(name=name, out=self.out, gate=self.gate))

    def open_gate(self) -> None:
        (self.gate / "Steal").touch()

    def gz(self, *args: str, **env: str):
        return gz(self.home, *args, "--allow-write", str(self.out), "--allow-read", str(self.gate),
                  cwd=self.tmp, **env)

    def got(self) -> str:
        path = self.out / "got"
        return path.read_text() if path.exists() else ""

    def assert_never_got(self, secret: str) -> None:
        got = self.got()
        for form in (secret, secret[::-1], secret.encode().hex()):
            assert form not in got, f"the task got the engine's {self.name}: {got!r}"

    def assert_got(self, secret: str) -> None:
        got = self.got()
        assert got, "the task wrote nothing"
        assert got.splitlines()[-1] == f"{secret[::-1]} {secret.encode().hex()} {secret[::-1]}"


def refusal(name: str, where: str = "wf.yaml") -> str:
    return (f"error: {where}:2:11: secret {name!r} is not given, and the environment is read only for names the "
            f"runner allows: run with --allow-secret {name} (or list it under secrets.allow in the config), or give "
            f"its value with --env-file")


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "GLEITZEIT_REDIS_URL"])
def test_a_hostile_workflow_cannot_take_a_variable_of_the_engines_environment(tmp_path, name):
    s, secret = Setup(tmp_path, name), value()
    # GLEITZEIT_REDIS_URL holds a password and is read by the engine itself (the store here is SQLite)
    secret = f"redis://:{secret}@127.0.0.1:1/0" if name == "GLEITZEIT_REDIS_URL" else secret
    for command in (["run", "wf.yaml"], ["workflow", "submit", "wf.yaml"]):
        r = s.gz(*command, **{name: secret})
        s.assert_never_got(secret)
        assert r.code == 2, r.err
        assert r.err.strip() == refusal(name)  # one line, saying exactly how to allow it
    assert gz(s.home, "workflow", "list", "--json").json() == []  # refused before the run was created


def test_allowing_one_name_does_not_allow_another(tmp_path):
    s, secret = Setup(tmp_path), value()
    r = s.gz("run", "wf.yaml", "--allow-secret", "API_TOKEN", "--allow-secret", "AWS_ACCESS_KEY_ID",
             AWS_SECRET_ACCESS_KEY=secret, API_TOKEN=value())
    s.assert_never_got(secret)
    assert r.code == 2 and r.err.strip() == refusal("AWS_SECRET_ACCESS_KEY")


@pytest.mark.parametrize("how", ["flag", "prefix flag", "config file", "GLEITZEIT_ALLOW_SECRETS", "workflow submit"])
def test_the_runner_allows_a_name_and_the_task_gets_its_value(tmp_path, how):
    s, secret = Setup(tmp_path), value()
    args, env = ["run", "wf.yaml"], {"AWS_SECRET_ACCESS_KEY": secret}
    if how == "flag":
        args += ["--allow-secret", "AWS_SECRET_ACCESS_KEY"]
    elif how == "prefix flag":
        args += ["--allow-secret", "AWS_*"]
    elif how == "config file":
        s.home.mkdir()
        (s.home / "config.yaml").write_text("secrets:\n  allow: [OTHER, AWS_SECRET_ACCESS_KEY]\n")
    elif how == "GLEITZEIT_ALLOW_SECRETS":
        env["GLEITZEIT_ALLOW_SECRETS"] = "OTHER,AWS_SECRET_ACCESS_KEY"
    else:
        args = ["workflow", "submit", "wf.yaml", "--allow-secret", "AWS_SECRET_ACCESS_KEY"]
    r = s.gz(*args, **env)
    assert r.code == 0, r.err
    s.assert_got(secret)


def test_an_env_file_value_is_used_and_the_environment_is_not_read(tmp_path):
    s, from_file, from_env = Setup(tmp_path), value(), value()
    (s.tmp / "run.env").write_text(f"AWS_SECRET_ACCESS_KEY={from_file}\n")
    r = s.gz("run", "wf.yaml", "--env-file", "run.env", AWS_SECRET_ACCESS_KEY=from_env)
    assert r.code == 0, r.err
    s.assert_got(from_file)
    s.assert_never_got(from_env)


@pytest.mark.parametrize("entry", ["*", "**", "AWS-KEY", "A*B*"])
def test_an_allowance_that_is_not_a_name_or_prefix_is_refused(tmp_path, entry):
    s, secret = Setup(tmp_path), value()
    r = s.gz("run", "wf.yaml", "--allow-secret", entry, AWS_SECRET_ACCESS_KEY=secret)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert r.err.startswith(f"error: --allow-secret {entry}: {entry!r} ")
    s.home.mkdir(exist_ok=True)
    (s.home / "config.yaml").write_text(textwrap.dedent(f"""\
        secrets:
          allow: ["{entry}"]
    """))
    r = s.gz("run", "wf.yaml", AWS_SECRET_ACCESS_KEY=secret)
    assert r.code == 2 and "secrets.allow" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    s.assert_never_got(secret)
    (s.home / "config.yaml").unlink()
    r = gz(s.home, "config", "set", "secrets.allow", entry)
    assert r.code == 2 and f"secrets.allow = {entry!r}: {entry!r} " in r.err and len(r.err.strip().splitlines()) == 1
    assert not (s.home / "config.yaml").exists()


def test_a_resume_asks_for_the_allowance_again(tmp_path):
    s, secret = Setup(tmp_path, gates_open=False), value()
    first = s.gz("run", "wf.yaml", "--json", "--allow-secret", "AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY=secret)
    assert first.code == 1, first.err
    run_id = first.json()["run_id"]
    s.assert_got(secret)
    (s.out / "got").unlink()
    s.open_gate()
    for command, where in ((["run", "wf.yaml", "--resume", run_id], "wf.yaml"),
                           (["workflow", "resume", run_id], str(s.wf))):  # the path stored with the run
        r = s.gz(*command, AWS_SECRET_ACCESS_KEY=secret)
        s.assert_never_got(secret)
        assert r.code == 2 and r.err.strip() == refusal("AWS_SECRET_ACCESS_KEY", where), r.err
        assert gz(s.home, "workflow", "status", run_id, "--json").json()["status"] == "failed"  # untouched
    again = s.gz("run", "wf.yaml", "--resume", run_id, "--allow-secret", "AWS_SECRET_ACCESS_KEY",
                 AWS_SECRET_ACCESS_KEY=secret)
    assert again.code == 0, again.err
    s.assert_got(secret)


def test_workflow_resume_takes_an_env_file(tmp_path):
    s, from_file, from_env = Setup(tmp_path, gates_open=False), value(), value()
    (s.tmp / "run.env").write_text(f"AWS_SECRET_ACCESS_KEY={from_file}\n")
    first = s.gz("run", "wf.yaml", "--json", "--env-file", "run.env")
    assert first.code == 1, first.err
    s.open_gate()
    r = s.gz("workflow", "resume", first.json()["run_id"], "--env-file", "run.env", AWS_SECRET_ACCESS_KEY=from_env)
    assert r.code == 0, r.err
    s.assert_got(from_file)
    s.assert_never_got(from_env)


def test_validate_lists_the_secrets_asked_for_and_whether_the_environment_may_give_them(tmp_path):
    s, secret = Setup(tmp_path), value()
    r = s.gz("validate", "wf.yaml", AWS_SECRET_ACCESS_KEY=secret)
    assert r.code == 0, r.out + r.err
    assert "AWS_SECRET_ACCESS_KEY" in r.out and "not allowed (--allow-secret AWS_SECRET_ACCESS_KEY)" in r.out
    shown = s.gz("validate", "wf.yaml", "--json", "--allow-secret", "AWS_*", AWS_SECRET_ACCESS_KEY=secret)
    assert shown.json()["plan"]["secrets"] == [{"name": "AWS_SECRET_ACCESS_KEY", "environment": True}]
    for text in (r.out + r.err, shown.out + shown.err):
        assert secret not in text  # no value is read


def test_a_called_child_workflow_asks_under_the_same_rule(tmp_path):
    s, secret = Setup(tmp_path), value()
    s.wf.rename(s.tmp / "child.yaml")
    (s.tmp / "wf.yaml").write_text("name: innocent parent\ntasks:\n  - name: Call\n    workflow: ./child.yaml\n")
    r = s.gz("run", "wf.yaml", AWS_SECRET_ACCESS_KEY=secret)
    s.assert_never_got(secret)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert "child.yaml:2:11: secret 'AWS_SECRET_ACCESS_KEY' is not given" in r.err
    allowed = s.gz("run", "wf.yaml", "--allow-secret", "AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY=secret)
    assert allowed.code == 0, allowed.err
    s.assert_got(secret)
