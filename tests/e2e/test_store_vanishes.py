"""The SQLite store disappearing or turning unwritable under a running engine:
one line, exit 2 -- never a run that "completes" into a deleted file, never a
SIGBUS (issue 14)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_interrupted import GATED
from tests.e2e.test_resume import started_run_id, wait_for
from tests.helpers.cli import LIVE_WORKSPACE, gz, spawn

WORKFLOW = GATED + """\
  - name: after
    method: python/execute
    dependencies: [waits]
    params: {code: "result = 2"}
"""


def start(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen, Path]:
    home = tmp_path / "home"
    home.mkdir()
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    proc = spawn(home, "run", str(wf), **LIVE_WORKSPACE)
    run_id = started_run_id(proc)
    ws = home / "workspaces" / run_id
    wait_for(lambda: (ws / "markers").exists(), what="the task to start")
    return home, wf, proc, ws


def finish(proc: subprocess.Popen, ws: Path) -> tuple[int, str]:
    (ws / "go").write_text("")
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_deleting_the_database_mid_run_stops_the_engine_with_exit_2(tmp_path):
    home, _, proc, ws = start(tmp_path)
    for suffix in ("", "-wal", "-shm"):
        (home / f"workflows.db{suffix}").unlink()
    code, err = finish(proc, ws)
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "workflows.db was deleted while in use" in errors[0], err
    assert "Traceback" not in err


def test_replacing_the_database_mid_run_is_noticed(tmp_path):
    home, _, proc, ws = start(tmp_path)
    db = home / "workflows.db"
    shutil.copy(db, tmp_path / "copy.db")
    (tmp_path / "copy.db").replace(db)  # same name, another file
    code, err = finish(proc, ws)
    assert code == 2 and "was replaced by another file" in err, err


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")
def test_an_immutable_shm_file_is_a_clear_error_not_sigbus(tmp_path):
    home, _, proc, ws = start(tmp_path)
    shm = home / "workflows.db-shm"
    if subprocess.run(["chattr", "+i", str(shm)], capture_output=True).returncode != 0:
        pytest.fail("chattr +i failed: the test needs root on a file system with inode flags (ext4, xfs)")
    try:
        code, err = finish(proc, ws)
        assert code == 2, (code, err)  # -7 would be SIGBUS
        assert "workflows.db-shm is no longer writable" in err, err
    finally:
        subprocess.run(["chattr", "-i", str(shm)], check=True)
    # the run was left behind by an engine that stopped: once that is noticed it reads interrupted
    listed = gz(home, "workflow", "list", "--json")
    assert listed.code == 0, listed.err
    assert [r["status"] for r in listed.json()] == ["interrupted"]
