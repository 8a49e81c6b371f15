"""`${secrets.NAME}` on a worker pool: the queue carries the name, the worker fills the value
from its own environment and masks it before anything goes back into Redis."""

from __future__ import annotations

import hashlib
import secrets as pysecrets
import textwrap

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


def start_worker(pool: Pool, name: str, **env: str) -> None:
    pool.procs[name] = spawn(pool.home, "worker", "--name", name, "--providers", "python", **pool.env, **env)
    pool.wait_live(name)


def test_the_worker_fills_the_secret_from_its_environment_and_redis_never_holds_it(pool, tmp_path):
    secret = "wk/" + pysecrets.token_urlsafe(20) + "+="
    start_worker(pool, "holder", API_TOKEN=secret)
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    r = pool.gz("run", str(wf), "--distributed", "--json", "-v")  # the orchestrator has no API_TOKEN
    assert r.code == 0, r.err
    use = r.json()["tasks"]["Use"]["result"]
    assert use["result"]["sha"] == hashlib.sha256(secret.encode()).hexdigest()
    assert use["result"]["auth_ok"] is True and use["result"]["echo"] == "***"
    assert "the token is ***" in use["stdout"]
    assert_absent((r.out + r.err).encode(), secret, "the orchestrator's output")
    client = redis.Redis.from_url(pool.url)
    client.config_set("rdbcompression", "no")
    keys = list(client.scan_iter(count=1000))
    assert any(k.startswith(b"gleitzeit:") for k in keys), keys
    for key in keys:
        assert_absent(client.dump(key) or b"", secret, f"DUMP {key!r}")


def test_a_worker_without_the_secret_fails_the_task_saying_so(pool, tmp_path):
    start_worker(pool, "lacks")
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    r = pool.gz("run", str(wf), "--distributed", "--json")
    assert r.code == 1
    task = r.json()["tasks"]["Use"]
    assert task["attempts"] == 1  # not retryable: another attempt would find the same environment
    assert task["error"].startswith("secret 'API_TOKEN' is not set in the environment of worker 'lacks'")
