"""A private GLEITZEIT_HOME, a workflow folder with an allowed write folder for
side-effect markers, and the echo provider registered with a version of the test's choosing."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.cli import Result, gz

ECHO = Path(__file__).with_name("echo_provider.py")


@dataclass
class Folder:
    home: Path
    work: Path  # the workflow folder
    out: Path  # inside it: where python tasks may write (--allow-write)

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def gz(self, *args: str, **env: str) -> Result:
        return gz(self.home, *args, cwd=self.work, **env)

    def run(self, wf: Path, *args: str, ok: bool = True, **env: str) -> dict[str, Any]:
        r = self.gz("run", str(wf), "--json", "--allow-write", str(self.out), *args, **env)
        if ok:
            assert r.code == 0, r.err
        return json.loads(r.out)

    def marks(self, name: str = "marks.txt") -> list[str]:
        """The markers tasks wrote so far, sorted (independent tasks run in parallel)."""
        path = self.out / name
        return sorted(path.read_text().split()) if path.exists() else []

    def count(self) -> int:
        return len(self.marks())

    def echo(self, version: str = "1.0.0") -> Path:
        """(Re-)register the echo provider at ``version``; returns its marker file."""
        providers = self.home / "providers"
        providers.mkdir(parents=True, exist_ok=True)
        marks = self.out / "echo.txt"
        manifest = {"name": "echo", "command": "{python}", "args": [str(ECHO)], "protocols": ["echo/v1"],
                    "env": {"ECHO_VERSION": version, "ECHO_MARKS": str(marks)}, "inherit_env": ["PATH"]}
        (providers / "echo.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
        return marks


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    home, work = tmp_path / "home", tmp_path / "work"
    out = work / "out"
    out.mkdir(parents=True)
    home.mkdir()
    return Folder(home, work, out)


def cached(doc: dict[str, Any]) -> dict[str, bool]:
    return {name: t["cached"] for name, t in doc["tasks"].items()}


def marker_code(out: Path, label: str, value: str) -> str:
    """Python task code that appends ``label`` to the marker file and returns ``value``."""
    return f"open({str(out / 'marks.txt')!r}, 'a').write({label!r} + '\\n')\nresult = {value}\n"


def python_task(name: str, out: Path, value: str, *, deps: list[str] | None = None,
                cache: Any = True, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"name": name, "method": "python/execute", "sandbox": {"write": [str(out)]},
                            "parameters": {"code": marker_code(out, name, value)}}
    if deps:
        task["dependencies"] = deps
    if cache is not None:
        task["cache"] = cache
    task.update(extra)
    return task


def workflow(folder: Folder, tasks: list[dict[str, Any]], name: str = "cached", **top: Any) -> Path:
    path = folder.work / "wf.yaml"
    path.write_text(yaml.safe_dump({"name": name, **top, "tasks": tasks}, sort_keys=False))
    return path
