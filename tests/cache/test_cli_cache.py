"""The result cache end to end: the real `gleitzeit` executable, real providers, the SQLite
store. What ran is judged by side-effect markers the tasks append to a file, never by timing."""

from __future__ import annotations

import json
import os
import time

from tests.cache.conftest import Folder, cached, marker_code, python_task, workflow


def new_marks(before: list[str], after: list[str]) -> list[str]:
    left = list(after)
    for m in before:
        left.remove(m)
    return left


def test_a_second_run_of_an_unchanged_workflow_executes_nothing_it_cached(folder: Folder):
    out = folder.out
    wf = workflow(folder, [python_task("A", out, "21"),
                           python_task("B", out, "${A.result.result} * 2", deps=["A"]),
                           python_task("C", out, "5", cache=None)])
    first = folder.run(wf)
    assert folder.marks() == ["A", "B", "C"] and cached(first) == {"A": False, "B": False, "C": False}

    second = folder.run(wf)
    assert folder.marks() == ["A", "B", "C", "C"]  # only the task without `cache:` ran again
    assert cached(second) == {"A": True, "B": True, "C": False}
    for name in ("A", "B"):
        task = second["tasks"][name]
        assert task["attempts"] == 0 and task["status"] == "completed"
        assert task["cached_from"] == f"{first['run_id']}/{first['tasks'][name]['id']}"
        assert task["result"]["result"] == first["tasks"][name]["result"]["result"]
    assert second["tasks"]["B"]["result"]["result"] == 42

    status = folder.gz("workflow", "status", second["run_id"], "--json")
    assert status.code == 0, status.err
    assert {t["name"]: t["cached"] for t in json.loads(status.out)["tasks"]} == {"A": True, "B": True, "C": False}
    table = folder.gz("workflow", "status", second["run_id"])
    assert "A\tcompleted (cached)" in table.out and "C\tcompleted\t1" in table.out


def test_a_change_reruns_exactly_the_tasks_downstream_of_it(folder: Folder):
    out = folder.out

    def tasks(a: str, c: str) -> list:
        return [python_task("A", out, a), python_task("B", out, "${A.result.result} * 2", deps=["A"]),
                python_task("C", out, c), python_task("D", out, "${C.result.result} + 1", deps=["C"])]

    wf = workflow(folder, tasks("21", "5"))
    folder.run(wf)
    assert folder.marks() == ["A", "B", "C", "D"]

    def ran_after(change: list) -> list[str]:
        before = folder.marks()
        workflow(folder, change)
        assert folder.run(wf)["status"] == "completed"
        return new_marks(before, folder.marks())

    assert ran_after(tasks("21", "6")) == ["C", "D"]  # a parameter of C: C and what reads it
    assert ran_after(tasks("20 + 1", "6")) == ["A"]  # A's code changed, its result did not: B stays cached
    assert ran_after(tasks("22", "6")) == ["A", "B"]  # A's result changed: B reads it
    assert ran_after(tasks("22", "6")) == []


def test_the_contents_of_the_files_a_task_reads_are_part_of_its_key(folder: Folder):
    out = folder.out
    script = folder.write("scripts/job.py", marker_code(out, "script", "1"))
    folder.write("data/a.csv", "x\n1\n")
    folder.write("data/notes.txt", "not matched\n")
    wf = workflow(folder, [
        {"name": "S", "method": "python/execute", "cache": True, "sandbox": {"write": [str(out)]},
         "parameters": {"file": "scripts/job.py"}},
        python_task("E", out, "len(open('data/a.csv').read())", cache={"files": ["data/*.csv"]}),
    ])
    folder.run(wf)
    assert folder.marks() == ["E", "script"]

    def ran() -> list[str]:
        before = folder.marks()
        folder.run(wf)
        return new_marks(before, folder.marks())

    assert ran() == []
    os.utime(script, (time.time() + 100, time.time() + 100))  # a new mtime, the same bytes
    (folder.work / "data" / "notes.txt").write_text("changed, but no pattern names it\n")
    assert ran() == []
    script.write_text(marker_code(out, "script", "2"))  # the `file:` parameter's contents (fileParams)
    assert ran() == ["script"]
    (folder.work / "data" / "a.csv").write_text("x\n2\n")  # a `cache.files` match
    assert ran() == ["E"]
    folder.write("data/b.csv", "y\n")  # a new match
    assert ran() == ["E"]

    last = folder.gz("task", "list", "--json")
    e_task = next(t for t in json.loads(last.out) if t["name"] == "E")
    explained = folder.gz("cache", "explain", e_task["id"], "--json")
    assert explained.code == 0, explained.err
    doc = json.loads(explained.out)
    assert doc["hit"] is False
    assert doc["previous"]["differences"] == ["files.globs.data/*.csv.data/b.csv (new)"]
    assert set(doc["entry"]["document"]["files"]["globs"]["data/*.csv"]) == {"data/a.csv", "data/b.csv"}


