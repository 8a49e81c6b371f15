"""Where the SQLite store lives and how durably it commits, as the real `gleitzeit` sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import write
from tests.helpers.cli import cli_env, gz

ONE = """
    name: one
    tasks:
      - name: a
        method: python/execute
        params: {code: "result = 1"}
"""


def test_the_default_database_is_in_gleitzeit_home_for_the_cli_and_the_python_api(home: Path, work: Path):
    wf = write(work, "one.yaml", ONE)
    done = gz(home, "run", str(wf), "--json")
    assert done.code == 0, done.err
    db = home / "workflows.db"
    assert db.is_file()
    stats = gz(home, "backend", "get-stats", "--json").json()
    assert stats["address"] == str(db) and stats["runs_total"] == 1
    # the Python API, with nothing but GLEITZEIT_HOME set, opens the same file
    code = "import gleitzeit_core; print(gleitzeit_core.ExecutionEngine().store.address)"
    api = subprocess.run([sys.executable, "-c", code], env=cli_env(home), capture_output=True, text=True, check=True)
    assert api.stdout.strip() == str(db)


def test_synchronous_full_from_the_config_file_or_the_environment_is_applied(home: Path):
    assert gz(home, "backend", "get-stats", "--json").json()["settings"] == {
        "synchronous": "normal", "journal_mode": "wal"}
    (home / "config.yaml").write_text("persistence:\n  sqlite:\n    synchronous: full\n")
    assert gz(home, "backend", "get-stats", "--json").json()["settings"]["synchronous"] == "full"
    (home / "config.yaml").unlink()
    stats = gz(home, "backend", "get-stats", "--json", GLEITZEIT_SQLITE_SYNCHRONOUS="FULL").json()
    assert stats["settings"]["synchronous"] == "full"


def test_an_unknown_synchronous_value_is_one_clear_line(home: Path):
    (home / "config.yaml").write_text("persistence:\n  sqlite:\n    synchronous: sometimes\n")
    bad = gz(home, "backend", "get-stats")
    assert bad.code == 2
    assert "persistence.sqlite.synchronous" in bad.err and "normal, full" in bad.err
    assert "Traceback" not in bad.err
