"""`${secrets.NAME}` through the real executable: the value reaches the task, and neither it
nor its base64 / URL-encoded forms reach the SQLite files, the blobs, a Redis dump, the
stored output, `--json`, `-v` or `logs` -- also when the task prints, returns or raises it."""

from __future__ import annotations

import base64
import hashlib
import secrets as pysecrets
import sqlite3
import subprocess
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import redis

from tests.helpers.cli import gz

WORKFLOW = textwrap.dedent("""\
    name: secret leaks
    secrets: [API_TOKEN]
    tasks:
      - name: Use
        method: python/execute
        sandbox:
          env: {TOKEN: "${secrets.API_TOKEN}"}
        parameters:
          context: {auth: "Bearer ${secrets.API_TOKEN}", whole: "${secrets.API_TOKEN}"}
          code: |
            import base64, hashlib, os, sys, time, urllib.parse
            t = os.environ["TOKEN"]
            forms = [t, base64.b64encode(t.encode()).decode(), base64.urlsafe_b64encode(t.encode()).decode(),
                     urllib.parse.quote(t, safe=""), urllib.parse.quote_plus(t),
                     base64.b64encode(b"user:" + t.encode()).decode()]
            for f in forms:
                print("printed", f)
                print("on stderr", f, file=sys.stderr)
            sys.stdout.write("split " + t[:5]); sys.stdout.flush(); time.sleep(0.3)
            sys.stdout.write(t[5:] + " end\\n"); sys.stdout.flush()
            result = {"sha": hashlib.sha256(t.encode()).hexdigest(), "forms": forms, "auth": context["auth"],
                      "same": context["whole"] == t, t: "as a key"}
      - name: Big
        method: python/execute
        sandbox:
          env: {TOKEN: "${secrets.API_TOKEN}"}
        parameters: {code: "import os; result = [os.environ['TOKEN']] * 200000"}
      - name: Fail
        method: python/execute
        dependencies: [Use]
        sandbox:
          env: {TOKEN: "${secrets.API_TOKEN}"}
        parameters:
          code: |
            import os
            raise RuntimeError("leaking " + os.environ["TOKEN"])
""")


def forms_of(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
            quote(secret, safe=""), quote_plus(secret), base64.b64encode(b"user:" + raw).decode()[8:-4]]


def make_secret() -> str:
    return "tok/" + pysecrets.token_urlsafe(18) + "+x=y"  # '/', '+' and '=' make the encodings differ


def assert_absent(blob: bytes, secret: str, where: str) -> None:
    for form in forms_of(secret):
        assert form.encode() not in blob, f"{form!r} (a form of the secret) found in {where}"


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run(home: Path, wf: Path, secret: str, *args: str, **env: str):
    return gz(home, "run", str(wf), "--json", "-v", "--allow-secret", "API_TOKEN", *args, cwd=wf.parent,
              API_TOKEN=secret, **env)


def check_run(r, secret: str) -> dict:
    assert r.code == 1, r.err
    out = r.json()
    use = out["tasks"]["Use"]
    assert use["status"] == "completed"
    result = use["result"]["result"]
    assert result["sha"] == hashlib.sha256(secret.encode()).hexdigest()  # the task had the real value
    assert result["same"] is True and result["auth"] == "Bearer ***"
    assert result["forms"][:5] == ["***"] * 5 and "***" in result
    assert out["tasks"]["Big"]["status"] == "completed" and out["tasks"]["Big"]["result_blob"]
    assert out["tasks"]["Fail"]["status"] == "failed" and "leaking ***" in out["tasks"]["Fail"]["error"]
    for text, where in ((r.out, "--json"), (r.err, "the -v output")):
        assert_absent(text.encode(), secret, where)
    return out


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    return path


def test_a_secret_never_reaches_the_sqlite_files_the_blobs_or_the_logs(tmp_path, wf):
    home, secret = tmp_path / "home", make_secret()
    out = check_run(run(home, wf, secret), secret)
    run_id = out["run_id"]
    db = home / "workflows.db"
    stored = {p: b for p, b in files_under(home).items() if "/workspaces/" not in p}
    assert str(db) in stored and any(".blobs" in p for p in stored), sorted(stored)  # the big result is a blob
    for path, content in stored.items():
        assert_absent(content, secret, path)
    for args in (["logs", run_id, "Use"], ["task", "result", out["tasks"]["Big"]["id"]], ["logs", run_id, "Fail"]):
        shown = gz(home, *args, cwd=wf.parent)
        assert shown.code == 0, shown.err
        assert_absent((shown.out + shown.err).encode(), secret, " ".join(args[:2]))
    logs = gz(home, "logs", run_id, "Use", cwd=wf.parent).out
    assert "printed ***" in logs and "split *** end" in logs  # split between two writes: masked all the same
    lines = [t for (t,) in sqlite3.connect(db).execute("SELECT text FROM log_lines WHERE stream = 'stdout'")]
    assert "printed ***" in lines and "split *** end" in lines  # the stored lines (checked above) are the masked ones


