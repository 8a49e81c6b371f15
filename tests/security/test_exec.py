"""`gleitzeit exec` gets no host folder unless asked (issue 14 escape 4): run from a folder (or
from /) the code sees neither that folder nor the host tree nor the host's processes."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import gz

from .conftest import write

LOOK = """\
import os
def read(p):
    try:
        return open(p).read()
    except OSError as exc:
        return exc.strerror
result = {"relative": read("canary.txt"), "absolute": read(ABS), "etc": os.path.exists("/etc/hostname"),
          "home": os.path.exists("/home"), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
"""


def test_exec_sees_no_host_folder(home: Path, work: Path, canary: str) -> None:
    write(work, "canary.txt", canary)
    code = LOOK.replace("ABS", repr(str(work / "canary.txt")))
    for cwd in (work, Path("/")):
        res = gz(home, "exec", "--json", code, cwd=cwd)
        assert res.code == 0, res.out + res.err
        seen = res.json()["result"]
        assert canary not in res.out + res.err
        assert seen == {"relative": "No such file or directory", "absolute": "No such file or directory",
                        "etc": False, "home": False, "pids": [1, 2]}, seen  # its supervisor (its namespace's PID 1), and itself


def test_exec_read_makes_a_folder_visible_read_only(home: Path, work: Path, canary: str) -> None:
    write(work, "canary.txt", canary)
    code = f"p = {str(work / 'canary.txt')!r}\nresult = open(p).read()\ntry:\n    open(p, 'w')\nexcept OSError as e:\n    result += ' ' + e.strerror"
    res = gz(home, "exec", "--json", "--read", str(work), code, cwd=Path("/"))
    assert res.code == 0, res.out + res.err
    assert res.json()["result"] == canary + " Read-only file system"


def test_exec_file_binds_the_script_alone(home: Path, work: Path, canary: str) -> None:
    write(work, "canary.txt", canary)
    script = write(work, "look.py", LOOK.replace("ABS", repr(str(work / "canary.txt"))))
    res = gz(home, "exec", "--json", "--file", str(script), cwd=work)
    assert res.code == 0, res.out + res.err
    assert res.json()["result"]["absolute"] == "No such file or directory"
    assert canary not in res.out + res.err
