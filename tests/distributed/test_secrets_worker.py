"""`${secrets.NAME}` on a worker pool: the queue carries the name, the worker fills the value
from its own environment -- only for names the worker allows (--allow-secret, secrets.allow)
-- or its --env-file, and masks it before anything goes back into Redis."""

from __future__ import annotations

import hashlib
import secrets as pysecrets
import textwrap
from pathlib import Path

import pytest
import redis

from tests.distributed.conftest import Pool
from tests.e2e.test_secrets import assert_absent
from tests.helpers.cli import spawn

WORKFLOW = textwrap.dedent("""\
    name: worker secret
    secrets: [API_TOKEN]
    tasks:
      - name: Use
        method: python/execute
        sandbox:
          env: {TOKEN: "${secrets.API_TOKEN}"}
        parameters:
          context: {auth: "Bearer ${secrets.API_TOKEN}"}
          code: |
            import hashlib, os
            t = os.environ["TOKEN"]
            print("the token is", t)
            result = {"sha": hashlib.sha256(t.encode()).hexdigest(), "auth_ok": context["auth"] == "Bearer " + t,
                      "echo": t}
""")


def start_worker(pool: Pool, name: str, *args: str, **env: str) -> None:
    pool.procs[name] = spawn(pool.home, "worker", "--name", name, "--providers", "python", *args, **pool.env, **env)
    pool.wait_live(name)


def test_the_worker_fills_the_secret_from_its_environment_and_redis_never_holds_it(pool, tmp_path):
    secret = "wk/" + pysecrets.token_urlsafe(20) + "+="
    start_worker(pool, "holder", "--allow-secret", "API_TOKEN", API_TOKEN=secret)
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    r = pool.gz("run", str(wf), "--distributed", "--json", "-v")  # the orchestrator has no API_TOKEN
    assert r.code == 0, r.err
    use = r.json()["tasks"]["Use"]["result"]
    assert use["result"]["sha"] == hashlib.sha256(secret.encode()).hexdigest()
    assert use["result"]["auth_ok"] is True and use["result"]["echo"] == "***"
    assert "the token is ***" in use["stdout"]
    assert_absent((r.out + r.err).encode(), secret, "the orchestrator's output")
    assert WARNING not in r.err  # no --allow-secret here, nothing to warn about
    client = redis.Redis.from_url(pool.url)
    client.config_set("rdbcompression", "no")
    keys = list(client.scan_iter(count=1000))
    assert any(k.startswith(b"gleitzeit:") for k in keys), keys
    for key in keys:
        assert_absent(client.dump(key) or b"", secret, f"DUMP {key!r}")


def test_a_worker_without_the_secret_fails_the_task_saying_so(pool, tmp_path):
    start_worker(pool, "lacks", "--allow-secret", "API_TOKEN")
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    r = pool.gz("run", str(wf), "--distributed", "--json")
    assert r.code == 1
    task = r.json()["tasks"]["Use"]
    assert task["attempts"] == 1  # not retryable: another attempt would find the same environment
    assert task["error"].startswith("secret 'API_TOKEN' is not set in the environment of worker 'lacks'")


HOSTILE = textwrap.dedent("""\
    name: hostile on a worker
    secrets: [AWS_SECRET_ACCESS_KEY]
    tasks:
      - name: Steal
        method: python/execute
        sandbox:
          env: {K: "${secrets.AWS_SECRET_ACCESS_KEY}"}
          write: ["OUT"]
        parameters:
          code: |
            import os
            got = os.environ["K"]
            with open(os.path.join("OUT", "got"), "a") as f:
                f.write(got[::-1] + " " + got.encode().hex() + "\\n")
""")


def hostile(tmp_path: Path) -> tuple[Path, Path]:
    work = tmp_path / "work"  # the sandbox user enters it (pytest's tmp_path is 0700)
    out = work / "out"
    out.mkdir(parents=True)
    (work / "wf.yaml").write_text(HOSTILE.replace("OUT", str(out)))
    return work / "wf.yaml", out / "got"


WARNING = ("warning: --allow-secret does not reach the workers with --distributed: each worker's own "
           "--allow-secret / secrets.allow decide what its environment gives")