def test_provider_version_key_extra_and_non_cacheable_methods(folder: Folder):
    marks = folder.echo("1.0.0")
    wf = workflow(folder, [
        {"name": "Say", "method": "echo/say", "cache": True, "parameters": {"text": "hi"}},
        {"name": "Extra", "method": "echo/say", "cache": {"key_extra": "model-v1"}, "parameters": {"text": "x"}},
        {"name": "Now", "method": "echo/now", "cache": True, "parameters": {"text": "t"}},
    ])

    def ran(*args: str) -> list[str]:
        before = marks.read_text().splitlines() if marks.exists() else []
        r = folder.gz("run", str(wf), "--json", "-v", *args)
        assert r.code == 0, r.err
        ran.err = r.err  # type: ignore[attr-defined]
        return new_marks(sorted(before), sorted(marks.read_text().splitlines()))

    assert ran() == ["now t", "say hi", "say x"]
    assert ran() == ["now t"]  # the provider declares echo/now cacheable: false
    assert "task 'Now' not cached: echo/now is not cacheable (its provider says so)" in ran.err
    folder.echo("1.0.1")
    assert ran() == ["now t", "say hi", "say x"]  # a new provider version: every key changes
    assert ran() == ["now t"]
    workflow(folder, [
        {"name": "Say", "method": "echo/say", "cache": True, "parameters": {"text": "hi"}},
        {"name": "Extra", "method": "echo/say", "cache": {"key_extra": "model-v2"}, "parameters": {"text": "x"}},
        {"name": "Now", "method": "echo/now", "cache": True, "parameters": {"text": "t"}},
    ])
    assert ran() == ["now t", "say x"]


def test_entries_expire_after_their_ttl(folder: Folder):
    out = folder.out
    wf = workflow(folder, [python_task("Short", out, "1", cache={"ttl": "1s"}),
                           python_task("Long", out, "2")], cache={"ttl": "1h"})
    folder.run(wf)
    listed = json.loads(folder.gz("cache", "list", "--json").out)["entries"]
    long = next(e for e in listed if e["task"] == "Long")  # the workflow's ttl
    assert long["expires_at"] > long["created_at"]
    time.sleep(1.5)  # past Short's ttl; the assertion is about expiry, not speed
    folder.run(wf)
    assert folder.marks() == ["Long", "Short", "Short"]


def test_no_cache_reads_and_writes_nothing_and_refresh_cache_replaces(folder: Folder):
    out = folder.out
    wf = workflow(folder, [python_task("A", out, "1")])
    assert cached(folder.run(wf, "--no-cache")) == {"A": False}
    assert json.loads(folder.gz("cache", "list", "--json").out)["entries"] == []
    first = folder.run(wf)
    assert cached(folder.run(wf, "--no-cache")) == {"A": False}
    refreshed = folder.run(wf, "--refresh-cache")
    assert cached(refreshed) == {"A": False}
    assert folder.marks() == ["A", "A", "A", "A"]
    [entry] = json.loads(folder.gz("cache", "list", "--json").out)["entries"]
    assert entry["cached_from"] == f"{refreshed['run_id']}/{refreshed['tasks']['A']['id']}" != first["run_id"]
    assert folder.run(wf)["tasks"]["A"]["cached_from"] == entry["cached_from"]
    both = folder.gz("run", str(folder.work / "wf.yaml"), "--no-cache", "--refresh-cache")
    assert both.code == 2 and "exclude each other" in both.err


def test_what_cannot_be_keyed_is_not_cached_and_verbose_says_why(folder: Folder, tmp_path):
    out = folder.out
    outside = tmp_path / "outside.csv"
    outside.write_text("secret-ish\n")
    (folder.work / "data").mkdir()
    os.symlink(outside, folder.work / "data" / "link.csv")
    wf = workflow(folder, [
        python_task("Escapes", out, "1", cache={"files": ["data/*.csv"]}),
        python_task("Default", out, "2", cache=None),  # python/execute is cached only when the task asks
    ], cache=True)
    for _ in range(2):
        r = folder.gz("run", str(wf), "-v", "--allow-write", str(out))
        assert r.code == 0, r.err
    assert folder.marks() == ["Default", "Default", "Escapes", "Escapes"]
    assert "task 'Escapes' not cached: cannot hash a file it reads: 'data/link.csv' leads out of" in r.err
    assert ("task 'Default' not cached: python/execute is cached only when the task itself says 'cache:'"
            in r.err)
    assert json.loads(folder.gz("cache", "list", "--json").out)["entries"] == []