def test_a_secret_never_reaches_a_redis_dump(tmp_path, wf, redis_server_factory):
    server = redis_server_factory()
    home, secret = tmp_path / "home", make_secret()
    check_run(run(home, wf, secret, GLEITZEIT_PERSISTENCE_BACKEND="redis", GLEITZEIT_REDIS_URL=server.url), secret)
    client = redis.Redis(port=server.port)
    client.config_set("rdbcompression", "no")  # LZF would hide a form inside a compressed value
    keys = list(client.scan_iter(count=1000))
    assert any(b"run" in k for k in keys), keys
    for key in keys:
        assert_absent(client.dump(key) or b"", secret, f"DUMP {key!r}")
    rdb = tmp_path / "dump.rdb"
    subprocess.run(["redis-cli", "-p", str(server.port), "--rdb", str(rdb)], check=True, capture_output=True, timeout=60)
    assert rdb.stat().st_size > 100_000  # the 200,000-item result is in it
    assert_absent(rdb.read_bytes(), secret, "redis-cli --rdb")


def test_an_env_file_gives_the_value_and_a_missing_or_short_secret_is_exit_2(tmp_path, wf):
    home, secret = tmp_path / "home", make_secret()
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"# comment\nexport API_TOKEN='{secret}'\n")
    r = gz(home, "run", "wf.yaml", "--json", "--env-file", "prod.env", cwd=tmp_path)
    assert r.code == 1 and r.json()["tasks"]["Use"]["result"]["result"]["sha"] == hashlib.sha256(secret.encode()).hexdigest()
    missing = gz(home, "run", "wf.yaml", "--allow-secret", "API_TOKEN", cwd=tmp_path)
    assert missing.code == 2
    assert missing.err.strip() == ("error: wf.yaml:2:11: secret 'API_TOKEN' is not set: export API_TOKEN=… or put it "
                                   "in a file given with --env-file")
    short = gz(home, "run", "wf.yaml", "--allow-secret", "API_TOKEN", cwd=tmp_path, API_TOKEN="abc")
    assert short.code == 2 and "secret 'API_TOKEN' is 3 characters: at least 8 are needed" in short.err
    listed = gz(home, "workflow", "list", "--json", cwd=tmp_path).json()
    assert len(listed) == 1  # only the run that had its secret


def test_a_secret_in_code_is_refused_with_what_to_use_instead(tmp_path):
    (tmp_path / "wf.yaml").write_text(textwrap.dedent("""\
        name: code secret
        secrets: [API_TOKEN]
        tasks:
          - name: A
            method: python/execute
            parameters:
              code: "token = ${secrets.API_TOKEN}"
    """))
    for command in (["validate"], ["run", "--allow-secret", "API_TOKEN"]):
        r = gz(tmp_path / "home", *command, "wf.yaml", cwd=tmp_path, API_TOKEN=make_secret())
        assert r.code == 2
        assert ("wf.yaml:7:13: task 'A': parameter 'code' is code, and code is stored with the run: a ${secrets.…} "
                "cannot go into it; pass the secret through 'context' or 'sandbox.env' instead") in r.out + r.err


def test_text_from_data_that_spells_a_secret_reference_stays_text(tmp_path):
    (tmp_path / "wf.yaml").write_text(textwrap.dedent("""\
        name: injection
        secrets: [API_TOKEN]
        tasks:
          - name: Hostile
            method: python/execute
            parameters: {code: "result = '$' + '{secrets.API_TOKEN}'"}
          - name: Reader
            method: python/execute
            dependencies: [Hostile]
            parameters:
              context: {v: "${Hostile.result.result}", t: "${secrets.API_TOKEN}"}
              code: "result = context['v']"
    """))
    r = gz(tmp_path / "home", "run", "wf.yaml", "--json", "--allow-secret", "API_TOKEN", cwd=tmp_path,
           API_TOKEN=make_secret())
    assert r.code == 0, r.err
    assert r.json()["tasks"]["Reader"]["result"]["result"] == "${secrets.API_TOKEN}"


def test_undeclared_and_mixed_secret_references_are_load_errors(tmp_path):
    (tmp_path / "wf.yaml").write_text(textwrap.dedent("""\
        name: bad secrets
        secrets: [API_TOKEN]
        inputs:
          user: {type: string, default: me}
        tasks:
          - name: A
            method: python/execute
            sandbox:
              env: {X: "${secrets.OTHER}"}
            parameters:
              context: {u: "${secrets.API_TOKN}", m: "${inputs.user}:${secrets.API_TOKEN}"}
              code: "result = 1"
    """))
    r = gz(tmp_path / "home", "validate", "wf.yaml", cwd=tmp_path)
    assert r.code == 2
    assert "wf.yaml:9:16: task 'A' sandbox: ${secrets.OTHER} names a secret the workflow does not list under 'secrets:'" in r.out
    assert ("wf.yaml:11:20: task 'A': ${secrets.API_TOKN} names a secret the workflow does not list under "
            "'secrets:'; did you mean 'API_TOKEN'?") in r.out
    assert "wf.yaml:11:46: task 'A': a text holding ${secrets.API_TOKEN} cannot hold other ${…} references" in r.out



def test_debug_logs_of_the_wire_traffic_mask_the_filled_values(tmp_path, wf):
    home, secret = tmp_path / "home", make_secret()
    r = gz(home, "--debug", "run", str(wf), "--allow-secret", "API_TOKEN", cwd=wf.parent, API_TOKEN=secret)
    assert r.code == 1
    assert '"method":"python/execute"' in r.err and "Bearer ***" in r.err  # the request is logged, masked
    assert_absent((r.out + r.err).encode(), secret, "the --debug output")