def test_a_worker_gives_a_variable_of_its_environment_only_when_it_allows_the_name(pool, tmp_path):
    secret = "aws/" + pysecrets.token_hex(16)
    # the orchestrator's allowance is no allowance on the workers: they decide what their environment gives
    start_worker(pool, "strict", "--allow-secret", "API_TOKEN", AWS_SECRET_ACCESS_KEY=secret)
    wf, got = hostile(tmp_path)
    r = pool.gz("run", str(wf), "--distributed", "--json", "--allow-write", str(got.parent),
                "--allow-secret", "AWS_SECRET_ACCESS_KEY")
    text = got.read_text() if got.exists() else ""
    for form in (secret, secret[::-1], secret.encode().hex()):
        assert form not in text
    assert r.code == 1, r.err
    assert [line for line in r.err.splitlines() if line.startswith("warning:")] == [WARNING]
    task = r.json()["tasks"]["Steal"]
    assert task["attempts"] == 1
    assert task["error"] == ("secret 'AWS_SECRET_ACCESS_KEY' is not given to worker 'strict', and the environment "
                             "is read only for names the runner allows: start the worker with --allow-secret "
                             "AWS_SECRET_ACCESS_KEY (or list it under secrets.allow in the config), or give its "
                             "value with --env-file")


@pytest.mark.parametrize("how", ["flag", "config", "env-file"])
def test_a_worker_allowed_by_flag_config_or_env_file_fills_the_value(pool, tmp_path, how):
    secret, other = "aws/" + pysecrets.token_hex(16), "env/" + pysecrets.token_hex(16)
    args: list[str] = []
    env = {"AWS_SECRET_ACCESS_KEY": secret}
    if how == "flag":
        args = ["--allow-secret", "AWS_*"]
    elif how == "config":
        (pool.home / "config.yaml").write_text("secrets:\n  allow: [AWS_SECRET_ACCESS_KEY]\n")
    else:  # the file's value, not the environment's (which is not even allowed)
        (tmp_path / "worker.env").write_text(f"AWS_SECRET_ACCESS_KEY={secret}\n")
        args, env = ["--env-file", str(tmp_path / "worker.env")], {"AWS_SECRET_ACCESS_KEY": other}
    start_worker(pool, "giver", *args, **env)
    wf, got = hostile(tmp_path)
    r = pool.gz("run", str(wf), "--distributed", "--json", "--allow-write", str(got.parent))
    assert r.code == 0, r.err
    assert got.read_text() == f"{secret[::-1]} {secret.encode().hex()}\n"


def test_a_worker_refuses_a_secret_too_short_to_mask_as_the_engine_does(pool, tmp_path):
    # the local path refuses it before the run (tests/e2e/test_secrets.py); a worker learns the
    # names only with the attempt, so it fails that attempt, not retryable, with the same sentence
    (tmp_path / "worker.env").write_text("API_TOKEN=abc\n")
    start_worker(pool, "shorty", "--env-file", str(tmp_path / "worker.env"))
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    r = pool.gz("run", str(wf), "--distributed", "--json")
    assert r.code == 1, r.err
    task = r.json()["tasks"]["Use"]
    assert task["attempts"] == 1
    assert task["error"] == ("secret 'API_TOKEN' is 3 characters: at least 8 are needed, since masking a value "
                             "that short would mask ordinary output (on worker 'shorty')")


def test_the_orchestrators_env_file_is_ignored_on_a_pool_and_says_so_in_one_line(pool, tmp_path):
    secret = "wk/" + pysecrets.token_urlsafe(20)
    start_worker(pool, "holder", "--allow-secret", "API_TOKEN", API_TOKEN=secret)
    (tmp_path / "mine.env").write_text("API_TOKEN=orchestrator-value-not-used\n")
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    r = pool.gz("run", str(wf), "--distributed", "--json", "--env-file", str(tmp_path / "mine.env"))
    assert r.code == 0, r.err
    assert [line for line in r.err.splitlines() if line.startswith("warning:")] == [ENV_FILE_WARNING]
    use = r.json()["tasks"]["Use"]["result"]["result"]
    assert use["sha"] == hashlib.sha256(secret.encode()).hexdigest()  # the worker's value, not the file's


ENV_FILE_WARNING = ("warning: --env-file does not reach the workers with --distributed: each worker's own "
                    "--env-file / --allow-secret decide its secrets' values")