def test_a_file_the_sandbox_user_cannot_read_is_never_hashed_as_root(folder: Folder):
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root: the engine must read files as the sandbox's user")
    out = folder.out
    private = folder.write("data/root-only.csv", "only root may read this\n")
    private.chmod(0o600)
    wf = workflow(folder, [python_task("P", out, "1", cache={"files": ["data/*.csv"]})])
    for _ in range(2):
        r = folder.gz("run", str(wf), "-v", "--allow-write", str(out))
        assert r.code == 0, r.err
    assert folder.marks() == ["P", "P"]
    assert "task 'P' not cached: cannot hash a file it reads: permission denied: 'data/root-only.csv'" in r.err


def test_failed_results_are_never_cached_and_clear_removes_entries(folder: Folder):
    out = folder.out
    wf = workflow(folder, [python_task("Bad", out, "1 / 0"), python_task("Good", out, "1")])
    for _ in range(2):
        folder.run(wf, ok=False)
    assert folder.marks() == ["Bad", "Bad", "Good"]
    assert [e["task"] for e in json.loads(folder.gz("cache", "list", "--json").out)["entries"]] == ["Good"]
    kept = folder.gz("cache", "clear", "--older-than", "1h", "--json")
    assert json.loads(kept.out) == {"deleted": 0}
    assert json.loads(folder.gz("cache", "clear", "--json").out) == {"deleted": 1}
    folder.run(wf, ok=False)
    assert folder.marks() == ["Bad", "Bad", "Bad", "Good", "Good"]
    bad = folder.gz("cache", "clear", "--older-than", "soon")
    assert bad.code == 2 and "--older-than 'soon'" in bad.err


def test_a_bad_cache_block_is_one_line_with_its_position(folder: Folder):
    wf = folder.write("bad.yaml", """\
        name: bad
        tasks:
          - name: A
            method: python/execute
            cache: {ttl: forever, files: ["../escape/*"]}
            parameters: {code: "result = 1"}
        """)
    r = folder.gz("validate", str(wf))
    said = r.out + r.err
    assert r.code == 2
    assert f"{wf}:5:18: task 'A': cache 'ttl' must be a positive duration" in said
    assert f"{wf}:5:34: task 'A': cache 'files' pattern '../escape/*' must stay inside the workflow folder" in said
    assert "Traceback" not in said


def test_a_changed_input_reruns_the_tasks_that_read_it(folder: Folder):
    out = folder.out
    wf = workflow(folder, [
        python_task("Reads", out, "${inputs.n} * 10"),
        python_task("Other", out, "1"),
        python_task("Extra", out, "2", cache={"key_extra": "${inputs.model_version}"}),
    ], inputs={"n": {"type": "integer", "default": 1}, "model_version": {"type": "string", "default": "m1"}})

    def ran(*params: str) -> list[str]:
        before = folder.marks()
        folder.run(wf, *[arg for p in params for arg in ("--param", p)])
        return new_marks(before, folder.marks())

    assert ran("n=1") == ["Extra", "Other", "Reads"]
    assert ran("n=1") == []
    assert ran("n=2") == ["Reads"]
    assert ran("n=2", "model_version=m2") == ["Extra"]  # key_extra with ${inputs.…}


def test_secrets_enter_keys_by_name_and_their_values_never_reach_the_cache(folder: Folder):
    out = folder.out
    secret = "tok-" + os.urandom(12).hex() + "-cachetest"
    wf = workflow(folder, [{
        "name": "Call", "method": "python/execute", "cache": True,
        "sandbox": {"write": [str(out)], "env": {"TOKEN": "${secrets.API_TOKEN}"}},
        "parameters": {"context": {"auth": "Bearer ${secrets.API_TOKEN}"},
                       "code": marker_code(out, "Call", "len(__import__('os').environ['TOKEN'])")},
    }], secrets=["API_TOKEN"])
    first = folder.run(wf, "--allow-secret", "API_TOKEN", API_TOKEN=secret)
    second = folder.run(wf, "--allow-secret", "API_TOKEN", API_TOKEN=secret)
    assert folder.marks() == ["Call"] and cached(second) == {"Call": True}
    assert second["tasks"]["Call"]["result"]["result"] == len(secret)
    rotated = folder.run(wf, "--allow-secret", "API_TOKEN", API_TOKEN=secret + "-rotated")  # by name only: a new value is the same key
    assert cached(rotated) == {"Call": True}

    explained = json.loads(folder.gz("cache", "explain", first["tasks"]["Call"]["id"], "--json").out)
    document = explained["entry"]["document"]
    assert document["secrets"] == ["API_TOKEN"]
    assert document["sandbox"]["env"] == {"TOKEN": "${secrets.API_TOKEN}"}
    listed = folder.gz("cache", "list", "--json").out
    stored = b"".join(p.read_bytes() for p in folder.home.rglob("*") if p.is_file())
    for where, blob in (("the store's files", stored), ("cache list", listed.encode()),
                        ("cache explain", json.dumps(explained).encode())):
        assert secret.encode() not in blob, f"the secret's value is in {where}"
