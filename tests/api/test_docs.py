"""docs/api.md's examples, run exactly as printed, each in a fresh folder and GLEITZEIT_HOME."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.docblocks import python_blocks
from tests.helpers.cli import REPO, cli_env

DOC = REPO / "docs" / "api.md"
BLOCKS = python_blocks(DOC)


def test_the_page_has_its_examples():
    # the notebook script, the 100-run service, reading back from SQLite, stored runs, resuming, inputs and secrets,
    # the scripted dispatcher, the result cache, validating, providers
    assert len(BLOCKS) == 10


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs_as_printed(tmp_path: Path, index: int):
    proc = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, env=cli_env(tmp_path / "home"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    expected = {
        0: ["completed\n55\n", "task 'c' depends on unknown task 'nope'", "dependency cycle: a → b → a",
            "failed ZeroDivisionError: division by zero"],
        1: ["100 runs, all completed; 100 run-finished events"],
        2: ["flaky completed", "roll completed 6 [(1, 'failed', 'RuntimeError: first attempt fails",
            "report completed rolled 6 [(1, 'completed', None)]"],
        3: ["200000 sha256:\nload failed ['RuntimeError: no input yet']\n1 stdout building\nfinished\n"
            "deleted []\n[]\n"],
        4: ["completed 42"],
        5: ["['hello Ada', 'hello Ada']\ntoken ***\n", "input 'times': params['times']: '3' is not of type 'integer'"],
        6: ["completed {'text': 'HELLO'}\n['fetch', 'shout']\n"],
        7: ["False\nTrue\nFalse\nsquare 0\nsquare 1\nFalse ['params.code']\n0 2\n"],
        8: ["[['split'], ['total', 'count']]\n['python/execute']\n[('total', 'split'), ('count', 'split')]\n"
            "task 'a': no provider offers method 'python/exec'; did you mean 'python/execute'?"],
        9: ["python ok ['python/execute']\n", "ollama disabled []\n",
            "ok ok True\nno provider named 'nope' (known: ollama, python)\n"],
    }[index]
    for text in expected:
        assert text in proc.stdout


def test_readme_python_example_runs_as_printed(tmp_path: Path):
    [block] = python_blocks(REPO / "README.md")
    proc = subprocess.run([sys.executable, "-c", block], cwd=REPO, env=cli_env(tmp_path / "home"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("completed {'workflow_id': 'run-")
