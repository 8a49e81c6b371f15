"""The engine's store is never visible to a task (issue 14 escape 3): a workflow in a folder that
contains GLEITZEIT_HOME (e.g. `~/wf.yaml` with `~/.gleitzeit`) cannot read the SQLite database or
other runs' workspaces, and neither is readable by other users on disk."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import gz

from .conftest import write

PEEK = """\
import json, os
home = os.path.join(os.path.dirname(os.getcwd()), "..")  # <home>/workspaces/<run> -> <home>
seen = {}
for path in (os.path.join(__file__ and os.path.dirname(__file__), ".gleitzeit"), os.path.abspath(home)):
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                seen[os.path.join(root, name)] = open(os.path.join(root, name), "rb").read().decode("latin-1")
            except OSError as exc:
                seen[os.path.join(root, name)] = exc.strerror
result = seen
"""


def test_tasks_never_see_the_store_or_other_runs(work: Path, canary: str) -> None:
    home = work / ".gleitzeit"
    home.mkdir()
    first = write(work, "first.yaml", f"""\
        name: first
        tasks:
          - {{name: note, method: python/execute, parameters: {{code: "open('note.txt', 'w').write('{canary[::-1]}'[::-1])"}}}}
        """)  # reversed: the canary itself exists only in the first run's workspace
    res = gz(home, "run", str(first), "--json", cwd=work)
    assert res.code == 0, res.out + res.err
    first_ws = Path(res.json()["workspace"])
    assert (first_ws / "note.txt").read_text() == canary
    write(work, "peek.py", PEEK)
    second = write(work, "second.yaml", """\
        name: second
        tasks:
          - {name: peek, method: python/execute, parameters: {file: peek.py}}
          - name: direct
            method: python/execute
            parameters:
              code: |
                paths = ["NOTE", "DB"]
                result = {}
                for p in paths:
                    try:
                        result[p] = open(p, "rb").read().decode("latin-1")
                    except OSError as exc:
                        result[p] = exc.strerror
        """.replace('"NOTE"', json.dumps(str(first_ws / "note.txt"))).replace('"DB"', json.dumps(str(home / "workflows.db"))))
    res = gz(home, "run", str(second), "--json", cwd=work)
    assert res.code == 0, res.out + res.err
    tasks = res.json()["tasks"]
    direct = tasks["direct"]["result"]["result"]
    assert set(direct.values()) == {"No such file or directory"}, direct
    peeked = tasks["peek"]["result"]["result"]
    assert not any(p.endswith(("workflows.db", "note.txt")) for p in peeked), sorted(peeked)
    assert canary not in res.out + res.err
    for db in home.glob("workflows.db*"):
        assert canary.encode() not in db.read_bytes()
    assert not home.stat().st_mode & 0o077  # other users cannot reach the store on disk either
