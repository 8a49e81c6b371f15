"""Single-flight through the real executable: tasks of one run with the same cache key
execute once; the others wait for that one and take its result. Judged by the echo
provider's call markers (each call pauses, so the tasks overlap)."""

from __future__ import annotations

from tests.cache.conftest import Folder, workflow


def test_tasks_with_the_same_key_in_one_run_execute_once(folder: Folder):
    marks = folder.echo()
    same = {"method": "echo/say", "cache": True, "parameters": {"text": "hi", "pause": 1}}
    wf = workflow(folder, [{"name": f"Say {i}", **same} for i in range(3)]
                  + [{"name": "Other", "method": "echo/say", "cache": True, "parameters": {"text": "other"}}])
    out = folder.run(wf)
    assert sorted(marks.read_text().splitlines()) == ["say hi", "say other"]
    says = [out["tasks"][f"Say {i}"] for i in range(3)]
    owner = [t for t in says if not t["cached"]]
    assert len(owner) == 1 and owner[0]["attempts"] == 1
    for t in says:
        assert t["status"] == "completed" and t["result"]["text"] == "hi"
        if t["cached"]:
            assert t["attempts"] == 0 and t["cached_from"] == f"{out['run_id']}/{owner[0]['id']}"


def test_a_failed_owner_leaves_the_waiting_task_to_run_itself(folder: Folder):
    out_dir = folder.out
    code = (f"import os, uuid\nopen(os.path.join({str(out_dir)!r}, uuid.uuid4().hex), 'w').close()\n"
            "import time; time.sleep(1)\n"
            f"n = len(os.listdir({str(out_dir)!r}))\n"
            "assert n == 2, 'the first to run fails'\nresult = n\n")
    task = {"method": "python/execute", "cache": True, "sandbox": {"write": [str(out_dir)]},
            "parameters": {"code": code}}
    wf = workflow(folder, [{"name": "A", **task}, {"name": "B", **task}])
    out = folder.run(wf, ok=False)
    statuses = sorted(t["status"] for t in out["tasks"].values())
    assert statuses == ["completed", "failed"]  # B ran after A failed; it did not take A's failure
    assert len(list(out_dir.iterdir())) == 2
